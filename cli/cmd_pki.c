/*
 * cmd_pki.c: `fedpath pki init|csr|sign|revoke|list`: the study PKI
 * (federate/fp_pki.h, docs/PKI.md). init, sign and revoke run at the
 * coordinating centre on the CA folder; csr runs at a site, whose key never
 * leaves it. list prints every allow-listed identity with days to expiry and
 * warns about those within FP_PKI_WARN_DAYS (and the CA and CRL themselves).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_cli.h"
#include "fp_pki.h"
#include "fp_tls.h"

const char fp_cmd_pki_usage[] =
	"Usage: fedpath pki init --ca DIR --study NAME [--days N]\n"
	"       fedpath pki csr --site ID [--out DIR]\n"
	"       fedpath pki sign --ca DIR --csr FILE --site ID --role ROLE [--dns NAME] [--days N] [--out FILE]\n"
	"       fedpath pki revoke --ca DIR --site ID\n"
	"       fedpath pki list --ca DIR\n\n"
	"The study's certificate authority (docs/PKI.md). Keys are EC P-256, files 0600.\n"
	"  init    create the study CA in DIR (ca.key, ca.crt, crl.pem, allowlist.json);\n"
	"          CA validity N days (default 1825)\n"
	"  csr     at a site: make ID.key (0600, never leaves the site) and ID.csr in DIR\n"
	"          (default .); prints the key hash to confirm with the coordinating centre\n"
	"  sign    at the coordinating centre: sign a request as ID with ROLE (site,\n"
	"          statistician, admin, or server for the aggregator, which needs --dns,\n"
	"          the name sites dial); validity N days (default 365); adds ID, ROLE and\n"
	"          the key hash to allowlist.json; writes DIR/issued/ID.crt (and --out)\n"
	"  revoke  revoke ID: re-sign crl.pem and mark ID revoked in allowlist.json;\n"
	"          copy both to the aggregator\n"
	"  list    list identities with days to expiry; warns within 30 days\n\n"
	"Exit status: 0 success (list: also with warnings), 1 runtime error, 2 usage error.\n";

struct pki_args {
	const char *ca, *study, *site, *out, *csr, *role, *dns;
	long days;
};

static int parse(const char *cmd, int argc, char **argv, struct pki_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char **slot = NULL;
		if (strcmp(o, "--ca") == 0) slot = &a->ca;
		else if (strcmp(o, "--study") == 0) slot = &a->study;
		else if (strcmp(o, "--site") == 0) slot = &a->site;
		else if (strcmp(o, "--out") == 0) slot = &a->out;
		else if (strcmp(o, "--csr") == 0) slot = &a->csr;
		else if (strcmp(o, "--role") == 0) slot = &a->role;
		else if (strcmp(o, "--dns") == 0) slot = &a->dns;
		else if (strcmp(o, "--days") == 0) {
			if (i + 1 >= argc) return fp_cli_usage_error(cmd, "--days needs a value");
			if (fp_cli_parse_long(cmd, "--days", argv[++i], 1, 36500, &a->days)) return FP_EXIT_USAGE;
			continue;
		} else {
			int r = fp_cli_log_option(cmd, argc, argv, &i);
			if (r < 0) return FP_EXIT_USAGE;
			if (r == 0) return fp_cli_usage_error(cmd, "unknown option '%s'", o);
			continue;
		}
		if (i + 1 >= argc) return fp_cli_usage_error(cmd, "%s needs a value", o);
		*slot = argv[++i];
	}
	return 0;
}

static int need(const char *cmd, const char *v, const char *opt)
{
	if (v) return 0;
	return fp_cli_usage_error(cmd, "%s is required", opt);
}

static int cmd_list(const char *ca)
{
	char p[4096];
	long days;
	int warnings = 0;
	struct fp_tls_allowlist *al = NULL;
	snprintf(p, sizeof(p), "%s/ca.crt", ca);
	if (fp_pki_cert_days_left(p, &days) != FP_OK) return fp_cli_runtime_error("pki", "reading the CA", NULL);
	printf("%-24s %-13s %-8s %9s  %s\n", "ID", "ROLE", "STATUS", "DAYS LEFT", "KEY SHA-256");
	printf("%-24s %-13s %-8s %9ld  -\n", "(study CA)", "ca", "active", days);
	if (days < FP_PKI_WARN_DAYS) {
		fprintf(stderr, "fedpath pki: warning: the study CA expires in %ld days\n", days);
		warnings++;
	}
	snprintf(p, sizeof(p), "%s/crl.pem", ca);
	if (fp_pki_crl_days_left(p, &days) == FP_OK && days < FP_PKI_WARN_DAYS) {
		fprintf(stderr, "fedpath pki: warning: %s must be re-issued within %ld days (run pki revoke or re-init)\n", p, days);
		warnings++;
	}
	snprintf(p, sizeof(p), "%s/allowlist.json", ca);
	if (fp_tls_allowlist_load(p, 0, &al) != FP_OK) return fp_cli_runtime_error("pki", "reading the allow-list", NULL);
	long long now = (long long)time(NULL);
	for (size_t i = 0; i < fp_tls_allowlist_count(al); i++) {
		const struct fp_tls_allow_entry *e = fp_tls_allowlist_get(al, i);
		char pin[FP_SHA256_HEX_SIZE];
		fp_hex_encode(e->spki_sha256, 32, pin);
		long left = (long)((e->not_after - now) / 86400);
		if (e->not_after < now) left = -1 - (long)((now - e->not_after) / 86400);
		printf("%-24s %-13s %-8s %9ld  %s\n", e->id, fp_tls_role_str(e->role), e->revoked ? "revoked" : "active", left, pin);
		if (e->revoked) continue;
		if (left < 0) {
			fprintf(stderr, "fedpath pki: warning: '%s' expired %ld days ago; it can no longer connect\n", e->id, -left);
			warnings++;
		} else if (left < FP_PKI_WARN_DAYS) {
			fprintf(stderr, "fedpath pki: warning: '%s' expires in %ld days; ask the site for a new request (pki csr)\n", e->id, left);
			warnings++;
		}
	}
	fp_tls_allowlist_destroy(al);
	if (warnings) fprintf(stderr, "fedpath pki: %d warning(s)\n", warnings);
	return FP_EXIT_OK;
}

int fp_cmd_pki(int argc, char **argv)
{
	const char *cmd = "pki";
	struct pki_args a;
	if (argc < 2) return fp_cli_usage_error(cmd, "a subcommand is required: init, csr, sign, revoke or list");
	const char *sub = argv[1];
	int r = parse(cmd, argc, argv, &a);
	if (r) return r;
	if (strcmp(sub, "init") == 0) {
		if (need(cmd, a.ca, "--ca") || need(cmd, a.study, "--study")) return FP_EXIT_USAGE;
		if (fp_pki_init(a.ca, a.study, a.days) != FP_OK)
			return fp_cli_runtime_error(cmd, "creating the study CA", NULL);
		printf("study CA created in %s\nsend %s/ca.crt to every site; keep %s/ca.key offline\n", a.ca, a.ca, a.ca);
		return FP_EXIT_OK;
	}
	if (strcmp(sub, "csr") == 0) {
		if (need(cmd, a.site, "--site")) return FP_EXIT_USAGE;
		uint8_t pin[32];
		char hex[FP_SHA256_HEX_SIZE];
		const char *dir = a.out ? a.out : ".";
		if (fp_pki_csr(dir, a.site, pin) != FP_OK)
			return fp_cli_runtime_error(cmd, "creating the key and request", NULL);
		fp_hex_encode(pin, 32, hex);
		printf("key:     %s/%s.key (mode 0600; never send it)\nrequest: %s/%s.csr (send this to the coordinating centre)\n"
		       "key sha256: %s\n(read this hash to the coordinating centre by phone before they sign)\n",
		       dir, a.site, dir, a.site, hex);
		return FP_EXIT_OK;
	}
	if (strcmp(sub, "sign") == 0) {
		if (need(cmd, a.ca, "--ca") || need(cmd, a.csr, "--csr") || need(cmd, a.site, "--site") ||
		    need(cmd, a.role, "--role"))
			return FP_EXIT_USAGE;
		struct fp_pki_sign_options o = {a.csr, a.site, FP_TLS_ROLE_SITE, a.dns, a.days, 0, 0, a.out};
		if (fp_tls_role_parse(a.role, &o.role) != FP_OK) return fp_cli_usage_error(cmd, "--role: %s", fp_error_msg());
		if (fp_pki_sign(a.ca, &o) != FP_OK)
			return fp_cli_runtime_error(cmd, "signing",
			                            fp_error_last()->code == FP_ERR_AUTH
			                                ? "check that the request came from the site named by --site"
			                                : NULL);
		printf("signed %s as %s: %s/issued/%s.crt; allow-list updated\n", a.site, a.role, a.ca, a.site);
		return FP_EXIT_OK;
	}
	if (strcmp(sub, "revoke") == 0) {
		if (need(cmd, a.ca, "--ca") || need(cmd, a.site, "--site")) return FP_EXIT_USAGE;
		if (fp_pki_revoke(a.ca, a.site) != FP_OK) return fp_cli_runtime_error(cmd, "revoking", NULL);
		printf("revoked %s: copy %s/crl.pem and %s/allowlist.json to the aggregator\n", a.site, a.ca, a.ca);
		return FP_EXIT_OK;
	}
	if (strcmp(sub, "list") == 0) {
		if (need(cmd, a.ca, "--ca")) return FP_EXIT_USAGE;
		return cmd_list(a.ca);
	}
	return fp_cli_usage_error(cmd, "unknown subcommand '%s' (init, csr, sign, revoke, list)", sub);
}
