/*
 * json.c: jansson with fedpath's conventions (fp_json.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_file.h"
#include "fp_json.h"

enum fp_status fp_json_load_string(const char *text, const char *name, json_t **out)
{
	json_error_t err;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	if (!doc)
		return FP_FAIL(FP_ERR_FORMAT, "%s:%d:%d: %s", name ? name : "(string)", err.line, err.column, err.text);
	*out = doc;
	return FP_OK;
}

enum fp_status fp_json_load_file(const char *path, json_t **out)
{
	char *text = NULL;
	size_t len = 0;
	FP_TRY(fp_file_read_all(path, FP_JSON_MAX_FILE, &text, &len));
	if (strlen(text) != len) {
		free(text);
		return FP_FAIL(FP_ERR_FORMAT, "%s: contains a NUL byte (not a JSON text file)", path);
	}
	enum fp_status st = fp_json_load_string(text, path, out);
	free(text);
	return st;
}

enum fp_status fp_json_save_file(const char *path, const json_t *doc, unsigned mode)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	if (!s) return FP_FAIL(FP_ERR_NOMEM, "%s: cannot serialise JSON", path);
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return FP_FAIL(FP_ERR_NOMEM, "%s: out of memory", path);
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	enum fp_status st = fp_file_commit(path, t, n + 1, mode);
	free(t);
	return st;
}

enum fp_status fp_json_dump_line(const json_t *doc, char **out)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	if (!s) return FP_FAIL(FP_ERR_NOMEM, "cannot serialise JSON");
	*out = s;
	return FP_OK;
}

enum fp_status fp_json_get_int(const json_t *obj, const char *key, const char *where, long long *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v) return FP_FAIL(FP_ERR_NOT_FOUND, "%s: missing field \"%s\"", where, key);
	if (!json_is_integer(v)) return FP_FAIL(FP_ERR_FORMAT, "%s: field \"%s\" is not an integer", where, key);
	*out = json_integer_value(v);
	return FP_OK;
}

enum fp_status fp_json_get_real(const json_t *obj, const char *key, const char *where, double *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v) return FP_FAIL(FP_ERR_NOT_FOUND, "%s: missing field \"%s\"", where, key);
	if (!json_is_number(v)) return FP_FAIL(FP_ERR_FORMAT, "%s: field \"%s\" is not a number", where, key);
	*out = json_number_value(v);
	return FP_OK;
}

enum fp_status fp_json_get_str(const json_t *obj, const char *key, const char *where, const char **out)
{
	json_t *v = json_object_get(obj, key);
	if (!v) return FP_FAIL(FP_ERR_NOT_FOUND, "%s: missing field \"%s\"", where, key);
	if (!json_is_string(v)) return FP_FAIL(FP_ERR_FORMAT, "%s: field \"%s\" is not a string", where, key);
	*out = json_string_value(v);
	return FP_OK;
}

enum fp_status fp_json_set_real(json_t *obj, const char *key, double v)
{
	json_t *j = isfinite(v) ? json_real(v) : json_null();
	if (!j || json_object_set_new(obj, key, j) != 0)
		return FP_FAIL(FP_ERR_NOMEM, "cannot set JSON field \"%s\"", key);
	return FP_OK;
}
