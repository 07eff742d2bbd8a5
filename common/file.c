/*
 * file.c: durable writes and framed files (fp_file.h).
 *
 * Why this order: write + fsync(file) makes the data durable under the temp
 * name; rename() swaps it in atomically; fsync(folder) makes the rename itself
 * durable. A failed fsync is final: after one, the kernel may have dropped the
 * dirty pages, so retrying would report success over lost data. We remove the
 * temporary and report the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fp_arith.h"
#include "fp_file.h"
#include "fp_hash.h"

static atomic_uint tmp_counter;

/* The folder part of `path` ("." when none), in a new string. */
static char *dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy) return NULL;
	char *d = strdup(dirname(copy));
	free(copy);
	return d;
}

enum fp_status fp_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "cannot open folder %s to sync it: %s", dir, strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return FP_FAIL(FP_ERR_IO, "fsync of folder %s failed: %s", dir, strerror(e));
	}
	close(fd);
	return FP_OK;
}

enum fp_status fp_dir_lock(const char *dir, const char *name, double wait_s, int *fd_out)
{
	*fd_out = -1;
	char path[4096];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return FP_FAIL(FP_ERR_LIMIT, "lock path %s/%s is too long", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "cannot open lock file %s: %s", path, strerror(errno));
	struct timespec nap = {0, 20 * 1000 * 1000};
	long tries = wait_s > 0 ? (long)(wait_s / 0.02) : 0;
	for (long t = 0;; t++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
		int e = errno;
		if (e == EINTR) continue;
		if (e != EWOULDBLOCK || t >= tries) {
			char holder[32] = "";
			ssize_t n = e == EWOULDBLOCK ? pread(fd, holder, sizeof holder - 1, 0) : -1;
			holder[n > 0 ? n : 0] = '\0';
			holder[strcspn(holder, "\n")] = '\0';
			close(fd);
			if (e != EWOULDBLOCK) return FP_FAIL(FP_ERR_IO, "cannot lock %s: %s", path, strerror(e));
			return FP_FAIL(FP_ERR_STATE, "%s is in use by another process (pid %s, lock %s); wait for it to finish or stop it",
			               dir, holder[0] ? holder : "unknown", path);
		}
		nanosleep(&nap, NULL);
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		return FP_FAIL(FP_ERR_IO, "cannot write lock file %s: %s", path, strerror(e));
	}
	*fd_out = fd;
	return FP_OK;
}

enum fp_status fp_mkdir_p(const char *path, unsigned mode)
{
	if (!path || !path[0]) return FP_FAIL(FP_ERR_INVALID_ARG, "empty folder path");
	char *p = strdup(path);
	if (!p) return FP_FAIL(FP_ERR_NOMEM, "mkdir %s: out of memory", path);
	for (char *s = p + 1;; s++) {
		char c = *s;
		if (c == '/' || c == '\0') {
			*s = '\0';
			if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
				int e = errno;
				enum fp_status st = FP_FAIL(FP_ERR_IO, "cannot create folder %s: %s", p, strerror(e));
				free(p);
				return st;
			}
			*s = c;
			if (c == '\0') break;
		}
	}
	struct stat sb;
	if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		free(p);
		return FP_FAIL(FP_ERR_IO, "%s exists and is not a folder", path);
	}
	free(p);
	return FP_OK;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Framed files from this size on go around the page cache (O_DIRECT): a
 * model of 100 MB per round would otherwise pass through 100 MB of page cache
 * (fresh pages on every round: the files are new) only to be flushed by the
 * fsync that follows, and it would push what the machine is using out of the
 * cache. Nothing reads these files back except a restart. */
#define DIRECT_MIN_BYTES ((size_t)8 << 20)
#define DIRECT_ALIGN 4096
#define DIRECT_BUF ((size_t)4 << 20)

/* Writes head then body to the empty file fd with O_DIRECT, through an
 * aligned buffer; the last block is padded and the file cut to its length.
 * Returns 0 when written; 1 when O_DIRECT is not available or a write failed
 * and the file is empty again, in buffered mode, for the caller to write the
 * usual way (which reports a failure that is not O_DIRECT's); -1 when the
 * file could not be emptied again (errno set). */
static int write_direct(int fd, const void *head, size_t head_len, const void *body, size_t body_len)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) return 1; /* e.g. tmpfs */
	uint8_t *buf = NULL;
	int ok = 0;
	if (posix_memalign((void **)&buf, DIRECT_ALIGN, DIRECT_BUF) != 0) goto done;
	size_t fill = 0, total = head_len + body_len;
	off_t at = 0;
	for (size_t pos = 0; pos < total;) {
		const uint8_t *src = pos < head_len ? (const uint8_t *)head + pos : (const uint8_t *)body + (pos - head_len);
		size_t left = pos < head_len ? head_len - pos : total - pos;
		size_t take = DIRECT_BUF - fill < left ? DIRECT_BUF - fill : left;
		memcpy(buf + fill, src, take);
		fill += take;
		pos += take;
		if (fill < DIRECT_BUF && pos < total) continue;
		size_t out = (fill + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
		memset(buf + fill, 0, out - fill);
		for (size_t w = 0; w < out;) {
			ssize_t n = pwrite(fd, buf + w, out - w, at + (off_t)w);
			if (n < 0 && errno == EINTR) continue;
			if (n <= 0 || (size_t)n % DIRECT_ALIGN) goto done;
			w += (size_t)n;
		}
		at += (off_t)out;
		fill = 0;
	}
	ok = ftruncate(fd, (off_t)total) == 0;
done:
	free(buf);
	int buffered = fcntl(fd, F_SETFL, flags) == 0;
	if (ok) return 0; /* complete: the flag no longer matters */
	/* a buffered rewrite needs the flag off and the file empty again */
	return buffered && ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 ? 1 : -1;
}

enum fp_status fp_file_writer_open(struct fp_file_writer *w, const char *path, unsigned mode)
{
	memset(w, 0, sizeof *w);
	w->mode = mode;
	size_t n = strlen(path) + 48;
	w->tmp_path = malloc(n);
	w->final_path = strdup(path);
	if (!w->tmp_path || !w->final_path) {
		fp_file_writer_abort(w);
		return FP_FAIL(FP_ERR_NOMEM, "cannot write %s: out of memory", path);
	}
	snprintf(w->tmp_path, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
	int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "cannot create %s: %s", w->tmp_path, strerror(errno));
		free(w->tmp_path);
		w->tmp_path = NULL;
		fp_file_writer_abort(w);
		return st;
	}
	/* open() applies the umask; a key file must be exactly `mode`. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "cannot set mode of %s: %s", w->tmp_path, strerror(errno));
		close(fd);
		fp_file_writer_abort(w);
		return st;
	}
	w->fp = fdopen(fd, "wb");
	if (!w->fp) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "cannot open %s: %s", w->tmp_path, strerror(errno));
		close(fd);
		fp_file_writer_abort(w);
		return st;
	}
	return FP_OK;
}

void fp_file_writer_abort(struct fp_file_writer *w)
{
	if (!w) return;
	if (w->fp) fclose(w->fp);
	if (w->tmp_path) unlink(w->tmp_path);
	free(w->tmp_path);
	free(w->final_path);
	memset(w, 0, sizeof *w);
}

/* durable: fsync the file before the rename and the folder after it. */
static enum fp_status writer_finish(struct fp_file_writer *w, int durable)
{
	enum fp_status st;
	if (!w->fp) {
		fp_file_writer_abort(w);
		return FP_FAIL(FP_ERR_STATE, "commit of a writer that is not open");
	}
	if (ferror(w->fp) || fflush(w->fp) != 0) {
		st = FP_FAIL(FP_ERR_IO, "writing %s failed: %s", w->final_path, strerror(errno));
		goto fail;
	}
	if (durable && fsync(fileno(w->fp)) != 0) {
		st = FP_FAIL(FP_ERR_IO, "fsync of %s failed (data not durable): %s", w->final_path, strerror(errno));
		goto fail;
	}
	int rc = fclose(w->fp);
	w->fp = NULL;
	if (rc != 0) {
		st = FP_FAIL(FP_ERR_IO, "closing %s failed: %s", w->final_path, strerror(errno));
		goto fail;
	}
	if (rename(w->tmp_path, w->final_path) != 0) {
		st = FP_FAIL(FP_ERR_IO, "cannot rename %s to %s: %s", w->tmp_path, w->final_path, strerror(errno));
		goto fail;
	}
	free(w->tmp_path);
	w->tmp_path = NULL; /* renamed: nothing to unlink any more */
	if (!durable) {
		fp_file_writer_abort(w);
		return FP_OK;
	}
	char *dir = dir_of(w->final_path);
	if (!dir) {
		st = FP_FAIL(FP_ERR_NOMEM, "out of memory");
		goto fail;
	}
	st = fp_dir_sync(dir);
	free(dir);
	if (st != FP_OK) goto fail;
	fp_file_writer_abort(w); /* frees the names; nothing left to remove */
	return FP_OK;
fail:
	fp_file_writer_abort(w);
	return st;
}

enum fp_status fp_file_writer_commit(struct fp_file_writer *w)
{
	return writer_finish(w, 1);
}

static enum fp_status write_whole(const char *path, const void *data, size_t len, unsigned mode, int durable)
{
	struct fp_file_writer w;
	FP_TRY(fp_file_writer_open(&w, path, mode));
	if (len > 0 && write_all(fileno(w.fp), data, len) != 0) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "writing %s failed: %s", path, strerror(errno));
		fp_file_writer_abort(&w);
		return st;
	}
	return writer_finish(&w, durable);
}

enum fp_status fp_file_replace(const char *path, const void *data, size_t len, unsigned mode)
{
	return write_whole(path, data, len, mode, 0);
}

enum fp_status fp_file_commit(const char *path, const void *data, size_t len, unsigned mode)
{
	return write_whole(path, data, len, mode, 1);
}

enum fp_status fp_file_publish(const char *tmp_path, const char *final_path)
{
	int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "cannot open %s: %s", tmp_path, strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return FP_FAIL(FP_ERR_IO, "fsync of %s failed (data not durable): %s", tmp_path, strerror(e));
	}
	close(fd);
	if (rename(tmp_path, final_path) != 0)
		return FP_FAIL(FP_ERR_IO, "cannot rename %s to %s: %s", tmp_path, final_path, strerror(errno));
	char *dir = dir_of(final_path);
	if (!dir) return FP_FAIL(FP_ERR_NOMEM, "out of memory");
	enum fp_status st = fp_dir_sync(dir);
	free(dir);
	return st;
}

enum fp_status fp_file_read_all(const char *path, size_t max_len, char **data, size_t *len)
{
	enum fp_status st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return FP_FAIL(errno == ENOENT ? FP_ERR_NOT_FOUND : FP_ERR_IO, "cannot open %s: %s", path,
		               strerror(errno));
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		st = FP_FAIL(FP_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		st = FP_FAIL(FP_ERR_IO, "%s is not a regular file", path);
		goto fail;
	}
	if ((uint64_t)sb.st_size > (uint64_t)max_len) {
		st = FP_FAIL(FP_ERR_LIMIT, "%s is %lld bytes, above the limit of %zu", path, (long long)sb.st_size,
		             max_len);
		goto fail;
	}
	size_t size = (size_t)sb.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		st = FP_FAIL(FP_ERR_NOMEM, "cannot allocate %zu bytes to read %s", size + 1, path);
		goto fail;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) {
			st = FP_FAIL(FP_ERR_IO, "reading %s failed: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0) break; /* shrank while reading */
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	*data = buf;
	*len = got;
	return FP_OK;
fail:
	free(buf);
	close(fd);
	return st;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}
static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}

#define FRAME_HEADER_VERSION 1u

enum fp_status fp_file_commit_framed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                     uint32_t version, const void *payload, size_t len, unsigned mode)
{
	return fp_file_commit_framed_hashed(path, magic, version, payload, len, NULL, mode);
}

enum fp_status fp_file_commit_framed_hashed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                            uint32_t version, const void *payload, size_t len,
                                            const uint8_t sha256[FP_SHA256_SIZE], unsigned mode)
{
	uint8_t hdr[FP_FRAME_HEADER_SIZE] = {0};
	memcpy(hdr, magic, FP_FRAME_MAGIC_SIZE);
	put_u32(hdr + 8, version);
	put_u32(hdr + 12, FRAME_HEADER_VERSION);
	put_u64(hdr + 16, (uint64_t)len);
	if (sha256)
		memcpy(hdr + 24, sha256, FP_SHA256_SIZE);
	else
		FP_TRY(fp_sha256(payload, len, hdr + 24));

	struct fp_file_writer w;
	FP_TRY(fp_file_writer_open(&w, path, mode));
	int fd = fileno(w.fp);
	int direct = len >= DIRECT_MIN_BYTES ? write_direct(fd, hdr, sizeof hdr, payload, len) : 1;
	if (direct == 0) return fp_file_writer_commit(&w);
	if (direct < 0 || write_all(fd, hdr, sizeof hdr) != 0 || (len > 0 && write_all(fd, payload, len) != 0)) {
		enum fp_status st = FP_FAIL(FP_ERR_IO, "writing %s failed: %s", path, strerror(errno));
		fp_file_writer_abort(&w);
		return st;
	}
	return fp_file_writer_commit(&w);
}

enum fp_status fp_file_read_framed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                   uint32_t max_version, size_t max_len, uint32_t *version,
                                   void **payload, size_t *len)
{
	enum fp_status st;
	uint8_t hdr[FP_FRAME_HEADER_SIZE];
	uint8_t digest[FP_SHA256_SIZE];
	uint8_t *buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		return FP_FAIL(errno == ENOENT ? FP_ERR_NOT_FOUND : FP_ERR_IO, "cannot open %s: %s", path,
		               strerror(errno));
	}
	if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: file is shorter than its %d-byte header (truncated or not a fedpath file)",
		             path, FP_FRAME_HEADER_SIZE);
		goto fail;
	}
	if (memcmp(hdr, magic, FP_FRAME_MAGIC_SIZE) != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: wrong magic (expected a %.8s file)", path, magic);
		goto fail;
	}
	uint32_t ver = get_u32(hdr + 8);
	uint32_t hver = get_u32(hdr + 12);
	uint64_t plen = get_u64(hdr + 16);
	if (hver != FRAME_HEADER_VERSION) {
		st = FP_FAIL(FP_ERR_VERSION, "%s: frame header version %u is not supported (this build reads %u)", path,
		             hver, FRAME_HEADER_VERSION);
		goto fail;
	}
	if (ver == 0 || ver > max_version) {
		st = FP_FAIL(FP_ERR_VERSION, "%s: format version %u is not supported (this build reads 1 to %u)", path, ver,
		             max_version);
		goto fail;
	}
	if (plen > (uint64_t)max_len) {
		st = FP_FAIL(FP_ERR_LIMIT, "%s: payload length %llu is above the limit of %zu bytes", path,
		             (unsigned long long)plen, max_len);
		goto fail;
	}
	size_t n = (size_t)plen;
	buf = malloc(n ? n : 1);
	if (!buf) {
		st = FP_FAIL(FP_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
		goto fail;
	}
	if (fread(buf, 1, n, f) != n) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: truncated: header says %zu payload bytes", path, n);
		goto fail;
	}
	if (fgetc(f) != EOF) {
		st = FP_FAIL(FP_ERR_FORMAT, "%s: trailing bytes after the %zu-byte payload", path, n);
		goto fail;
	}
	FP_CHECK(st, fp_sha256(buf, n, digest));
	if (memcmp(digest, hdr + 24, FP_SHA256_SIZE) != 0) {
		st = FP_FAIL(FP_ERR_CHECKSUM, "%s: SHA-256 of the payload does not match the header (file corrupted)", path);
		goto fail;
	}
	fclose(f);
	*version = ver;
	*payload = buf;
	*len = n;
	return FP_OK;
fail:
	free(buf);
	fclose(f);
	return st;
}
