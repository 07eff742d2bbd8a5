/*
 * cmd_doctor.c: `fedpath doctor`: checks a site's setup and says what to fix.
 *
 * Takes an optional site configuration (schema "site": site.id, site.data_dir)
 * and the paths the agent will use (--cert, --ca, --key, --aggregator HOST:PORT).
 * Produces one line per check, "STATUS  name  message" with a "fix:" line under
 * every WARN and FAIL, or one JSON object with --json. Checks never change
 * anything on disk. Exit status: 0 when no check FAILs, 1 otherwise, 2 usage.
 *
 * Statuses: OK, WARN (works but needs attention), FAIL (the site cannot take
 * part until fixed), SKIP (nothing configured to check, with the reason).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_ACTIONRETVAL, adjtimex */
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <tiffio.h>
#include <time.h>
#include <unistd.h>

#include "fp_cli.h"
#include "fp_cli_schemas.h"
#include "fp_kernels.h"
#include "fp_tile_cache.h"
#include "fp_tls.h"
#include "fp_wire.h"

const char fp_cmd_doctor_usage[] =
	"Usage: fedpath doctor [--config site.ini] [--data DIR] [--cert FILE] [--ca FILE]\n"
	"                      [--key FILE] [--aggregator HOST:PORT] [--server-name NAME] [--json]\n\n"
	"Checks this site's setup and says what to fix: library versions, GPU and CUDA,\n"
	"free space in the data folder, the site certificate (validity, expiry, issued\n"
	"by the study CA), the clock and its skew from the aggregator's, whether the\n"
	"aggregator answers, and every tile\n"
	"cache (*.h5) in the data folder (each tile is read and decoded).\n\n"
	"  --config FILE         site configuration (schema 'site'); gives site.data_dir\n"
	"  --data DIR            data folder (overrides site.data_dir; default 'data')\n"
	"  --cert FILE           this site's certificate (PEM)\n"
	"  --ca FILE             the study CA certificate (PEM); the site certificate\n"
	"                        is verified against it\n"
	"  --key FILE            this site's private key: must be private (mode 0600)\n"
	"                        and match --cert\n"
	"  --aggregator H:P      the aggregator's address; TCP connect, 3 s timeout; with\n"
	"                        --cert, --key and --ca also a mutual-TLS hello that\n"
	"                        gives the aggregator's time (clock skew)\n"
	"  --server-name NAME    the DNS name on the aggregator's certificate (default:\n"
	"                        the host of --aggregator)\n"
	"  --json                print one JSON object instead of lines\n\n"
	"Each line: OK, WARN, FAIL or SKIP, the check, what was found; WARN and FAIL\n"
	"lines are followed by 'fix:' and what to do.\n"
	"Exit status: 0 no check failed, 1 some check failed, 2 usage error.\n";

#define DOCTOR_MAX_CHECKS 16
#define DOCTOR_MIN_FREE_GIB 10.0
#define DOCTOR_CERT_WARN_DAYS 30
#define DOCTOR_CONNECT_MS 3000
#define DOCTOR_MAX_DEPTH 4 /* folder levels below data_dir searched for caches */

enum doctor_level { D_OK, D_WARN, D_FAIL, D_SKIP };
static const char *const level_names[] = {"OK", "WARN", "FAIL", "SKIP"};

struct doctor_check {
	const char *name;
	enum doctor_level level;
	char message[1280];
	char fix[512];
};

struct doctor {
	struct doctor_check checks[DOCTOR_MAX_CHECKS];
	int n;
};

static void add(struct doctor *d, const char *name, enum doctor_level level, const char *fix, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

static void add(struct doctor *d, const char *name, enum doctor_level level, const char *fix, const char *fmt, ...)
{
	if (d->n >= DOCTOR_MAX_CHECKS) return;
	struct doctor_check *c = &d->checks[d->n++];
	c->name = name;
	c->level = level;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof c->message, fmt, ap);
	va_end(ap);
	snprintf(c->fix, sizeof c->fix, "%s", fix ? fix : "");
}

/* ---- libraries: each one's own run-time version call ---- */

static void check_libraries(struct doctor *d)
{
	unsigned long ossl = OpenSSL_version_num();
	if (ossl < 0x30000000UL)
		add(d, "openssl", D_FAIL, "install OpenSSL 3 (Debian 12: libssl3) and rebuild fedpath",
		    "%s: fedpath needs OpenSSL 3 for TLS 1.3", OpenSSL_version(OPENSSL_VERSION));
	else if ((ossl >> 28) != (OPENSSL_VERSION_NUMBER >> 28))
		add(d, "openssl", D_WARN, "rebuild fedpath against the installed OpenSSL",
		    "%s at run time, built against %s", OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
	else
		add(d, "openssl", D_OK, NULL, "%s", OpenSSL_version(OPENSSL_VERSION));

	unsigned maj = 0, min = 0, rel = 0;
	if (H5get_libversion(&maj, &min, &rel) < 0)
		add(d, "hdf5", D_FAIL, "reinstall libhdf5 (scripts/bootstrap)", "HDF5 did not report its version");
	else if (maj != H5_VERS_MAJOR || min != H5_VERS_MINOR)
		add(d, "hdf5", D_WARN, "rebuild fedpath against the installed HDF5",
		    "HDF5 %u.%u.%u at run time, built against %d.%d.%d", maj, min, rel, H5_VERS_MAJOR, H5_VERS_MINOR,
		    H5_VERS_RELEASE);
	else
		add(d, "hdf5", D_OK, NULL, "HDF5 %u.%u.%u", maj, min, rel);

	/* TIFFGetVersion() is "LIBTIFF, Version X.Y.Z\nCopyright ...": keep line one. */
	char tiff[128];
	snprintf(tiff, sizeof tiff, "%s", TIFFGetVersion());
	tiff[strcspn(tiff, "\n")] = '\0';
	add(d, "libtiff", D_OK, NULL, "%s", tiff);

	add(d, "jansson", D_OK, NULL, "jansson %s", jansson_version_str());
}

/* ---- GPU ---- */

static void check_gpu(struct doctor *d)
{
#ifdef FP_HAVE_CUDA
	if (!fp_kernels_cuda_available()) {
		add(d, "gpu", D_OK, NULL, "no GPU: CPU backend will be used");
		return;
	}
	struct fp_kernels_options opt;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&opt);
	opt.backend = FP_BACKEND_CUDA;
	opt.require = 1;
	if (fp_kernels_create(&opt, &k) != FP_OK) {
		add(d, "gpu", D_WARN, "check the NVIDIA driver and CUDA 13 / cuDNN 9 libraries (nvidia-smi)",
		    "a GPU answers but the CUDA backend failed to start: %s", fp_error_msg());
		return;
	}
	add(d, "gpu", D_OK, NULL, "%s", fp_kernels_describe(k));
	fp_kernels_destroy(k);
#else
	(void)fp_kernels_cuda_available;
	add(d, "gpu", D_OK, NULL, "this build has no CUDA backend: CPU backend will be used");
#endif
}

/* ---- data folder: free space ---- */

static int check_disk(struct doctor *d, const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		add(d, "disk", D_FAIL, "create it, or set site.data_dir / --data to the folder holding the tile caches",
		    "data folder '%s' does not exist", dir);
		return 0;
	}
	if (access(dir, W_OK) != 0) {
		add(d, "disk", D_FAIL, "give the fedpath service user write access to it",
		    "data folder '%s' is not writable by this user", dir);
		return 1;
	}
	struct statvfs vfs;
	if (statvfs(dir, &vfs) != 0) {
		add(d, "disk", D_WARN, "check the file system", "statvfs %s: %s", dir, strerror(errno));
		return 1;
	}
	double gib = (double)vfs.f_bavail * (double)vfs.f_frsize / (1024.0 * 1024.0 * 1024.0);
	if (gib < DOCTOR_MIN_FREE_GIB)
		add(d, "disk", D_WARN,
		    "free space or move site.data_dir to a larger volume (tile caches take about as much as the slides)",
		    "%.1f GiB free in '%s' (below %.0f GiB)", gib, dir, DOCTOR_MIN_FREE_GIB);
	else
		add(d, "disk", D_OK, NULL, "%.1f GiB free in '%s'", gib, dir);
	return 1;
}

/* ---- the site certificate ---- */

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) return NULL;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* Whole days from now to `t` (negative when past). */
static int days_until(const ASN1_TIME *t, int *days)
{
	int secs = 0;
	return ASN1_TIME_diff(days, &secs, NULL, t) == 1;
}

static void check_cert(struct doctor *d, const char *cert_path, const char *ca_path)
{
	if (!cert_path) {
		add(d, "certificate", D_SKIP, NULL, "no --cert given");
		return;
	}
	X509 *cert = read_cert(cert_path), *ca = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	if (!cert) {
		add(d, "certificate", D_FAIL,
		    "run 'fedpath pki csr --site ID', send ID.csr to the coordinating centre, install the .crt it returns",
		    "cannot read a PEM certificate from '%s'", cert_path);
		goto fail;
	}
	char subject[256];
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
	int to_start = 0, to_end = 0;
	if (!days_until(X509_get0_notBefore(cert), &to_start) || !days_until(X509_get0_notAfter(cert), &to_end)) {
		add(d, "certificate", D_FAIL, "ask the coordinating centre for a new certificate",
		    "%s: unreadable validity dates", cert_path);
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		add(d, "certificate", D_FAIL,
		    "check this machine's clock (timedatectl); if it is right, wait or ask for a new certificate",
		    "%s (%s) is not valid yet: starts in %d days", cert_path, subject, to_start);
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		add(d, "certificate", D_FAIL,
		    "make a new request (fedpath pki csr) and have the coordinating centre sign it",
		    "%s (%s) expired %d days ago", cert_path, subject, -to_end);
		goto fail;
	}
	if (ca_path) {
		ca = read_cert(ca_path);
		if (!ca) {
			add(d, "certificate", D_FAIL, "install the study's ca.crt from the coordinating centre",
			    "cannot read the CA certificate '%s'", ca_path);
			goto fail;
		}
		store = X509_STORE_new();
		ctx = X509_STORE_CTX_new();
		if (!store || !ctx || X509_STORE_add_cert(store, ca) != 1 ||
		    X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
			add(d, "certificate", D_FAIL, "report this as a bug", "OpenSSL could not set up verification");
			goto fail;
		}
		if (X509_verify_cert(ctx) != 1) {
			add(d, "certificate", D_FAIL,
			    "install the certificate the coordinating centre signed for this study, and its ca.crt",
			    "%s is not accepted by the study CA %s: %s", cert_path, ca_path,
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
			goto fail;
		}
	}
	if (to_end < DOCTOR_CERT_WARN_DAYS)
		add(d, "certificate", D_WARN,
		    "make a new request now (fedpath pki csr) and have the coordinating centre sign it",
		    "%s (%s) expires in %d days", cert_path, subject, to_end);
	else
		add(d, "certificate", D_OK, NULL, "%s (%s) valid for %d more days%s", cert_path, subject, to_end,
		    ca_path ? ", issued by the study CA" : "");
fail:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	X509_free(cert);
}

/* ---- the private key: private, and the certificate's ---- */

static void check_key(struct doctor *d, const char *key_path, const char *cert_path)
{
	if (!key_path) {
		add(d, "key", D_SKIP, NULL, "no --key given");
		return;
	}
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat st;
	FILE *f = fopen(key_path, "r");
	if (!f || fstat(fileno(f), &st) != 0 || !(key = PEM_read_PrivateKey(f, NULL, NULL, NULL))) {
		add(d, "key", D_FAIL, "point --key at the ID.key that 'fedpath pki csr' made on this machine",
		    "cannot read a PEM private key from '%s'", key_path);
		goto fail;
	}
	if (cert_path && (cert = read_cert(cert_path)) && X509_check_private_key(cert, key) != 1) {
		add(d, "key", D_FAIL,
		    "install the certificate signed for this key (the request made with it), or the key the request came from",
		    "%s does not belong to the certificate %s", key_path, cert_path);
		goto fail;
	}
	if (st.st_mode & 077)
		add(d, "key", D_WARN, "chmod 600 the key (owner: the user the agent runs as)",
		    "%s is readable by others (mode %04o)", key_path, (unsigned)(st.st_mode & 07777));
	else
		add(d, "key", D_OK, NULL, "%s is private (mode %04o)%s", key_path, (unsigned)(st.st_mode & 07777),
		    cert ? " and matches the certificate" : "");
fail:
	if (f) fclose(f);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* ---- the aggregator: TCP connect with a deadline ---- */

static int split_host_port(const char *text, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon;
	if (text[0] == '[') { /* [v6]:port */
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':') return 0;
		if ((size_t)(end - text - 1) >= hsize) return 0;
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || colon == text || (size_t)(colon - text) >= hsize) return 0;
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
	}
	if (!colon[1] || strlen(colon + 1) >= psize || strspn(colon + 1, "0123456789") != strlen(colon + 1)) return 0;
	snprintf(port, psize, "%s", colon + 1);
	return 1;
}

/* 1 connected, 0 not (why in `why`). */
static int tcp_probe(const char *host, const char *port, char *why, size_t size)
{
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, size, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return 0;
	}
	int ok = 0;
	snprintf(why, size, "no address of '%s' answered", host);
	for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
		if (fd < 0) continue;
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			ok = 1;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n = poll(&p, 1, DOCTOR_CONNECT_MS);
			int err = 0;
			socklen_t len = sizeof err;
			if (n == 0) snprintf(why, size, "no answer within %d s", DOCTOR_CONNECT_MS / 1000);
			else if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ok = 1;
			else snprintf(why, size, "%s", strerror(err ? err : errno));
		} else {
			snprintf(why, size, "%s", strerror(errno));
		}
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

static int check_aggregator(struct doctor *d, const char *addr)
{
	if (!addr) {
		add(d, "aggregator", D_SKIP, NULL, "no --aggregator HOST:PORT given");
		return 0;
	}
	char host[256], port[16], why[400];
	if (!split_host_port(addr, host, sizeof host, port, sizeof port)) {
		add(d, "aggregator", D_FAIL, "give it as HOST:PORT, e.g. aggregator.example.org:7443",
		    "'%s' is not HOST:PORT", addr);
		return 0;
	}
	if (!tcp_probe(host, port, why, sizeof why)) {
		add(d, "aggregator", D_FAIL,
		    "check the address with the coordinating centre, and that the hospital firewall lets this "
		    "machine open outbound TCP to that port",
		    "%s: %.300s", addr, why);
		return 0;
	}
	add(d, "aggregator", D_OK, NULL, "%s accepts TCP connections", addr);
	return 1;
}

/* Clock. With the site's certificate, key and CA the check opens a real
 * mutual-TLS session to the aggregator and reads the time in its HELLO
 * (protocol field time_unix_ms): the skew is that time minus the midpoint of
 * this machine's clock around the exchange. Certificates' validity and the
 * rounds' deadlines depend on it. The kernel's NTP state is reported too. */
#define SKEW_WARN_MS 2000.0
#define SKEW_FAIL_MS 60000.0

static double wall_ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 1 with *skew_ms set; 0 with why filled. */
static int aggregator_skew(const char *addr, const char *server_name, const char *cert, const char *key,
                           const char *ca, double *skew_ms, char *why, size_t n)
{
	char host[256], port[16];
	struct fp_tls_ctx *tls = NULL;
	struct fp_tls_conn *c = NULL;
	struct fp_frame fr;
	ProtobufCMessage *m = NULL;
	int ok = 0;
	fp_frame_init(&fr);
	if (!split_host_port(addr, host, sizeof host, port, sizeof port)) {
		snprintf(why, n, "'%s' is not HOST:PORT", addr);
		return 0;
	}
	struct fp_tls_config tc = {0, ca, cert, key, NULL, NULL, server_name ? server_name : host, 5000, NULL, NULL};
	double t0 = wall_ms_now();
	if (fp_tls_ctx_create(&tc, &tls) != FP_OK || fp_tls_connect(tls, host, atoi(port), &c) != FP_OK ||
	    fp_msg_recv(fp_tls_conn_io(c), &fr, FP_FRAME_HELLO, &m) != FP_OK) {
		snprintf(why, n, "%s", fp_error_msg());
		goto done;
	}
	double t1 = wall_ms_now();
	const Fedpath__Hello *h = (const Fedpath__Hello *)m;
	if (h->time_unix_ms == 0) {
		snprintf(why, n, "the aggregator's fedpath (%s) does not report its time", h->software_version);
		goto done;
	}
	*skew_ms = (double)h->time_unix_ms - (t0 + t1) / 2;
	ok = 1;
done:
	fp_msg_free(m);
	fp_frame_close(&fr);
	fp_tls_conn_close(c);
	fp_tls_ctx_destroy(tls);
	fp_error_clear();
	return ok;
}

static void check_clock(struct doctor *d, int aggregator_up, const char *addr, const char *server_name,
                        const char *cert, const char *key, const char *ca)
{
	struct timex tx;
	memset(&tx, 0, sizeof tx);
	int state = adjtimex(&tx);
	if (state < 0) {
		add(d, "clock", D_WARN, "check the clock with 'timedatectl'", "cannot read the clock state: %s",
		    strerror(errno));
	} else if (state == TIME_ERROR || (tx.status & STA_UNSYNC)) {
		add(d, "clock", D_WARN,
		    "enable time synchronisation (systemd-timesyncd or chrony) against the hospital's NTP server",
		    "this clock is not synchronised by NTP; TLS validity and round deadlines depend on it");
	} else {
		add(d, "clock", D_OK, NULL, "synchronised by NTP (estimated error %.1f ms)", (double)tx.esterror / 1000.0);
	}
	if (!aggregator_up) {
		add(d, "clock skew", D_SKIP, NULL, "aggregator not reachable or not given: skew not measured");
		return;
	}
	if (!cert || !key || !ca) {
		add(d, "clock skew", D_SKIP, NULL, "needs --cert, --key and --ca to ask the aggregator its time");
		return;
	}
	double skew = 0;
	char why[600];
	if (!aggregator_skew(addr, server_name, cert, key, ca, &skew, why, sizeof why)) {
		add(d, "clock skew", D_WARN, "see the certificate and aggregator checks above", "not measured: %.500s", why);
	} else if (fabs(skew) > SKEW_FAIL_MS) {
		add(d, "clock skew", D_FAIL, "fix this machine's clock (timedatectl; NTP), or ask the centre to fix theirs",
		    "this clock differs from the aggregator's by %.1f s", skew / 1e3);
	} else if (fabs(skew) > SKEW_WARN_MS) {
		add(d, "clock skew", D_WARN, "enable NTP on this machine (and check the centre's)",
		    "this clock differs from the aggregator's by %.1f s", skew / 1e3);
	} else {
		add(d, "clock skew", D_OK, NULL, "within %.0f ms of the aggregator's clock", fabs(skew));
	}
}

/* ---- tile caches ---- */

struct cache_scan {
	unsigned long good, bad, partial, tiles;
	char first_bad[512];
	char first_why[384];
};
static struct cache_scan *g_scan; /* nftw has no user pointer */

static int verify_cache(const char *path, uint64_t *tiles, char *why, size_t size)
{
	struct fp_tile_cache *c = NULL;
	uint8_t *buf = NULL;
	int ok = 0;
	if (fp_tile_cache_open(path, &c) != FP_OK) {
		snprintf(why, size, "%s", fp_error_msg());
		goto fail;
	}
	size_t t = fp_tile_cache_tile_size(c), bytes;
	if (fp_size_mul3(t, t, 3, &bytes, "tile bytes") != FP_OK || !(buf = malloc(bytes ? bytes : 1))) {
		snprintf(why, size, "tile size %zu: %s", t, fp_error_msg());
		goto fail;
	}
	uint64_t n = fp_tile_cache_count(c);
	for (uint64_t i = 0; i < n; i++) {
		int32_t x, y;
		if (fp_tile_cache_coords(c, i, &x, &y) != FP_OK || fp_tile_cache_read(c, i, buf) != FP_OK) {
			snprintf(why, size, "%s", fp_error_msg()); /* names the file and tile */
			goto fail;
		}
	}
	*tiles = n;
	ok = 1;
fail:
	free(buf);
	fp_tile_cache_close(c);
	return ok;
}

static int scan_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (type == FTW_D && ftw->level >= DOCTOR_MAX_DEPTH) return FTW_SKIP_SUBTREE;
	if (type != FTW_F && type != FTW_SL) return FTW_CONTINUE; /* a dangling link counts as bad */
	size_t len = strlen(path);
	if (len > 11 && strcmp(path + len - 11, ".h5.partial") == 0) {
		g_scan->partial++;
		return FTW_CONTINUE;
	}
	if (len < 3 || strcmp(path + len - 3, ".h5") != 0) return FTW_CONTINUE;
	uint64_t tiles = 0;
	char why[384];
	if (verify_cache(path, &tiles, why, sizeof why)) {
		g_scan->good++;
		g_scan->tiles += tiles;
	} else {
		if (!g_scan->bad) {
			snprintf(g_scan->first_bad, sizeof g_scan->first_bad, "%s", path);
			snprintf(g_scan->first_why, sizeof g_scan->first_why, "%s", why);
		}
		g_scan->bad++;
	}
	return FTW_CONTINUE;
}

static void check_caches(struct doctor *d, const char *dir, int dir_exists)
{
	if (!dir_exists) {
		add(d, "tile-caches", D_SKIP, NULL, "no data folder to scan");
		return;
	}
	struct cache_scan scan;
	memset(&scan, 0, sizeof scan);
	g_scan = &scan;
	int rc = nftw(dir, scan_one, 16, FTW_PHYS | FTW_ACTIONRETVAL);
	g_scan = NULL;
	if (rc == -1) {
		add(d, "tile-caches", D_FAIL, "check the folder's permissions", "cannot walk '%s': %s", dir,
		    strerror(errno));
		return;
	}
	char partial[96] = "";
	if (scan.partial)
		snprintf(partial, sizeof partial, "; %lu unfinished .partial files (re-run fedpath tile)", scan.partial);
	if (scan.bad)
		add(d, "tile-caches", D_FAIL,
		    "delete the bad caches and re-run 'fedpath tile' on their slides (finished ones are skipped)",
		    "%lu of %lu caches bad; first: %s%s%s%s", scan.bad, scan.bad + scan.good,
		    strstr(scan.first_why, scan.first_bad) ? "" : scan.first_bad,
		    strstr(scan.first_why, scan.first_bad) ? "" : ": ", scan.first_why, partial);
	else if (!scan.good)
		add(d, "tile-caches", D_WARN, "tile the slides: fedpath tile --config site.ini --out DIR --manifest clinical.csv",
		    "no tile caches (*.h5) in '%s'%s", dir, partial);
	else
		add(d, "tile-caches", scan.partial ? D_WARN : D_OK,
		    scan.partial ? "re-run 'fedpath tile' to finish or replace them" : NULL,
		    "%lu caches, %lu tiles, all readable%s", scan.good, scan.tiles, partial);
}

/* ---- output ---- */

static int print_lines(const struct doctor *d)
{
	int fails = 0;
	for (int i = 0; i < d->n; i++) {
		const struct doctor_check *c = &d->checks[i];
		printf("%-4s  %-12s %s\n", level_names[c->level], c->name, c->message);
		if ((c->level == D_WARN || c->level == D_FAIL) && c->fix[0]) printf("      fix: %s\n", c->fix);
		fails += c->level == D_FAIL;
	}
	printf("%s\n", fails ? "doctor: some checks FAILED; fix them before joining the study"
	                     : "doctor: no check failed");
	return fails;
}

static int print_json(const struct doctor *d)
{
	int fails = 0, warns = 0;
	json_t *root = json_object(), *arr = json_array();
	for (int i = 0; i < d->n; i++) {
		const struct doctor_check *c = &d->checks[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(c->name));
		json_object_set_new(o, "status", json_string(level_names[c->level]));
		json_object_set_new(o, "message", json_string(c->message));
		if (c->fix[0] && (c->level == D_WARN || c->level == D_FAIL))
			json_object_set_new(o, "fix", json_string(c->fix));
		json_array_append_new(arr, o);
		fails += c->level == D_FAIL;
		warns += c->level == D_WARN;
	}
	json_object_set_new(root, "checks", arr);
	json_object_set_new(root, "fail", json_integer(fails));
	json_object_set_new(root, "warn", json_integer(warns));
	json_object_set_new(root, "ok", json_boolean(fails == 0));
	json_object_set_new(root, "fedpath", json_string(fp_version()));
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("\n");
	json_decref(root);
	return fails;
}

int fp_cmd_doctor(int argc, char **argv)
{
	const char *cmd = "doctor", *config = NULL, *data = NULL, *cert = NULL, *ca = NULL, *agg = NULL, *key = NULL;
	const char *server_name = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (strcmp(argv[i], "--config") == 0) slot = &config;
		else if (strcmp(argv[i], "--data") == 0) slot = &data;
		else if (strcmp(argv[i], "--cert") == 0) slot = &cert;
		else if (strcmp(argv[i], "--ca") == 0) slot = &ca;
		else if (strcmp(argv[i], "--aggregator") == 0) slot = &agg;
		else if (strcmp(argv[i], "--key") == 0) slot = &key;
		else if (strcmp(argv[i], "--server-name") == 0) slot = &server_name;
		else if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			continue;
		} else if (argv[i][0] == '-') {
			return fp_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
		} else {
			return fp_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
		}
		if (i + 1 >= argc) return fp_cli_usage_error(cmd, "%s needs a value", argv[i]);
		*slot = argv[++i];
	}

	static struct fp_site_config site; /* static: FP_CONFIG_STR_MAX strings */
	if (fp_config_defaults(&fp_site_schema, &site) != FP_OK)
		return fp_cli_runtime_error(cmd, "site defaults", NULL);
	if (config && fp_config_load(&fp_site_schema, config, &site) != FP_OK)
		return fp_cli_runtime_error(cmd, config, "check it with 'fedpath config check FILE'");
	const char *dir = data ? data : site.data_dir;

	struct doctor d;
	memset(&d, 0, sizeof d);
	check_libraries(&d);
	check_gpu(&d);
	int dir_exists = check_disk(&d, dir);
	check_cert(&d, cert, ca);
	check_key(&d, key, cert);
	int up = check_aggregator(&d, agg);
	check_clock(&d, up, agg, server_name, cert, key, ca);
	check_caches(&d, dir, dir_exists);

	int fails = json ? print_json(&d) : print_lines(&d);
	fflush(stdout);
	return fails ? FP_EXIT_RUNTIME : FP_EXIT_OK;
}
