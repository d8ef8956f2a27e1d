// SPDX-License-Identifier: GPL-2.0-only
/* What `lmig send` and `lmig recv` share around their engines. */
#include <stdio.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "cli/report.h"
#include "chan/tls.h"

int cmd_check_address(const char *cmd, const char *opt, const char *addr)
{
	char host[256], port[16];

	if (parse_hostport(opt, addr, host, sizeof(host), port, sizeof(port)))
		return usage_error(cmd, "%s", lmig_errmsg());
	return EXIT_OK;
}

bool cmd_progress_default(int progress, const struct global_opts *g)
{
	return progress >= 0 ? progress : (!g->json && isatty(STDERR_FILENO));
}

int cmd_finish(const char *cmd, int ret, const struct image_stats *st, const char *compress,
	       bool progress, const struct global_opts *g)
{
	if (ret && progress)
		fputc('\n', stderr);	/* end the progress line */
	report_print(cmd, st, compress, ret == 0, g->json);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig %s: %s\n", cmd, lmig_errmsg());
	return EXIT_FAIL;
}

int cmd_tls_setup(const char *cmd, struct tls_conf *c, bool server, const char *dir,
		  const char *psk_file, const char *fingerprint, const char *hostname,
		  const char *to)
{
	char host[256], port[16];

	if (hostname && !dir)
		return usage_error(cmd, "--tls-hostname needs --tls-dir (it names the receiver's certificate)");
	if (hostname && !*hostname)
		return usage_error(cmd, "--tls-hostname: empty name");
	/* As QEMU's client: the receiver's certificate must name the host connected to. */
	if (!server && dir && !hostname) {
		if (parse_hostport("--to", to, host, sizeof(host), port, sizeof(port)))
			return usage_error(cmd, "%s", lmig_errmsg());
		hostname = *host ? host : "localhost";
	}
	if (tls_conf_init(c, server, dir, psk_file, fingerprint, server ? NULL : hostname))
		return usage_error(cmd, "%s", lmig_errmsg());
	return EXIT_OK;
}
