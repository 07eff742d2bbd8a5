/*
 * test_pki.c: the study PKI (federate/fp_pki.h): file modes, CSR checks,
 * what a signed certificate carries, the allow-list pin, revocation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fp_common.h"
#include "fp_pki.h"
#include "fp_test.h"
#include "fp_tls.h"

static void pj(char *out, size_t n, const char *a, const char *b) { snprintf(out, n, "%s/%s", a, b); }

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	CHECK(x);
	return x;
}

static unsigned mode_of(const char *path)
{
	struct stat sb;
	CHECK(stat(path, &sb) == 0);
	return (unsigned)(sb.st_mode & 0777);
}

static void site_csr(const char *dir, const char *id, char *csr, size_t n, uint8_t pin[32])
{
	CHECK_OK(fp_pki_csr(dir, id, pin));
	snprintf(csr, n, "%s/%s.csr", dir, id);
}

FP_TEST(init_writes_ca_with_key_0600_and_refuses_a_second_ca)
{
	char ca[1024], p[1100];
	pj(ca, sizeof(ca), fp_test_tmpdir(), "ca");
	CHECK_OK(fp_pki_init(ca, "HCC-2026", 0));
	pj(p, sizeof(p), ca, "ca.key");
	CHECK_INT_EQ(mode_of(p), 0600);
	pj(p, sizeof(p), ca, "ca.crt");
	X509 *x = load_cert(p);
	CHECK(X509_check_ca(x) >= 1);
	CHECK(X509_verify(x, X509_get0_pubkey(x)) == 1);
	long days = 0;
	CHECK_OK(fp_pki_cert_days_left(p, &days));
	CHECK(days >= FP_PKI_DEFAULT_CA_DAYS - 1 && days <= FP_PKI_DEFAULT_CA_DAYS);
	X509_free(x);
	pj(p, sizeof(p), ca, "allowlist.json");
	struct fp_tls_allowlist *al = NULL;
	CHECK_OK(fp_tls_allowlist_load(p, 0, &al));
	CHECK_INT_EQ(fp_tls_allowlist_count(al), 0);
	fp_tls_allowlist_destroy(al);
	pj(p, sizeof(p), ca, "crl.pem");
	CHECK_OK(fp_pki_crl_days_left(p, &days));
	CHECK_STATUS(fp_pki_init(ca, "HCC-2026", 0), FP_ERR_EXISTS);
}

FP_TEST(csr_key_is_0600_never_overwritten_and_pinned)
{
	char dir[1024], key[1100], csr[1100];
	uint8_t pin[32], pin2[32];
	pj(dir, sizeof(dir), fp_test_tmpdir(), "site");
	site_csr(dir, "H01", csr, sizeof(csr), pin);
	pj(key, sizeof(key), dir, "H01.key");
	CHECK_INT_EQ(mode_of(key), 0600);
	FILE *f = fopen(key, "r");
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	CHECK(k);
	CHECK_OK(fp_tls_spki_sha256(k, pin2));
	CHECK(memcmp(pin, pin2, 32) == 0);
	EVP_PKEY_free(k);
	CHECK_STATUS(fp_pki_csr(dir, "H01", pin2), FP_ERR_EXISTS);
	CHECK_STATUS(fp_pki_csr(dir, "../H01", pin2), FP_ERR_INVALID_ARG);
}

FP_TEST(sign_puts_identity_in_san_role_in_ou_and_pin_in_allowlist)
{
	char ca[1024], dir[1024], csr[1100], p[1100], out[1100];
	uint8_t pin[32];
	pj(ca, sizeof(ca), fp_test_tmpdir(), "ca");
	pj(dir, sizeof(dir), fp_test_tmpdir(), "site");
	pj(out, sizeof(out), dir, "H01.crt");
	CHECK_OK(fp_pki_init(ca, "HCC-2026", 0));
	site_csr(dir, "H01", csr, sizeof(csr), pin);
	long long now = (long long)time(NULL);
	struct fp_pki_sign_options o = {csr, "H01", FP_TLS_ROLE_STATISTICIAN, NULL, 10, 0, 0, out};
	CHECK_OK(fp_pki_sign(ca, &o));
	X509 *x = load_cert(out);
	struct fp_tls_identity who;
	CHECK_OK(fp_tls_cert_identity(x, &who));
	CHECK_STR_EQ(who.id, "H01");
	CHECK_INT_EQ(who.role, FP_TLS_ROLE_STATISTICIAN);
	CHECK(memcmp(who.spki_sha256, pin, 32) == 0);
	CHECK(X509_check_host(x, "H01", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1); /* no DNS name for a site */
	pj(p, sizeof(p), ca, "ca.crt");
	X509 *cax = load_cert(p);
	CHECK(X509_verify(x, X509_get0_pubkey(cax)) == 1);
	CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1);
	long days = 0;
	CHECK_OK(fp_pki_cert_days_left(out, &days));
	CHECK(days >= 9 && days <= 10);
	pj(p, sizeof(p), ca, "allowlist.json");
	struct fp_tls_allowlist *al = NULL;
	CHECK_OK(fp_tls_allowlist_load(p, 0, &al));
	const struct fp_tls_allow_entry *e = fp_tls_allowlist_find(al, "H01");
	CHECK(e);
	CHECK(memcmp(e->spki_sha256, pin, 32) == 0);
	CHECK_INT_EQ(e->role, FP_TLS_ROLE_STATISTICIAN);
	CHECK(!e->revoked);
	CHECK(e->not_after >= now + 10 * 86400 - 5 && e->not_after <= now + 10 * 86400 + 5);
	CHECK_OK(fp_tls_allowlist_check(al, &who));
	fp_tls_allowlist_destroy(al);
	X509_free(x);
	X509_free(cax);
}

FP_TEST(server_certificate_needs_and_carries_dns_name)
{
	char ca[1024], dir[1024], csr[1100], out[1100];
	uint8_t pin[32];
	pj(ca, sizeof(ca), fp_test_tmpdir(), "ca");
	pj(dir, sizeof(dir), fp_test_tmpdir(), "agg");
	pj(out, sizeof(out), dir, "agg.crt");
	CHECK_OK(fp_pki_init(ca, "HCC-2026", 0));
	site_csr(dir, "aggregator", csr, sizeof(csr), pin);
	struct fp_pki_sign_options o = {csr, "aggregator", FP_TLS_ROLE_SERVER, NULL, 0, 0, 0, out};
	CHECK_STATUS(fp_pki_sign(ca, &o), FP_ERR_INVALID_ARG);
	o.dns_name = "fl.hcc-study.example";
	CHECK_OK(fp_pki_sign(ca, &o));
	X509 *x = load_cert(out);
	CHECK(X509_check_host(x, "fl.hcc-study.example", 0, 0, NULL) == 1);
	CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) == 1);
	X509_free(x);
}

FP_TEST(sign_refuses_wrong_cn_bad_signature_and_non_p256_key)
{
	char ca[1024], dir[1024], csr[1100], bad[1100];
	uint8_t pin[32];
	pj(ca, sizeof(ca), fp_test_tmpdir(), "ca");
	pj(dir, sizeof(dir), fp_test_tmpdir(), "site");
	CHECK_OK(fp_pki_init(ca, "HCC-2026", 0));
	site_csr(dir, "H01", csr, sizeof(csr), pin);
	struct fp_pki_sign_options o = {csr, "H02", FP_TLS_ROLE_SITE, NULL, 0, 0, 0, NULL};
	CHECK_STATUS(fp_pki_sign(ca, &o), FP_ERR_AUTH);
	CHECK_STR_CONTAINS(fp_error_msg(), "not 'H02'");

	/* A request whose key was swapped after signing. */
	FILE *f = fopen(csr, "r");
	X509_REQ *req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
	fclose(f);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(req && other && X509_REQ_set_pubkey(req, other) == 1);
	pj(bad, sizeof(bad), dir, "swapped.csr");
	f = fopen(bad, "w");
	PEM_write_X509_REQ(f, req);
	fclose(f);
	o.csr_path = bad;
	o.id = "H01";
	CHECK_STATUS(fp_pki_sign(ca, &o), FP_ERR_AUTH);
	X509_REQ_free(req);
	EVP_PKEY_free(other);

	/* A P-384 request, properly signed. */
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	req = X509_REQ_new();
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8, (const unsigned char *)"H01", -1, -1, 0);
	CHECK(X509_REQ_set_pubkey(req, p384) == 1 && X509_REQ_sign(req, p384, EVP_sha256()) > 0);
	f = fopen(bad, "w");
	PEM_write_X509_REQ(f, req);
	fclose(f);
	CHECK_STATUS(fp_pki_sign(ca, &o), FP_ERR_UNSUPPORTED);
	X509_REQ_free(req);
	EVP_PKEY_free(p384);
}

FP_TEST(revoke_adds_serials_to_a_signed_crl_and_marks_allowlist)
{
	char ca[1024], dir[1024], csr[1100], p[1100], crt1[1100], crt2[1100];
	uint8_t pin[32];
	pj(ca, sizeof(ca), fp_test_tmpdir(), "ca");
	pj(dir, sizeof(dir), fp_test_tmpdir(), "site");
	CHECK_OK(fp_pki_init(ca, "HCC-2026", 0));
	const char *ids[2] = {"H01", "H02"};
	for (int i = 0; i < 2; i++) {
		site_csr(dir, ids[i], csr, sizeof(csr), pin);
		struct fp_pki_sign_options o = {csr, ids[i], FP_TLS_ROLE_SITE, NULL, 0, 0, 0, NULL};
		CHECK_OK(fp_pki_sign(ca, &o));
	}
	CHECK_STATUS(fp_pki_revoke(ca, "H09"), FP_ERR_NOT_FOUND);
	CHECK_OK(fp_pki_revoke(ca, "H01"));
	CHECK_OK(fp_pki_revoke(ca, "H02"));
	pj(crt1, sizeof(crt1), ca, "issued/H01.crt");
	pj(crt2, sizeof(crt2), ca, "issued/H02.crt");
	X509 *x1 = load_cert(crt1), *x2 = load_cert(crt2);
	pj(p, sizeof(p), ca, "crl.pem");
	FILE *f = fopen(p, "r");
	X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
	fclose(f);
	CHECK(crl);
	X509_REVOKED *r = NULL;
	CHECK(X509_CRL_get0_by_serial(crl, &r, X509_get_serialNumber(x1)) == 1);
	CHECK(X509_CRL_get0_by_serial(crl, &r, X509_get_serialNumber(x2)) == 1);
	pj(p, sizeof(p), ca, "ca.crt");
	X509 *cax = load_cert(p);
	CHECK(X509_CRL_verify(crl, X509_get0_pubkey(cax)) == 1);
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	CHECK(num && ASN1_INTEGER_get(num) == 3); /* init, then two revocations */
	ASN1_INTEGER_free(num);
	pj(p, sizeof(p), ca, "allowlist.json");
	struct fp_tls_allowlist *al = NULL;
	CHECK_OK(fp_tls_allowlist_load(p, 0, &al));
	CHECK(fp_tls_allowlist_find(al, "H01")->revoked);
	CHECK(fp_tls_allowlist_find(al, "H02")->revoked);
	fp_tls_allowlist_destroy(al);
	X509_CRL_free(crl);
	X509_free(x1);
	X509_free(x2);
	X509_free(cax);
}

FP_TEST(allowlist_refuses_malformed_entries)
{
	char p[1024];
	struct fp_tls_allowlist *al = NULL;
	pj(p, sizeof(p), fp_test_tmpdir(), "allow.json");
	const char *bad = "{\"format\":\"fedpath-allowlist\",\"version\":1,\"entries\":[{\"id\":\"H01\",\"role\":\"root\","
	                  "\"spki_sha256\":\"00\",\"serial\":\"1\",\"not_after\":1,\"status\":\"active\"}]}";
	CHECK_OK(fp_file_commit(p, bad, strlen(bad), 0644));
	CHECK_STATUS(fp_tls_allowlist_load(p, 0, &al), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "entries[0]");
	CHECK(al == NULL);
}

/* Runs a shell command line; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	return r == -1 ? -1 : WEXITSTATUS(r);
}

FP_TEST(cli_pki_flow_and_expiry_warnings)
{
	/* The commands a study runs, through the fedpath executable. */
	const char *fp = getenv("FEDPATH");
	if (!fp) fp_test_fail(__FILE__, __LINE__, "FEDPATH is not set (run under ctest)");
	char t[1024], exe[1200];
	snprintf(t, sizeof(t), "%s", fp_test_tmpdir());
	snprintf(exe, sizeof(exe), "%s", fp);
	CHECK_INT_EQ(sh("%s pki init --ca %s/ca --study HCC-2026 --days 3650 >/dev/null 2>&1", exe, t), 0);
	CHECK_INT_EQ(sh("%s pki csr --site H01 --out %s/site > /dev/null 2>&1", exe, t), 0);
	CHECK_INT_EQ(sh("%s pki csr --site H01 --out %s/site > /dev/null 2>&1", exe, t), 1); /* never overwrite */
	CHECK_INT_EQ(sh("cd %s && %s pki sign --ca ca --csr site/H01.csr --site H01 --role site --days 10 >/dev/null 2>&1", t, exe), 0);
	CHECK_INT_EQ(sh("cd %s && %s pki sign --ca ca --csr site/H01.csr --site H01 --role root >/dev/null 2>&1", t, exe), 2);
	CHECK_INT_EQ(sh("cd %s && %s pki sign --ca ca --csr site/H01.csr --site H02 --role site >/dev/null 2>&1", t, exe), 1);
	CHECK_INT_EQ(sh("cd %s && %s pki list --ca ca >list.out 2>list.err", t, exe), 0);
	char p[1200], *text = NULL;
	size_t n = 0;
	snprintf(p, sizeof(p), "%s/list.err", t);
	CHECK_OK(fp_file_read_all(p, 1 << 16, &text, &n));
	CHECK_STR_CONTAINS(text, "'H01' expires in");
	free(text);
	snprintf(p, sizeof(p), "%s/list.out", t);
	CHECK_OK(fp_file_read_all(p, 1 << 16, &text, &n));
	CHECK_STR_CONTAINS(text, "H01");
	CHECK_STR_CONTAINS(text, "active");
	free(text);
	CHECK_INT_EQ(sh("cd %s && %s pki revoke --ca ca --site H01 >/dev/null 2>&1", t, exe), 0);
	CHECK_INT_EQ(sh("cd %s && %s pki list --ca ca 2>/dev/null | grep -q 'H01 .*revoked'", t, exe), 0);
	CHECK_INT_EQ(sh("%s pki frobnicate 2>/dev/null", exe), 2);
	CHECK_INT_EQ(sh("%s audit verify %s/missing.jsonl 2>/dev/null", exe, t), 1);
}
