/*
 * test_train_fault.c: checkpoints under a full disk (fault tier).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_test.h"
#include "fp_train.h"

static struct fp_trainer *tiny_trainer(struct fp_kernels **k, struct fp_model **m)
{
	struct fp_kernels_options ko;
	struct fp_tilenet_config c;
	struct fp_train_options o;
	struct fp_trainer *t = NULL;
	fp_kernels_options_default(&ko);
	ko.threads = 1;
	CHECK_OK(fp_kernels_create(&ko, k));
	fp_tilenet_config_default(&c);
	c.input_size = 16;
	CHECK_OK(fp_model_create_tilenet(*k, &c, 2, 1, m));
	fp_train_options_default(&o);
	CHECK_OK(fp_trainer_create(*m, &o, &t));
	return t;
}

static void one_step(struct fp_trainer *t, struct fp_model *m)
{
	size_t per = fp_model_input_floats(m);
	float *x = calloc(per * 2, sizeof(float));
	int32_t y[2] = {0, 3};
	for (size_t i = 0; i < per * 2; i++) x[i] = (float)(i % 17) / 17.0f;
	CHECK_OK(fp_trainer_step(t, x, y, 2, NULL));
	free(x);
}

/* Statement: when writing a checkpoint fails (disk full), the save fails with
 * FP_ERR_IO, no partial file is left, and the previous checkpoint at the same
 * path is intact. The full disk is a file-size limit (RLIMIT_FSIZE). */
FP_TEST(disk_full_keeps_previous_checkpoint)
{
	struct fp_kernels *k;
	struct fp_model *m;
	struct fp_trainer *t = tiny_trainer(&k, &m);
	char path[4096], partial[4200];
	struct stat sb;
	struct rlimit old, lim;
	snprintf(path, sizeof path, "%s/site.ckpt.h5", fp_test_tmpdir());
	snprintf(partial, sizeof partial, "%s.partial", path);
	one_step(t, m);
	CHECK_OK(fp_checkpoint_save(t, NULL, path));
	CHECK(stat(path, &sb) == 0);
	one_step(t, m);
	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size / 2;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	enum fp_status st = fp_checkpoint_save(t, NULL, path);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK_STATUS(st, FP_ERR_IO);
	CHECK_STR_CONTAINS(fp_error_msg(), "site.ckpt.h5");
	CHECK(access(partial, F_OK) != 0);
	/* The old file still loads and is the step-1 state. */
	struct fp_trainer *t2 = NULL;
	struct fp_train_options o;
	fp_train_options_default(&o);
	CHECK_OK(fp_trainer_create(m, &o, &t2));
	CHECK_OK(fp_checkpoint_load(t2, NULL, path));
	CHECK_INT_EQ(fp_trainer_step_count(t2), 1);
	fp_trainer_destroy(t2);
	fp_trainer_destroy(t);
	fp_model_destroy(m);
	fp_kernels_destroy(k);
}

/* Statement: a truncated checkpoint is refused with a message naming it. */
FP_TEST(truncated_checkpoint_is_refused)
{
	struct fp_kernels *k;
	struct fp_model *m;
	struct fp_trainer *t = tiny_trainer(&k, &m);
	char path[4096];
	snprintf(path, sizeof path, "%s/cut.h5", fp_test_tmpdir());
	CHECK_OK(fp_checkpoint_save(t, NULL, path));
	struct stat sb;
	CHECK(stat(path, &sb) == 0);
	CHECK(truncate(path, sb.st_size / 3) == 0);
	enum fp_status st = fp_checkpoint_load(t, NULL, path);
	CHECK(st == FP_ERR_FORMAT || st == FP_ERR_IO);
	CHECK_STR_CONTAINS(fp_error_msg(), "cut.h5");
	fp_trainer_destroy(t);
	fp_model_destroy(m);
	fp_kernels_destroy(k);
}
