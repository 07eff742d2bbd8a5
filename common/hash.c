/*
 * hash.c: SHA-256 over OpenSSL EVP (fp_hash.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fp_hash.h"

struct fp_sha256 {
	EVP_MD_CTX *ctx;
};

enum fp_status fp_sha256_create(struct fp_sha256 **out)
{
	struct fp_sha256 *h = calloc(1, sizeof *h);
	if (!h) return FP_FAIL(FP_ERR_NOMEM, "sha256: out of memory");
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		fp_sha256_destroy(h);
		return FP_FAIL(FP_ERR_INTERNAL, "sha256: OpenSSL digest initialisation failed");
	}
	*out = h;
	return FP_OK;
}

enum fp_status fp_sha256_update(struct fp_sha256 *h, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
		return FP_FAIL(FP_ERR_INTERNAL, "sha256: OpenSSL digest update failed");
	return FP_OK;
}

enum fp_status fp_sha256_final(struct fp_sha256 *h, uint8_t out[FP_SHA256_SIZE])
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != FP_SHA256_SIZE ||
	    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		return FP_FAIL(FP_ERR_INTERNAL, "sha256: OpenSSL digest final failed");
	return FP_OK;
}

void fp_sha256_destroy(struct fp_sha256 *h)
{
	if (!h) return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

enum fp_status fp_sha256(const void *data, size_t len, uint8_t out[FP_SHA256_SIZE])
{
	unsigned int n = 0;
	if (EVP_Digest(len ? data : "", len, out, &n, EVP_sha256(), NULL) != 1 || n != FP_SHA256_SIZE)
		return FP_FAIL(FP_ERR_INTERNAL, "sha256: OpenSSL digest failed");
	return FP_OK;
}

enum fp_status fp_sha256_file(const char *path, uint8_t out[FP_SHA256_SIZE])
{
	enum fp_status st;
	struct fp_sha256 *h = NULL;
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return FP_FAIL(errno == ENOENT ? FP_ERR_NOT_FOUND : FP_ERR_IO, "cannot open %s: %s", path,
		               strerror(errno));
	FP_CHECK(st, fp_sha256_create(&h));
	buf = malloc(1 << 20);
	if (!buf) {
		st = FP_FAIL(FP_ERR_NOMEM, "sha256 of %s: out of memory", path);
		goto fail;
	}
	size_t n;
	while ((n = fread(buf, 1, 1 << 20, f)) > 0) FP_CHECK(st, fp_sha256_update(h, buf, n));
	if (ferror(f)) {
		st = FP_FAIL(FP_ERR_IO, "reading %s failed", path);
		goto fail;
	}
	st = fp_sha256_final(h, out);
fail:
	free(buf);
	fp_sha256_destroy(h);
	fclose(f);
	return st;
}

void fp_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}
