/*
 * part2_ckpt.c: the Part 2 model checkpoint (fp_part2_ckpt.h): a framed
 * file holding one JSON document. Takes a filled fp_p2_ckpt; produces the
 * file, or on reading an owned fp_p2_ckpt that passed every consistency
 * check. The hash makes a float that did not survive the text round trip
 * (or an edited value) a refusal, never a silently different model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_part2_ckpt.h"

static const char ckpt_magic[FP_FRAME_MAGIC_SIZE] = {'F', 'P', 'P', '2', 'C', 'K', 'P', 'T'};
#define CKPT_MAX_BYTES ((size_t)512 << 20)

void fp_p2_ckpt_close(struct fp_p2_ckpt *c)
{
	if (!c) return;
	free(c->names);
	free(c->params);
	free(c->sites);
	free(c->h0);
	memset(c, 0, sizeof *c);
}

size_t fp_p2_ckpt_expected_params(int p, int hidden)
{
	size_t h = (size_t)hidden;
	return h * (size_t)p + h + h + 1 + 3 * h + 3 + 3 * h + 3 + h + 1;
}

size_t fp_p2_ckpt_expected_params_of(const struct fp_part2_config *cfg, int p, int e)
{
	if (cfg->kind != FP_P2_MIL) return fp_p2_ckpt_expected_params(p, cfg->hidden);
	size_t d = (size_t)cfg->attn;
	return fp_p2_ckpt_expected_params(p + e, cfg->hidden) + 2 * d * (size_t)e + 3 * d;
}

static const char *kind_name(int kind)
{
	return kind == FP_P2_MIL ? "mil" : "summary";
}

enum fp_status fp_p2_ckpt_require_kind(const struct fp_p2_ckpt *c, int kind, const char *path)
{
	if (c->cfg.kind == kind) return FP_OK;
	return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s is a %s model, but a %s model was asked for%s", path,
	               kind_name(c->cfg.kind), kind_name(kind),
	               c->cfg.kind == FP_P2_MIL ? " (a MIL model reads tile embeddings: give it the tile caches)" : "");
}

enum fp_status fp_p2_params_hash(const float *params, size_t n, char out[FP_SHA256_HEX_SIZE])
{
	uint8_t d[FP_SHA256_SIZE];
	FP_TRY(fp_sha256(params, n * sizeof(float), d));
	fp_hex_encode(d, FP_SHA256_SIZE, out);
	return FP_OK;
}

/* ---- writing ---- */

static json_t *real_array(const double *x, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_real(x[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *config_json(const struct fp_part2_config *c)
{
	return json_pack("{s:i, s:f, s:f, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:s, s:i, s:i}", "hidden", c->hidden, "lr",
	                 c->lr, "weight_decay", c->weight_decay, "steps", (json_int_t)c->steps, "lambda_prop",
	                 c->lambda_prop, "lambda_os", c->lambda_os, "ipw_min", c->ipw_min, "ipw_max", c->ipw_max, "margin",
	                 c->margin, "seed", (json_int_t)c->seed, "kind", kind_name(c->kind), "attn", c->attn, "bag_cap",
	                 c->bag_cap);
}

enum fp_status fp_p2_ckpt_save(struct fp_p2_ckpt *c, const char *path)
{
	enum fp_status st = FP_OK;
	json_t *doc = NULL, *o;
	char *text = NULL;
	struct fp_buf params;
	fp_buf_init(&params, CKPT_MAX_BYTES);
	FP_TRY(fp_p2_params_hash(c->params, c->n_params, c->model_hash));
	const struct fp_p2_stats *s = &c->pooled;
	doc = json_object();
	if (!doc) goto nomem;
	if (json_object_set_new(doc, "format", json_string("fedpath-part2-checkpoint")) ||
	    json_object_set_new(doc, "version", json_integer(FP_P2_CKPT_VERSION)) ||
	    json_object_set_new(doc, "model_hash", json_string(c->model_hash)) ||
	    json_object_set_new(doc, "rounds", json_integer(c->rounds)) ||
	    json_object_set_new(doc, "embed_dim", json_integer(c->cfg.kind == FP_P2_MIL ? c->embed_dim : 0)) ||
	    json_object_set_new(doc, "config", config_json(&c->cfg)))
		goto nomem;
	/* pooled statistics: raw columns */
	json_t *cols = json_array();
	if (!cols || json_object_set_new(doc, "raw_columns", cols)) goto nomem;
	for (int j = 0; j < s->p; j++)
		if (json_array_append_new(cols, json_string(s->names[j]))) goto nomem;
	o = json_pack("{s:I, s:o, s:o, s:o, s:s}", "n_patients", (json_int_t)s->n_patients, "count",
	              real_array(s->count, (size_t)s->p), "sum", real_array(s->sum, (size_t)s->p), "sumsq",
	              real_array(s->sumsq, (size_t)s->p), "sites", s->sites);
	if (!o || json_object_set_new(doc, "pooled", o)) goto nomem;
	json_t *dn = json_array();
	if (!dn || json_object_set_new(doc, "design_columns", dn)) goto nomem;
	for (int j = 0; j < c->p; j++)
		if (json_array_append_new(dn, json_string(c->names[j]))) goto nomem;
	/* Parameters as one string of %.9g values: exact for float32 and far
	 * smaller than a JSON array of reals. */
	for (size_t i = 0; i < c->n_params; i++)
		FP_CHECK(st, fp_buf_printf(&params, i ? " %.9g" : "%.9g", (double)c->params[i]));
	if (json_object_set_new(doc, "params", json_stringn(params.data ? params.data : "", params.len)))
		goto nomem;
	json_t *sites = json_array();
	if (!sites || json_object_set_new(doc, "baseline", sites)) goto nomem;
	for (int k = 0; k < c->n_sites; k++) {
		o = json_pack("{s:s, s:[f,f,f], s:o}", "site", c->sites[k], "months", 12.0, 24.0, 36.0, "h0",
		              real_array(c->h0[k], FP_P2_CKPT_HORIZONS));
		if (!o || json_array_append_new(sites, o)) goto nomem;
	}
	text = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
	if (!text) goto nomem;
	FP_CHECK(st, fp_file_commit_framed(path, ckpt_magic, FP_P2_CKPT_VERSION, text, strlen(text), 0644));
	goto done;
nomem:
	st = FP_FAIL(FP_ERR_NOMEM, "part2 checkpoint %s: building the document failed", path);
fail:
done:
	free(text);
	json_decref(doc);
	fp_buf_close(&params);
	return st;
}

/* ---- reading ---- */

static enum fp_status get_reals(const json_t *obj, const char *key, const char *path, double *out, size_t n)
{
	const json_t *a = json_object_get(obj, key);
	if (!json_is_array(a) || json_array_size(a) != n)
		return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: '%s' is not an array of %zu numbers", path, key, n);
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(a, i);
		if (!json_is_number(x))
			return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: '%s'[%zu] is not a number", path, key, i);
		out[i] = json_number_value(x);
	}
	return FP_OK;
}

static enum fp_status get_names(const json_t *doc, const char *key, const char *path, char (*out)[FP_P2_NAME_MAX],
                                size_t n)
{
	const json_t *a = json_object_get(doc, key);
	if (!json_is_array(a) || json_array_size(a) != n)
		return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: '%s' is not an array of %zu names", path, key, n);
	for (size_t j = 0; j < n; j++) {
		const char *s = json_string_value(json_array_get(a, j));
		if (!s || strlen(s) >= FP_P2_NAME_MAX)
			return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: '%s'[%zu] is not a column name", path, key, j);
		snprintf(out[j], FP_P2_NAME_MAX, "%s", s);
	}
	return FP_OK;
}

static enum fp_status read_config(const json_t *doc, const char *path, struct fp_part2_config *c)
{
	const json_t *o = json_object_get(doc, "config");
	long long hidden, steps, seed;
	char where[512];
	snprintf(where, sizeof where, "part2 checkpoint %s, config", path);
	if (!json_is_object(o)) return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'config' is missing", path);
	FP_TRY(fp_json_get_int(o, "hidden", where, &hidden));
	FP_TRY(fp_json_get_int(o, "steps", where, &steps));
	FP_TRY(fp_json_get_int(o, "seed", where, &seed));
	FP_TRY(fp_json_get_real(o, "lr", where, &c->lr));
	FP_TRY(fp_json_get_real(o, "weight_decay", where, &c->weight_decay));
	FP_TRY(fp_json_get_real(o, "lambda_prop", where, &c->lambda_prop));
	FP_TRY(fp_json_get_real(o, "lambda_os", where, &c->lambda_os));
	FP_TRY(fp_json_get_real(o, "ipw_min", where, &c->ipw_min));
	FP_TRY(fp_json_get_real(o, "ipw_max", where, &c->ipw_max));
	FP_TRY(fp_json_get_real(o, "margin", where, &c->margin));
	if (hidden < 1 || hidden > 1024)
		return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: config hidden %lld is outside 1..1024", path, hidden);
	c->hidden = (int)hidden;
	c->steps = (long)steps;
	c->seed = (uint64_t)seed;
	/* kind, attn, bag_cap: absent in files older than the MIL option, which
	 * are all summary models */
	struct fp_part2_config def;
	fp_part2_config_default(&def);
	c->kind = FP_P2_SUMMARY;
	c->attn = def.attn;
	c->bag_cap = def.bag_cap;
	const json_t *kind = json_object_get(o, "kind");
	if (kind) {
		const char *ks = json_string_value(kind);
		if (ks && strcmp(ks, "mil") == 0) c->kind = FP_P2_MIL;
		else if (!ks || strcmp(ks, "summary") != 0)
			return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: config kind is not \"summary\" or \"mil\"", path);
		long long attn, cap;
		FP_TRY(fp_json_get_int(o, "attn", where, &attn));
		FP_TRY(fp_json_get_int(o, "bag_cap", where, &cap));
		if (attn < 1 || attn > 1024 || cap < 1 || cap > 1000000)
			return FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: config attn %lld or bag_cap %lld is out of range",
			               path, attn, cap);
		c->attn = (int)attn;
		c->bag_cap = (int)cap;
	}
	if (fp_part2_config_check(c) != FP_OK) return fp_error_wrap("part2 checkpoint %s", path);
	return FP_OK;
}

enum fp_status fp_p2_ckpt_load(const char *path, struct fp_p2_ckpt *c)
{
	enum fp_status st;
	void *payload = NULL, *v;
	size_t len = 0;
	uint32_t version = 0;
	json_t *doc = NULL;
	char *text = NULL;
	memset(c, 0, sizeof *c);
	FP_CHECK(st, fp_file_read_framed(path, ckpt_magic, FP_P2_CKPT_VERSION, CKPT_MAX_BYTES, &version, &payload, &len));
	if (!(text = malloc(len + 1))) {
		st = FP_FAIL(FP_ERR_NOMEM, "part2 checkpoint %s", path);
		goto fail;
	}
	memcpy(text, payload, len);
	text[len] = '\0';
	FP_CHECK(st, fp_json_load_string(text, path, &doc));
	const char *fmt = json_string_value(json_object_get(doc, "format"));
	if (!fmt || strcmp(fmt, "fedpath-part2-checkpoint") != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s is not a Part 2 checkpoint (format '%s')", path, fmt ? fmt : "(none)");
		goto fail;
	}
	FP_CHECK(st, read_config(doc, path, &c->cfg));
	long long rounds = 0;
	if (fp_json_get_int(doc, "rounds", path, &rounds) == FP_OK) c->rounds = (long)rounds;
	if (c->cfg.kind == FP_P2_MIL) {
		long long ed = 0;
		FP_CHECK(st, fp_json_get_int(doc, "embed_dim", path, &ed));
		if (ed < 1 || ed > 65536) {
			st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: MIL embed_dim %lld is outside 1..65536", path, ed);
			goto fail;
		}
		c->embed_dim = (int)ed;
	}
	const char *hash = json_string_value(json_object_get(doc, "model_hash"));
	if (!hash || strlen(hash) != FP_SHA256_HEX_SIZE - 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'model_hash' is missing or not 64 hex digits", path);
		goto fail;
	}
	snprintf(c->model_hash, sizeof c->model_hash, "%s", hash);
	/* pooled statistics */
	const json_t *raw = json_object_get(doc, "raw_columns"), *pooled = json_object_get(doc, "pooled");
	if (!json_is_array(raw) || json_array_size(raw) < 1 || json_array_size(raw) > FP_P2_MAX_COLS ||
	    !json_is_object(pooled)) {
		st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'raw_columns' (1..%d names) or 'pooled' is missing", path,
		             FP_P2_MAX_COLS);
		goto fail;
	}
	struct fp_p2_stats *s = &c->pooled;
	s->p = (int)json_array_size(raw);
	FP_CHECK(st, get_names(doc, "raw_columns", path, s->names, (size_t)s->p));
	long long np = 0;
	FP_CHECK(st, fp_json_get_int(pooled, "n_patients", path, &np));
	if (np < 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: pooled n_patients %lld is not positive", path, np);
		goto fail;
	}
	s->n_patients = (uint64_t)np;
	FP_CHECK(st, get_reals(pooled, "count", path, s->count, (size_t)s->p));
	FP_CHECK(st, get_reals(pooled, "sum", path, s->sum, (size_t)s->p));
	FP_CHECK(st, get_reals(pooled, "sumsq", path, s->sumsq, (size_t)s->p));
	const char *sites_s = json_string_value(json_object_get(pooled, "sites"));
	snprintf(s->sites, sizeof s->sites, "%s", sites_s ? sites_s : "");
	/* design columns must follow from the statistics */
	const json_t *dn = json_object_get(doc, "design_columns");
	c->p = s->p;
	for (int j = 0; j < s->p; j++)
		if (s->count[j] < (double)s->n_patients) c->p++;
	FP_CHECK(st, fp_calloc_array((size_t)c->p, FP_P2_NAME_MAX, &v, "checkpoint names")); c->names = v;
	if (!json_is_array(dn) || json_array_size(dn) != (size_t)c->p) {
		st = FP_FAIL(FP_ERR_FORMAT,
		             "part2 checkpoint %s: 'design_columns' has %zu names but the pooled statistics give %d", path,
		             json_is_array(dn) ? json_array_size(dn) : (size_t)0, c->p);
		goto fail;
	}
	FP_CHECK(st, get_names(doc, "design_columns", path, c->names, (size_t)c->p));
	for (int j = 0; j < s->p; j++)
		if (strcmp(c->names[j], s->names[j]) != 0) {
			st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: design column %d is '%s' but raw column %d is '%s'",
			             path, j + 1, c->names[j], j + 1, s->names[j]);
			goto fail;
		}
	/* parameters */
	c->n_params = fp_p2_ckpt_expected_params_of(&c->cfg, c->p, c->embed_dim);
	const char *ps = json_string_value(json_object_get(doc, "params"));
	if (!ps) {
		st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'params' is missing", path);
		goto fail;
	}
	FP_CHECK(st, fp_alloc_array(c->n_params, sizeof(float), &v, "checkpoint params")); c->params = v;
	size_t got = 0;
	for (const char *q = ps; *q;) {
		char *end = NULL;
		double x = strtod(q, &end);
		if (end == q) {
			st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'params' value %zu is not a number", path, got + 1);
			goto fail;
		}
		if (got < c->n_params) c->params[got] = (float)x;
		got++;
		q = end;
		while (*q == ' ') q++;
	}
	if (got != c->n_params) {
		st = FP_FAIL(FP_ERR_FORMAT,
		             "part2 checkpoint %s: %zu parameters, but a %s model with hidden %d, %d design columns and "
		             "embedding width %d needs %zu: the configuration does not match the parameters",
		             path, got, kind_name(c->cfg.kind), c->cfg.hidden, c->p, c->embed_dim, c->n_params);
		goto fail;
	}
	char h[FP_SHA256_HEX_SIZE];
	FP_CHECK(st, fp_p2_params_hash(c->params, c->n_params, h));
	if (strcmp(h, c->model_hash) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "part2 checkpoint %s: parameters hash to %s, the file says model %s", path, h,
		             c->model_hash);
		goto fail;
	}
	/* baselines */
	const json_t *bl = json_object_get(doc, "baseline");
	if (!json_is_array(bl) || json_array_size(bl) > 256) {
		st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: 'baseline' is not an array of at most 256 sites", path);
		goto fail;
	}
	c->n_sites = (int)json_array_size(bl);
	FP_CHECK(st, fp_calloc_array((size_t)c->n_sites + 1, sizeof *c->sites, &v, "checkpoint sites")); c->sites = v;
	FP_CHECK(st, fp_calloc_array((size_t)c->n_sites + 1, sizeof *c->h0, &v, "checkpoint baseline")); c->h0 = v;
	for (int k = 0; k < c->n_sites; k++) {
		const json_t *o = json_array_get(bl, (size_t)k);
		const char *site = json_string_value(json_object_get(o, "site"));
		if (!site || strlen(site) >= sizeof c->sites[0]) {
			st = FP_FAIL(FP_ERR_FORMAT, "part2 checkpoint %s: baseline %d has no valid site id", path, k + 1);
			goto fail;
		}
		snprintf(c->sites[k], sizeof c->sites[0], "%s", site);
		FP_CHECK(st, get_reals(o, "h0", path, c->h0[k], FP_P2_CKPT_HORIZONS));
		for (int q = 0; q < FP_P2_CKPT_HORIZONS; q++)
			if (!(isfinite(c->h0[k][q]) && c->h0[k][q] >= 0 && (q == 0 || c->h0[k][q] >= c->h0[k][q - 1]))) {
				st = FP_FAIL(FP_ERR_FORMAT,
				             "part2 checkpoint %s: site %s's baseline hazard is not finite and non-decreasing", path,
				             site);
				goto fail;
			}
	}
	st = FP_OK;
	goto done;
fail:
	fp_p2_ckpt_close(c);
done:
	json_decref(doc);
	free(text);
	free(payload);
	return st;
}
