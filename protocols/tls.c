/*
 * tls.c: the mutual-TLS 1.3 channel (fp_tls.h). OpenSSL does the protocol;
 * this file pins the settings (TLS 1.3 only, no resumption, study CA only,
 * CRL and allow-list re-read for each connection) and turns every refusal
 * into one clear reason, logged once and handed to the audit hook.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fp_log.h"
#include "fp_tls.h"

#define EXPIRY_WARN_DAYS 30

struct fp_tls_ctx {
	SSL_CTX *ssl;
	int is_server;
	char *ca_file, *crl_file, *allowlist_file, *server_name;
	int timeout_ms;
	fp_tls_reject_fn on_reject;
	void *on_reject_arg;
};

struct fp_tls_listener {
	struct fp_tls_ctx *ctx;
	int fd, port;
};

struct fp_tls_conn {
	struct fp_tls_ctx *ctx;
	SSL *ssl;
	int fd;
	struct fp_io io;
	struct fp_tls_identity peer;
	char addr[64];
	/* Per-handshake state for the verify callback. */
	struct fp_tls_allowlist *allow;
	char reason[512];
};

static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;
static void conn_index_init(void) { conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

/* The most specific text OpenSSL has about the failure, or `fallback`. */
static void ssl_reason(char *buf, size_t n, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, n, "%s", r ? r : fallback);
	ERR_clear_error();
}

static char *dup_or_null(const char *s, enum fp_status *st)
{
	if (!s) return NULL;
	char *d = strdup(s);
	if (!d) *st = FP_FAIL(FP_ERR_NOMEM, "TLS: cannot copy a path");
	return d;
}

void fp_tls_ctx_destroy(struct fp_tls_ctx *ctx)
{
	if (!ctx) return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->ca_file);
	free(ctx->crl_file);
	free(ctx->allowlist_file);
	free(ctx->server_name);
	free(ctx);
}

/* Refuses an expired own certificate; warns when it ends within 30 days. */
static enum fp_status check_own_expiry(SSL_CTX *ssl, const char *path)
{
	X509 *cert = SSL_CTX_get0_certificate(ssl);
	int days = 0, secs = 0;
	if (!cert || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
		return FP_FAIL(FP_ERR_FORMAT, "%s: cannot read the certificate's expiry", path);
	if (days < 0 || (days == 0 && secs <= 0))
		return FP_FAIL(FP_ERR_AUTH, "%s: certificate expired %d days ago; ask the coordinating centre for a new one (fedpath pki csr / sign)",
		               path, -days);
	if (days < EXPIRY_WARN_DAYS)
		FP_WARN("%s: certificate expires in %d days; renew it (fedpath pki csr, then pki sign)", path, days);
	return FP_OK;
}

static int verify_cb(int preverify_ok, X509_STORE_CTX *store);

enum fp_status fp_tls_ctx_create(const struct fp_tls_config *cfg, struct fp_tls_ctx **out)
{
	enum fp_status st = FP_OK;
	struct fp_tls_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) return FP_FAIL(FP_ERR_NOMEM, "TLS: cannot allocate a context");
	signal(SIGPIPE, SIG_IGN);
	if (!cfg->ca_file || !cfg->cert_file || !cfg->key_file) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "TLS: ca_file, cert_file and key_file are all required");
		goto fail;
	}
	if (cfg->is_server && !cfg->allowlist_file) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "TLS server: allowlist_file is required");
		goto fail;
	}
	if (!cfg->is_server && !cfg->server_name) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "TLS client: server_name is required (the aggregator's DNS name)");
		goto fail;
	}
	ctx->is_server = cfg->is_server;
	ctx->timeout_ms = cfg->io_timeout_ms > 0 ? cfg->io_timeout_ms : 30000;
	ctx->on_reject = cfg->on_reject;
	ctx->on_reject_arg = cfg->on_reject_arg;
	ctx->ca_file = dup_or_null(cfg->ca_file, &st);
	ctx->crl_file = dup_or_null(cfg->crl_file, &st);
	ctx->allowlist_file = dup_or_null(cfg->allowlist_file, &st);
	ctx->server_name = dup_or_null(cfg->server_name, &st);
	if (st != FP_OK) goto fail;
	pthread_once(&conn_index_once, conn_index_init);
	if (conn_index < 0) {
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: no SSL ex_data index");
		goto fail;
	}

	ERR_clear_error();
	ctx->ssl = SSL_CTX_new(cfg->is_server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl) {
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: SSL_CTX_new failed");
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION)) {
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: cannot restrict the protocol to TLS 1.3");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: cannot load the certificate", cfg->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: cannot load the private key", cfg->key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
		st = FP_FAIL(FP_ERR_AUTH, "%s does not belong to the certificate %s", cfg->key_file, cfg->cert_file);
		goto fail;
	}
	FP_CHECK(st, check_own_expiry(ctx->ssl, cfg->cert_file));
	/* Never the default verify paths: only the study CA vouches for peers. */
	if (SSL_CTX_load_verify_file(ctx->ssl, cfg->ca_file) != 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: cannot load the study CA certificate", cfg->ca_file);
		goto fail;
	}
	SSL_CTX_set_verify(ctx->ssl,
	                   SSL_VERIFY_PEER | (cfg->is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), verify_cb);
	SSL_CTX_set_verify_depth(ctx->ssl, 2);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
	if (cfg->is_server) SSL_CTX_set_num_tickets(ctx->ssl, 0);
	/* Read as much as the socket holds into one 256 KiB buffer instead of two
	 * reads per 16 KiB record (header, body): a 100 MB model is 6,400
	 * records. Safe because connections are read with blocking calls only,
	 * never after a poll() on the socket that buffered bytes would fool. */
	SSL_CTX_set_read_ahead(ctx->ssl, 1);
	SSL_CTX_set_default_read_buffer_len(ctx->ssl, 256 * 1024);
	ERR_clear_error();
	*out = ctx;
	return FP_OK;
fail:
	ERR_clear_error();
	fp_tls_ctx_destroy(ctx);
	return st;
}

/* A fresh verify store per connection, so a new CRL applies at once. */
static enum fp_status conn_store(struct fp_tls_conn *c)
{
	struct fp_tls_ctx *ctx = c->ctx;
	enum fp_status st = FP_OK;
	X509_STORE *store = X509_STORE_new();
	if (!store) return FP_FAIL(FP_ERR_NOMEM, "TLS: cannot allocate a certificate store");
	if (X509_STORE_load_file(store, ctx->ca_file) != 1) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: cannot load the study CA certificate", ctx->ca_file);
		goto fail;
	}
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	if (ctx->crl_file) {
		if (X509_STORE_load_file(store, ctx->crl_file) != 1) {
			st = FP_FAIL(FP_ERR_FORMAT, "%s: cannot load the revocation list", ctx->crl_file);
			goto fail;
		}
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	}
	X509_STORE_set_flags(store, flags);
	if (SSL_set1_verify_cert_store(c->ssl, store) != 1) {
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: cannot attach the certificate store");
		goto fail;
	}
fail:
	X509_STORE_free(store);
	ERR_clear_error();
	return st;
}

/* Runs for each certificate of the peer's chain; at depth 0, after
 * OpenSSL's own checks passed, adds fedpath's identity checks so that a
 * refusal fails the handshake itself. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct fp_tls_conn *c = ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
	if (!c) return 0;
	int depth = X509_STORE_CTX_get_error_depth(store);
	if (!preverify_ok) {
		if (!c->reason[0]) {
			int err = X509_STORE_CTX_get_error(store);
			snprintf(c->reason, sizeof(c->reason), "%s certificate (depth %d): %s",
			         c->ctx->is_server ? "client" : "server", depth, X509_verify_cert_error_string(err));
		}
		return 0;
	}
	if (depth != 0) return 1;
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	struct fp_tls_identity who;
	enum fp_status st = fp_tls_cert_identity(cert, &who);
	if (st == FP_OK && c->ctx->is_server) st = fp_tls_allowlist_check(c->allow, &who);
	if (st == FP_OK && !c->ctx->is_server && who.role != FP_TLS_ROLE_SERVER)
		st = FP_FAIL(FP_ERR_AUTH, "server certificate of '%s' has role %s, not server", who.id,
		             fp_tls_role_str(who.role));
	if (st != FP_OK) {
		snprintf(c->reason, sizeof(c->reason), "%s", fp_error_msg());
		X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	c->peer = who;
	return 1;
}

/* Timeouts, and no Nagle: every message is one request the peer answers
 * (ACK, STATUS, the next TASK), and frames are already written whole, so
 * holding a short last segment back until the previous one is acknowledged
 * only adds the peer's delayed-ACK time to each exchange. */
static enum fp_status set_timeouts(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return FP_FAIL(FP_ERR_IO, "setsockopt(SO_RCVTIMEO/SO_SNDTIMEO): %s", strerror(errno));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 && errno != EOPNOTSUPP && errno != ENOPROTOOPT)
		return FP_FAIL(FP_ERR_IO, "setsockopt(TCP_NODELAY): %s", strerror(errno));
	return FP_OK;
}

static enum fp_status ssl_io_error(struct fp_tls_conn *c, int ret, const char *op)
{
	int e = SSL_get_error(c->ssl, ret);
	int saved = errno;
	char why[256];
	if (e == SSL_ERROR_ZERO_RETURN)
		return FP_FAIL(FP_ERR_IO, "TLS %s %s: connection closed by the peer", op, c->addr);
	if (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))
		return FP_FAIL(FP_ERR_TIMEOUT, "TLS %s %s: no progress in %d ms", op, c->addr, c->ctx->timeout_ms);
	if (e == SSL_ERROR_SYSCALL)
		return FP_FAIL(FP_ERR_IO, "TLS %s %s: %s", op, c->addr, saved ? strerror(saved) : "connection reset");
	ssl_reason(why, sizeof(why), "protocol error");
	return FP_FAIL(e == SSL_ERROR_SSL ? FP_ERR_PROTOCOL : FP_ERR_IO, "TLS %s %s: %s", op, c->addr, why);
}

#define TLS_WRITE_BUFFER (256 * 1024)

static enum fp_status conn_read(void *arg, void *buf, size_t len)
{
	struct fp_tls_conn *c = arg;
	uint8_t *p = buf;
	while (len) {
		size_t n = 0;
		ERR_clear_error();
		int r = SSL_read_ex(c->ssl, p, len, &n);
		if (r != 1) return ssl_io_error(c, r, "read from");
		p += n;
		len -= n;
	}
	return FP_OK;
}

static enum fp_status conn_write(void *arg, const void *buf, size_t len)
{
	struct fp_tls_conn *c = arg;
	const uint8_t *p = buf;
	while (len) {
		size_t n = 0;
		ERR_clear_error();
		int r = SSL_write_ex(c->ssl, p, len, &n);
		if (r != 1) return ssl_io_error(c, r, "write to");
		p += n;
		len -= n;
	}
	/* the records still in the write buffer (conn_new) go out now */
	ERR_clear_error();
	if (BIO_flush(SSL_get_wbio(c->ssl)) != 1) return ssl_io_error(c, -1, "write to");
	return FP_OK;
}

static enum fp_status conn_new(struct fp_tls_ctx *ctx, int fd, struct fp_tls_conn **out)
{
	struct fp_tls_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return FP_FAIL(FP_ERR_NOMEM, "TLS: cannot allocate a connection");
	}
	c->ctx = ctx;
	c->fd = fd;
	c->io.read = conn_read;
	c->io.write = conn_write;
	c->io.ctx = c;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
	*out = c;
	enum fp_status st;
	FP_CHECK(st, set_timeouts(fd, ctx->timeout_ms));
	c->ssl = SSL_new(ctx->ssl);
	/* Records are at most 16 KiB: written one by one, a 4 MiB chunk would
	 * take 256 send() calls and as many loopback or NIC segments. A 256 KiB
	 * write buffer between TLS and the socket sends them 16 at a time;
	 * conn_write flushes it at the end of every message. Reads already come
	 * in 256 KiB (read-ahead, fp_tls_ctx_create). */
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE), *wbuf = BIO_new(BIO_f_buffer());
	if (!c->ssl || !sock || !wbuf || BIO_set_write_buffer_size(wbuf, TLS_WRITE_BUFFER) != 1 || BIO_up_ref(sock) != 1) {
		BIO_free(sock);
		BIO_free(wbuf);
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: cannot set up a connection");
		goto fail;
	}
	BIO_push(wbuf, sock);
	SSL_set_bio(c->ssl, sock, wbuf); /* owns both: sock twice (read side, and under wbuf) */
	if (SSL_set_ex_data(c->ssl, conn_index, c) != 1) {
		st = FP_FAIL(FP_ERR_BACKEND, "TLS: cannot set up a connection");
		goto fail;
	}
	FP_CHECK(st, conn_store(c));
	return FP_OK;
fail:
	return st;
}

void fp_tls_conn_close(struct fp_tls_conn *c)
{
	if (!c) return;
	if (c->ssl) {
		ERR_clear_error();
		if (SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	if (c->fd >= 0) close(c->fd);
	fp_tls_allowlist_destroy(c->allow);
	free(c);
}

const struct fp_tls_identity *fp_tls_conn_peer(const struct fp_tls_conn *c) { return &c->peer; }
const struct fp_io *fp_tls_conn_io(struct fp_tls_conn *c) { return &c->io; }
const char *fp_tls_conn_addr(const struct fp_tls_conn *c) { return c->addr; }

/* One refusal: logged once, audited, returned as FP_ERR_AUTH. */
static enum fp_status refuse(struct fp_tls_conn *c, const char *what)
{
	char reason[700];
	snprintf(reason, sizeof(reason), "%s", c->reason[0] ? c->reason : what);
	FP_WARN("TLS: refused %s %s: %s", c->ctx->is_server ? "connection from" : "server", c->addr, reason);
	if (c->ctx->on_reject) c->ctx->on_reject(c->ctx->on_reject_arg, c->addr, reason);
	return FP_FAIL(FP_ERR_AUTH, "TLS %s %s refused: %s", c->ctx->is_server ? "peer" : "server", c->addr, reason);
}

static int ssl_handshake_failed(struct fp_tls_conn *c, int r, char *why, size_t n)
{
	int e = SSL_get_error(c->ssl, r);
	int saved = errno;
	if (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))
		snprintf(why, n, "TLS handshake: no progress in %d ms", c->ctx->timeout_ms);
	else if (e == SSL_ERROR_SYSCALL)
		snprintf(why, n, "TLS handshake: connection closed by the peer");
	else {
		char r2[256];
		ssl_reason(r2, sizeof(r2), "protocol error");
		/* An alert means the peer refused us; say so rather than echo it. */
		int alert = strstr(r2, " alert ") != NULL;
		snprintf(why, n, "TLS handshake: %s%s", alert ? "the peer aborted with " : "", r2);
	}
	ERR_clear_error();
	return 1;
}

enum fp_status fp_tls_conn_check_hello(struct fp_tls_conn *c, const Fedpath__Hello *h)
{
	char why[300];
	if (!h->site_id || strcmp(h->site_id, c->peer.id) != 0) {
		snprintf(why, sizeof(why), "certificate of '%s' but HELLO claims to be '%.64s'", c->peer.id,
		         h->site_id ? h->site_id : "");
		return refuse(c, why);
	}
	if (h->role && h->role[0] && strcmp(h->role, fp_tls_role_str(c->peer.role)) != 0) {
		snprintf(why, sizeof(why), "certificate of '%s' has role %s but HELLO claims role '%.32s'", c->peer.id,
		         fp_tls_role_str(c->peer.role), h->role);
		return refuse(c, why);
	}
	return FP_OK;
}

enum fp_status fp_tls_listen(struct fp_tls_ctx *ctx, const char *host, int port, struct fp_tls_listener **out)
{
	if (!ctx->is_server) return FP_FAIL(FP_ERR_INVALID_ARG, "TLS: a client context cannot listen");
	struct fp_tls_listener *l = calloc(1, sizeof(*l));
	if (!l) return FP_FAIL(FP_ERR_NOMEM, "TLS: cannot allocate a listener");
	enum fp_status st;
	l->ctx = ctx;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	int one = 1;
	socklen_t sl = sizeof(sa);
	if (l->fd < 0) {
		st = FP_FAIL(FP_ERR_IO, "socket: %s", strerror(errno));
		goto fail;
	}
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "listen address '%s' is not an IPv4 address", host);
		goto fail;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l->fd, 64) != 0 ||
	    getsockname(l->fd, (struct sockaddr *)&sa, &sl) != 0) {
		st = FP_FAIL(FP_ERR_IO, "listen on %s:%d: %s", host, port, strerror(errno));
		goto fail;
	}
	l->port = ntohs(sa.sin_port);
	*out = l;
	return FP_OK;
fail:
	fp_tls_listener_destroy(l);
	return st;
}

int fp_tls_listener_port(const struct fp_tls_listener *l) { return l->port; }

void fp_tls_listener_destroy(struct fp_tls_listener *l)
{
	if (!l) return;
	if (l->fd >= 0) close(l->fd);
	free(l);
}

enum fp_status fp_tls_accept_socket(struct fp_tls_listener *l, int timeout_ms, struct fp_tls_conn **out)
{
	struct pollfd p = {l->fd, POLLIN, 0};
	int r = poll(&p, 1, timeout_ms);
	if (r == 0) return FP_FAIL(FP_ERR_TIMEOUT, "TLS: no connection within %d ms", timeout_ms);
	if (r < 0) return FP_FAIL(errno == EINTR ? FP_ERR_CANCELLED : FP_ERR_IO, "poll: %s", strerror(errno));
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "accept: %s", strerror(errno));
	struct fp_tls_conn *c = NULL;
	enum fp_status st = conn_new(l->ctx, fd, &c);
	if (st != FP_OK) {
		fp_tls_conn_close(c);
		return st;
	}
	*out = c;
	return FP_OK;
}

enum fp_status fp_tls_server_handshake(struct fp_tls_conn *c)
{
	if (!c->ctx->is_server) return FP_FAIL(FP_ERR_INVALID_ARG, "TLS: not a server connection");
	/* Re-read for every connection: removing a line takes effect at once. */
	fp_tls_allowlist_destroy(c->allow);
	c->allow = NULL;
	FP_TRY(fp_tls_allowlist_load(c->ctx->allowlist_file, 0, &c->allow));
	ERR_clear_error();
	int r = SSL_accept(c->ssl);
	if (r != 1) {
		char why[300];
		ssl_handshake_failed(c, r, why, sizeof(why));
		return refuse(c, why);
	}
	/* Belt and braces: a certificate being present says nothing about its
	 * verification, so both are checked. */
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	if (!peer || SSL_get_verify_result(c->ssl) != X509_V_OK || !c->peer.id[0])
		return refuse(c, "client certificate missing or not verified");
	FP_INFO("TLS: accepted %s %s from %s", fp_tls_role_str(c->peer.role), c->peer.id, c->addr);
	return FP_OK;
}

enum fp_status fp_tls_accept(struct fp_tls_listener *l, int timeout_ms, struct fp_tls_conn **out)
{
	struct fp_tls_conn *c = NULL;
	FP_TRY(fp_tls_accept_socket(l, timeout_ms, &c));
	enum fp_status st = fp_tls_server_handshake(c);
	if (st != FP_OK) {
		fp_tls_conn_close(c);
		return st;
	}
	*out = c;
	return FP_OK;
}

enum fp_status fp_tls_connect(struct fp_tls_ctx *ctx, const char *host, int port, struct fp_tls_conn **out)
{
	if (ctx->is_server) return FP_FAIL(FP_ERR_INVALID_ARG, "TLS: a server context cannot connect");
	struct addrinfo hints, *res = NULL;
	char service[16];
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%d", port);
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0) return FP_FAIL(FP_ERR_IO, "cannot resolve %s: %s", host, gai_strerror(gai));
	int fd = -1;
	enum fp_status st = FP_OK;
	struct fp_tls_conn *c = NULL;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) continue;
		set_timeouts(fd, ctx->timeout_ms);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "connect to %s:%d: %s", host, port, strerror(errno));
	FP_CHECK(st, conn_new(ctx, fd, &c));
	/* SAN only: OpenSSL 3.0 would otherwise fall back to the subject CN. */
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (SSL_set1_host(c->ssl, ctx->server_name) != 1 || SSL_set_tlsext_host_name(c->ssl, ctx->server_name) != 1) {
		st = FP_FAIL(FP_ERR_INVALID_ARG, "TLS: server name '%s' is not usable", ctx->server_name);
		goto fail;
	}
	ERR_clear_error();
	int r = SSL_connect(c->ssl);
	if (r != 1) {
		char why[300];
		ssl_handshake_failed(c, r, why, sizeof(why));
		st = refuse(c, why);
		goto fail;
	}
	if (!SSL_get0_peer_certificate(c->ssl) || SSL_get_verify_result(c->ssl) != X509_V_OK || !c->peer.id[0]) {
		st = refuse(c, "server certificate missing or not verified");
		goto fail;
	}
	*out = c;
	return FP_OK;
fail:
	fp_tls_conn_close(c);
	return st;
}
