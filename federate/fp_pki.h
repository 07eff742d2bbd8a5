/*
 * fp_pki.h: the study's public-key infrastructure (fedpath pki ...).
 *
 * Stage: federate/, run once per study and once per site enrolment. Keys are
 * EC P-256 (TLS 1.3 signs with ecdsa_secp256r1_sha256); certificates are
 * X.509 v3 signed with SHA-256.
 *
 * Coordinating centre, CA folder (fp_pki_init):
 *   ca.key          the CA key, mode 0600, never leaves this folder
 *   ca.crt          the study CA certificate: copied to every site
 *   crl.pem         the revocation list, re-signed on every revoke
 *   allowlist.json  site id -> role -> SHA-256 of the SubjectPublicKeyInfo
 *                   (format in protocols/identity.c), read by the aggregator
 *   issued/<id>.crt every certificate signed
 * Site (fp_pki_csr): <dir>/<id>.key (0600) and <dir>/<id>.csr. The key never
 * leaves the site; only the CSR travels, and the printed key hash lets both
 * sides confirm it out of band.
 * A signed certificate carries (protocols/fp_tls.h): subject CN = id,
 * OU = role, O = the study; SAN URI "fedpath:<id>" (+ DNS name for the
 * aggregator's "server" certificate); keyUsage digitalSignature;
 * extendedKeyUsage clientAuth (and serverAuth for role server).
 * Testable statements (tests/unit/test_pki.c):
 *  - key files are written with mode 0600 and never overwritten (FP_ERR_EXISTS);
 *  - sign refuses a CSR whose signature does not verify, whose CN is not the
 *    given id, or whose key is not P-256; the allow-list entry's pin equals the
 *    SHA-256 of the certificate's SubjectPublicKeyInfo;
 *  - revoke lists the serial in a freshly signed CRL and marks the allow-list
 *    entry revoked; earlier revocations stay in the CRL.
 */
#ifndef FP_PKI_H
#define FP_PKI_H

#include <stdint.h>

#include "fp_status.h"
#include "fp_tls.h"

#define FP_PKI_DEFAULT_CA_DAYS 1825
#define FP_PKI_DEFAULT_DAYS 365
#define FP_PKI_WARN_DAYS 30

/* Creates dir (0700) with ca.key, ca.crt, an empty crl.pem and allowlist.json.
 * FP_ERR_EXISTS when dir already holds a CA. */
enum fp_status fp_pki_init(const char *dir, const char *study, long days);

/* Writes <dir>/<id>.key (0600) and <dir>/<id>.csr; *spki gets the key pin. */
enum fp_status fp_pki_csr(const char *dir, const char *id, uint8_t spki_sha256[32]);

struct fp_pki_sign_options {
	const char *csr_path;
	const char *id;           /* must equal the CSR's CN */
	enum fp_tls_role role;
	const char *dns_name;     /* role server: the name sites dial; else NULL */
	long days;                /* validity from now; 0: FP_PKI_DEFAULT_DAYS */
	long long not_before;     /* unix seconds; 0: now - 5 minutes (clock skew) */
	long long not_after;      /* unix seconds; 0: from days */
	const char *out_path;     /* also write the certificate here; may be NULL */
};
enum fp_status fp_pki_sign(const char *ca_dir, const struct fp_pki_sign_options *o);

/* Revokes the certificate issued to id (CRL + allow-list). */
enum fp_status fp_pki_revoke(const char *ca_dir, const char *id);

/* Days until a certificate (PEM file) or CRL's next update expires; negative
 * when already past. */
enum fp_status fp_pki_cert_days_left(const char *cert_path, long *days);
enum fp_status fp_pki_crl_days_left(const char *crl_path, long *days);

#endif
