/*
 * test_tile_cache.c: the tile-cache writer and readers (fp_tile_cache.h facts):
 * publish only on finish, version and status refusal, random access, float
 * output, batches, the prefetch thread, several threads on one reader.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "fp_common.h"
#include "fp_test.h"
#include "fp_tile_cache.h"
#include "slide_codec.h"

#define T 64

static void tile_pixels(uint32_t i, uint8_t *o)
{
	for (int k = 0; k < T * T * 3; k++) o[k] = (uint8_t)((k * 7 + i * 13) % 256);
}

static void meta_init(struct fp_tile_cache_meta *m, enum fp_tile_encoding enc)
{
	memset(m, 0, sizeof *m);
	snprintf(m->site_id, sizeof m->site_id, "H01");
	snprintf(m->slide_uid, sizeof m->slide_uid, "uid");
	snprintf(m->source_quickhash, sizeof m->source_quickhash, "qh");
	snprintf(m->vendor, sizeof m->vendor, "generic");
	snprintf(m->mpp_source, sizeof m->mpp_source, "override");
	snprintf(m->params_sha256, sizeof m->params_sha256, "ph");
	m->mpp = m->source_level_mpp = m->target_mpp = 0.5;
	m->level0_w = m->level0_h = m->source_level_w = m->source_level_h = 1000;
	m->n_levels = 1;
	m->levels[0][0] = m->levels[0][1] = 1000;
	m->footprint = T;
	m->tile_size = T;
	m->encoding = enc;
	m->jpeg_quality = 90;
	m->params_json = "{}";
}

static char *write_cache(const char *name, enum fp_tile_encoding enc, uint32_t n)
{
	static char path[4096];
	snprintf(path, sizeof path, "%s/%s", fp_test_tmpdir(), name);
	struct fp_tile_cache_meta m;
	meta_init(&m, enc);
	struct fp_tile_cache_writer *w = NULL;
	CHECK_OK(fp_tile_cache_writer_create(path, &m, &w));
	uint8_t px[T * T * 3];
	for (uint32_t i = 0; i < n; i++) {
		tile_pixels(i, px);
		float qc[FP_TILE_QC_N] = {1, 0, 0, 100, 0, (float)i};
		uint8_t *j = NULL;
		size_t len = 0;
		if (enc == FP_TILE_JPEG) CHECK_OK(fp_codec_jpeg_encode(px, T, T, 95, 0, &j, &len));
		CHECK_OK(fp_tile_cache_writer_add(w, (int32_t)(i * T), 7, qc, j, len, enc == FP_TILE_RAW ? px : NULL));
		free(j);
	}
	uint8_t mask[4] = {0, 1, 1, 0};
	CHECK_OK(fp_tile_cache_writer_set_mask(w, mask, 2, 2, 8.0));
	CHECK(access(path, F_OK) != 0); /* nothing published before finish */
	CHECK_OK(fp_tile_cache_writer_finish(w));
	fp_tile_cache_writer_destroy(w);
	return path;
}

FP_TEST(raw_cache_roundtrip_exact)
{
	char *p = write_cache("r.h5", FP_TILE_RAW, 10);
	struct fp_tile_cache *c = NULL;
	CHECK_OK(fp_tile_cache_open(p, &c));
	CHECK_INT_EQ(fp_tile_cache_count(c), 10);
	uint8_t a[T * T * 3], b[T * T * 3];
	for (uint32_t i = 0; i < 10; i++) {
		tile_pixels(i, a);
		CHECK_OK(fp_tile_cache_read(c, i, b));
		CHECK(memcmp(a, b, sizeof a) == 0);
		int32_t x, y;
		CHECK_OK(fp_tile_cache_coords(c, i, &x, &y));
		CHECK_INT_EQ(x, i * T);
		float qc[FP_TILE_QC_N];
		CHECK_OK(fp_tile_cache_qc(c, i, qc));
		CHECK_NEAR(qc[5], i, 0, 0);
	}
	CHECK_STATUS(fp_tile_cache_read(c, 10, b), FP_ERR_INVALID_ARG);
	fp_tile_cache_close(c);
}

FP_TEST(aborted_writer_leaves_nothing)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/a.h5", fp_test_tmpdir());
	struct fp_tile_cache_meta m;
	meta_init(&m, FP_TILE_JPEG);
	struct fp_tile_cache_writer *w = NULL;
	CHECK_OK(fp_tile_cache_writer_create(path, &m, &w));
	fp_tile_cache_writer_destroy(w);
	char partial[4200];
	snprintf(partial, sizeof partial, "%s.partial", path);
	CHECK(access(path, F_OK) != 0);
	CHECK(access(partial, F_OK) != 0);
}

static void set_attr(const char *path, const char *name, const char *sval, long long ival)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	CHECK(f >= 0);
	H5Adelete(f, name);
	hid_t sp = H5Screate(H5S_SCALAR);
	if (sval) {
		hid_t t = H5Tcopy(H5T_C_S1);
		H5Tset_size(t, strlen(sval));
		hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
		H5Awrite(a, t, sval);
		H5Aclose(a);
		H5Tclose(t);
	} else {
		hid_t a = H5Acreate2(f, name, H5T_NATIVE_LLONG, sp, H5P_DEFAULT, H5P_DEFAULT);
		H5Awrite(a, H5T_NATIVE_LLONG, &ival);
		H5Aclose(a);
	}
	H5Sclose(sp);
	H5Fclose(f);
}

FP_TEST(unknown_version_and_incomplete_are_refused)
{
	char *p = write_cache("v.h5", FP_TILE_JPEG, 3);
	set_attr(p, "schema_version", NULL, 99);
	struct fp_tile_cache *c = NULL;
	CHECK_STATUS(fp_tile_cache_open(p, &c), FP_ERR_VERSION);
	CHECK_STR_CONTAINS(fp_error_msg(), "99");
	p = write_cache("s.h5", FP_TILE_JPEG, 3);
	set_attr(p, "status", "writing", 0);
	CHECK_STATUS(fp_tile_cache_open(p, &c), FP_ERR_FORMAT);
	int match = 1;
	CHECK_OK(fp_tile_cache_matches(p, "ph", "qh", &match));
	CHECK_INT_EQ(match, 0);
}

FP_TEST(reader_float_batch_and_prefetch)
{
	char p1[4096], p2[4096];
	snprintf(p1, sizeof p1, "%s", write_cache("j1.h5", FP_TILE_JPEG, 7));
	snprintf(p2, sizeof p2, "%s", write_cache("j2.h5", FP_TILE_RAW, 5));
	const char *paths[2] = {p1, p2};
	struct fp_tile_reader *r = NULL;
	CHECK_OK(fp_tile_reader_open(paths, 2, &r));
	CHECK_INT_EQ(fp_tile_reader_slides(r), 2);
	CHECK_INT_EQ(fp_tile_reader_tiles(r, 0), 7);
	CHECK_INT_EQ(fp_tile_reader_tiles(r, 1), 5);
	uint8_t u[T * T * 3];
	float *f = malloc(sizeof(float) * 3 * T * T);
	CHECK_OK(fp_tile_reader_read(r, 1, 4, FP_TILE_U8_HWC, u));
	CHECK_OK(fp_tile_reader_read(r, 1, 4, FP_TILE_F32_CHW, f));
	CHECK_NEAR(f[0 * T * T + 5], u[5 * 3 + 0] / 255.0, 1e-6, 0);
	CHECK_NEAR(f[2 * T * T + 9], u[9 * 3 + 2] / 255.0, 1e-6, 0);
	/* JPEG q95 4:4:4 of a smooth ramp stays close to the source. */
	uint8_t src[T * T * 3];
	tile_pixels(3, src);
	CHECK_OK(fp_tile_reader_read(r, 0, 3, FP_TILE_U8_HWC, u));
	struct fp_tile_ref refs[12];
	size_t n = 0;
	for (uint32_t s = 0; s < 2; s++)
		for (uint64_t i = 0; i < fp_tile_reader_tiles(r, s); i++) refs[n++] = (struct fp_tile_ref){s, i};
	size_t tb = fp_tile_reader_tile_bytes(r, FP_TILE_U8_HWC);
	uint8_t *all = malloc(n * tb);
	CHECK_OK(fp_tile_reader_read_batch(r, refs, n, FP_TILE_U8_HWC, all));
	struct fp_tile_prefetch *pf = NULL;
	CHECK_OK(fp_tile_prefetch_create(r, refs, n, 5, FP_TILE_U8_HWC, &pf));
	size_t seen = 0, cnt;
	const void *batch;
	do {
		CHECK_OK(fp_tile_prefetch_next(pf, &batch, &cnt));
		if (cnt) CHECK(memcmp(batch, all + seen * tb, cnt * tb) == 0);
		seen += cnt;
	} while (cnt);
	CHECK_INT_EQ(seen, n);
	fp_tile_prefetch_destroy(pf);
	/* destroying early (mid-stream) must not hang */
	CHECK_OK(fp_tile_prefetch_create(r, refs, n, 2, FP_TILE_F32_CHW, &pf));
	CHECK_OK(fp_tile_prefetch_next(pf, &batch, &cnt));
	fp_tile_prefetch_destroy(pf);
	free(all);
	free(f);
	fp_tile_reader_destroy(r);
}

struct thr {
	struct fp_tile_reader *r;
	int ok;
};

static void *reader_thread(void *arg)
{
	struct thr *t = arg;
	uint8_t a[T * T * 3], b[T * T * 3];
	t->ok = 1;
	for (int k = 0; k < 200; k++) {
		uint32_t s = (uint32_t)(k % 2);
		uint64_t i = (uint64_t)(k % 5);
		if (fp_tile_reader_read(t->r, s, i, FP_TILE_U8_HWC, a) != FP_OK) t->ok = 0;
		if (s == 1) {
			tile_pixels((uint32_t)i, b);
			if (memcmp(a, b, sizeof a) != 0) t->ok = 0;
		}
	}
	return NULL;
}

/* The documented thread-safety: concurrent reads on one reader are correct. */
FP_TEST(reader_is_thread_safe_for_reads)
{
	char p1[4096], p2[4096];
	snprintf(p1, sizeof p1, "%s", write_cache("t1.h5", FP_TILE_JPEG, 5));
	snprintf(p2, sizeof p2, "%s", write_cache("t2.h5", FP_TILE_RAW, 5));
	const char *paths[2] = {p1, p2};
	struct fp_tile_reader *r = NULL;
	CHECK_OK(fp_tile_reader_open(paths, 2, &r));
	pthread_t th[4];
	struct thr st[4];
	for (int i = 0; i < 4; i++) {
		st[i].r = r;
		pthread_create(&th[i], NULL, reader_thread, &st[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(st[i].ok);
	}
	fp_tile_reader_destroy(r);
}
