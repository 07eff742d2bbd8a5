/*
 * fp_hash.h: SHA-256 through OpenSSL's EVP interface.
 * Digests are 32 bytes; hex strings are 64 lowercase characters + NUL.
 */
#ifndef FP_HASH_H
#define FP_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

#define FP_SHA256_SIZE 32
#define FP_SHA256_HEX_SIZE 65

struct fp_sha256; /* opaque */

enum fp_status fp_sha256_create(struct fp_sha256 **out);
enum fp_status fp_sha256_update(struct fp_sha256 *h, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
enum fp_status fp_sha256_final(struct fp_sha256 *h, uint8_t out[FP_SHA256_SIZE]);
void fp_sha256_destroy(struct fp_sha256 *h);

enum fp_status fp_sha256(const void *data, size_t len, uint8_t out[FP_SHA256_SIZE]);
/* SHA-256 of a whole file, streamed. */
enum fp_status fp_sha256_file(const char *path, uint8_t out[FP_SHA256_SIZE]);
void fp_hex_encode(const uint8_t *bytes, size_t n, char *out /* 2n+1 */);

#endif
