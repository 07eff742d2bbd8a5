/*
 * fp_pull.h: a statistician fetches a study's federated evaluation results
 * from the aggregator (`fedpath report pull --config statistician.ini --out
 * DIR`).
 *
 * Takes the statistician's certificate (role statistician, `fedpath pki sign
 * --role statistician`), its key, the study CA and the aggregator's address;
 * dials out over TLS 1.3 with mutual authentication (the aggregator's name
 * checked) and asks for the results (PROTOCOL.md section 10). Produces in
 * out_dir, each file committed atomically, exactly what the aggregator holds
 * in <state_dir>/results/: pooled.json, site_<id>.json for every centre
 * that evaluated, failed/<id>.json for those that could not, plus pull.json
 * (study model hash, round, UTC time, files). `fedpath report --in out_dir`
 * reads the folder as it is.
 * Only results travel: the aggregator refuses a statistician anything else
 * (training, uploads) and a site certificate the results (FP_ERR_AUTH,
 * audited at the aggregator); both are tested (test_federation.c).
 * Errors: FP_ERR_AUTH (refused), FP_ERR_NOT_FOUND (no pooled results yet),
 * FP_ERR_PROTOCOL (a file name or count the protocol does not allow),
 * FP_ERR_IO / FP_ERR_TIMEOUT (network).
 */
#ifndef FP_PULL_H
#define FP_PULL_H

#include "fp_config.h"
#include "fp_status.h"

struct fp_pull_config {
	const char *id;                   /* as on the statistician's certificate */
	const char *host;                 /* aggregator address */
	int port;
	const char *server_name;          /* DNS name on the aggregator's certificate */
	const char *ca_file, *cert_file, *key_file;
	const char *crl_file;             /* may be NULL */
	int io_timeout_ms;                /* 0: 30000 */
};

enum fp_status fp_report_pull(const struct fp_pull_config *cfg, const char *out_dir);

/* ---- statistician.ini (schema "statistician"; docs/examples/statistician.ini) ---- */
struct fp_pull_file {
	char id[FP_CONFIG_STR_MAX];
	char address[FP_CONFIG_STR_MAX];      /* host:port */
	char server_name[FP_CONFIG_STR_MAX];
	char ca[FP_CONFIG_STR_MAX], cert[FP_CONFIG_STR_MAX], key[FP_CONFIG_STR_MAX], crl[FP_CONFIG_STR_MAX];
	double io_timeout_s;
};
extern const struct fp_config_schema fp_pull_schema;

/* Fills cfg from a loaded file; host (n bytes) receives the address's host. */
enum fp_status fp_pull_config_from_file(const struct fp_pull_file *f, struct fp_pull_config *cfg, char *host,
                                        size_t n);

#endif
