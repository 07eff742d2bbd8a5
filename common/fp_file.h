/*
 * fp_file.h: durable writes, and the framed file format.
 *
 * Durable write: every file fedpath produces is written to a temporary file in
 * the target's own folder, flushed, fsync'ed, renamed over the target, and the
 * folder fsync'ed. A reader therefore sees the old file or the new one, never
 * a mix; a failed fsync is final (the temporary is removed, the target stays as
 * it was). Temporary names are "<name>.tmp.<pid>.<n>" and never look complete.
 *
 * Framed files: a 64-byte header then the payload.
 *   offset  size  field
 *   0       8     magic (caller's, e.g. "FPCKPT\0\0")
 *   8       4     format version, little-endian uint32
 *   12      4     header version (1), little-endian uint32
 *   16      8     payload length, little-endian uint64
 *   24      32    SHA-256 of the payload
 *   56      8     zero
 * fp_file_read_framed() refuses a wrong magic (FP_ERR_FORMAT), a version above
 * the caller's maximum (FP_ERR_VERSION), a length above the caller's limit
 * (FP_ERR_LIMIT) before allocating, a short file (FP_ERR_FORMAT) and a hash
 * mismatch (FP_ERR_CHECKSUM); each message names the file.
 */
#ifndef FP_FILE_H
#define FP_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fp_status.h"

#define FP_FRAME_HEADER_SIZE 64
#define FP_FRAME_MAGIC_SIZE 8

/* Atomically replaces `path` with `len` bytes of `data`, file mode `mode`
 * (e.g. 0644, 0600 for keys). */
enum fp_status fp_file_commit(const char *path, const void *data, size_t len, unsigned mode);
/* As fp_file_commit (readers see the old or the new file whole) but without
 * fsync: after a power loss the old file or neither may remain. Only for
 * files a process rewrites from its own state (status displays), never for
 * anything a restart reads. */
enum fp_status fp_file_replace(const char *path, const void *data, size_t len, unsigned mode);

/* Streaming form, for writers that produce data piece by piece.
 * open -> fwrite to w->fp -> commit (or abort). abort and commit accept a
 * writer that failed to open. After either, the struct holds no resources. */
struct fp_file_writer {
	FILE *fp;             /* owned; write here */
	char *tmp_path;       /* owned */
	char *final_path;     /* owned */
	unsigned mode;
};
enum fp_status fp_file_writer_open(struct fp_file_writer *w, const char *path, unsigned mode);
enum fp_status fp_file_writer_commit(struct fp_file_writer *w);
void fp_file_writer_abort(struct fp_file_writer *w);

/* For files written by a library that wants a path (HDF5, libtiff): fsync
 * `tmp_path`, rename it to `final_path`, fsync the folder. Both must be in the
 * same folder. */
enum fp_status fp_file_publish(const char *tmp_path, const char *final_path);

/* fsync a folder (after creating or renaming entries in it). */
enum fp_status fp_dir_sync(const char *dir);

/* Takes an exclusive lock on `dir`/`name` (created, mode 0640) so that two
 * processes never work in one folder at once. The lock belongs to the open
 * file: it is released when the holder and every child it forked have exited,
 * never left behind by a killed process. A lock held elsewhere is waited for
 * up to `wait_s` seconds (a killed run's last children take a moment to go),
 * then FP_ERR_STATE names the holder's pid, as written in the file. On success
 * *fd is the lock (close it to release; it is O_CLOEXEC). */
enum fp_status fp_dir_lock(const char *dir, const char *name, double wait_s, int *fd);

/* mkdir -p with `mode` for created folders. */
enum fp_status fp_mkdir_p(const char *path, unsigned mode);

/* Reads a whole file of at most `max_len` bytes into a new buffer
 * (NUL-terminated for convenience; *len excludes the NUL). Free with free(). */
enum fp_status fp_file_read_all(const char *path, size_t max_len, char **data, size_t *len);

/* Framed files (header above). `magic` is exactly 8 bytes. */
enum fp_status fp_file_commit_framed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                     uint32_t version, const void *payload, size_t len,
                                     unsigned mode);
/* The same with the payload's SHA-256 already at hand (the caller hashed the
 * payload for its own records): not computed a second time. */
enum fp_status fp_file_commit_framed_hashed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                            uint32_t version, const void *payload, size_t len,
                                            const uint8_t sha256[32], unsigned mode);
/* On success *payload is owned by the caller (free()). */
enum fp_status fp_file_read_framed(const char *path, const char magic[FP_FRAME_MAGIC_SIZE],
                                   uint32_t max_version, size_t max_len, uint32_t *version,
                                   void **payload, size_t *len);

#endif
