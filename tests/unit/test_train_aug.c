/*
 * test_train_aug.c: augmentation as a backend op in the trainer
 * (fp_trainer_step_tiles) and the data-parallel path choice (train/dist.c).
 * gpu_* cases need a CUDA device (label gpu; exit 77 = skipped).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_model.h"
#include "fp_site_train.h"
#include "fp_train.h"
#include "fp_train_dist.h"
#include "fp_test.h"
#include "train_internal.h"

enum { T = 16, S = 8, B = 6, STEPS = 4 };

static struct fp_kernels *open_backend(int cuda)
{
	struct fp_kernels_options o;
	struct fp_kernels *k = NULL;
	fp_kernels_options_default(&o);
	o.threads = 1;
	if (cuda) {
		o.backend = FP_BACKEND_CUDA;
		o.require = 1;
		if (fp_kernels_create(&o, &k) != FP_OK) {
			fprintf(stderr, "SKIP: no CUDA device (%s)\n", fp_error_msg());
			exit(77);
		}
		return k;
	}
	CHECK_OK(fp_kernels_create(&o, &k));
	return k;
}

static void tiny_config(struct fp_tilenet_config *c)
{
	fp_tilenet_config_default(c);
	c->input_size = S;
	c->width[0] = 4;
	c->width[1] = 4;
	c->width[2] = 8;
	c->blocks = 1;
	c->groups = 2;
}

/* Tiles and labels of step `step` (pure function of it). */
static void batch(long step, uint8_t *rgb, int32_t *y, int n, int tile)
{
	uint64_t z = 0x9E3779B97F4A7C15ULL * (uint64_t)(step + 1);
	for (size_t i = 0; i < (size_t)n * tile * tile * 3; i++) {
		z ^= z << 13;
		z ^= z >> 7;
		z ^= z << 17;
		rgb[i] = (uint8_t)(z >> 24);
	}
	for (int i = 0; i < n; i++) y[i] = (int32_t)((step * 3 + i) % FP_TME_N_CLASSES);
}

static const struct fp_augment every = {1, 1, 0.05, 0.1, 0.1};

/* Statement: on the CPU, training from uint8 tiles with the op gives the
 * same losses and parameters, bit for bit, as the host input of
 * fp_tile_to_input (what `fedpath train` did before), so checkpoints and
 * --resume of earlier runs stay exact. */
FP_TEST(step_tiles_equals_host_input)
{
	struct fp_kernels *k = open_backend(0);
	struct fp_tilenet_config c;
	struct fp_model *ma = NULL, *mb = NULL;
	struct fp_trainer *ta = NULL, *tb = NULL;
	struct fp_train_options to;
	tiny_config(&c);
	CHECK_OK(fp_model_create_tilenet(k, &c, B, 5, &ma));
	CHECK_OK(fp_model_create_tilenet(k, &c, B, 5, &mb));
	fp_train_options_default(&to);
	CHECK_OK(fp_trainer_create(ma, &to, &ta));
	CHECK_OK(fp_trainer_create(mb, &to, &tb));
	size_t per = fp_model_input_floats(ma), np = fp_model_n_params(ma);
	uint8_t *rgb = malloc((size_t)B * T * T * 3);
	float *x = malloc(per * B * sizeof(float)), *wa = malloc(np * sizeof(float)), *wb = malloc(np * sizeof(float));
	int32_t y[B];
	struct fp_tile_aug draws[B];
	for (long s = 0; s < STEPS; s++) {
		struct fp_step_stats a, b;
		batch(s, rgb, y, B, T);
		for (int i = 0; i < B; i++) {
			uint64_t d = (uint64_t)s * B + (uint64_t)i;
			CHECK_OK(fp_tile_to_input(rgb + (size_t)i * T * T * 3, T, S, &every, 42, d, x + (size_t)i * per));
			fp_augment_draw(&every, 42, d, &draws[i]);
		}
		CHECK_OK(fp_trainer_step(ta, x, y, B, &a));
		CHECK_OK(fp_trainer_step_tiles(tb, rgb, T, draws, y, B, &b));
		CHECK_MSG(a.loss == b.loss, "step %ld: loss %.9g (host input) vs %.9g (op)", s, (double)a.loss, (double)b.loss);
	}
	CHECK_OK(fp_model_get_params(ma, wa, np));
	CHECK_OK(fp_model_get_params(mb, wb, np));
	CHECK(memcmp(wa, wb, np * sizeof(float)) == 0);
	/* Wrong shapes are refused before any work. */
	CHECK_STATUS(fp_trainer_step_tiles(tb, rgb, 12, NULL, y, B, NULL), FP_ERR_INVALID_ARG);
	CHECK_STATUS(fp_trainer_step_tiles(tb, rgb, T, NULL, y, B + 1, NULL), FP_ERR_INVALID_ARG);
	CHECK_INT_EQ(fp_trainer_step_count(tb), STEPS);
	free(rgb);
	free(x);
	free(wa);
	free(wb);
	fp_trainer_destroy(ta);
	fp_trainer_destroy(tb);
	fp_model_destroy(ma);
	fp_model_destroy(mb);
	fp_kernels_destroy(k);
}

/* What `ompi_info` says: 1 built with CUDA, 0 not, -1 unknown (no ompi_info). */
static int ompi_info_built_with_cuda(void)
{
	FILE *p = popen("ompi_info --parsable --all 2>/dev/null", "r");
	char line[512];
	int r = -1;
	if (!p) return -1;
	while (fgets(line, sizeof line, p))
		if (strstr(line, "opal_built_with_cuda_support:value:")) r = strstr(line, ":value:true") != NULL;
	pclose(p);
	return r;
}

/* Statement: gradients of a CPU backend take the host path; a CUDA backend
 * takes the device path only when the MPI library reports CUDA support, and
 * FEDPATH_DIST_HOST=1 forces the host path (FEDPATH_DIST_DEVICE=1 the device
 * path, which train_dist runs on CPU memory); each answer carries the reason
 * that is logged. Where ompi_info says Open MPI was built without CUDA (as
 * Debian's), the answer must be "not CUDA-aware". The device path itself
 * needs a GPU and a CUDA-aware MPI (docs/TRAINING.md). */
FP_TEST(dist_path_detection)
{
	char why[300], mpi[300];
	unsetenv("FEDPATH_DIST_DEVICE");
	CHECK_INT_EQ(fp_train_dist_device_path(FP_BACKEND_CPU, why, sizeof why), 0);
	CHECK_MSG(strstr(why, "CPU backend") != NULL, "reason: %s", why);
	int aware = fp_train_dist_mpi_cuda_aware(mpi, sizeof mpi);
	CHECK(aware == 0 || aware == 1);
	CHECK_MSG(strstr(mpi, "MPIX_") != NULL, "reason names no MPIX_ symbol: %s", mpi);
	unsetenv("FEDPATH_DIST_HOST");
	CHECK_INT_EQ(fp_train_dist_device_path(FP_BACKEND_CUDA, why, sizeof why), aware);
	CHECK_MSG(strstr(why, aware ? "CUDA-aware MPI" : "not CUDA-aware MPI") != NULL, "reason: %s", why);
	CHECK(setenv("FEDPATH_DIST_HOST", "1", 1) == 0);
	CHECK_INT_EQ(fp_train_dist_device_path(FP_BACKEND_CUDA, why, sizeof why), 0);
	CHECK_MSG(strstr(why, "FEDPATH_DIST_HOST") != NULL, "reason: %s", why);
	unsetenv("FEDPATH_DIST_HOST");
	CHECK(setenv("FEDPATH_DIST_DEVICE", "1", 1) == 0);
	CHECK_INT_EQ(fp_train_dist_device_path(FP_BACKEND_CPU, why, sizeof why), 1);
	CHECK_MSG(strstr(why, "FEDPATH_DIST_DEVICE") != NULL, "reason: %s", why);
	unsetenv("FEDPATH_DIST_DEVICE");
	int built = ompi_info_built_with_cuda();
	printf("MPI: %s (ompi_info built_with_cuda_support: %d)\n", mpi, built);
	if (built == 0) {
		CHECK_INT_EQ(aware, 0);
		CHECK_MSG(strstr(mpi, "built without CUDA") != NULL || strstr(mpi, "no CUDA support") != NULL,
		          "reason: %s", mpi);
	}
	/* Without MPI_Init there is no world to join: single process. */
	struct fp_train_dist *d = (struct fp_train_dist *)1;
	struct fp_kernels *k = open_backend(0);
	CHECK_OK(fp_train_dist_create(k, 10, &d));
	CHECK(d == NULL);
	CHECK_INT_EQ(fp_train_dist_on_device(d), 0);
	fp_kernels_destroy(k);
}

/* Statement (GPU): training from uint8 tiles augmented on the device gives
 * losses within 1e-3 relative of the CPU op's (the inputs agree to 1e-5,
 * gpu_augment_tiles in test_kernels; the network's GPU/CPU agreement is
 * gpu_matches_cpu's). Prints tiles/s of the default model at batch 128 from
 * uint8 tiles vs from host floats. */
FP_TEST(gpu_step_tiles_matches_cpu)
{
	setenv("NVIDIA_TF32_OVERRIDE", "0", 0); /* the statement is about fp32 */
	struct fp_kernels *kg = open_backend(1), *kc = open_backend(0);
	struct fp_tilenet_config c;
	struct fp_train_options to;
	struct fp_model *mc = NULL, *mg = NULL;
	struct fp_trainer *tc = NULL, *tg = NULL;
	tiny_config(&c);
	fp_train_options_default(&to);
	CHECK_OK(fp_model_create_tilenet(kc, &c, B, 5, &mc));
	CHECK_OK(fp_model_create_tilenet(kg, &c, B, 5, &mg));
	CHECK_OK(fp_trainer_create(mc, &to, &tc));
	CHECK_OK(fp_trainer_create(mg, &to, &tg));
	uint8_t *rgb = malloc((size_t)128 * 64 * 64 * 3);
	int32_t y[128];
	struct fp_tile_aug draws[128];
	for (long s = 0; s < STEPS; s++) {
		struct fp_step_stats a, b;
		batch(s, rgb, y, B, T);
		for (int i = 0; i < B; i++) fp_augment_draw(&every, 42, (uint64_t)s * B + (uint64_t)i, &draws[i]);
		CHECK_OK(fp_trainer_step_tiles(tc, rgb, T, draws, y, B, &a));
		CHECK_OK(fp_trainer_step_tiles(tg, rgb, T, draws, y, B, &b));
		CHECK_NEAR(b.loss, a.loss, 1e-5, 1e-3);
	}
	fp_trainer_destroy(tc);
	fp_trainer_destroy(tg);
	fp_model_destroy(mc);
	fp_model_destroy(mg);
	/* Throughput: 64x64 tiles, batch 128, default model. */
	struct fp_model *m = NULL;
	struct fp_trainer *t = NULL;
	fp_tilenet_config_default(&c);
	int bn = 128, steps = 20;
	CHECK_OK(fp_model_create_tilenet(kg, &c, bn, 1, &m));
	CHECK_OK(fp_trainer_create(m, &to, &t));
	size_t per = fp_model_input_floats(m);
	float *x = malloc(per * bn * sizeof(float));
	batch(0, rgb, y, bn, 64);
	for (int i = 0; i < bn; i++) {
		fp_augment_draw(&every, 1, (uint64_t)i, &draws[i]);
		CHECK_OK(fp_tile_to_input(rgb + (size_t)i * 64 * 64 * 3, 64, c.input_size, &every, 1, (uint64_t)i,
		                          x + (size_t)i * per));
	}
	for (int mode = 0; mode < 2; mode++) {
		CHECK_OK(mode ? fp_trainer_step_tiles(t, rgb, 64, draws, y, bn, NULL) : fp_trainer_step(t, x, y, bn, NULL));
		double t0 = fp_now_seconds();
		for (int s = 0; s < steps; s++) {
			if (mode) {
				CHECK_OK(fp_trainer_step_tiles(t, rgb, 64, draws, y, bn, NULL));
			} else {
				/* The host work of the old path is part of its step. */
				for (int i = 0; i < bn; i++)
					CHECK_OK(fp_tile_to_input(rgb + (size_t)i * 64 * 64 * 3, 64, c.input_size, &every, 1,
					                          (uint64_t)i, x + (size_t)i * per));
				CHECK_OK(fp_trainer_step(t, x, y, bn, NULL));
			}
		}
		CHECK_OK(fp_kernels_sync(kg));
		double dt = fp_now_seconds() - t0;
		printf("tilenet 64x64 batch %d on %s, %s: %.1f tiles/s\n", bn, fp_kernels_describe(kg),
		       mode ? "uint8 tiles augmented on the GPU" : "host augmentation + float upload", steps * bn / dt);
	}
	free(x);
	free(rgb);
	fp_trainer_destroy(t);
	fp_model_destroy(m);
	fp_kernels_destroy(kg);
	fp_kernels_destroy(kc);
}
