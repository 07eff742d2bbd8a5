/*
 * test_tls.c: the mutual-TLS channel over real sockets on 127.0.0.1
 * (ephemeral ports, a server thread, every wait bounded). Checks the
 * guarantees of protocols/fp_tls.h, including the rejection matrix of
 * issue 8: no client certificate, foreign CA, expired, revoked, unlisted
 * site, listed site with the wrong key, TLS 1.2 peer, wrong server name:
 * each refused with a clear reason, logged and audited.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fp_audit.h"
#include "fp_common.h"
#include "fp_pki.h"
#include "fp_stream.h"
#include "fp_test.h"
#include "fp_tls.h"
#include "fp_wire.h"

struct fx {
	char ca[1024], ca_crt[1100], crl[1100], allow[1100], audit[1100], keys[1100];
	char foreign[1024];
	struct fp_tls_ctx *server;
	struct fp_tls_listener *listener;
	struct fp_audit *log;
	pthread_t thread;
	enum fp_status accept_status, hello_status;
	char accept_reason[1024], hello_reason[1024];
	char peer_id[80];
};

static char *pathf(char *buf, size_t n, const char *a, const char *b)
{
	snprintf(buf, n, "%s/%s", a, b);
	return buf;
}

/* Makes a key + CSR in fx->keys/<sub>, signs it as `id`, writes <sub>.crt. */
static void enrol(struct fx *f, const char *ca_dir, const char *sub, const char *id, enum fp_tls_role role,
                  const char *dns, long long not_before, long long not_after)
{
	char dir[1200], csr[1300], crt[1300];
	uint8_t pin[32];
	pathf(dir, sizeof(dir), f->keys, sub);
	CHECK_OK(fp_pki_csr(dir, id, pin));
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, id);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, id);
	struct fp_pki_sign_options o = {csr, id, role, dns, 0, not_before, not_after, crt};
	CHECK_OK(fp_pki_sign(ca_dir, &o));
}

static void file_copy(const char *from, const char *to)
{
	char *d = NULL;
	size_t n = 0;
	CHECK_OK(fp_file_read_all(from, 1 << 20, &d, &n));
	CHECK_OK(fp_file_commit(to, d, n, 0644));
	free(d);
}

static void *server_main(void *arg)
{
	struct fx *f = arg;
	struct fp_tls_conn *c = NULL;
	f->accept_status = fp_tls_accept(f->listener, 10000, &c);
	snprintf(f->accept_reason, sizeof(f->accept_reason), "%s", f->accept_status ? fp_error_msg() : "");
	if (f->accept_status == FP_OK) {
		snprintf(f->peer_id, sizeof(f->peer_id), "%s/%s", fp_tls_conn_peer(c)->id,
		         fp_tls_role_str(fp_tls_conn_peer(c)->role));
		Fedpath__Hello h = FEDPATH__HELLO__INIT;
		h.protocol_version = FP_PROTO_VERSION;
		h.site_id = "aggregator";
		h.role = "server";
		fp_msg_send(fp_tls_conn_io(c), FP_FRAME_HELLO, &h.base);
		/* Wait for the client's HELLO so close does not race its read. */
		struct fp_frame fr;
		ProtobufCMessage *m = NULL;
		fp_frame_init(&fr);
		f->hello_status = fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_HELLO, &m);
		if (f->hello_status == FP_OK) f->hello_status = fp_tls_conn_check_hello(c, (Fedpath__Hello *)m);
		snprintf(f->hello_reason, sizeof(f->hello_reason), "%s", f->hello_status ? fp_error_msg() : "");
		fp_msg_free(m);
		fp_frame_close(&fr);
	}
	fp_tls_conn_close(c);
	return NULL;
}

/* The whole study: CA, server, sites H01 (good), H02 (expired), H03
 * (revoked), H04 (signed, not listed), H05 (listed with another key), and a
 * foreign CA that also signed an "H01". Starts a server thread that accepts
 * one connection. */
static void setup_study(struct fx *f, int start_server)
{
	memset(f, 0, sizeof(*f));
	const char *t = fp_test_tmpdir();
	pathf(f->ca, sizeof(f->ca), t, "ca");
	pathf(f->foreign, sizeof(f->foreign), t, "foreign");
	pathf(f->keys, sizeof(f->keys), t, "keys");
	pathf(f->ca_crt, sizeof(f->ca_crt), f->ca, "ca.crt");
	pathf(f->crl, sizeof(f->crl), f->ca, "crl.pem");
	pathf(f->allow, sizeof(f->allow), f->ca, "allowlist.json");
	pathf(f->audit, sizeof(f->audit), t, "audit.jsonl");
	CHECK_OK(fp_pki_init(f->ca, "test-study", 30));
	CHECK_OK(fp_pki_init(f->foreign, "other-study", 30));
	long long now = (long long)time(NULL);
	enrol(f, f->ca, "agg", "aggregator", FP_TLS_ROLE_SERVER, "aggregator.test", 0, 0);
	enrol(f, f->ca, "h01", "H01", FP_TLS_ROLE_SITE, NULL, 0, 0);
	enrol(f, f->ca, "h02", "H02", FP_TLS_ROLE_SITE, NULL, now - 10 * 86400, now - 86400);
	enrol(f, f->ca, "h03", "H03", FP_TLS_ROLE_SITE, NULL, 0, 0);
	CHECK_OK(fp_pki_revoke(f->ca, "H03"));
	char backup[1200];
	pathf(backup, sizeof(backup), t, "allow.bak");
	file_copy(f->allow, backup);
	enrol(f, f->ca, "h04", "H04", FP_TLS_ROLE_SITE, NULL, 0, 0);
	file_copy(backup, f->allow); /* H04 holds a valid certificate but is not listed */
	enrol(f, f->ca, "h05", "H05", FP_TLS_ROLE_SITE, NULL, 0, 0);
	file_copy(f->allow, backup);
	enrol(f, f->ca, "h05b", "H05", FP_TLS_ROLE_SITE, NULL, 0, 0);
	file_copy(backup, f->allow); /* H05 listed with the h05 key; h05b holds another */
	enrol(f, f->foreign, "foreign", "H01", FP_TLS_ROLE_SITE, NULL, 0, 0);

	CHECK_OK(fp_audit_open(f->audit, &f->log));
	char crt[1300], key[1300];
	pathf(crt, sizeof(crt), f->keys, "agg/aggregator.crt");
	pathf(key, sizeof(key), f->keys, "agg/aggregator.key");
	struct fp_tls_config cfg = {1, f->ca_crt, crt, key, f->crl, f->allow, NULL, 5000, fp_audit_tls_reject, f->log};
	CHECK_OK(fp_tls_ctx_create(&cfg, &f->server));
	CHECK_OK(fp_tls_listen(f->server, "127.0.0.1", 0, &f->listener));
	CHECK(fp_tls_listener_port(f->listener) > 0);
	if (start_server) CHECK(pthread_create(&f->thread, NULL, server_main, f) == 0);
}

static void setup(struct fx *f) { setup_study(f, 1); }

static void teardown(struct fx *f)
{
	fp_tls_listener_destroy(f->listener);
	fp_tls_ctx_destroy(f->server);
	fp_audit_close(f->log);
}

/* Connects as keys/<sub>/<id> with fedpath's client; returns the status of
 * connect + one HELLO round trip, and the error text in why. */
static enum fp_status site_connect_as(struct fx *f, const char *sub, const char *id, const char *claim,
                                      const char *server_name, char *why, size_t n)
{
	char crt[1300], key[1300];
	snprintf(crt, sizeof(crt), "%s/%s/%s.crt", f->keys, sub, id);
	snprintf(key, sizeof(key), "%s/%s/%s.key", f->keys, sub, id);
	struct fp_tls_config cfg = {0, f->ca_crt, crt, key, f->crl, NULL, server_name, 5000, NULL, NULL};
	struct fp_tls_ctx *ctx = NULL;
	struct fp_tls_conn *c = NULL;
	ProtobufCMessage *m = NULL;
	struct fp_frame fr;
	fp_frame_init(&fr);
	/* An expired certificate is refused before it is ever sent: test the
	 * server with it anyway by skipping the client's own check is not
	 * possible, so the expired case uses the raw client below. */
	enum fp_status st = fp_tls_ctx_create(&cfg, &ctx);
	if (st == FP_OK) st = fp_tls_connect(ctx, "127.0.0.1", fp_tls_listener_port(f->listener), &c);
	if (st == FP_OK) st = fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_HELLO, &m);
	if (st == FP_OK) {
		Fedpath__Hello h = FEDPATH__HELLO__INIT;
		h.protocol_version = FP_PROTO_VERSION;
		h.site_id = (char *)claim;
		h.role = "site";
		st = fp_msg_send(fp_tls_conn_io(c), FP_FRAME_HELLO, &h.base);
	}
	snprintf(why, n, "%s", st ? fp_error_msg() : "");
	fp_msg_free(m);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	fp_tls_ctx_destroy(ctx);
	return st;
}

static enum fp_status site_connect(struct fx *f, const char *sub, const char *id, const char *server_name,
                                   char *why, size_t n)
{
	return site_connect_as(f, sub, id, id, server_name, why, n);
}

/* A plain OpenSSL client, for peers fedpath's own client would never be:
 * without a certificate, or capped at TLS 1.2. Returns 1 when the server
 * let it exchange application data, 0 when refused. */
static int raw_connect(struct fx *f, const char *crt, const char *key, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	CHECK(ctx);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	CHECK(SSL_CTX_load_verify_file(ctx, f->ca_crt) == 1);
	if (crt) {
		CHECK(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM) == 1);
		CHECK(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1);
	}
	BIO *b = BIO_new_connect("127.0.0.1");
	char port[16];
	snprintf(port, sizeof(port), "%d", fp_tls_listener_port(f->listener));
	BIO_set_conn_port(b, port);
	CHECK(BIO_do_connect(b) == 1);
	SSL *ssl = SSL_new(ctx);
	SSL_set_bio(ssl, b, b);
	int ok = SSL_connect(ssl) == 1;
	uint8_t buf[16];
	size_t got = 0;
	if (ok) ok = SSL_read_ex(ssl, buf, sizeof(buf), &got) == 1 && got > 0;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* The server refused, with `reason` in the refusal, and audited it once. */
static void check_refused(struct fx *f, const char *reason)
{
	CHECK(pthread_join(f->thread, NULL) == 0);
	CHECK_STATUS(f->accept_status, FP_ERR_AUTH);
	CHECK_STR_CONTAINS(f->accept_reason, reason);
	char head[FP_SHA256_HEX_SIZE];
	uint64_t n = 0;
	fp_audit_head(f->log, head, &n);
	CHECK_INT_EQ(n, 1);
	struct fp_audit_report r;
	CHECK_OK(fp_audit_verify(f->audit, head, &r));
	char *text = NULL;
	size_t len = 0;
	CHECK_OK(fp_file_read_all(f->audit, 1 << 20, &text, &len));
	CHECK_STR_CONTAINS(text, "\"event\":\"tls.reject\"");
	CHECK_STR_CONTAINS(text, reason);
	free(text);
	teardown(f);
}

FP_TEST(valid_site_is_accepted_with_identity_from_san)
{
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK_OK(site_connect(&f, "h01", "H01", "aggregator.test", why, sizeof(why)));
	CHECK(pthread_join(f.thread, NULL) == 0);
	CHECK_OK(f.accept_status);
	CHECK_STR_EQ(f.peer_id, "H01/site");
	CHECK_OK(f.hello_status);
	uint64_t n = 1;
	char head[FP_SHA256_HEX_SIZE];
	fp_audit_head(f.log, head, &n);
	CHECK_INT_EQ(n, 0);
	teardown(&f);
}

FP_TEST(reject_no_client_certificate)
{
	struct fx f;
	setup(&f);
	CHECK(!raw_connect(&f, NULL, NULL, TLS1_3_VERSION));
	check_refused(&f, "peer did not return a certificate");
}

FP_TEST(reject_foreign_ca)
{
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK(site_connect(&f, "foreign", "H01", "aggregator.test", why, sizeof(why)) != FP_OK);
	check_refused(&f, "unable to get local issuer certificate");
}

FP_TEST(reject_expired_certificate)
{
	struct fx f;
	char crt[1300], key[1300];
	setup(&f);
	/* fedpath's own client refuses to load an expired certificate at all. */
	char why[1024];
	CHECK_STATUS(site_connect(&f, "h02", "H02", "aggregator.test", why, sizeof(why)), FP_ERR_AUTH);
	CHECK_STR_CONTAINS(why, "expired");
	snprintf(crt, sizeof(crt), "%s/h02/H02.crt", f.keys);
	snprintf(key, sizeof(key), "%s/h02/H02.key", f.keys);
	CHECK(!raw_connect(&f, crt, key, TLS1_3_VERSION));
	check_refused(&f, "certificate has expired");
}

FP_TEST(reject_revoked_certificate)
{
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK(site_connect(&f, "h03", "H03", "aggregator.test", why, sizeof(why)) != FP_OK);
	check_refused(&f, "certificate revoked");
}

FP_TEST(reject_unlisted_site)
{
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK(site_connect(&f, "h04", "H04", "aggregator.test", why, sizeof(why)) != FP_OK);
	check_refused(&f, "'H04' is not on the allow-list");
}

FP_TEST(reject_listed_site_with_wrong_key)
{
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK(site_connect(&f, "h05b", "H05", "aggregator.test", why, sizeof(why)) != FP_OK);
	check_refused(&f, "not the key on the allow-list");
}

FP_TEST(reject_tls12_peer)
{
	struct fx f;
	char crt[1300], key[1300];
	setup(&f);
	snprintf(crt, sizeof(crt), "%s/h01/H01.crt", f.keys);
	snprintf(key, sizeof(key), "%s/h01/H01.key", f.keys);
	CHECK(!raw_connect(&f, crt, key, TLS1_2_VERSION));
	check_refused(&f, "unsupported protocol");
}

FP_TEST(reject_wrong_server_name)
{
	struct fx f;
	char why[1024];
	setup(&f);
	/* The site checks the name: a valid aggregator certificate for another
	 * name is refused by the site before any application byte. */
	CHECK_STATUS(site_connect(&f, "h01", "H01", "evil.test", why, sizeof(why)), FP_ERR_AUTH);
	CHECK_STR_CONTAINS(why, "hostname mismatch");
	CHECK(pthread_join(f.thread, NULL) == 0);
	CHECK(f.accept_status != FP_OK);
	teardown(&f);
}

FP_TEST(allowlist_reread_on_every_connection)
{
	/* Revoking on the allow-list alone (no CRL update) takes effect at the
	 * next connection, without restarting the server. */
	struct fx f;
	char why[1024];
	setup(&f);
	struct fp_tls_allowlist *al = NULL;
	CHECK_OK(fp_tls_allowlist_load(f.allow, 0, &al));
	struct fp_tls_allow_entry e = *fp_tls_allowlist_find(al, "H01");
	e.revoked = 1;
	CHECK_OK(fp_tls_allowlist_put(al, &e));
	CHECK_OK(fp_tls_allowlist_save(al, f.allow));
	fp_tls_allowlist_destroy(al);
	CHECK(site_connect(&f, "h01", "H01", "aggregator.test", why, sizeof(why)) != FP_OK);
	check_refused(&f, "'H01' is revoked on the allow-list");
}

struct sink_buf {
	uint8_t *data;
	size_t len;
};

static enum fp_status sink_copy(void *ctx, uint64_t off, const void *d, size_t n, const uint8_t digest[32])
{
	struct sink_buf *s = ctx;
	(void)digest;
	memcpy(s->data + off, d, n);
	s->len = off + n;
	return FP_OK;
}

struct stream_srv {
	struct fx *f;
	enum fp_status st;
	struct sink_buf got;
};

static void *stream_server(void *arg)
{
	struct stream_srv *s = arg;
	struct fp_tls_conn *c = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	struct fp_stream_rx *rx = NULL;
	fp_frame_init(&fr);
	s->st = fp_tls_accept(s->f->listener, 10000, &c);
	if (s->st == FP_OK) s->st = fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_UPDATE, &m);
	if (s->st == FP_OK) s->st = fp_stream_rx_create(((Fedpath__Update *)m)->delta, sink_copy, &s->got, &rx);
	if (s->st == FP_OK) s->st = fp_stream_rx_recv(rx, fp_tls_conn_io(c), &fr);
	fp_stream_rx_destroy(rx);
	fp_msg_free(m);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	return NULL;
}

FP_TEST(tensor_stream_over_tls)
{
	/* A 9 MiB update in 4 MiB chunks over the real channel. */
	struct fx f;
	setup_study(&f, 0);
	struct stream_srv s = {&f, FP_OK, {NULL, 0}};
	size_t n = (9u << 20) + 12;
	uint8_t *data = malloc(n);
	s.got.data = calloc(1, n);
	CHECK(data && s.got.data);
	for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, stream_server, &s) == 0);
	char crt[1300], key[1300];
	snprintf(crt, sizeof(crt), "%s/h01/H01.crt", f.keys);
	snprintf(key, sizeof(key), "%s/h01/H01.key", f.keys);
	struct fp_tls_config cfg = {0, f.ca_crt, crt, key, f.crl, NULL, "aggregator.test", 5000, NULL, NULL};
	struct fp_tls_ctx *ctx = NULL;
	struct fp_tls_conn *c = NULL;
	struct fp_stream_tx *tx = NULL;
	struct fp_frame fr;
	fp_frame_init(&fr);
	CHECK_OK(fp_tls_ctx_create(&cfg, &ctx));
	CHECK_OK(fp_tls_connect(ctx, "127.0.0.1", fp_tls_listener_port(f.listener), &c));
	CHECK_OK(fp_stream_tx_create(7, data, n, FP_PROTO_MAX_CHUNK_BYTES, &tx));
	Fedpath__TensorHeader th_ = FEDPATH__TENSOR_HEADER__INIT;
	fp_stream_tx_header(tx, &th_);
	Fedpath__Update u = FEDPATH__UPDATE__INIT;
	uint8_t base[32] = {1};
	u.round = 1;
	u.base_model_hash.data = base;
	u.base_model_hash.len = 32;
	u.sample_count = 10;
	u.delta = &th_;
	CHECK_OK(fp_msg_send(fp_tls_conn_io(c), FP_FRAME_UPDATE, &u.base));
	CHECK_OK(fp_stream_tx_send(tx, fp_tls_conn_io(c), &fr, 4));
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(s.st);
	CHECK_INT_EQ(s.got.len, n);
	CHECK(memcmp(s.got.data, data, n) == 0);
	fp_stream_tx_destroy(tx);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	fp_tls_ctx_destroy(ctx);
	free(data);
	free(s.got.data);
	teardown(&f);
}

FP_TEST(no_session_tickets_so_no_resumption)
{
	/* Every connection is a full handshake with a fresh allow-list check:
	 * the server issues no TLS 1.3 session tickets, so a client has nothing
	 * to resume with. */
	struct fx f;
	char crt[1300], key[1300];
	setup(&f);
	snprintf(crt, sizeof(crt), "%s/h01/H01.crt", f.keys);
	snprintf(key, sizeof(key), "%s/h01/H01.key", f.keys);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	CHECK(ctx);
	CHECK(SSL_CTX_load_verify_file(ctx, f.ca_crt) == 1);
	CHECK(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM) == 1);
	CHECK(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1);
	BIO *b = BIO_new_connect("127.0.0.1");
	char port[16];
	snprintf(port, sizeof(port), "%d", fp_tls_listener_port(f.listener));
	BIO_set_conn_port(b, port);
	CHECK(BIO_do_connect(b) == 1);
	SSL *ssl = SSL_new(ctx);
	SSL_set_bio(ssl, b, b);
	CHECK(SSL_connect(ssl) == 1);
	CHECK(SSL_version(ssl) == TLS1_3_VERSION);
	uint8_t buf[FP_FRAME_WIRE_HEADER];
	size_t got = 0;
	/* Reading application data processes any ticket sent before it. */
	CHECK(SSL_read_ex(ssl, buf, sizeof(buf), &got) == 1 && got > 0);
	CHECK(!SSL_SESSION_is_resumable(SSL_get0_session(ssl)));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	CHECK(pthread_join(f.thread, NULL) == 0);
	CHECK_OK(f.accept_status);
	teardown(&f);
}

FP_TEST(hello_claiming_another_identity_is_refused)
{
	/* Site H01's session claiming to be H05: the certificate wins. */
	struct fx f;
	char why[1024];
	setup(&f);
	CHECK_OK(site_connect_as(&f, "h01", "H01", "H05", "aggregator.test", why, sizeof(why)));
	CHECK(pthread_join(f.thread, NULL) == 0);
	CHECK_OK(f.accept_status);
	CHECK_STATUS(f.hello_status, FP_ERR_AUTH);
	CHECK_STR_CONTAINS(f.hello_reason, "certificate of 'H01' but HELLO claims to be 'H05'");
	uint64_t n = 0;
	char head[FP_SHA256_HEX_SIZE];
	fp_audit_head(f.log, head, &n);
	CHECK_INT_EQ(n, 1);
	teardown(&f);
}
