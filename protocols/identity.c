/*
 * identity.c: who a certificate names (URI SAN "fedpath:<id>", OU role, key
 * pin) and the allow-list file that says who may connect (fp_tls.h).
 * Allow-list format (JSON, keys sorted, written atomically):
 *   {"format": "fedpath-allowlist", "version": 1,
 *    "entries": [{"id": "H01", "role": "site", "spki_sha256": "<64 hex>",
 *                 "serial": "<hex>", "not_after": 1795000000, "status": "active"}]}
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "fp_hash.h"
#include "fp_json.h"
#include "fp_tls.h"

#define ALLOWLIST_MAX_ENTRIES 4096u

static const char *const role_names[] = {"site", "statistician", "admin", "server"};

const char *fp_tls_role_str(enum fp_tls_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "unknown";
}

enum fp_status fp_tls_role_parse(const char *s, enum fp_tls_role *out)
{
	for (unsigned i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (s && strcmp(s, role_names[i]) == 0) {
			*out = (enum fp_tls_role)i;
			return FP_OK;
		}
	return FP_FAIL(FP_ERR_INVALID_ARG, "role '%s' is not one of site, statistician, admin, server", s ? s : "(null)");
}

enum fp_status fp_tls_spki_sha256(EVP_PKEY *key, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	if (n <= 0) return FP_FAIL(FP_ERR_FORMAT, "cannot encode the public key as SubjectPublicKeyInfo");
	enum fp_status st = fp_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return st;
}

enum fp_status fp_tls_cert_identity(X509 *cert, struct fp_tls_identity *out)
{
	enum fp_status st = FP_OK;
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int found = 0;
	memset(out, 0, sizeof(*out));
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type != GEN_URI) continue;
		const char *u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		int ulen = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		size_t plen = strlen(FP_TLS_URI_PREFIX);
		if (ulen <= (int)plen || strncmp(u, FP_TLS_URI_PREFIX, plen) != 0) continue;
		if (found++) {
			st = FP_FAIL(FP_ERR_AUTH, "certificate names more than one fedpath identity");
			goto fail;
		}
		size_t idlen = (size_t)ulen - plen;
		if (idlen > FP_PROTO_MAX_ID_LEN || memchr(u + plen, 0, idlen)) {
			st = FP_FAIL(FP_ERR_AUTH, "certificate identity is not a valid site id");
			goto fail;
		}
		memcpy(out->id, u + plen, idlen);
		out->id[idlen] = 0;
		if (!fp_wire_id_valid(out->id)) {
			st = FP_FAIL(FP_ERR_AUTH, "certificate identity '%.64s' is not a valid site id", out->id);
			goto fail;
		}
	}
	if (!found) {
		st = FP_FAIL(FP_ERR_AUTH, "certificate has no subjectAltName URI \"%s<id>\"", FP_TLS_URI_PREFIX);
		goto fail;
	}
	char ou[32];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationalUnitName, ou, sizeof(ou));
	if (n <= 0) {
		st = FP_FAIL(FP_ERR_AUTH, "certificate of '%s' has no role (subject OU)", out->id);
		goto fail;
	}
	if (fp_tls_role_parse(ou, &out->role) != FP_OK) {
		st = FP_FAIL(FP_ERR_AUTH, "certificate of '%s' has an unknown role '%s'", out->id, ou);
		goto fail;
	}
	EVP_PKEY *key = X509_get0_pubkey(cert);
	if (!key) {
		st = FP_FAIL(FP_ERR_AUTH, "certificate of '%s' has no readable public key", out->id);
		goto fail;
	}
	FP_CHECK(st, fp_tls_spki_sha256(key, out->spki_sha256));
fail:
	GENERAL_NAMES_free(names);
	return st;
}

struct fp_tls_allowlist {
	struct fp_tls_allow_entry *e;
	size_t n, cap;
};

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n) return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			v <<= 4;
			if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
			else return 0;
		}
		out[i] = (uint8_t)v;
	}
	return 1;
}

void fp_tls_allowlist_destroy(struct fp_tls_allowlist *al)
{
	if (!al) return;
	free(al->e);
	free(al);
}

size_t fp_tls_allowlist_count(const struct fp_tls_allowlist *al) { return al->n; }

const struct fp_tls_allow_entry *fp_tls_allowlist_get(const struct fp_tls_allowlist *al, size_t i)
{
	return i < al->n ? &al->e[i] : NULL;
}

const struct fp_tls_allow_entry *fp_tls_allowlist_find(const struct fp_tls_allowlist *al, const char *id)
{
	for (size_t i = 0; i < al->n; i++)
		if (strcmp(al->e[i].id, id) == 0) return &al->e[i];
	return NULL;
}

enum fp_status fp_tls_allowlist_put(struct fp_tls_allowlist *al, const struct fp_tls_allow_entry *e)
{
	for (size_t i = 0; i < al->n; i++)
		if (strcmp(al->e[i].id, e->id) == 0) {
			al->e[i] = *e;
			return FP_OK;
		}
	if (al->n >= ALLOWLIST_MAX_ENTRIES)
		return FP_FAIL(FP_ERR_LIMIT, "allow-list holds %u entries, the limit", ALLOWLIST_MAX_ENTRIES);
	if (al->n == al->cap) {
		size_t cap = al->cap ? 2 * al->cap : 16;
		void *p = realloc(al->e, cap * sizeof(*al->e));
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "allow-list: cannot grow to %zu entries", cap);
		al->e = p;
		al->cap = cap;
	}
	al->e[al->n++] = *e;
	return FP_OK;
}

static enum fp_status parse_entry(const json_t *j, const char *where, struct fp_tls_allow_entry *e)
{
	const char *id, *role, *pin, *serial, *status;
	long long not_after;
	memset(e, 0, sizeof(*e));
	FP_TRY(fp_json_get_str(j, "id", where, &id));
	FP_TRY(fp_json_get_str(j, "role", where, &role));
	FP_TRY(fp_json_get_str(j, "spki_sha256", where, &pin));
	FP_TRY(fp_json_get_str(j, "serial", where, &serial));
	FP_TRY(fp_json_get_str(j, "status", where, &status));
	FP_TRY(fp_json_get_int(j, "not_after", where, &not_after));
	if (!fp_wire_id_valid(id)) return FP_FAIL(FP_ERR_FORMAT, "%s: id '%.80s' is not a valid site id", where, id);
	if (fp_tls_role_parse(role, &e->role) != FP_OK)
		return FP_FAIL(FP_ERR_FORMAT, "%s: role '%.40s' of '%s' is not site, statistician, admin or server", where, role, id);
	if (!hex_decode(pin, e->spki_sha256, 32))
		return FP_FAIL(FP_ERR_FORMAT, "%s: spki_sha256 of '%s' is not 64 lowercase hex digits", where, id);
	if (strlen(serial) >= sizeof(e->serial))
		return FP_FAIL(FP_ERR_FORMAT, "%s: serial of '%s' is too long", where, id);
	if (strcmp(status, "active") != 0 && strcmp(status, "revoked") != 0)
		return FP_FAIL(FP_ERR_FORMAT, "%s: status '%.40s' of '%s' is not active or revoked", where, status, id);
	strcpy(e->id, id);
	strcpy(e->serial, serial);
	e->not_after = not_after;
	e->revoked = strcmp(status, "revoked") == 0;
	return FP_OK;
}

enum fp_status fp_tls_allowlist_load(const char *path, int missing_ok, struct fp_tls_allowlist **out)
{
	json_t *doc = NULL;
	enum fp_status st;
	struct fp_tls_allowlist *al = calloc(1, sizeof(*al));
	if (!al) return FP_FAIL(FP_ERR_NOMEM, "allow-list: cannot allocate");
	if (missing_ok && access(path, F_OK) != 0) {
		*out = al;
		return FP_OK;
	}
	FP_CHECK(st, fp_json_load_file(path, &doc));
	const char *format;
	long long version;
	FP_CHECK(st, fp_json_get_str(doc, "format", path, &format));
	FP_CHECK(st, fp_json_get_int(doc, "version", path, &version));
	if (strcmp(format, "fedpath-allowlist") != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: format '%.40s' is not fedpath-allowlist", path, format);
		goto fail;
	}
	if (version != 1) {
		st = FP_FAIL(FP_ERR_VERSION, "%s: allow-list version %lld, this build reads 1", path, version);
		goto fail;
	}
	json_t *arr = json_object_get(doc, "entries");
	if (!json_is_array(arr)) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: \"entries\" is missing or not an array", path);
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		char where[300];
		struct fp_tls_allow_entry e;
		snprintf(where, sizeof(where), "%s: entries[%zu]", path, i);
		FP_CHECK(st, parse_entry(json_array_get(arr, i), where, &e));
		if (fp_tls_allowlist_find(al, e.id)) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: site '%s' is listed twice", where, e.id);
			goto fail;
		}
		FP_CHECK(st, fp_tls_allowlist_put(al, &e));
	}
	json_decref(doc);
	*out = al;
	return FP_OK;
fail:
	json_decref(doc);
	fp_tls_allowlist_destroy(al);
	return st;
}

enum fp_status fp_tls_allowlist_save(const struct fp_tls_allowlist *al, const char *path)
{
	enum fp_status st = FP_OK;
	json_t *doc = json_pack("{s:s, s:i}", "format", "fedpath-allowlist", "version", 1);
	json_t *arr = json_array();
	if (!doc || !arr || json_object_set_new(doc, "entries", arr) != 0) {
		json_decref(arr);
		st = FP_FAIL(FP_ERR_NOMEM, "allow-list: cannot build the JSON document");
		goto fail;
	}
	for (size_t i = 0; i < al->n; i++) {
		const struct fp_tls_allow_entry *e = &al->e[i];
		char pin[FP_SHA256_HEX_SIZE];
		fp_hex_encode(e->spki_sha256, 32, pin);
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "id", e->id, "role", fp_tls_role_str(e->role),
		                      "spki_sha256", pin, "serial", e->serial, "not_after", (json_int_t)e->not_after,
		                      "status", e->revoked ? "revoked" : "active");
		if (!j || json_array_append_new(arr, j) != 0) {
			st = FP_FAIL(FP_ERR_NOMEM, "allow-list: cannot build entry '%s'", e->id);
			goto fail;
		}
	}
	st = fp_json_save_file(path, doc, 0644);
fail:
	json_decref(doc);
	return st;
}

enum fp_status fp_tls_allowlist_check(const struct fp_tls_allowlist *al, const struct fp_tls_identity *who)
{
	const struct fp_tls_allow_entry *e = fp_tls_allowlist_find(al, who->id);
	if (!e) return FP_FAIL(FP_ERR_AUTH, "'%s' is not on the allow-list", who->id);
	if (e->revoked) return FP_FAIL(FP_ERR_AUTH, "'%s' is revoked on the allow-list", who->id);
	if (e->role != who->role)
		return FP_FAIL(FP_ERR_AUTH, "'%s' presents role %s, the allow-list says %s", who->id,
		               fp_tls_role_str(who->role), fp_tls_role_str(e->role));
	if (CRYPTO_memcmp(e->spki_sha256, who->spki_sha256, 32) != 0) {
		char got[FP_SHA256_HEX_SIZE];
		fp_hex_encode(who->spki_sha256, 32, got);
		return FP_FAIL(FP_ERR_AUTH, "'%s' presents key sha256:%.16s..., not the key on the allow-list", who->id, got);
	}
	return FP_OK;
}
