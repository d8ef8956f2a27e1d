// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS on the real lmig binary over real loopback sockets: certificates
 * of throw-away CAs made with the openssl command for each test
 * (tls/mkcerts.sh), pre-shared keys, and every refusal: each must end
 * both sides with exit status 1 (2 for a bad file on the command line),
 * one line on stderr naming the cause, and no image at the destination.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/proxy.h"
#include "lib/sock.h"
#include "lib/vm.h"

#define MiB		(1024ULL * 1024)
#define DEADLINE_S	3.0	/* how long either end may take to give up */

FIXTURE(tls) {
	char dir[256], src[320], out[320], partial[340];
	char a[320], b[320], rogue[320], psk[320], psk2[320];
	char binding[80];		/* the last check_ok()'s tls_binding */
	struct proc rx, tx;
	struct proxy px;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* selftests/tls/mkcerts.sh, found from this binary (selftests/build/). */
static const char *mkcerts(void)
{
	static char path[4096];

	return beside_test("../tls/mkcerts.sh", path, sizeof(path)) ?: "tls/mkcerts.sh";
}

static int write_psk(const char *path, const char *id)
{
	uint8_t key[32];
	char line[160];
	int n;

	if (getrandom(key, sizeof(key), 0) != sizeof(key))
		return -1;
	n = snprintf(line, sizeof(line), "%s:", id);
	for (int i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - n, "%02x", key[i]);
	line[n++] = '\n';
	if (file_write(path, line, n))
		return -1;
	return chmod(path, 0600);
}

FIXTURE_SETUP(tls)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 64 * MiB));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	snprintf(self->a, sizeof(self->a), "%s/a", self->dir);
	snprintf(self->b, sizeof(self->b), "%s/b", self->dir);
	snprintf(self->rogue, sizeof(self->rogue), "%s/rogue", self->dir);
	snprintf(self->psk, sizeof(self->psk), "%s/keys.psk", self->dir);
	snprintf(self->psk2, sizeof(self->psk2), "%s/other.psk", self->dir);
	/* Two unrelated CAs, each with a server and a client certificate. */
	ASSERT_EQ(0, sh("sh %s %s A && sh %s %s B", mkcerts(), self->a, mkcerts(), self->b));
	/*
	 * A sender whose certificate comes from CA B, which trusts both CAs:
	 * it accepts a receiver of CA A, which does not accept it.
	 */
	ASSERT_EQ(0, sh("mkdir %s && cat %s/ca-cert.pem %s/ca-cert.pem >%s/ca-cert.pem && cp -p %s/client-cert.pem %s/client-key.pem %s/",
			self->rogue, self->a, self->b, self->rogue, self->b, self->b, self->rogue));
	ASSERT_EQ(0, write_psk(self->psk, "lmig"));
	ASSERT_EQ(0, write_psk(self->psk2, "lmig"));
	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
}

FIXTURE_TEARDOWN(tls)
{
	proxy_stop(&self->px);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	scratch_remove(self->dir);
}

#define ARGS(...)	((const char *const[]){ __VA_ARGS__, NULL })

static bool has_any(const char *msg, const char *const words[])
{
	for (; *words; words++)
		if (strstr(msg, *words))
			return true;
	return false;
}

/* What kTLS this kernel offers decides the path a session takes. */
static const char *expected_mode(void)
{
	char ulp[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");

	if (f) {
		if (!fgets(ulp, sizeof(ulp), f))
			ulp[0] = 0;
		fclose(f);
	}
	return strstr(ulp, "tls") ? "ktls" : "userspace";
}

/* Both ends completed, the image arrived byte for byte, over TLS. */
static void check_ok(struct __test_metadata *_metadata, FIXTURE_DATA(tls) *self)
{
	char mode[32] = "", rbind[80] = "";
	uint64_t wire = 0, total = 0;

	ASSERT_EQ(0, proc_wait(&self->tx, 30));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	EXPECT_EQ(0, json_str_field(self->tx.out, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	EXPECT_EQ(0, json_str_field(self->rx.out, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	/* Both ends were in one session: nothing terminated TLS between them. */
	EXPECT_EQ(0, json_str_field(self->tx.out, "tls_binding", self->binding,
				    sizeof(self->binding)));
	EXPECT_EQ(64, strlen(self->binding));
	EXPECT_EQ(0, json_str_field(self->rx.out, "tls_binding", rbind, sizeof(rbind)));
	EXPECT_STREQ(self->binding, rbind);
	/* Records cost a little on the wire: what was sent was not the plain stream. */
	EXPECT_EQ(0, json_u64_field(self->tx.out, "bytes_wire", &wire));
	EXPECT_EQ(0, json_u64_field(self->tx.out, "bytes_total", &total));
	EXPECT_GT(wire, total);
	EXPECT_LT(wire, total + total / 50);
}

/*
 * p failed the lmig way: exit status 1 within DEADLINE_S of since, one
 * line on stderr with one of words, a --json report saying "failed".
 */
static void check_failed(struct __test_metadata *_metadata, struct proc *p, const char *who,
			 double since, const char *const words[])
{
	char status[32] = "";

	ASSERT_EQ(0, proc_wait(p, DEADLINE_S + 5)) TH_LOG("%s still running", who);
	TH_LOG("%s failed after %.3f s: %.*s", who, p->t_exit - since,
	       (int)strcspn(p->err, "\n"), p->err);
	EXPECT_EQ(1, proc_exit_code(p)) TH_LOG("%s: wait status 0x%x", who, p->status);
	EXPECT_LE(p->t_exit - since, DEADLINE_S);
	EXPECT_TRUE(one_line(p->err)) TH_LOG("%s stderr is not one line: '%s'", who, p->err_log);
	EXPECT_TRUE(has_any(p->err, words))
		TH_LOG("%s stderr does not name the cause (%s...): %s", who, words[0], p->err_log);
	EXPECT_EQ(0, json_str_field(p->out, "status", status, sizeof(status)));
	EXPECT_STREQ("failed", status);
}

static void check_no_output(struct __test_metadata *_metadata, FIXTURE_DATA(tls) *self)
{
	EXPECT_FALSE(path_exists(self->out)) TH_LOG("%s exists after a refusal", self->out);
	EXPECT_FALSE(path_exists(self->partial)) TH_LOG("%s was left behind", self->partial);
}

/*
 * A copy of DIR (a, made by mkcerts.sh) as self->dir/NAME, with ROLEs'
 * certificates ("server", "client", or "" for none) revoked in its
 * ca-crl.pem; its path into out.
 */
static int crl_dir(FIXTURE_DATA(tls) *self, const char *name, const char *roles, char *out,
		   size_t len)
{
	snprintf(out, len, "%s/%s", self->dir, name);
	return sh("cp -rp %s %s && sh %s %s %s %s", self->a, out, mkcerts(), *roles ? "-r" : "-R",
		  out, roles);
}

/*
 * An impostor: `openssl s_server` (TLS 1.3) with a throw-away self-signed
 * certificate, no pre-shared key and no client verification, that prints
 * whatever application data reaches it, for one connection.  Its port,
 * or -1.
 */
static int impostor_start(struct proc *p, const char *dir)
{
	char cert[340], key[340], fifo[340], *a;
	double deadline;

	snprintf(cert, sizeof(cert), "%s/impostor-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/impostor-key.pem", dir);
	snprintf(fifo, sizeof(fifo), "%s/impostor-stdin", dir);
	if (sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s -out %s -days 1 -subj /CN=impostor 2>/dev/null",
	       key, cert))
		return -1;
	/*
	 * s_server ends a connection when its stdin ends: it gets a FIFO it
	 * holds open for writing itself, which never does.
	 */
	if (!path_exists(fifo) && mkfifo(fifo, 0600))
		return -1;
	if (proc_spawn(p, (char *const[]){ "/bin/sh", "-c",
			"exec openssl s_server -accept 127.0.0.1:0 -cert \"$0\" -key \"$1\" -tls1_3 -naccept 1 0<>\"$2\"",
			cert, key, fifo, NULL }, NULL))
		return -1;
	/* "ACCEPT 127.0.0.1:PORT" once it listens; kept in p->out with the rest. */
	deadline = mono_s() + 5;
	while (!(a = strstr(p->out, "ACCEPT ")) || !strchr(a, '\n')) {
		struct pollfd pf = { .fd = p->out_fd, .events = POLLIN };
		ssize_t n;

		if (mono_s() > deadline)
			return -1;
		poll(&pf, 1, 100);
		n = read(p->out_fd, p->out + p->out_len, sizeof(p->out) - 1 - p->out_len);
		if (n == 0)
			return -1;
		if (n > 0) {
			p->out_len += n;
			p->out[p->out_len] = 0;
		}
	}
	a = strchr(a, ':');
	return a ? atoi(a + 1) : -1;
}

/*
 * The impostor saw nothing of lmig: no handshake completed with it (it
 * prints its cipher once one does), and none of the bytes it printed is
 * an lmig hello ("LMIG").
 */
static void check_impostor(struct __test_metadata *_metadata, struct proc *imp)
{
	ASSERT_EQ(0, proc_wait(imp, 5)) TH_LOG("the impostor is still running");
	TH_LOG("impostor: %.300s", imp->err_log);
	EXPECT_EQ(NULL, strstr(imp->out, "CIPHER is")) TH_LOG("a handshake completed: %s", imp->out);
	EXPECT_EQ(NULL, memmem(imp->out, imp->out_len, "LMIG", 4))
		TH_LOG("the impostor received lmig's hello: %s", imp->out);
}

/* An impostor started for one connection, its address in to. */
static void impostor_at(struct __test_metadata *_metadata, struct proc *imp, const char *dir,
			char *to, size_t len)
{
	int port = impostor_start(imp, dir);

	ASSERT_GT(port, 0);
	snprintf(to, len, "127.0.0.1:%d", port);
}

/* The sender tx refused the impostor for why, and the impostor saw nothing. */
static void check_impostor_refused(struct __test_metadata *_metadata, struct proc *tx,
				   const char *who, const char *why, struct proc *imp)
{
	check_failed(_metadata, tx, who, tx->t_start, ARGS(why));
	check_impostor(_metadata, imp);
	proc_kill(imp);
}

/* ---- success ----------------------------------------------------------- */

TEST_F(tls, mutual_certificates)
{
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--tls-dir", self->a, "--channels", "3", "--compress", "none")));
	check_ok(_metadata, self);
}

/*
 * Replay: every migration is a session of its own, with keys no other
 * session shares; its channel binding shows it.  The same migration run
 * twice must give two different bindings.
 */
TEST_F(tls, sessions_differ)
{
	char first[80];
	int port = recv_start(&self->rx, self->out, ARGS("--psk-file", self->psk), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--psk-file", self->psk)));
	check_ok(_metadata, self);
	snprintf(first, sizeof(first), "%s", self->binding);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	memset(&self->tx, 0, sizeof(self->tx));
	memset(&self->rx, 0, sizeof(self->rx));
	ASSERT_EQ(0, unlink(self->out));
	port = recv_start(&self->rx, self->out, ARGS("--psk-file", self->psk), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--psk-file", self->psk)));
	check_ok(_metadata, self);
	EXPECT_STRNE(first, self->binding);
}

TEST_F(tls, pinned_fingerprint)
{
	char cmd[600], fp[160] = "";
	FILE *f;
	int port;

	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in %s/server-cert.pem -noout -fingerprint -sha256 | cut -d= -f2", self->a);
	f = popen(cmd, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(fp, sizeof(fp), f));
	pclose(f);
	fp[strcspn(fp, "\n")] = 0;
	ASSERT_EQ(95, strlen(fp)) TH_LOG("fingerprint '%s'", fp);
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--tls-dir", self->a, "--peer-fingerprint", fp)));
	check_ok(_metadata, self);
}

TEST_F(tls, psk)
{
	int port = recv_start(&self->rx, self->out, ARGS("--psk-file", self->psk), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--psk-file", self->psk, "--channels", "2")));
	check_ok(_metadata, self);
}

/*
 * lz4 pages through TLS: the receiver opens the records in place (or kTLS
 * does), and its decode workers read the compressed bytes from the
 * plaintext in the receive buffers.
 */
TEST_F(tls, psk_lz4_pages)
{
	char mode[32] = "";
	uint64_t lz4 = 0;
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_TEXT, 16 * MiB));
	port = recv_start(&self->rx, self->out, ARGS("--psk-file", self->psk), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--psk-file", self->psk, "--channels", "4", "--compress", "lz4")));
	ASSERT_EQ(0, proc_wait(&self->tx, 30));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	EXPECT_EQ(0, json_str_field(self->rx.out, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	EXPECT_EQ(0, json_u64_field(self->rx.out, "pages_compressed", &lz4));
	EXPECT_GT(lz4, 16 * MiB / 4096 / 2) TH_LOG("recv: %s", self->rx.out);
}

/*
 * A live migration: rounds, and the receiver's round acknowledgements
 * opened on the sender while its frames go out, all through TLS.  The
 * image must equal the paused writer's memory.
 */
TEST_F(tls, live)
{
	const char *const args[] = { "--mem", "memfd:lmig-tls", "--size", "32Mi", "--rate", "4M",
				     NULL };
	struct proc dw = { 0 };
	char mem[512], pid[16], status[32] = "";
	uint64_t rounds = 0;
	int port;

	ASSERT_EQ(0, dirty_start(&dw, args, mem, sizeof(mem)));
	snprintf(pid, sizeof(pid), "%d", (int)dw.pid);
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, mem, port,
				ARGS("--tls-dir", self->a, "--pid", pid, "--tracker", "scan",
				     "--downtime-ms", "2000", "--max-rounds", "10")));
	ASSERT_EQ(0, proc_wait(&self->tx, 40));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(0, json_str_field(self->tx.out, "source", status, sizeof(status)));
	EXPECT_STREQ("paused", status);
	/* "rounds" is a list in the report: count its entries. */
	for (const char *p = self->tx.out; (p = strstr(p, "\"round\":")); p++)
		rounds++;
	TH_LOG("%llu rounds", (unsigned long long)rounds);
	EXPECT_GE(rounds, 2);
	/* The writer is paused: its memory is what the receiver must have. */
	EXPECT_EQ(1, files_equal(mem, self->out));
	kill(dw.pid, SIGCONT);
	proc_kill(&dw);
}

/* ---- refusals ---------------------------------------------------------- */

/* A peer that accepts the connection and never answers: the handshake times out. */
TEST_F(tls, silent_peer)
{
	int port, lfd = sock_listen(&port);
	char to[32];

	ASSERT_LE(0, lfd);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	ASSERT_EQ(0, send_start_to(&self->tx, self->src, to,
				   ARGS("--tls-dir", self->a, "--timeout", "1")));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("timed out"));
	close(lfd);
}

TEST_F(tls, client_certificate_refused)
{
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", self->rogue)));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
		     ARGS("sender's certificate is not valid"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("unknown ca"));
	check_no_output(_metadata, self);
}

TEST_F(tls, server_of_another_ca_refused)
{
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->b), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", self->a)));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     ARGS("receiver's certificate is not valid"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("unknown ca"));
	check_no_output(_metadata, self);
}

TEST_F(tls, wrong_fingerprint_refused)
{
	const char *fp = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
			 "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--tls-dir", self->a, "--peer-fingerprint", fp)));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("--peer-fingerprint"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("refused"));
	check_no_output(_metadata, self);
}

TEST_F(tls, psk_mismatch_refused)
{
	int port = recv_start(&self->rx, self->out, ARGS("--psk-file", self->psk), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--psk-file", self->psk2)));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("pre-shared key"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("pre-shared key"));
	check_no_output(_metadata, self);
}

TEST_F(tls, plain_sender_refused)
{
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("requires TLS"));
	/* The plain sender hears why, in its own protocol. */
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("requires TLS"));
	check_no_output(_metadata, self);
}

TEST_F(tls, plain_receiver_refused)
{
	int port = recv_start(&self->rx, self->out, NULL, 0);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", self->a)));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("does not use TLS"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("speaks TLS"));
	check_no_output(_metadata, self);
}

/* A downgrade: a client with a valid certificate that offers only TLS 1.2. */
TEST_F(tls, tls12_refused)
{
	struct proc cl = { 0 };
	char to[32], cert[340], key[340], ca[340];
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	snprintf(cert, sizeof(cert), "%s/client-cert.pem", self->a);
	snprintf(key, sizeof(key), "%s/client-key.pem", self->a);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", self->a);
	ASSERT_EQ(0, proc_spawn(&cl, (char *const[]){ "/bin/sh", "-c",
			"exec openssl s_client -connect \"$0\" -tls1_2 -cert \"$1\" -key \"$2\" -CAfile \"$3\" </dev/null",
			to, cert, key, ca, NULL }, NULL));
	check_failed(_metadata, &self->rx, "recv", cl.t_start, ARGS("TLS 1.3"));
	ASSERT_EQ(0, proc_wait(&cl, 5));
	EXPECT_NE(0, proc_exit_code(&cl));
	EXPECT_NE(NULL, strstr(cl.err, "protocol version")) TH_LOG("openssl: %s", cl.err_log);
	proc_kill(&cl);
	check_no_output(_metadata, self);
}

/* A record changed on the way fails its authentication tag: nothing is written. */
TEST_F(tls, flipped_byte_detected)
{
	int port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);

	ASSERT_GT(port, 0);
	/* Channel 0 carries about half of the 16 MiB: 4 MiB is well inside it. */
	ASSERT_EQ(0, proxy_start(&self->px, port, 4 * MiB, -1));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.f.port,
				ARGS("--tls-dir", self->a, "--channels", "2", "--compress", "none")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
		     ARGS("failed authentication", "TLS"));
	EXPECT_TRUE(self->px.flipped);
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("bad record mac", "TLS"));
	check_no_output(_metadata, self);
}

/*
 * A receiver that does not hold the pre-shared key, authenticating with a
 * self-signed certificate instead: the sender refuses it before it
 * finishes the handshake, and sends nothing of its own.
 */
TEST_F(tls, psk_impostor_refused)
{
	struct proc imp = { 0 };
	char to[32];

	impostor_at(_metadata, &imp, self->dir, to, sizeof(to));
	/* One channel: the hello goes out right after its handshake. */
	ASSERT_EQ(0, send_start_to(&self->tx, self->src, to,
				   ARGS("--psk-file", self->psk, "--channels", "1", "--timeout", "2")));
	check_impostor_refused(_metadata, &self->tx, "send", "did not use the pre-shared key", &imp);
}

/* The same for the stream transport's two senders. */
TEST_F(tls, psk_impostor_refused_pipe_proxy)
{
	struct proc imp = { 0 };
	char to[32];

	impostor_at(_metadata, &imp, self->dir, to, sizeof(to));
	ASSERT_EQ(0, proc_spawn(&self->tx, (char *const[]){ "/bin/sh", "-c",
			"exec \"$0\" pipe send --to \"$2\" --channels 1 --timeout 2 --json-fd 1 --psk-file \"$3\" <\"$1\"",
			(char *)lmig_path(), self->src, to, self->psk, NULL }, NULL));
	check_impostor_refused(_metadata, &self->tx, "pipe send", "did not use the pre-shared key",
			       &imp);
	proc_kill(&self->tx);

	/* proxy send meets its receiver before QEMU connects. */
	impostor_at(_metadata, &imp, self->dir, to, sizeof(to));
	ASSERT_EQ(0, proc_spawn(&self->tx, (char *const *)ARGS(lmig_path(), "proxy", "send",
			"--listen", "tcp:127.0.0.1:0", "--to", to, "--channels", "1", "--timeout", "2",
			"--json", "--psk-file", self->psk), NULL));
	check_impostor_refused(_metadata, &self->tx, "proxy send", "did not use the pre-shared key",
			       &imp);
}

/* The same impostor against certificates: not of the CA, refused before the hello. */
TEST_F(tls, certificate_impostor_refused)
{
	struct proc imp = { 0 };
	char to[32];

	impostor_at(_metadata, &imp, self->dir, to, sizeof(to));
	ASSERT_EQ(0, send_start_to(&self->tx, self->src, to,
				   ARGS("--tls-dir", self->a, "--channels", "1", "--timeout", "2")));
	check_impostor_refused(_metadata, &self->tx, "send", "receiver's certificate is not valid",
			       &imp);
}

/* ca-crl.pem revokes the sender's certificate: the receiver refuses it. */
TEST_F(tls, revoked_client_refused)
{
	char crl[320];
	int port;

	ASSERT_EQ(0, crl_dir(self, "crl", "client", crl, sizeof(crl)));
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", crl), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", self->a)));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
		     ARGS("sender's certificate is revoked by"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, ARGS("certificate revoked"));
	check_no_output(_metadata, self);
}

/*
 * ca-crl.pem revokes the receiver's certificate: the sender refuses it
 * within the handshake, so its hello never leaves (the receiver reports
 * the handshake, not a stream, as failed).
 */
TEST_F(tls, revoked_server_refused)
{
	char crl[320];
	int port;

	ASSERT_EQ(0, crl_dir(self, "crl", "server", crl, sizeof(crl)));
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", self->a), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", crl)));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     ARGS("receiver's certificate is revoked by"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
		     ARGS("TLS handshake with 127.0.0.1 failed: the sender refused it (sslv3 alert certificate revoked)"));
	check_no_output(_metadata, self);
}

/* A current list that revokes neither: both ends load and check it, and migrate. */
TEST_F(tls, crl_nothing_revoked)
{
	char crl[320];
	int port;

	ASSERT_EQ(0, crl_dir(self, "crl", "", crl, sizeof(crl)));
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", crl), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", crl)));
	check_ok(_metadata, self);
}

/*
 * The receiver's certificate names another host (DNS:other.example only):
 * a sender to 127.0.0.1, or told --tls-hostname localhost, refuses it.
 */
TEST_F(tls, hostname_mismatch_refused)
{
	char other[320];
	int port;

	snprintf(other, sizeof(other), "%s/other", self->dir);
	ASSERT_EQ(0, sh("sh %s %s O DNS:other.example", mkcerts(), other));
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", other), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, ARGS("--tls-dir", other)));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     ARGS("receiver's certificate is not for 127.0.0.1"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("the sender refused it"));
	check_no_output(_metadata, self);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	memset(&self->tx, 0, sizeof(self->tx));
	memset(&self->rx, 0, sizeof(self->rx));

	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", other), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--tls-dir", other, "--tls-hostname", "localhost")));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     ARGS("receiver's certificate is not for localhost"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, ARGS("the sender refused it"));
	check_no_output(_metadata, self);
}

/* --tls-hostname names what the certificate carries: accepted. */
TEST_F(tls, hostname_override)
{
	char other[320];
	int port;

	snprintf(other, sizeof(other), "%s/other", self->dir);
	ASSERT_EQ(0, sh("sh %s %s O DNS:other.example", mkcerts(), other));
	port = recv_start(&self->rx, self->out, ARGS("--tls-dir", other), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				ARGS("--tls-dir", other, "--tls-hostname", "other.example")));
	check_ok(_metadata, self);
}

/* ---- bad files on the command line ------------------------------------ */

static void check_usage(struct __test_metadata *_metadata, const char *const argv[],
			const char *word)
{
	struct proc p = { 0 };

	ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&p, 5));
	EXPECT_EQ(2, proc_exit_code(&p));
	EXPECT_TRUE(one_line(p.err)) TH_LOG("stderr: '%s'", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, word)) TH_LOG("stderr does not name %s: %s", word, p.err_log);
	proc_kill(&p);
}

TEST_F(tls, bad_files)
{
	char missing[340], key[340];

	snprintf(missing, sizeof(missing), "%s/nothing", self->dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", self->a);
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", missing), "nothing/ca-cert.pem");
	/* The receiver's key replaced by the client's: it does not match the certificate. */
	ASSERT_EQ(0, sh("cp %s/client-key.pem %s", self->a, key));
	check_usage(_metadata, ARGS(lmig_path(), "recv", "--listen", "127.0.0.1:0", "--out",
				    self->out, "--tls-dir", self->a), "server-key.pem");
	/* The sender's directory holds no server files, and needs none. */
	check_usage(_metadata, ARGS(lmig_path(), "recv", "--listen", "127.0.0.1:0", "--out",
				    self->out, "--tls-dir", self->rogue), "server-cert.pem");
	ASSERT_EQ(0, chmod(self->psk, 0644));
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--psk-file", self->psk), "keys.psk");
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", self->a, "--peer-fingerprint", "12:34"),
		    "--peer-fingerprint");
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", self->a, "--psk-file", self->psk2), "exclude");
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--psk-file", self->psk2, "--tls-hostname", "x"), "--tls-hostname");
	check_no_output(_metadata, self);
}

/* Our own certificate revoked, or a list that is not one: said at start-up. */
TEST_F(tls, bad_crl)
{
	char crl[320];

	ASSERT_EQ(0, crl_dir(self, "crl", "client server", crl, sizeof(crl)));
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", crl), "client-cert.pem is revoked by");
	check_usage(_metadata, ARGS(lmig_path(), "recv", "--listen", "127.0.0.1:0", "--out",
				    self->out, "--tls-dir", crl), "server-cert.pem is revoked by");
	/* A CRL of another CA: it cannot vouch for this one's certificates. */
	ASSERT_EQ(0, sh("sh %s -R %s && cp %s/ca-crl.pem %s/", mkcerts(), self->b, self->b, crl));
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", crl), "ca-crl.pem has no revocation list");
	/* A list past its next update: stale, it would not show a recent revocation. */
	ASSERT_EQ(0, sh("sh %s -E %s", mkcerts(), crl));
	check_usage(_metadata, ARGS(lmig_path(), "recv", "--listen", "127.0.0.1:0", "--out",
				    self->out, "--tls-dir", crl), "CRL has expired");
	ASSERT_EQ(0, sh("echo garbage >%s/ca-crl.pem", crl));
	check_usage(_metadata, ARGS(lmig_path(), "send", "--mem", self->src, "--to", "127.0.0.1:1",
				    "--tls-dir", crl), "not a PEM certificate revocation list");
	check_no_output(_metadata, self);
}

/* ---- the stream transport: lmig pipe ----------------------------------- */

/* `lmig pipe recv ... >out` with its port on the ready pipe; 0 or -1. */
static int pipe_recv_start(struct proc *p, const char *out, const char *a1, const char *a2)
{
	int rfd = -1;
	struct spawn_opts o = { .ready_fd = &rfd };
	char line[32];

	if (proc_spawn(p, (char *const[]){ "/bin/sh", "-c",
			"exec \"$0\" pipe recv --listen 127.0.0.1:0 --ready-fd 3 --json $2 $3 >\"$1\"",
			(char *)lmig_path(), (char *)out, (char *)a1, (char *)a2, NULL }, &o))
		return -1;
	if (ready_line(rfd, line, sizeof(line), 5))
		return -1;
	return atoi(line);
}

static int pipe_send_start(struct proc *p, const char *src, int port, const char *a1,
			   const char *a2)
{
	char to[32];

	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	return proc_spawn(p, (char *const[]){ "/bin/sh", "-c",
			"exec \"$0\" pipe send --to \"$2\" --channels 2 --json $3 $4 <\"$1\"",
			(char *)lmig_path(), (char *)src, to, (char *)a1, (char *)a2, NULL }, NULL);
}

TEST_F(tls, pipe)
{
	char mode[32] = "";
	int port = pipe_recv_start(&self->rx, self->out, "--tls-dir", self->a);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, pipe_send_start(&self->tx, self->src, port, "--tls-dir", self->a));
	ASSERT_EQ(0, proc_wait(&self->tx, 30));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	/* A pipe's report goes to stderr: stdout carries the stream. */
	EXPECT_EQ(0, json_str_field(self->tx.err, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	EXPECT_EQ(0, json_str_field(self->rx.err, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
}

TEST_F(tls, pipe_refusals)
{
	struct stat sb;
	int port = pipe_recv_start(&self->rx, self->out, "--psk-file", self->psk);

	ASSERT_GT(port, 0);
	ASSERT_EQ(0, pipe_send_start(&self->tx, self->src, port, "", ""));
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S + 5));
	ASSERT_EQ(0, proc_wait(&self->tx, DEADLINE_S + 5));
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_EQ(1, proc_exit_code(&self->tx));
	EXPECT_NE(NULL, strstr(self->rx.err, "requires TLS")) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->tx.err, "requires TLS")) TH_LOG("send: %s", self->tx.err_log);
	/* Not one byte of a stream came out. */
	ASSERT_EQ(0, stat(self->out, &sb));
	EXPECT_EQ(0, sb.st_size);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	memset(&self->tx, 0, sizeof(self->tx));
	memset(&self->rx, 0, sizeof(self->rx));

	/* Two different keys. */
	port = pipe_recv_start(&self->rx, self->out, "--psk-file", self->psk);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, pipe_send_start(&self->tx, self->src, port, "--psk-file", self->psk2));
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S + 5));
	ASSERT_EQ(0, proc_wait(&self->tx, DEADLINE_S + 5));
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_EQ(1, proc_exit_code(&self->tx));
	EXPECT_NE(NULL, strstr(self->rx.err, "pre-shared key")) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->tx.err, "pre-shared key")) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, stat(self->out, &sb));
	EXPECT_EQ(0, sb.st_size);
}

static int spawn_ready(struct proc *p, const char *const argv[]);

/* The stream senders check the receiver's name as lmig send does. */
TEST_F(tls, hostname_pipe_proxy)
{
	char other[320], dir_opt[340], to[32], dst[64];
	struct stat sb;
	int port, dport, dlfd = sock_listen(&dport);

	ASSERT_LE(0, dlfd);
	snprintf(other, sizeof(other), "%s/other", self->dir);
	snprintf(dir_opt, sizeof(dir_opt), "--tls-dir=%s", other);
	ASSERT_EQ(0, sh("sh %s %s O DNS:other.example", mkcerts(), other));
	port = pipe_recv_start(&self->rx, self->out, "--tls-dir", other);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, pipe_send_start(&self->tx, self->src, port, "--tls-dir", other));
	ASSERT_EQ(0, proc_wait(&self->tx, DEADLINE_S + 5));
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S + 5));
	EXPECT_EQ(1, proc_exit_code(&self->tx));
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_NE(NULL, strstr(self->tx.err, "receiver's certificate is not for 127.0.0.1"))
		TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, stat(self->out, &sb));
	EXPECT_EQ(0, sb.st_size);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	memset(&self->tx, 0, sizeof(self->tx));
	memset(&self->rx, 0, sizeof(self->rx));

	port = pipe_recv_start(&self->rx, self->out, "--tls-dir", other);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, pipe_send_start(&self->tx, self->src, port, dir_opt,
				     "--tls-hostname=other.example"));
	ASSERT_EQ(0, proc_wait(&self->tx, 30));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	memset(&self->tx, 0, sizeof(self->tx));
	memset(&self->rx, 0, sizeof(self->rx));

	/* proxy send meets its receiver before QEMU connects: refused at once. */
	snprintf(dst, sizeof(dst), "tcp:127.0.0.1:%d", dport);
	port = spawn_ready(&self->rx, ARGS(lmig_path(), "proxy", "recv", "--listen", "127.0.0.1:0",
					   "--ready-fd", "3", "--to", dst, "--json", "--tls-dir", other));
	ASSERT_GT(port, 0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	ASSERT_EQ(0, proc_spawn(&self->tx, (char *const *)ARGS(lmig_path(), "proxy", "send",
			"--listen", "tcp:127.0.0.1:0", "--to", to, "--json", "--tls-dir", other), NULL));
	check_failed(_metadata, &self->tx, "proxy send", self->tx.t_start,
		     ARGS("receiver's certificate is not for 127.0.0.1"));
	check_failed(_metadata, &self->rx, "proxy recv", self->tx.t_start, ARGS("the sender refused it"));
	/* Nothing reached the destination QEMU. */
	EXPECT_GT(0, sock_accept(dlfd, 0.2));
	close(dlfd);
}

/* ---- the stream transport: lmig proxy ---------------------------------- */

/* Spawn argv with a ready pipe on fd 3; the number it prints (a port), or -1. */
static int spawn_ready(struct proc *p, const char *const argv[])
{
	int rfd = -1;
	struct spawn_opts o = { .ready_fd = &rfd };
	char line[64], *colon;

	if (proc_spawn(p, (char *const *)argv, &o) || ready_line(rfd, line, sizeof(line), 5))
		return -1;
	colon = strrchr(line, ':');	/* "tcp:127.0.0.1:PORT" or "PORT" */
	return atoi(colon ? colon + 1 : line);
}

/*
 * One connection of "QEMU" through proxy send -> TLS -> proxy recv to a
 * listening "destination QEMU": the test's own sockets at both ends.
 */
TEST_F(tls, proxy)
{
	const size_t len = 4 * MiB;
	uint8_t *in = malloc(len), *got = malloc(len);
	char dst[64], to[32], mode[32] = "";
	int dport, rport, sport, dlfd = sock_listen(&dport), cfd, afd;

	ASSERT_NE(NULL, in);
	ASSERT_NE(NULL, got);
	ASSERT_LE(0, dlfd);
	ASSERT_EQ(len, getrandom(in, len, 0));
	snprintf(dst, sizeof(dst), "tcp:127.0.0.1:%d", dport);
	rport = spawn_ready(&self->rx, ARGS(lmig_path(), "proxy", "recv", "--listen", "127.0.0.1:0",
					    "--ready-fd", "3", "--to", dst, "--json",
					    "--tls-dir", self->a));
	ASSERT_GT(rport, 0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", rport);
	sport = spawn_ready(&self->tx, ARGS(lmig_path(), "proxy", "send", "--listen",
					    "tcp:127.0.0.1:0", "--ready-fd", "3", "--to", to,
					    "--streams", "1", "--json", "--tls-dir", self->a));
	ASSERT_GT(sport, 0);
	cfd = sock_connect(sport);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, sock_write_full(cfd, in, len));
	shutdown(cfd, SHUT_WR);
	afd = sock_accept(dlfd, 10);
	ASSERT_LE(0, afd);
	ASSERT_EQ(0, sock_read_full(afd, got, len, 20));
	EXPECT_EQ(0, memcmp(in, got, len));
	/* ... and then the end of the stream, nothing more. */
	EXPECT_EQ(0, read(afd, got, 1));
	/* Our end too, as QEMU ends its own: the proxy carries each connection both ways. */
	shutdown(afd, SHUT_WR);
	ASSERT_EQ(0, proc_wait(&self->tx, 10));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(0, json_str_field(self->tx.out, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	EXPECT_EQ(0, json_str_field(self->rx.out, "tls", mode, sizeof(mode)));
	EXPECT_STREQ(expected_mode(), mode);
	close(afd);
	close(cfd);
	close(dlfd);
	free(in);
	free(got);
}

/* ---- kTLS, in a VM booting Debian's kernel with its tls module ---------- */

/*
 * The host kernel has no kTLS: vm/tls-host.sh boots Debian's 6.1 with
 * tls.ko (vm/tls.sh).  The sender must hand its records to the kernel
 * ("ktls"), io_uring must keep sending on that socket (with SEND_ZC
 * asked for, too: kTLS may refuse it, and the sender must then copy), and
 * the image must arrive byte for byte.  The receiver must decrypt in the
 * kernel too (keys derived by tls_krx.c), under multishot receives.
 */
FIXTURE(vm) {
	int unused;
};

FIXTURE_SETUP(vm)
{
}

FIXTURE_TEARDOWN(vm)
{
}

TEST_F_TIMEOUT(vm, ktls, 200)
{
	struct proc p = { 0 };
	char *out = NULL, line[2048], mode[32] = "", status[32] = "";
	int ret = vm_run_arg(&p, "tls-host.sh", "test", 170, 190, &out);

	ASSERT_EQ(0, ret) TH_LOG("the VM did not finish: %s", p.err_log);
	if (proc_exit_code(&p) == 4)
		SKIP({ free(out); return; }, "no VM here: %.900s", p.err_log);
	TH_LOG("%.*s", (int)strcspn(p.err, "\n"), p.err);
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("tls.sh: %.1500s %s", out, p.err_log);
	ASSERT_NE(NULL, vm_result(out, "ulp", line, sizeof(line)));
	EXPECT_NE(NULL, strstr(line, "tls")) TH_LOG("no tls ULP in the VM: %s", line);
	ASSERT_NE(NULL, vm_result(out, "send", line, sizeof(line))) TH_LOG("%.1500s", out);
	EXPECT_EQ(0, json_str_field(line, "status", status, sizeof(status)));
	EXPECT_STREQ("completed", status);
	EXPECT_EQ(0, json_str_field(line, "tls", mode, sizeof(mode)));
	EXPECT_STREQ("ktls", mode);
	ASSERT_NE(NULL, vm_result(out, "recv", line, sizeof(line)));
	EXPECT_EQ(0, json_str_field(line, "tls", mode, sizeof(mode)));
	/* OpenSSL 3.0 gives it no receive keys: lmig's own tls_krx.c does. */
	EXPECT_STREQ("ktls", mode);
	EXPECT_NE(NULL, strstr(line, "\"multishot\":true")) TH_LOG("recv: %s", line);
	ASSERT_NE(NULL, vm_result(out, "cmp", line, sizeof(line)));
	EXPECT_STREQ("same", line);
	ASSERT_NE(NULL, vm_result(out, "zc-send", line, sizeof(line)));
	EXPECT_EQ(0, json_str_field(line, "tls", mode, sizeof(mode)));
	EXPECT_STREQ("ktls", mode);
	TH_LOG("--zerocopy on over kTLS: %s", strstr(line, "\"zerocopy\":true") ?
	       "SEND_ZC" : "refused by the socket, copying sends");
	ASSERT_NE(NULL, vm_result(out, "zc-cmp", line, sizeof(line)));
	EXPECT_STREQ("same", line);
	free(out);
	proc_kill(&p);
}

TEST_HARNESS_MAIN
