/*
 * fp_json.h: JSON through jansson, with fedpath's conventions.
 *
 * Loading reports "<file>:<line>:<column>: <jansson's text>" on syntax errors
 * and refuses files above a size limit. Saving goes through fp_file_commit, so a
 * JSON file on disk is always complete. Keys are written sorted, so equal
 * documents are byte-identical; reals use 17 significant digits so that a
 * double survives a round trip exactly.
 */
#ifndef FP_JSON_H
#define FP_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "fp_status.h"

#define FP_JSON_MAX_FILE (64u << 20)

/* On success *out is a new reference (json_decref when done). */
enum fp_status fp_json_load_file(const char *path, json_t **out);
enum fp_status fp_json_load_string(const char *text, const char *name, json_t **out);

/* Atomically writes `doc` (indented by 2, sorted keys, trailing newline). */
enum fp_status fp_json_save_file(const char *path, const json_t *doc, unsigned mode);

/* Serialises compactly on one line (for JSON-lines). Free with free(). */
enum fp_status fp_json_dump_line(const json_t *doc, char **out);

/* Typed getters: FP_ERR_NOT_FOUND or FP_ERR_FORMAT naming `where` and the key. */
enum fp_status fp_json_get_int(const json_t *obj, const char *key, const char *where, long long *out);
enum fp_status fp_json_get_real(const json_t *obj, const char *key, const char *where, double *out);
/* Borrowed string, valid while obj lives. */
enum fp_status fp_json_get_str(const json_t *obj, const char *key, const char *where, const char **out);

/* Adds a real that may be non-finite: NaN and Inf become null (JSON has no NaN). */
enum fp_status fp_json_set_real(json_t *obj, const char *key, double v);

#endif
