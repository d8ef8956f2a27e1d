// SPDX-License-Identifier: GPL-2.0-only
/*
 * A QMP client (host/qmp.h).  QMP is a stream of JSON objects both ways:
 * QEMU's greeting, then our commands each with an "id", its replies
 * ("return" or "error", with that id) and, at any time, its events.
 * Messages are framed here by their braces (QEMU ends each with CRLF,
 * but pretty-printed monitors span lines), bounded by QMP_REPLY_MAX, and
 * then checked whole by lib/json_read.c.
 *
 * A message that cannot be framed (not an object, too long) leaves the
 * stream with no known boundary: the connection is closed then, and
 * later commands fail.  A timeout does not: its reply, if it ever comes,
 * carries an old id and is skipped.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "host/qmp.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/json_read.h"

/*
 * A reply's limits.  The node count is bounded by the reply's length
 * (every value takes a byte), so a reply may hold as many as it likes:
 * query-qmp-schema, QEMU's longest (about 200 KB in 7.2), has tens of
 * thousands.  Its nesting is shallow; 32 is far beyond any.
 */
static const struct jr_limits reply_limits = {
	.max_len = QMP_REPLY_MAX,
	.max_nodes = QMP_REPLY_MAX,
	.max_depth = 32,
};

static int qerr(const struct qmp *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int qerr(const struct qmp *q, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lmig_err("QMP %s: %s", q->path, msg);
}

static void drop_connection(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

static int remaining_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/*
 * How far the object at the front of buf goes: its length once whole,
 * 0 while it is not, -1 if the first byte past white space does not
 * open an object.  Resumes where the last call stopped.
 */
static long frame(struct qmp *q)
{
	for (; q->scan < q->len; q->scan++) {
		char c = q->buf[q->scan];

		if (!q->started) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (c != '{')
				return -1;
			q->started = true;
			q->depth = 1;
		} else if (q->in_str) {
			if (q->esc)
				q->esc = false;
			else if (c == '\\')
				q->esc = true;
			else if (c == '"')
				q->in_str = false;
		} else if (c == '"') {
			q->in_str = true;
		} else if (c == '{' || c == '[') {
			q->depth++;
		} else if ((c == '}' || c == ']') && --q->depth == 0) {
			return ++q->scan;
		}
	}
	return 0;
}

/* Forget the message handed out last, keeping what came after it. */
static void drop_held(struct qmp *q)
{
	if (!q->held)
		return;
	/* And the white space after it: a message gets the whole buffer. */
	while (q->held < q->len && q->buf[q->held] && strchr(" \t\r\n", q->buf[q->held]))
		q->held++;
	memmove(q->buf, q->buf + q->held, q->len - q->held);
	q->len -= q->held;
	q->held = 0;
	q->scan = 0;
	q->started = q->in_str = q->esc = false;
	q->depth = 0;
}

/*
 * The next message, parsed into d (its text at the front of q->buf,
 * held there until the next call).  what names what was awaited, for
 * the errors.  0, or -1 with lmig_err().
 */
static int read_msg(struct qmp *q, long long deadline, const char *what, struct jr_doc *d)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
	long n;
	ssize_t r;
	int rc;

	drop_held(q);
	for (;;) {
		n = frame(q);
		if (n < 0) {
			drop_connection(q);
			return qerr(q, "%s is not a JSON object (it starts with byte 0x%02x)", what,
				    (unsigned char)q->buf[q->scan]);
		}
		if (n > 0)
			break;
		/* White space before a message (the CRLF after the last one)
		 * is dropped: a message has all of the buffer. */
		if (!q->started) {
			q->len = q->scan = 0;
		} else if (q->buf[0] != '{') {
			size_t k = (char *)memchr(q->buf, '{', q->len) - q->buf;

			memmove(q->buf, q->buf + k, q->len - k);
			q->len -= k;
			q->scan -= k;
		}
		if (q->len >= QMP_REPLY_MAX) {
			drop_connection(q);
			return qerr(q, "%s is longer than %d bytes: refused", what, QMP_REPLY_MAX);
		}
		rc = poll(&pfd, 1, remaining_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return lmig_err_errno(errno, "QMP %s: poll", q->path);
		if (rc == 0 && !strcmp(what, "greeting"))
			return qerr(q, "no greeting within %d ms (QEMU serves one client at a "
				    "time on a -qmp socket: is another one connected?)",
				    q->timeout_ms);
		if (rc == 0)
			return qerr(q, "no %s within %d ms", what, q->timeout_ms);
		r = recv(q->fd, q->buf + q->len, QMP_REPLY_MAX - q->len, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			rc = errno;
			drop_connection(q);
			return lmig_err_errno(rc, "QMP %s: reading %s", q->path, what);
		}
		if (r == 0) {
			drop_connection(q);
			return qerr(q, "QEMU closed the connection%s while %s was awaited",
				    q->len ? " mid-message" : "", what);
		}
		q->len += r;
	}
	q->held = n;
	if (jr_parse(d, q->buf, n, &reply_limits, NULL)) {
		/* The braces matched, so the stream goes on after it. */
		return qerr(q, "%s is not valid JSON: %s at byte %zu", what,
			    jr_strerror(d->err), d->err_off);
	}
	return 0;
}

static int write_all(struct qmp *q, const char *s, size_t len, long long deadline)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
	ssize_t w;
	int rc;

	while (len) {
		w = send(q->fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			s += w;
			len -= w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			rc = errno;
			drop_connection(q);
			return lmig_err_errno(rc, "QMP %s: sending a command", q->path);
		}
		rc = poll(&pfd, 1, remaining_ms(deadline));
		if (rc == 0)
			return qerr(q, "QEMU took no command within %d ms", q->timeout_ms);
		if (rc < 0 && errno != EINTR)
			return lmig_err_errno(errno, "QMP %s: poll", q->path);
	}
	return 0;
}

/* A command name as QAPI spells them: what is safe to put in quotes. */
static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
			return false;
	return true;
}

static int send_cmd(struct qmp *q, const char *name, const char *args, uint64_t id,
		    long long deadline)
{
	struct jr_doc a;
	char *cmd;
	int n, rc;

	if (!name_ok(name))
		return qerr(q, "\"%.80s\" is not a command name", name);
	if (args) {
		/* One object, whole: nothing in it can end the command early. */
		if (jr_parse(&a, args, strlen(args), &jr_limits_default, NULL))
			return qerr(q, "%s: the arguments are not JSON: %s at byte %zu", name,
				    jr_strerror(a.err), a.err_off);
		rc = jr_type(&a, 0);
		jr_free(&a);
		if (rc != JR_OBJECT)
			return qerr(q, "%s: the arguments are not a JSON object", name);
	}
	n = asprintf(&cmd, "{\"execute\": \"%s\"%s%s, \"id\": %llu}\r\n", name,
		     args ? ", \"arguments\": " : "", args ? args : "", (unsigned long long)id);
	if (n < 0)
		return qerr(q, "%s: out of memory", name);
	rc = write_all(q, cmd, n, deadline);
	free(cmd);
	return rc;
}

/* QEMU's error reply as one line: its "desc", quoted, and its "class". */
static int qemu_error(struct qmp *q, const char *name, const struct jr_doc *d, int err)
{
	char desc[300] = "", cls[64] = "";

	if (jr_str(d, jr_get(d, err, "desc"), desc, sizeof(desc)))
		snprintf(desc, sizeof(desc), "(no readable desc)");
	jr_str(d, jr_get(d, err, "class"), cls, sizeof(cls));
	for (char *p = desc; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	for (char *p = cls; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == ')')
			*p = ' ';
	if (cls[0])
		return qerr(q, "%s: QEMU says \"%s\" (%s)", name, desc, cls);
	return qerr(q, "%s: QEMU says \"%s\"", name, desc);
}

/*
 * Run name and wait for its reply, skipping events and replies to
 * earlier commands.  On success d holds the reply (jr_free() it) and
 * *ret its "return" value.  0, or -1 with lmig_err().
 */
static int command(struct qmp *q, const char *name, const char *args, struct jr_doc *d, int *ret)
{
	long long deadline = now_ms() + q->timeout_ms;
	uint64_t id = q->next_id++, got;
	char what[100];
	int idn, err;

	if (q->fd < 0)
		return qerr(q, "%s: not connected (an earlier error closed the connection)",
			    name);
	if (send_cmd(q, name, args, id, deadline))
		return -1;
	snprintf(what, sizeof(what), "reply to %s", name);
	for (;;) {
		if (read_msg(q, deadline, what, d))
			return -1;
		if (jr_type(d, 0) != JR_OBJECT) {
			jr_free(d);
			return qerr(q, "the %s is not a JSON object", what);
		}
		if (jr_get(d, 0, "event") >= 0) {
			if (jr_str(d, jr_get(d, 0, "event"), q->last_event, sizeof(q->last_event)))
				snprintf(q->last_event, sizeof(q->last_event), "?");
			jr_free(d);
			continue;
		}
		idn = jr_get(d, 0, "id");
		/* No id: QEMU could not read the command to find one. */
		if (idn >= 0 && (jr_u64(d, idn, &got) || got != id)) {
			jr_free(d);
			continue;
		}
		*ret = jr_get(d, 0, "return");
		err = jr_get(d, 0, "error");
		if (*ret >= 0)
			return 0;
		if (err >= 0)
			qemu_error(q, name, d, err);
		else
			qerr(q, "the %s has neither \"return\" nor \"error\"", what);
		jr_free(d);
		return -1;
	}
}

int qmp_exec(struct qmp *q, const char *name, const char *args, char *out, size_t len)
{
	struct jr_doc d;
	const char *s;
	size_t n;
	int ret;

	if (command(q, name, args, &d, &ret))
		return -1;
	s = jr_span(&d, ret, &n);
	if (n >= len) {
		jr_free(&d);
		return qerr(q, "%s: its reply (%zu bytes) is longer than the %zu bytes given",
			    name, n, len ? len - 1 : 0);
	}
	memcpy(out, s, n);
	out[n] = 0;
	jr_free(&d);
	return 0;
}

static int connect_unix(struct qmp *q, long long deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	socklen_t sl;
	int rc, e;

	memcpy(sa.sun_path, q->path, strlen(q->path));
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (q->fd < 0)
		return lmig_err_errno(errno, "QMP %s: socket", q->path);
	for (;;) {
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && remaining_ms(deadline) > 0) {
			/* The listener's backlog is full: it may drain. */
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
			continue;
		}
		if (errno != EINPROGRESS)
			return lmig_err_errno(errno, "QMP %s: cannot connect", q->path);
		break;
	}
	pfd = (struct pollfd){ .fd = q->fd, .events = POLLOUT };
	do
		rc = poll(&pfd, 1, remaining_ms(deadline));
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return qerr(q, "cannot connect within %d ms", q->timeout_ms);
	sl = sizeof(e);
	if (rc < 0 || getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &sl))
		return lmig_err_errno(errno, "QMP %s: cannot connect", q->path);
	if (e)
		return lmig_err_errno(e, "QMP %s: cannot connect", q->path);
	return 0;
}

/* {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, ...}, ...}} */
static int greeting(struct qmp *q, long long deadline)
{
	static const char *const part[3] = { "major", "minor", "micro" };
	struct jr_doc d;
	int g, v;
	uint64_t n;

	if (read_msg(q, deadline, "greeting", &d))
		return -1;
	g = jr_get(&d, 0, "QMP");
	if (jr_type(&d, g) != JR_OBJECT) {
		jr_free(&d);
		drop_connection(q);
		return qerr(q, "not a QMP monitor (its greeting has no \"QMP\" object)");
	}
	v = jr_get(&d, jr_get(&d, g, "version"), "qemu");
	for (int i = 0; i < 3; i++)
		q->version[i] = jr_u64(&d, jr_get(&d, v, part[i]), &n) || n > 0xffff ? 0 : n;
	jr_free(&d);
	return 0;
}

int qmp_open(struct qmp *q, const char *path, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct ucred cred;
	socklen_t sl = sizeof(cred);
	struct jr_doc d;
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	q->next_id = 1;
	snprintf(q->path, sizeof(q->path), "%s", path);
	if (strlen(path) >= sizeof(q->path) || !path[0])
		return lmig_err("QMP %.60s...: the socket path is empty or longer than %zu bytes",
				path, sizeof(q->path) - 1);
	q->buf = malloc(QMP_REPLY_MAX + 1);
	if (!q->buf)
		return qerr(q, "out of memory");
	if (connect_unix(q, deadline))
		goto fail;
	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl)) {
		lmig_err_errno(errno, "QMP %s: SO_PEERCRED", q->path);
		goto fail;
	}
	q->pid = cred.pid;
	if (greeting(q, deadline) || command(q, "qmp_capabilities", NULL, &d, &ret))
		goto fail;
	jr_free(&d);
	return 0;
fail:
	qmp_close(q);
	return -1;
}

void qmp_close(struct qmp *q)
{
	drop_connection(q);
	free(q->buf);
	q->buf = NULL;
	q->len = q->held = q->scan = 0;
}

/* Numbers of a reply: absent is def, present but not one is def too. */
static uint64_t get_u64(const struct jr_doc *d, int obj, const char *key, uint64_t def)
{
	uint64_t v;

	return jr_u64(d, jr_get(d, obj, key), &v) ? def : v;
}

static int64_t get_i64(const struct jr_doc *d, int obj, const char *key, int64_t def)
{
	int64_t v;

	return jr_i64(d, jr_get(d, obj, key), &v) ? def : v;
}

/*
 * {"status": "active", "ram": {"total": .., "remaining": .., "mbps": ..,
 * "dirty-pages-rate": .., "dirty-sync-count": .., "page-size": .., ...},
 * "expected-downtime": .., "total-time": .., ...}; before any migration
 * QEMU answers {}: that is "none".
 */
int qmp_query_migrate(struct qmp *q, struct qmp_migrate *m)
{
	struct jr_doc d;
	int ret, ram;

	memset(m, 0, sizeof(*m));
	if (command(q, "query-migrate", NULL, &d, &ret))
		return -1;
	if (jr_type(&d, ret) != JR_OBJECT) {
		jr_free(&d);
		return qerr(q, "query-migrate: the reply is not an object");
	}
	if (jr_get(&d, ret, "status") < 0)
		snprintf(m->status, sizeof(m->status), "none");
	else if (jr_str(&d, jr_get(&d, ret, "status"), m->status, sizeof(m->status))) {
		jr_free(&d);
		return qerr(q, "query-migrate: its \"status\" is not a short string");
	}
	ram = jr_get(&d, ret, "ram");
	m->has_ram = jr_type(&d, ram) == JR_OBJECT;
	m->total = get_u64(&d, ram, "total", 0);
	m->remaining = get_u64(&d, ram, "remaining", 0);
	m->transferred = get_u64(&d, ram, "transferred", 0);
	m->duplicate = get_u64(&d, ram, "duplicate", 0);
	m->normal = get_u64(&d, ram, "normal", 0);
	m->dirty_pages_rate = get_u64(&d, ram, "dirty-pages-rate", 0);
	m->dirty_sync_count = get_u64(&d, ram, "dirty-sync-count", 0);
	m->page_size = get_u64(&d, ram, "page-size", 0);
	if (jr_dbl(&d, jr_get(&d, ram, "mbps"), &m->mbps))
		m->mbps = 0;
	m->expected_downtime_ms = get_i64(&d, ret, "expected-downtime", -1);
	m->downtime_ms = get_i64(&d, ret, "downtime", -1);
	m->total_time_ms = get_i64(&d, ret, "total-time", -1);
	m->cpu_throttle_percentage = get_i64(&d, ret, "cpu-throttle-percentage", -1);
	if (jr_str(&d, jr_get(&d, ret, "error-desc"), m->error_desc, sizeof(m->error_desc)))
		m->error_desc[0] = 0;
	jr_free(&d);
	return 0;
}

/* [{"cpu-index": 0, "thread-id": 1234, "qom-path": .., "props": ..}, ...] */
int qmp_vcpus(struct qmp *q, struct qmp_vcpu *v, unsigned int max)
{
	struct jr_doc d;
	unsigned int n = 0;
	int ret;
	int64_t idx, tid;

	if (command(q, "query-cpus-fast", NULL, &d, &ret))
		return -1;
	if (jr_type(&d, ret) != JR_ARRAY) {
		jr_free(&d);
		return qerr(q, "query-cpus-fast: the reply is not an array");
	}
	for (int c = jr_first(&d, ret); c >= 0 && n < max; c = jr_next(&d, c)) {
		if (jr_i64(&d, jr_get(&d, c, "cpu-index"), &idx) || idx < 0 || idx > 0x7fffffff ||
		    jr_i64(&d, jr_get(&d, c, "thread-id"), &tid) || tid <= 0 || tid > 0x7fffffff) {
			jr_free(&d);
			return qerr(q, "query-cpus-fast: vCPU %u has no valid cpu-index and thread-id",
				    n);
		}
		v[n].index = idx;
		v[n].tid = tid;
		n++;
	}
	jr_free(&d);
	return n;
}

int qmp_params(struct qmp *q, struct qmp_params *p)
{
	struct jr_doc d;
	int ret;

	p->downtime_limit_ms = p->max_bandwidth = -1;
	if (command(q, "query-migrate-parameters", NULL, &d, &ret))
		return -1;
	if (jr_type(&d, ret) != JR_OBJECT) {
		jr_free(&d);
		return qerr(q, "query-migrate-parameters: the reply is not an object");
	}
	p->downtime_limit_ms = get_i64(&d, ret, "downtime-limit", -1);
	p->max_bandwidth = get_i64(&d, ret, "max-bandwidth", -1);
	jr_free(&d);
	return 0;
}

/*
 * query-dirty-rate's status and, once "measured", its dirty-rate (MiB/s).
 * 1 measured, 0 not yet, -1 error.
 */
static int dirty_rate_poll(struct qmp *q, int64_t *rate)
{
	struct jr_doc d;
	int ret, done = 0;
	char st[32];

	if (command(q, "query-dirty-rate", NULL, &d, &ret))
		return -1;
	if (jr_str(&d, jr_get(&d, ret, "status"), st, sizeof(st))) {
		jr_free(&d);
		return qerr(q, "query-dirty-rate: no \"status\" in its reply");
	}
	if (!strcmp(st, "measured")) {
		if (jr_i64(&d, jr_get(&d, ret, "dirty-rate"), rate) || *rate < 0)
			done = qerr(q, "query-dirty-rate: measured, but no valid \"dirty-rate\"");
		else
			done = 1;
	} else if (strcmp(st, "measuring") && strcmp(st, "unstarted")) {
		done = qerr(q, "query-dirty-rate: status \"%s\"", st);
	}
	jr_free(&d);
	return done;
}

int qmp_dirty_rate(struct qmp *q, unsigned int seconds, double *mbps)
{
	long long deadline;
	char args[40];
	int64_t rate;
	int rc;

	if (seconds < 1 || seconds > 60)
		return qerr(q, "calc-dirty-rate: %u s is not within 1..60", seconds);
	snprintf(args, sizeof(args), "{\"calc-time\": %u}", seconds);
	/* calc-dirty-rate sets the status back to "unstarted" before it returns. */
	if (qmp_exec(q, "calc-dirty-rate", args, (char[64]){ 0 }, 64))
		return -1;
	deadline = now_ms() + seconds * 1000LL + q->timeout_ms;
	nanosleep(&(struct timespec){ .tv_sec = seconds }, NULL);
	for (;;) {
		rc = dirty_rate_poll(q, &rate);
		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
		if (now_ms() >= deadline)
			return qerr(q, "query-dirty-rate: not measured %u ms after the %u s it takes",
				    q->timeout_ms, seconds);
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	}
	*mbps = rate * 1048576.0 / 1e6;
	return 0;
}

int qmp_accel(struct qmp *q, char *out, size_t len)
{
	const char *a = "";
	struct jr_doc d;
	bool on;
	int ret;

	if (command(q, "query-kvm", NULL, &d, &ret))
		return -1;
	if (!jr_bool(&d, jr_get(&d, ret, "enabled"), &on))
		a = on ? "kvm" : "tcg";
	jr_free(&d);
	if (strlen(a) >= len)
		return qerr(q, "query-kvm: no room for the answer");
	memcpy(out, a, strlen(a) + 1);
	return 0;
}

int qmp_exec_doc(struct qmp *q, const char *name, const char *args, struct jr_doc *d, int *ret)
{
	return command(q, name, args, d, ret);
}

/* {"status": "running", "singlestep": false, "running": true} */
int qmp_run_state(struct qmp *q, char *out, size_t len)
{
	struct jr_doc d;
	int ret;

	if (command(q, "query-status", NULL, &d, &ret))
		return -1;
	if (jr_str(&d, jr_get(&d, ret, "status"), out, len)) {
		jr_free(&d);
		return qerr(q, "query-status: no \"status\" string in the reply");
	}
	jr_free(&d);
	return 0;
}
