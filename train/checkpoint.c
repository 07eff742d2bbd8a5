/*
 * checkpoint.c: trainer checkpoints in HDF5 (fp_train.h; layout in
 * docs/TRAINING.md, "Checkpoints").
 *
 *   /                 attributes: format "fedpath-checkpoint", format_version,
 *                     fedpath_version, model_config, model_config_sha256,
 *                     optimizer, step, n_params
 *   /params/<name>    float32, the tensor's shape
 *   /optim/m/<name>   float32, AdamW first moment (SGD: momentum buffer)
 *   /optim/v/<name>   float32, AdamW second moment
 *   /state            attributes: seed, step, epoch, best_metric, best_epoch,
 *                     bad_epochs, run_config; dataset rng uint64 [seed, step]
 *
 * Non-finite parameters or optimiser state are never written (FP_ERR_NUMERIC).
 * Built in memory (HDF5 core driver), written to "<path>.partial" and published with fp_file_publish (fsync,
 * rename, fsync folder); on any failure the partial file is removed and the
 * file at <path> is left as it was. Readers check every shape against the
 * model before copying anything into it.
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_common.h"
#include "fp_train.h"
#include "trainer_internal.h"

#define CKPT_FORMAT "fedpath-checkpoint"
#define STR_MAX 1024

static void quiet_hdf5(void)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static enum fp_status put_str(hid_t obj, const char *name, const char *value, const char *path)
{
	hid_t type = H5Tcopy(H5T_C_S1), space = -1, attr = -1;
	enum fp_status st = FP_OK;
	H5Tset_size(type, strlen(value) + 1);
	H5Tset_strpad(type, H5T_STR_NULLTERM);
	space = H5Screate(H5S_SCALAR);
	attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr < 0 || H5Awrite(attr, type, value) < 0)
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot write attribute %s", path, name);
	if (attr >= 0) H5Aclose(attr);
	H5Sclose(space);
	H5Tclose(type);
	return st;
}

static enum fp_status put_num(hid_t obj, const char *name, hid_t type, const void *v, const char *path)
{
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	enum fp_status st = FP_OK;
	if (attr < 0 || H5Awrite(attr, type, v) < 0)
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot write attribute %s", path, name);
	if (attr >= 0) H5Aclose(attr);
	H5Sclose(space);
	return st;
}

static enum fp_status get_str(hid_t obj, const char *name, char *buf, size_t size, const char *path)
{
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT), type = -1, mem = -1;
	enum fp_status st = FP_OK;
	if (attr < 0) return FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: attribute %s is missing", path, name);
	type = H5Aget_type(attr);
	size_t len = H5Tget_size(type);
	if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0 || len == 0 || len >= size) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: attribute %s is not a string of at most %zu bytes",
		             path, name, size - 1);
		goto out;
	}
	mem = H5Tcopy(H5T_C_S1);
	H5Tset_size(mem, len);
	if (H5Aread(attr, mem, buf) < 0) st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot read %s", path, name);
	buf[len] = '\0';
out:
	if (mem >= 0) H5Tclose(mem);
	H5Tclose(type);
	H5Aclose(attr);
	return st;
}

static enum fp_status get_num(hid_t obj, const char *name, hid_t type, void *v, const char *path)
{
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
	enum fp_status st = FP_OK;
	if (attr < 0) return FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: attribute %s is missing", path, name);
	hid_t space = H5Aget_space(attr);
	if (H5Sget_simple_extent_npoints(space) != 1 || H5Aread(attr, type, v) < 0)
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: attribute %s is not one number", path, name);
	H5Sclose(space);
	H5Aclose(attr);
	return st;
}

static enum fp_status put_tensor(hid_t grp, const struct fp_param_info *p, const float *data, const char *path)
{
	hsize_t dims[4];
	enum fp_status st = FP_OK;
	for (int i = 0; i < p->ndim; i++) dims[i] = (hsize_t)p->shape[i];
	hid_t space = H5Screate_simple(p->ndim, dims, NULL);
	hid_t ds = H5Dcreate2(grp, p->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot write tensor %s (disk full?)", path, p->name);
	if (ds >= 0) H5Dclose(ds);
	H5Sclose(space);
	return st;
}

static void shape_str(int ndim, const hsize_t *d, char *buf, size_t size)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, size - o, "(");
	for (int i = 0; i < ndim && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%llu", i ? ", " : "", (unsigned long long)d[i]);
	if (o < size) snprintf(buf + o, size - o, ")");
}

/* Reads tensor p from grp after checking its shape. */
static enum fp_status get_tensor(hid_t grp, const char *grp_name, const struct fp_param_info *p, float *data,
                                 const char *path)
{
	hsize_t dims[8], want[4];
	char have_s[128], want_s[128];
	enum fp_status st = FP_OK;
	hid_t ds = H5Dopen2(grp, p->name, H5P_DEFAULT);
	if (ds < 0)
		return FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: %s/%s is missing: it does not fit the configured model",
		               path, grp_name, p->name);
	hid_t space = H5Dget_space(ds);
	int nd = H5Sget_simple_extent_ndims(space);
	int same = nd == p->ndim;
	if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
	for (int i = 0; i < p->ndim; i++) {
		want[i] = (hsize_t)p->shape[i];
		if (same && dims[i] != want[i]) same = 0;
	}
	if (!same) {
		shape_str(nd > 0 && nd <= 8 ? nd : 0, dims, have_s, sizeof have_s);
		shape_str(p->ndim, want, want_s, sizeof want_s);
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: %s/%s has shape %s, the configured model needs %s",
		             path, grp_name, p->name, have_s, want_s);
	} else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot read %s/%s", path, grp_name, p->name);
	}
	H5Sclose(space);
	H5Dclose(ds);
	return st;
}

/* Builds the checkpoint as an HDF5 file image in memory (core driver, no
 * backing store): HDF5 never touches the disk, so a full disk surfaces in
 * write_image below as a plain write error, never inside the library. */
static enum fp_status build_image(struct fp_trainer *t, const struct fp_train_state *s, const char *path,
                                  const float *host, void **image, size_t *image_len)
{
	struct fp_model *m = t->model;
	size_t np = t->n, nt = fp_model_n_tensors(m);
	char cfg[256], hex[FP_SHA256_HEX_SIZE];
	uint8_t dig[FP_SHA256_SIZE];
	enum fp_status st = FP_OK;
	hid_t f = -1, g = -1, go = -1, gm = -1, gv = -1, gs = -1, sp = -1, ds = -1;
	int64_t step = t->step, nparams = (int64_t)np, ver = FP_CHECKPOINT_VERSION;

	fp_tilenet_config_str(fp_model_config(m), cfg, sizeof cfg);
	FP_TRY(fp_sha256(cfg, strlen(cfg), dig));
	fp_hex_encode(dig, FP_SHA256_SIZE, hex);
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_fapl_core(fapl, 1 << 20, 0);
	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	H5Pclose(fapl);
	if (f < 0) return FP_FAIL(FP_ERR_NOMEM, "checkpoint %s: cannot create the in-memory image", path);
	FP_CHECK(st, put_str(f, "format", CKPT_FORMAT, path));
	FP_CHECK(st, put_num(f, "format_version", H5T_NATIVE_INT64, &ver, path));
	FP_CHECK(st, put_str(f, "fedpath_version", fp_version(), path));
	FP_CHECK(st, put_str(f, "model_config", cfg, path));
	FP_CHECK(st, put_str(f, "model_config_sha256", hex, path));
	FP_CHECK(st, put_str(f, "optimizer", t->opt.optimizer == FP_OPT_ADAMW ? "adamw" : "sgd", path));
	FP_CHECK(st, put_num(f, "step", H5T_NATIVE_INT64, &step, path));
	FP_CHECK(st, put_num(f, "n_params", H5T_NATIVE_INT64, &nparams, path));
	g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	go = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	gm = go >= 0 ? H5Gcreate2(go, "m", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
	gv = go >= 0 ? H5Gcreate2(go, "v", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
	gs = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (g < 0 || gm < 0 || gv < 0 || gs < 0) {
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot create groups", path);
		goto fail;
	}
	for (size_t i = 0; i < nt; i++) {
		const struct fp_param_info *p = fp_model_tensor(m, i);
		FP_CHECK(st, put_tensor(g, p, host + p->offset, path));
		FP_CHECK(st, put_tensor(gm, p, host + np + p->offset, path));
		FP_CHECK(st, put_tensor(gv, p, host + 2 * np + p->offset, path));
	}
	if (s) {
		int64_t seed = (int64_t)s->seed, epoch = s->epoch, be = s->best_epoch, bad = s->bad_epochs;
		uint64_t rng[2] = {s->seed, (uint64_t)t->step};
		hsize_t two = 2;
		FP_CHECK(st, put_num(gs, "seed", H5T_NATIVE_INT64, &seed, path));
		FP_CHECK(st, put_num(gs, "step", H5T_NATIVE_INT64, &step, path));
		FP_CHECK(st, put_num(gs, "epoch", H5T_NATIVE_INT64, &epoch, path));
		FP_CHECK(st, put_num(gs, "best_metric", H5T_NATIVE_DOUBLE, &s->best_metric, path));
		FP_CHECK(st, put_num(gs, "best_epoch", H5T_NATIVE_INT64, &be, path));
		FP_CHECK(st, put_num(gs, "bad_epochs", H5T_NATIVE_INT64, &bad, path));
		FP_CHECK(st, put_str(gs, "run_config", s->run_config, path));
		sp = H5Screate_simple(1, &two, NULL);
		ds = H5Dcreate2(gs, "rng", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
		if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rng) < 0) {
			st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot write state/rng", path);
			goto fail;
		}
	}
fail:
	if (ds >= 0) H5Dclose(ds);
	if (sp >= 0) H5Sclose(sp);
	if (gs >= 0) H5Gclose(gs);
	if (gv >= 0) H5Gclose(gv);
	if (gm >= 0) H5Gclose(gm);
	if (go >= 0) H5Gclose(go);
	if (g >= 0) H5Gclose(g);
	if (st == FP_OK && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
		st = FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot flush the in-memory image", path);
	if (st == FP_OK) {
		ssize_t len = H5Fget_file_image(f, NULL, 0);
		*image = len > 0 ? malloc((size_t)len) : NULL;
		if (!*image || H5Fget_file_image(f, *image, (size_t)len) != len) {
			free(*image);
			*image = NULL;
			st = FP_FAIL(FP_ERR_NOMEM, "checkpoint %s: cannot copy the file image (%lld bytes)", path,
			             (long long)len);
		} else {
			*image_len = (size_t)len;
		}
	}
	H5Fclose(f);
	return st;
}

/* Writes the image to tmp; every failure (short write, full disk, close)
 * is FP_ERR_IO naming both paths. */
static enum fp_status write_image(const char *tmp, const char *path, const void *image, size_t len)
{
	FILE *fp = fopen(tmp, "wb");
	if (!fp) return FP_FAIL(FP_ERR_IO, "checkpoint %s: cannot create %s: %s", path, tmp, strerror(errno));
	size_t put = fwrite(image, 1, len, fp);
	int err = put != len || fflush(fp) != 0 ? errno : 0;
	if (fclose(fp) != 0 && !err) err = errno ? errno : EIO;
	if (err || put != len)
		return FP_FAIL(FP_ERR_IO, "checkpoint %s: writing %s failed after %zu of %zu bytes: %s (disk full?)",
		               path, tmp, put, len, strerror(err ? err : EIO));
	return FP_OK;
}

enum fp_status fp_checkpoint_save(struct fp_trainer *t, const struct fp_train_state *s, const char *path)
{
	size_t np = t->n, len;
	float *host = NULL;
	char *tmp = NULL;
	void *image = NULL;
	size_t image_len = 0;
	enum fp_status st;
	quiet_hdf5();
	len = strlen(path) + sizeof ".partial";
	tmp = malloc(len);
	if (!tmp) return FP_FAIL(FP_ERR_NOMEM, "checkpoint: path");
	snprintf(tmp, len, "%s.partial", path);
	FP_CHECK(st, fp_alloc_array(np, 3 * sizeof(float), (void **)&host, "checkpoint buffer"));
	FP_CHECK(st, fp_model_get_params(t->model, host, np));
	FP_CHECK(st, fp_kernels_download(t->k, host + np, t->m, 2 * np * sizeof(float)));
	/* Never replace a good checkpoint with a broken model. */
	for (size_t i = 0; i < 3 * np; i++)
		if (!isfinite(host[i])) {
			st = FP_FAIL(FP_ERR_NUMERIC, "checkpoint %s not written: %s value %zu is %g at step %ld", path,
			             i < np ? "parameter" : "optimiser state", i % np, (double)host[i], t->step);
			goto fail;
		}
	FP_CHECK(st, build_image(t, s, path, host, &image, &image_len));
	FP_CHECK(st, write_image(tmp, path, image, image_len));
	FP_CHECK(st, fp_file_publish(tmp, path));
	free(image);
	free(host);
	free(tmp);
	return FP_OK;
fail:
	unlink(tmp);
	free(image);
	free(host);
	free(tmp);
	return st;
}

static enum fp_status open_checked(const char *path, hid_t *out)
{
	char fmt[64];
	int64_t ver = 0;
	enum fp_status st;
	quiet_hdf5();
	if (access(path, R_OK) != 0) return FP_FAIL(FP_ERR_NOT_FOUND, "checkpoint %s: cannot read the file", path);
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0) return FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: not an HDF5 file (corrupt or truncated?)", path);
	FP_CHECK(st, get_str(f, "format", fmt, sizeof fmt, path));
	if (strcmp(fmt, CKPT_FORMAT) != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: format is '%s', expected '%s'", path, fmt, CKPT_FORMAT);
		goto fail;
	}
	FP_CHECK(st, get_num(f, "format_version", H5T_NATIVE_INT64, &ver, path));
	if (ver < 1 || ver > FP_CHECKPOINT_VERSION) {
		st = FP_FAIL(FP_ERR_VERSION, "checkpoint %s: format version %lld, this build reads 1..%d", path,
		             (long long)ver, FP_CHECKPOINT_VERSION);
		goto fail;
	}
	*out = f;
	return FP_OK;
fail:
	H5Fclose(f);
	return st;
}

static enum fp_status check_config(hid_t f, const struct fp_model *m, const char *path)
{
	char have[STR_MAX], want[256];
	FP_TRY(get_str(f, "model_config", have, sizeof have, path));
	fp_tilenet_config_str(fp_model_config(m), want, sizeof want);
	if (strcmp(have, want) != 0)
		return FP_FAIL(FP_ERR_FORMAT,
		               "checkpoint %s was written for model '%s' but this run configures '%s'", path,
		               have, want);
	return FP_OK;
}

/* Reads the tensors of group `grp` into host (n_params floats, padding zero). */
static enum fp_status read_group(hid_t f, const char *grp, const struct fp_model *m, float *host, const char *path)
{
	enum fp_status st = FP_OK;
	hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
	if (g < 0) return FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: group /%s is missing", path, grp);
	memset(host, 0, fp_model_n_params(m) * sizeof(float));
	for (size_t i = 0; i < fp_model_n_tensors(m) && st == FP_OK; i++) {
		const struct fp_param_info *p = fp_model_tensor(m, i);
		st = get_tensor(g, grp, p, host + p->offset, path);
	}
	H5Gclose(g);
	return st;
}

enum fp_status fp_checkpoint_load_params(struct fp_model *m, const char *path)
{
	hid_t f = -1;
	float *host = NULL;
	enum fp_status st;
	FP_TRY(open_checked(path, &f));
	FP_CHECK(st, check_config(f, m, path));
	FP_CHECK(st, fp_alloc_array(fp_model_n_params(m), sizeof(float), (void **)&host, "checkpoint buffer"));
	FP_CHECK(st, read_group(f, "params", m, host, path));
	FP_CHECK(st, fp_model_set_params(m, host, fp_model_n_params(m)));
fail:
	free(host);
	H5Fclose(f);
	return st;
}

enum fp_status fp_checkpoint_load(struct fp_trainer *t, struct fp_train_state *s, const char *path)
{
	hid_t f = -1, gs = -1;
	float *host = NULL;
	size_t np = t->n;
	int64_t step = 0;
	char opt[16];
	enum fp_status st;
	struct fp_train_state ls;
	memset(&ls, 0, sizeof ls);
	FP_TRY(open_checked(path, &f));
	FP_CHECK(st, check_config(f, t->model, path));
	FP_CHECK(st, get_str(f, "optimizer", opt, sizeof opt, path));
	if (strcmp(opt, t->opt.optimizer == FP_OPT_ADAMW ? "adamw" : "sgd") != 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s holds %s state but this run configures %s", path, opt,
		             t->opt.optimizer == FP_OPT_ADAMW ? "adamw" : "sgd");
		goto fail;
	}
	FP_CHECK(st, get_num(f, "step", H5T_NATIVE_INT64, &step, path));
	if (step < 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: step %lld is negative", path, (long long)step);
		goto fail;
	}
	FP_CHECK(st, fp_alloc_array(np, 3 * sizeof(float), (void **)&host, "checkpoint buffer"));
	/* Everything is read and checked before the trainer changes. */
	FP_CHECK(st, read_group(f, "params", t->model, host, path));
	FP_CHECK(st, read_group(f, "optim/m", t->model, host + np, path));
	FP_CHECK(st, read_group(f, "optim/v", t->model, host + 2 * np, path));
	gs = H5Gopen2(f, "state", H5P_DEFAULT);
	if (gs < 0) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: group /state is missing", path);
		goto fail;
	}
	if (H5Aexists(gs, "seed") > 0) {
		int64_t seed, epoch, be, bad;
		FP_CHECK(st, get_num(gs, "seed", H5T_NATIVE_INT64, &seed, path));
		FP_CHECK(st, get_num(gs, "epoch", H5T_NATIVE_INT64, &epoch, path));
		FP_CHECK(st, get_num(gs, "best_metric", H5T_NATIVE_DOUBLE, &ls.best_metric, path));
		FP_CHECK(st, get_num(gs, "best_epoch", H5T_NATIVE_INT64, &be, path));
		FP_CHECK(st, get_num(gs, "bad_epochs", H5T_NATIVE_INT64, &bad, path));
		FP_CHECK(st, get_str(gs, "run_config", ls.run_config, sizeof ls.run_config, path));
		ls.seed = (uint64_t)seed;
		ls.epoch = epoch;
		ls.best_epoch = be;
		ls.bad_epochs = bad;
	}
	FP_CHECK(st, fp_model_set_params(t->model, host, np));
	FP_CHECK(st, fp_kernels_upload(t->k, t->m, host + np, 2 * np * sizeof(float)));
	t->step = step;
	if (s) *s = ls;
fail:
	if (gs >= 0) H5Gclose(gs);
	free(host);
	H5Fclose(f);
	return st;
}

enum fp_status fp_checkpoint_read_config(const char *path, struct fp_tilenet_config *c)
{
	hid_t f = -1;
	char text[STR_MAX], check[256];
	enum fp_status st;
	FP_TRY(open_checked(path, &f));
	FP_CHECK(st, get_str(f, "model_config", text, sizeof text, path));
	if (sscanf(text, "tilenet v1 input=%d width=%d,%d,%d blocks=%d groups=%d classes=%d", &c->input_size,
	           &c->width[0], &c->width[1], &c->width[2], &c->blocks, &c->groups, &c->n_classes) != 7) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: model_config '%s' is not a tilenet v1 description", path, text);
		goto fail;
	}
	fp_tilenet_config_str(c, check, sizeof check);
	if (strcmp(check, text) != 0 || fp_tilenet_config_check(c) != FP_OK) {
		st = FP_FAIL(FP_ERR_FORMAT, "checkpoint %s: model_config '%s' is not valid", path, text);
		goto fail;
	}
fail:
	H5Fclose(f);
	return st;
}
