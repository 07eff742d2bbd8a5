/*
 * pki.c: the study CA, site keys and requests, signing and revocation
 * (fp_pki.h). OpenSSL 3 EVP/X509 only; every private key is written through
 * fp_file_commit with mode 0600 and never overwritten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "fp_file.h"
#include "fp_hash.h"
#include "fp_log.h"
#include "fp_pki.h"

#define PATH_MAX_LEN 4096

static enum fp_status path_join(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX_LEN, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_MAX_LEN) return FP_FAIL(FP_ERR_LIMIT, "path %s/%s is too long", dir, name);
	return FP_OK;
}

static enum fp_status ssl_fail(enum fp_status code, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	enum fp_status st = FP_FAIL(code, "%s%s%s", what, r ? ": " : "", r ? r : "");
	ERR_clear_error();
	return st;
}

/* Serialises through a memory BIO and commits the bytes durably. */
static enum fp_status bio_commit(BIO *bio, const char *path, unsigned mode)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0) return FP_FAIL(FP_ERR_INTERNAL, "%s: nothing was encoded", path);
	return fp_file_commit(path, data, (size_t)n, mode);
}

static enum fp_status write_key(const char *path, EVP_PKEY *key)
{
	if (access(path, F_OK) == 0)
		return FP_FAIL(FP_ERR_EXISTS, "%s already exists; a key is never overwritten (move it away first)", path);
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio) return FP_FAIL(FP_ERR_NOMEM, "%s: cannot allocate a buffer", path);
	enum fp_status st = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1
	                        ? bio_commit(bio, path, 0600)
	                        : ssl_fail(FP_ERR_INTERNAL, "cannot encode the private key");
	BIO_free(bio);
	return st;
}

static enum fp_status write_cert(const char *path, X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio) return FP_FAIL(FP_ERR_NOMEM, "%s: cannot allocate a buffer", path);
	enum fp_status st = PEM_write_bio_X509(bio, x) == 1 ? bio_commit(bio, path, 0644)
	                                                    : ssl_fail(FP_ERR_INTERNAL, "cannot encode a certificate");
	BIO_free(bio);
	return st;
}

static enum fp_status write_crl(const char *path, X509_CRL *crl)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio) return FP_FAIL(FP_ERR_NOMEM, "%s: cannot allocate a buffer", path);
	enum fp_status st = PEM_write_bio_X509_CRL(bio, crl) == 1 ? bio_commit(bio, path, 0644)
	                                                          : ssl_fail(FP_ERR_INTERNAL, "cannot encode the CRL");
	BIO_free(bio);
	return st;
}

static BIO *open_read(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	if (!b) FP_FAIL(FP_ERR_IO, "%s: cannot open", path);
	ERR_clear_error();
	return b;
}

static enum fp_status read_key(const char *path, EVP_PKEY **out)
{
	BIO *b = open_read(path);
	if (!b) return fp_error_last()->code;
	*out = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return *out ? FP_OK : ssl_fail(FP_ERR_FORMAT, path);
}

static enum fp_status read_cert(const char *path, X509 **out)
{
	BIO *b = open_read(path);
	if (!b) return fp_error_last()->code;
	*out = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return *out ? FP_OK : ssl_fail(FP_ERR_FORMAT, path);
}

static enum fp_status read_crl(const char *path, X509_CRL **out)
{
	BIO *b = open_read(path);
	if (!b) return fp_error_last()->code;
	*out = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	BIO_free(b);
	return *out ? FP_OK : ssl_fail(FP_ERR_FORMAT, path);
}

static enum fp_status new_key(EVP_PKEY **out)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return *out ? FP_OK : ssl_fail(FP_ERR_BACKEND, "cannot generate an EC P-256 key");
}

static enum fp_status add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
	if (!e) return ssl_fail(FP_ERR_INTERNAL, "cannot build a certificate extension");
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? FP_OK : ssl_fail(FP_ERR_INTERNAL, "cannot add a certificate extension");
}

/* 128 random bits, positive, as the certificate serial. */
static enum fp_status random_serial(X509 *x)
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1) return ssl_fail(FP_ERR_BACKEND, "no random bytes for a serial");
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x01);
	BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	enum fp_status st = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ? FP_OK
	                    : ssl_fail(FP_ERR_INTERNAL, "cannot set the serial");
	BN_free(bn);
	return st;
}

static enum fp_status set_validity(X509 *x, long long from, long long to)
{
	if (to <= from) return FP_FAIL(FP_ERR_INVALID_ARG, "certificate validity ends before it starts");
	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)from) || !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)to))
		return ssl_fail(FP_ERR_INTERNAL, "cannot set the validity period");
	return FP_OK;
}

static enum fp_status name_add(X509_NAME *n, const char *field, const char *value)
{
	if (X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0) != 1)
		return ssl_fail(FP_ERR_INVALID_ARG, "cannot put a value in a certificate name");
	return FP_OK;
}

static enum fp_status sign_crl(X509_CRL *crl, X509 *ca, EVP_PKEY *cakey, long number)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, ca, NULL, NULL, crl, 0);
	X509_EXTENSION *akid = X509V3_EXT_nconf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	enum fp_status st = FP_OK;
	if (!akid || !num || !ASN1_INTEGER_set(num, number) || !X509_CRL_add_ext(crl, akid, -1) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 || !X509_CRL_sort(crl) ||
	    X509_CRL_sign(crl, cakey, EVP_sha256()) <= 0)
		st = ssl_fail(FP_ERR_INTERNAL, "cannot sign the revocation list");
	X509_EXTENSION_free(akid);
	ASN1_INTEGER_free(num);
	return st;
}

/* A new CRL of the CA carrying `keep`'s entries (if any) plus `add_serial`. */
static enum fp_status build_crl(X509 *ca, EVP_PKEY *cakey, X509_CRL *keep, const ASN1_INTEGER *add_serial,
                                X509_CRL **out)
{
	enum fp_status st = FP_OK;
	long number = 1;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	if (!crl || !now || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) || !X509_CRL_set1_lastUpdate(crl, now) ||
	    !X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(ca))) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot start a revocation list");
		goto fail;
	}
	if (keep) {
		ASN1_INTEGER *old = X509_CRL_get_ext_d2i(keep, NID_crl_number, NULL, NULL);
		if (old) number = ASN1_INTEGER_get(old) + 1;
		ASN1_INTEGER_free(old);
		STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(keep);
		for (int i = 0; i < sk_X509_REVOKED_num(rs); i++) {
			const X509_REVOKED *o = sk_X509_REVOKED_value(rs, i);
			X509_REVOKED *r = X509_REVOKED_new();
			if (!r || !X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)X509_REVOKED_get0_serialNumber(o)) ||
			    !X509_REVOKED_set_revocationDate(r, (ASN1_TIME *)X509_REVOKED_get0_revocationDate(o)) ||
			    !X509_CRL_add0_revoked(crl, r)) {
				X509_REVOKED_free(r);
				st = ssl_fail(FP_ERR_INTERNAL, "cannot copy a revocation");
				goto fail;
			}
		}
	}
	if (add_serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		if (!r || !X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)add_serial) ||
		    !X509_REVOKED_set_revocationDate(r, now) || !X509_CRL_add0_revoked(crl, r)) {
			X509_REVOKED_free(r);
			st = ssl_fail(FP_ERR_INTERNAL, "cannot add a revocation");
			goto fail;
		}
	}
	FP_CHECK(st, sign_crl(crl, ca, cakey, number));
	ASN1_TIME_free(now);
	*out = crl;
	return FP_OK;
fail:
	ASN1_TIME_free(now);
	X509_CRL_free(crl);
	return st;
}

enum fp_status fp_pki_init(const char *dir, const char *study, long days)
{
	char p_key[PATH_MAX_LEN], p_crt[PATH_MAX_LEN], p_crl[PATH_MAX_LEN], p_al[PATH_MAX_LEN], p_iss[PATH_MAX_LEN];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_CRL *crl = NULL;
	struct fp_tls_allowlist *al = NULL;
	enum fp_status st;
	if (!study || !*study || strlen(study) > 64)
		return FP_FAIL(FP_ERR_INVALID_ARG, "study name must be 1..64 characters");
	if (days <= 0) days = FP_PKI_DEFAULT_CA_DAYS;
	FP_CHECK(st, path_join(p_key, dir, "ca.key"));
	FP_CHECK(st, path_join(p_crt, dir, "ca.crt"));
	FP_CHECK(st, path_join(p_crl, dir, "crl.pem"));
	FP_CHECK(st, path_join(p_al, dir, "allowlist.json"));
	FP_CHECK(st, path_join(p_iss, dir, "issued"));
	if (access(p_key, F_OK) == 0 || access(p_crt, F_OK) == 0) {
		st = FP_FAIL(FP_ERR_EXISTS, "%s already holds a study CA; refusing to replace it", dir);
		goto fail;
	}
	FP_CHECK(st, fp_mkdir_p(dir, 0700));
	FP_CHECK(st, fp_mkdir_p(p_iss, 0700));
	FP_CHECK(st, new_key(&key));
	x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3)) {
		st = ssl_fail(FP_ERR_NOMEM, "cannot allocate the CA certificate");
		goto fail;
	}
	long long now = (long long)time(NULL);
	char cn[128];
	snprintf(cn, sizeof(cn), "%s study CA", study);
	X509_NAME *name = X509_get_subject_name(x);
	FP_CHECK(st, random_serial(x));
	FP_CHECK(st, set_validity(x, now - 300, now + (long long)days * 86400));
	FP_CHECK(st, name_add(name, "O", study));
	FP_CHECK(st, name_add(name, "CN", cn));
	if (!X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key)) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot fill the CA certificate");
		goto fail;
	}
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	FP_CHECK(st, add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
	FP_CHECK(st, add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign"));
	FP_CHECK(st, add_ext(x, &v3, NID_subject_key_identifier, "hash"));
	FP_CHECK(st, add_ext(x, &v3, NID_authority_key_identifier, "keyid:always"));
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot self-sign the CA certificate");
		goto fail;
	}
	FP_CHECK(st, build_crl(x, key, NULL, NULL, &crl));
	FP_CHECK(st, write_key(p_key, key));
	FP_CHECK(st, write_cert(p_crt, x));
	FP_CHECK(st, write_crl(p_crl, crl));
	FP_CHECK(st, fp_tls_allowlist_load(p_al, 1, &al));
	FP_CHECK(st, fp_tls_allowlist_save(al, p_al));
	FP_INFO("pki: study CA '%s' created in %s, valid %ld days", study, dir, days);
fail:
	fp_tls_allowlist_destroy(al);
	X509_CRL_free(crl);
	X509_free(x);
	EVP_PKEY_free(key);
	return st;
}

enum fp_status fp_pki_csr(const char *dir, const char *id, uint8_t spki_sha256[32])
{
	char p_key[PATH_MAX_LEN], p_csr[PATH_MAX_LEN], f[FP_PROTO_MAX_ID_LEN + 8];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	enum fp_status st;
	if (!fp_wire_id_valid(id))
		return FP_FAIL(FP_ERR_INVALID_ARG, "site id '%s' is not 1..64 characters of [A-Za-z0-9._-]", id ? id : "");
	snprintf(f, sizeof(f), "%s.key", id);
	FP_CHECK(st, path_join(p_key, dir, f));
	snprintf(f, sizeof(f), "%s.csr", id);
	FP_CHECK(st, path_join(p_csr, dir, f));
	if (access(p_key, F_OK) == 0) {
		st = FP_FAIL(FP_ERR_EXISTS, "%s already exists; a key is never overwritten (move it away first)", p_key);
		goto fail;
	}
	FP_CHECK(st, fp_mkdir_p(dir, 0700));
	FP_CHECK(st, new_key(&key));
	req = X509_REQ_new();
	if (!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1)) {
		st = ssl_fail(FP_ERR_NOMEM, "cannot allocate a certificate request");
		goto fail;
	}
	FP_CHECK(st, name_add(X509_REQ_get_subject_name(req), "CN", id));
	if (!X509_REQ_set_pubkey(req, key) || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot sign the certificate request");
		goto fail;
	}
	FP_CHECK(st, fp_tls_spki_sha256(key, spki_sha256));
	/* The key first: a CSR without its key would be useless. */
	FP_CHECK(st, write_key(p_key, key));
	bio = BIO_new(BIO_s_mem());
	if (!bio || PEM_write_bio_X509_REQ(bio, req) != 1) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot encode the certificate request");
		goto fail;
	}
	FP_CHECK(st, bio_commit(bio, p_csr, 0644));
fail:
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return st;
}

static enum fp_status check_p256(EVP_PKEY *k, const char *path)
{
	char group[64] = "";
	if (!EVP_PKEY_is_a(k, "EC") || !EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) ||
	    strcmp(group, "prime256v1") != 0) {
		ERR_clear_error();
		return FP_FAIL(FP_ERR_UNSUPPORTED, "%s: key is not EC P-256 (%s); make the request with fedpath pki csr",
		               path, group[0] ? group : EVP_PKEY_get0_type_name(k));
	}
	return FP_OK;
}

enum fp_status fp_pki_sign(const char *ca_dir, const struct fp_pki_sign_options *o)
{
	char p_key[PATH_MAX_LEN], p_crt[PATH_MAX_LEN], p_al[PATH_MAX_LEN], p_out[PATH_MAX_LEN], f[FP_PROTO_MAX_ID_LEN + 16];
	EVP_PKEY *cakey = NULL;
	X509 *ca = NULL, *x = NULL;
	X509_REQ *req = NULL;
	BIO *b = NULL;
	struct fp_tls_allowlist *al = NULL;
	char *serial_hex = NULL;
	BIGNUM *bn = NULL;
	enum fp_status st;
	if (!fp_wire_id_valid(o->id))
		return FP_FAIL(FP_ERR_INVALID_ARG, "site id '%s' is not 1..64 characters of [A-Za-z0-9._-]", o->id ? o->id : "");
	if (o->role == FP_TLS_ROLE_SERVER && !o->dns_name)
		return FP_FAIL(FP_ERR_INVALID_ARG, "a server certificate needs the DNS name sites dial (--dns)");
	FP_CHECK(st, path_join(p_key, ca_dir, "ca.key"));
	FP_CHECK(st, path_join(p_crt, ca_dir, "ca.crt"));
	FP_CHECK(st, path_join(p_al, ca_dir, "allowlist.json"));
	snprintf(f, sizeof(f), "issued/%s.crt", o->id);
	FP_CHECK(st, path_join(p_out, ca_dir, f));
	FP_CHECK(st, read_key(p_key, &cakey));
	FP_CHECK(st, read_cert(p_crt, &ca));
	b = open_read(o->csr_path);
	if (!b) {
		st = fp_error_last()->code;
		goto fail;
	}
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (!req) {
		st = ssl_fail(FP_ERR_FORMAT, o->csr_path);
		goto fail;
	}
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	if (!pub || X509_REQ_verify(req, pub) != 1) {
		st = ssl_fail(FP_ERR_AUTH, "certificate request signature does not verify");
		fp_error_wrap("%s", o->csr_path);
		goto fail;
	}
	FP_CHECK(st, check_p256(pub, o->csr_path));
	char cn[FP_PROTO_MAX_ID_LEN + 2] = "";
	if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn)) <= 0 ||
	    strcmp(cn, o->id) != 0) {
		st = FP_FAIL(FP_ERR_AUTH, "%s: request is for '%s', not '%s'", o->csr_path, cn, o->id);
		goto fail;
	}
	x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3)) {
		st = ssl_fail(FP_ERR_NOMEM, "cannot allocate a certificate");
		goto fail;
	}
	long long now = (long long)time(NULL);
	long long from = o->not_before ? o->not_before : now - 300;
	long long to = o->not_after ? o->not_after : now + (long long)(o->days > 0 ? o->days : FP_PKI_DEFAULT_DAYS) * 86400;
	FP_CHECK(st, random_serial(x));
	FP_CHECK(st, set_validity(x, from, to));
	X509_NAME *name = X509_get_subject_name(x);
	char study[128] = "fedpath";
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_organizationName, study, sizeof(study));
	FP_CHECK(st, name_add(name, "O", study));
	FP_CHECK(st, name_add(name, "OU", fp_tls_role_str(o->role)));
	FP_CHECK(st, name_add(name, "CN", o->id));
	if (!X509_set_issuer_name(x, X509_get_subject_name(ca)) || !X509_set_pubkey(x, pub)) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot fill the certificate");
		goto fail;
	}
	char san[256];
	if (o->dns_name) snprintf(san, sizeof(san), "URI:%s%s,DNS:%s", FP_TLS_URI_PREFIX, o->id, o->dns_name);
	else snprintf(san, sizeof(san), "URI:%s%s", FP_TLS_URI_PREFIX, o->id);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	FP_CHECK(st, add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE"));
	FP_CHECK(st, add_ext(x, &v3, NID_key_usage, "critical,digitalSignature"));
	FP_CHECK(st, add_ext(x, &v3, NID_ext_key_usage, o->role == FP_TLS_ROLE_SERVER ? "serverAuth,clientAuth" : "clientAuth"));
	FP_CHECK(st, add_ext(x, &v3, NID_subject_key_identifier, "hash"));
	FP_CHECK(st, add_ext(x, &v3, NID_authority_key_identifier, "keyid:always"));
	FP_CHECK(st, add_ext(x, &v3, NID_subject_alt_name, san));
	if (X509_sign(x, cakey, EVP_sha256()) <= 0) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot sign the certificate");
		goto fail;
	}
	struct fp_tls_allow_entry e;
	memset(&e, 0, sizeof(e));
	snprintf(e.id, sizeof(e.id), "%s", o->id);
	e.role = o->role;
	e.not_after = to;
	FP_CHECK(st, fp_tls_spki_sha256(pub, e.spki_sha256));
	bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
	serial_hex = bn ? BN_bn2hex(bn) : NULL;
	if (!serial_hex || strlen(serial_hex) >= sizeof(e.serial)) {
		st = ssl_fail(FP_ERR_INTERNAL, "cannot format the serial");
		goto fail;
	}
	for (char *c = serial_hex; *c; c++) e.serial[c - serial_hex] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
	FP_CHECK(st, write_cert(p_out, x));
	if (o->out_path) FP_CHECK(st, write_cert(o->out_path, x));
	FP_CHECK(st, fp_tls_allowlist_load(p_al, 1, &al));
	FP_CHECK(st, fp_tls_allowlist_put(al, &e));
	FP_CHECK(st, fp_tls_allowlist_save(al, p_al));
	FP_INFO("pki: signed %s '%s' (serial %s), allow-listed", fp_tls_role_str(o->role), o->id, e.serial);
fail:
	OPENSSL_free(serial_hex);
	BN_free(bn);
	fp_tls_allowlist_destroy(al);
	BIO_free(b);
	X509_REQ_free(req);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return st;
}

enum fp_status fp_pki_revoke(const char *ca_dir, const char *id)
{
	char p_key[PATH_MAX_LEN], p_crt[PATH_MAX_LEN], p_crl[PATH_MAX_LEN], p_al[PATH_MAX_LEN], p_iss[PATH_MAX_LEN];
	char f[FP_PROTO_MAX_ID_LEN + 16];
	EVP_PKEY *cakey = NULL;
	X509 *ca = NULL, *x = NULL;
	X509_CRL *old = NULL, *crl = NULL;
	struct fp_tls_allowlist *al = NULL;
	enum fp_status st;
	if (!fp_wire_id_valid(id)) return FP_FAIL(FP_ERR_INVALID_ARG, "site id '%s' is not valid", id ? id : "");
	snprintf(f, sizeof(f), "issued/%s.crt", id);
	FP_CHECK(st, path_join(p_iss, ca_dir, f));
	FP_CHECK(st, path_join(p_key, ca_dir, "ca.key"));
	FP_CHECK(st, path_join(p_crt, ca_dir, "ca.crt"));
	FP_CHECK(st, path_join(p_crl, ca_dir, "crl.pem"));
	FP_CHECK(st, path_join(p_al, ca_dir, "allowlist.json"));
	FP_CHECK(st, fp_tls_allowlist_load(p_al, 0, &al));
	const struct fp_tls_allow_entry *cur = fp_tls_allowlist_find(al, id);
	if (!cur) {
		st = FP_FAIL(FP_ERR_NOT_FOUND, "%s: no site '%s' on the allow-list", p_al, id);
		goto fail;
	}
	FP_CHECK(st, read_key(p_key, &cakey));
	FP_CHECK(st, read_cert(p_crt, &ca));
	FP_CHECK(st, read_cert(p_iss, &x));
	FP_CHECK(st, read_crl(p_crl, &old));
	FP_CHECK(st, build_crl(ca, cakey, old, X509_get_serialNumber(x), &crl));
	/* The CRL first: if the allow-list write fails, the key is still refused. */
	FP_CHECK(st, write_crl(p_crl, crl));
	struct fp_tls_allow_entry e = *cur;
	e.revoked = 1;
	FP_CHECK(st, fp_tls_allowlist_put(al, &e));
	FP_CHECK(st, fp_tls_allowlist_save(al, p_al));
	FP_INFO("pki: revoked '%s' (serial %s); copy %s to the aggregator", id, e.serial, p_crl);
fail:
	fp_tls_allowlist_destroy(al);
	X509_CRL_free(crl);
	X509_CRL_free(old);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return st;
}

static long days_until(const ASN1_TIME *t)
{
	int days = 0, secs = 0;
	if (!ASN1_TIME_diff(&days, &secs, NULL, t)) return 0;
	if (days <= 0 && secs < 0) return days - 1;
	return days;
}

enum fp_status fp_pki_cert_days_left(const char *cert_path, long *days)
{
	X509 *x = NULL;
	FP_TRY(read_cert(cert_path, &x));
	*days = days_until(X509_get0_notAfter(x));
	X509_free(x);
	return FP_OK;
}

enum fp_status fp_pki_crl_days_left(const char *crl_path, long *days)
{
	X509_CRL *c = NULL;
	FP_TRY(read_crl(crl_path, &c));
	const ASN1_TIME *t = X509_CRL_get0_nextUpdate(c);
	*days = t ? days_until(t) : 100000;
	X509_CRL_free(c);
	return FP_OK;
}
