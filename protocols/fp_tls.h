/*
 * fp_tls.h: the mutually authenticated TLS channel, peer identities and the
 * allow-list.
 *
 * Stage: protocols/. The aggregator listens, sites dial out; both ends hold a
 * certificate of the study CA (federate/fp_pki.h makes them). An identity is:
 *   - the site id, from the certificate's one URI SAN "fedpath:<id>";
 *   - the role, from the subject's OU: site, statistician, admin or server;
 *   - the SHA-256 of the DER SubjectPublicKeyInfo (the key pin).
 * The allow-list (JSON, written by `fedpath pki sign`) maps id -> role, pin,
 * serial, expiry, status.
 *
 * Guarantees (tests/unit/test_tls.c checks each, over 127.0.0.1):
 *  - TLS 1.3 only (minimum and maximum), no session tickets or cache: every
 *    connection is a full handshake and a fresh identity check;
 *  - the server requires a client certificate chaining to the study CA only
 *    (never the system store), valid now, not revoked by the CRL (when a CRL
 *    file is configured, loaded anew for every connection), and an allow-list
 *    entry (file re-read for every connection) that is active, has the same
 *    role and the same key pin; anything else fails the handshake;
 *  - the client checks the server certificate against the study CA, the
 *    expected server name (DNS SAN, no wildcards) and the role "server";
 *  - every refusal returns FP_ERR_AUTH with a one-line reason naming the peer
 *    address and the cause, logs it once at WARN, and calls on_reject (the
 *    audit hook) with the same reason.
 * Processes using this module ignore SIGPIPE (set by fp_tls_ctx_create): a
 * closed peer is an FP_ERR_IO, not a signal.
 * Ownership: ctx, listener and conn are opaque handles (create/destroy);
 * a conn borrows its ctx, which must outlive it.
 */
#ifndef FP_TLS_H
#define FP_TLS_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "fp_wire.h"

enum fp_tls_role { FP_TLS_ROLE_SITE = 0, FP_TLS_ROLE_STATISTICIAN, FP_TLS_ROLE_ADMIN, FP_TLS_ROLE_SERVER };
const char *fp_tls_role_str(enum fp_tls_role r);
enum fp_status fp_tls_role_parse(const char *s, enum fp_tls_role *out);

#define FP_TLS_URI_PREFIX "fedpath:"

struct fp_tls_identity {
	char id[FP_PROTO_MAX_ID_LEN + 1];
	enum fp_tls_role role;
	uint8_t spki_sha256[32];
};

/* SHA-256 of the DER SubjectPublicKeyInfo of a key or a certificate. */
enum fp_status fp_tls_spki_sha256(EVP_PKEY *key, uint8_t out[32]);
/* Identity of a certificate: exactly one URI SAN "fedpath:<id>", OU a role. */
enum fp_status fp_tls_cert_identity(X509 *cert, struct fp_tls_identity *out);

/* ---- the allow-list ---- */
struct fp_tls_allow_entry {
	char id[FP_PROTO_MAX_ID_LEN + 1];
	enum fp_tls_role role;
	uint8_t spki_sha256[32];
	char serial[80];   /* hex */
	long long not_after; /* unix seconds */
	int revoked;
};
struct fp_tls_allowlist; /* opaque */
/* An absent file is an empty list only when missing_ok. */
enum fp_status fp_tls_allowlist_load(const char *path, int missing_ok, struct fp_tls_allowlist **out);
enum fp_status fp_tls_allowlist_save(const struct fp_tls_allowlist *al, const char *path);
void fp_tls_allowlist_destroy(struct fp_tls_allowlist *al);
size_t fp_tls_allowlist_count(const struct fp_tls_allowlist *al);
/* Borrowed; NULL when out of range / absent. */
const struct fp_tls_allow_entry *fp_tls_allowlist_get(const struct fp_tls_allowlist *al, size_t i);
const struct fp_tls_allow_entry *fp_tls_allowlist_find(const struct fp_tls_allowlist *al, const char *id);
/* Adds or replaces the entry with the same id. */
enum fp_status fp_tls_allowlist_put(struct fp_tls_allowlist *al, const struct fp_tls_allow_entry *e);
/* FP_OK when `who` is listed, active, with the same role and key pin;
 * FP_ERR_AUTH naming the mismatch otherwise. */
enum fp_status fp_tls_allowlist_check(const struct fp_tls_allowlist *al, const struct fp_tls_identity *who);

/* ---- the channel ---- */
typedef void (*fp_tls_reject_fn)(void *arg, const char *peer, const char *reason);

struct fp_tls_config {
	int is_server;
	const char *ca_file;        /* study CA certificate (PEM) */
	const char *cert_file;      /* own certificate (PEM) */
	const char *key_file;       /* own private key (PEM, 0600) */
	const char *crl_file;       /* CRL of the study CA (PEM); NULL: no CRL check */
	const char *allowlist_file; /* server: required */
	const char *server_name;    /* client: the aggregator's DNS name to check */
	int io_timeout_ms;          /* per read/write and handshake; 0: 30000 */
	fp_tls_reject_fn on_reject; /* may be NULL */
	void *on_reject_arg;
};

struct fp_tls_ctx;
struct fp_tls_listener;
struct fp_tls_conn;

/* Loads and checks the own certificate and key; warns when the certificate
 * expires within 30 days, refuses an expired one. */
enum fp_status fp_tls_ctx_create(const struct fp_tls_config *cfg, struct fp_tls_ctx **out);
void fp_tls_ctx_destroy(struct fp_tls_ctx *ctx);

/* Listens on host:port (port 0: an ephemeral port, see fp_tls_listener_port). */
enum fp_status fp_tls_listen(struct fp_tls_ctx *ctx, const char *host, int port,
                             struct fp_tls_listener **out);
int fp_tls_listener_port(const struct fp_tls_listener *l);
void fp_tls_listener_destroy(struct fp_tls_listener *l);
/* Waits up to timeout_ms for a connection, then runs the handshake and the
 * identity checks. FP_ERR_TIMEOUT when nobody came, FP_ERR_AUTH on refusal
 * (the listener stays usable: accept again). */
enum fp_status fp_tls_accept(struct fp_tls_listener *l, int timeout_ms, struct fp_tls_conn **out);
/* The two halves of fp_tls_accept, for servers that must not let one slow
 * peer's handshake (bounded by io_timeout_ms) hold up the accept loop: take
 * the socket in the loop, run the handshake in a worker. After a failed
 * handshake the caller closes the connection. */
enum fp_status fp_tls_accept_socket(struct fp_tls_listener *l, int timeout_ms, struct fp_tls_conn **out);
enum fp_status fp_tls_server_handshake(struct fp_tls_conn *c);

enum fp_status fp_tls_connect(struct fp_tls_ctx *ctx, const char *host, int port,
                              struct fp_tls_conn **out);
/* The peer's verified identity (borrowed; valid while conn lives). */
const struct fp_tls_identity *fp_tls_conn_peer(const struct fp_tls_conn *c);
/* The byte transport for frames (borrowed; valid while conn lives). */
const struct fp_io *fp_tls_conn_io(struct fp_tls_conn *c);
/* FP_OK when a HELLO's site_id and role are the certificate's; FP_ERR_AUTH
 * (logged, audited) otherwise: the certificate is the only identity. */
enum fp_status fp_tls_conn_check_hello(struct fp_tls_conn *c, const Fedpath__Hello *h);
/* "127.0.0.1:40312" */
const char *fp_tls_conn_addr(const struct fp_tls_conn *c);
/* Sends close_notify (best effort) and frees. Accepts NULL. */
void fp_tls_conn_close(struct fp_tls_conn *c);

#endif
