/*
 * pull.c: the statistician's side of the results exchange (fp_pull.h).
 * One connection; every file is checked (name pattern, JSON object) before
 * it is committed, and pull.json is written last, so a folder holding
 * pull.json holds every file the aggregator sent.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fp_common.h"
#include "fp_json.h"
#include "fp_log.h"
#include "fp_pull.h"
#include "fp_server.h"
#include "fp_tls.h"

#define PULL_MAX_FILES (2 * 256 + 1)

/* "pooled", "site_<id>" or "failed/<id>" with a valid id: nothing else may
 * become a path. */
static int name_ok(const char *name, char *sub, size_t n)
{
	if (!name) return 0;
	if (strcmp(name, "pooled") == 0) {
		snprintf(sub, n, "pooled.json");
		return 1;
	}
	if (strncmp(name, "site_", 5) == 0 && fp_wire_id_valid(name + 5)) {
		snprintf(sub, n, "%s.json", name);
		return 1;
	}
	if (strncmp(name, "failed/", 7) == 0 && fp_wire_id_valid(name + 7)) {
		snprintf(sub, n, "%s.json", name);
		return 1;
	}
	return 0;
}

enum fp_status fp_report_pull(const struct fp_pull_config *cfg, const char *out_dir)
{
	enum fp_status st;
	struct fp_tls_ctx *tls = NULL;
	struct fp_tls_conn *c = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	json_t *files = json_array(), *manifest = NULL, *head = NULL;
	fp_frame_init(&fr);
	if (!files) return FP_FAIL(FP_ERR_NOMEM, "pull");
	struct fp_tls_config tc = {0,    cfg->ca_file,     cfg->cert_file,   cfg->key_file, cfg->crl_file,
	                           NULL, cfg->server_name, cfg->io_timeout_ms, NULL,        NULL};
	FP_CHECK(st, fp_tls_ctx_create(&tc, &tls));
	FP_CHECK(st, fp_tls_connect(tls, cfg->host, cfg->port, &c));
	const struct fp_io *io = fp_tls_conn_io(c);
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_HELLO, &m));
	fp_msg_free(m);
	m = NULL;
	Fedpath__Hello hello = FEDPATH__HELLO__INIT;
	hello.protocol_version = FP_PROTO_VERSION;
	hello.site_id = (char *)cfg->id;
	hello.role = "statistician";
	hello.software_version = (char *)fp_version();
	FP_CHECK(st, fp_msg_send(io, FP_FRAME_HELLO, &hello.base));
	Fedpath__Status req = FEDPATH__STATUS__INIT;
	req.state = "pull";
	FP_CHECK(st, fp_msg_send(io, FP_FRAME_STATUS, &req.base));
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_STATUS, &m));
	const Fedpath__Status *hs = (const Fedpath__Status *)m;
	json_error_t je;
	if (!hs->state || strcmp(hs->state, "results") != 0 || !hs->detail ||
	    !(head = json_loads(hs->detail, JSON_REJECT_DUPLICATES, &je)) ||
	    !json_is_string(json_object_get(head, "model_hash")) || !json_is_integer(json_object_get(head, "files"))) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "pull: the aggregator's answer is not a results header");
		goto fail;
	}
	json_int_t n = json_integer_value(json_object_get(head, "files"));
	if (n < 1 || n > PULL_MAX_FILES) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "pull: %lld files announced (allowed 1..%d)", (long long)n, PULL_MAX_FILES);
		goto fail;
	}
	fp_msg_free(m);
	m = NULL;
	char failed[4200];
	snprintf(failed, sizeof failed, "%s/failed", out_dir);
	FP_CHECK(st, fp_mkdir_p(failed, 0755));
	for (json_int_t i = 0; i < n; i++) {
		FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_EVAL_SUMMARY, &m));
		const Fedpath__EvalSummary *e = (const Fedpath__EvalSummary *)m;
		char sub[128], path[4400];
		json_t *doc = NULL;
		size_t len = e->summary_json ? strlen(e->summary_json) : 0;
		if (!name_ok(e->name, sub, sizeof sub)) {
			st = FP_FAIL(FP_ERR_PROTOCOL, "pull: file %lld has the name '%s', not pooled, site_<id> or failed/<id>",
			             (long long)i + 1, e->name ? e->name : "");
			goto fail;
		}
		if (len == 0 || len > FP_PULL_MAX_FILE_BYTES ||
		    !(doc = json_loadb(e->summary_json, len, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(doc)) {
			json_decref(doc);
			st = FP_FAIL(FP_ERR_FORMAT, "pull: %s is not a JSON object of 1..%u bytes", e->name,
			             FP_PULL_MAX_FILE_BYTES);
			goto fail;
		}
		json_decref(doc);
		snprintf(path, sizeof path, "%s/%s", out_dir, sub);
		FP_CHECK(st, fp_file_commit(path, e->summary_json, len, 0644));
		json_array_append_new(files, json_string(sub));
		fp_msg_free(m);
		m = NULL;
	}
	FP_CHECK(st, fp_msg_recv(io, &fr, FP_FRAME_STATUS, &m));
	if (!((const Fedpath__Status *)m)->state || strcmp(((const Fedpath__Status *)m)->state, "end") != 0) {
		st = FP_FAIL(FP_ERR_PROTOCOL, "pull: no end after %lld files", (long long)n);
		goto fail;
	}
	char now[64], mpath[4400];
	fp_time_utc_iso(now, sizeof now);
	manifest = json_pack("{s:O, s:O, s:s, s:s, s:O}", "model_hash", json_object_get(head, "model_hash"), "round",
	                     json_object_get(head, "round") ? json_object_get(head, "round") : json_null(), "pulled", now,
	                     "from", cfg->host, "files", files);
	snprintf(mpath, sizeof mpath, "%s/pull.json", out_dir);
	st = manifest ? fp_json_save_file(mpath, manifest, 0644) : FP_FAIL(FP_ERR_NOMEM, "pull.json");
	if (st == FP_OK)
		fp_log(FP_LOG_INFO, "pull: %lld result file(s) of model %.12s in %s", (long long)n,
		       json_string_value(json_object_get(head, "model_hash")), out_dir);
fail:
	fp_msg_free(m);
	json_decref(manifest);
	json_decref(head);
	json_decref(files);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	fp_tls_ctx_destroy(tls);
	return st;
}

#define K(sec, name, type, field, def, lo, hi, help) \
	{sec, name, type, offsetof(struct fp_pull_file, field), def, lo, hi, NULL, help}

static const struct fp_config_key pull_keys[] = {
	K("statistician", "id", FP_CFG_STRING, id, "", 0, 0, "your id, as on your certificate (role statistician)"),
	K("aggregator", "address", FP_CFG_STRING, address, "", 0, 0, "host:port of the coordinating centre"),
	K("aggregator", "server_name", FP_CFG_STRING, server_name, "", 0, 0,
	  "DNS name on the aggregator's certificate (checked on every connection)"),
	K("tls", "ca", FP_CFG_STRING, ca, "tls/ca.crt", 0, 0, "the study CA certificate"),
	K("tls", "cert", FP_CFG_STRING, cert, "", 0, 0, "your certificate (fedpath pki sign --role statistician)"),
	K("tls", "key", FP_CFG_STRING, key, "", 0, 0, "your private key (mode 0600)"),
	K("tls", "crl", FP_CFG_STRING, crl, "", 0, 0, "the study CA's revocation list (empty: none)"),
	K("pull", "io_timeout_s", FP_CFG_DOUBLE, io_timeout_s, "60", 5, 3600, "longest silence on the connection"),
};

const struct fp_config_schema fp_pull_schema = {"statistician", pull_keys, sizeof pull_keys / sizeof pull_keys[0]};

enum fp_status fp_pull_config_from_file(const struct fp_pull_file *f, struct fp_pull_config *cfg, char *host,
                                        size_t n)
{
	const char *colon = strrchr(f->address, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || !end || *end || port <= 0 || port > 65535 || (size_t)(colon - f->address) >= n)
		return FP_FAIL(FP_ERR_CONFIG, "aggregator.address '%s' is not host:port", f->address);
	snprintf(host, n, "%.*s", (int)(colon - f->address), f->address);
	memset(cfg, 0, sizeof *cfg);
	cfg->id = f->id;
	cfg->host = host;
	cfg->port = (int)port;
	cfg->server_name = f->server_name;
	cfg->ca_file = f->ca;
	cfg->cert_file = f->cert;
	cfg->key_file = f->key;
	cfg->crl_file = f->crl[0] ? f->crl : NULL;
	cfg->io_timeout_ms = (int)(f->io_timeout_s * 1000);
	return FP_OK;
}
