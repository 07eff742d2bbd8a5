/*
 * kernels.c: the public face of kernels/ (fp_kernels.h): the backend handle,
 * backend memory, argument checks, and dispatch to fp_cpu_* or fp_cuda_*.
 * Invariant: a handle has exactly one of cpu / cuda set; a CUDA request with
 * no working device becomes a CPU handle after one log line (unless
 * opt.require), so callers never branch on the backend.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_log.h"
#include "kernels_impl.h"
#ifdef FP_HAVE_CUDA
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "cuda_api.h"
#endif

struct fp_kernels {
	struct fp_cpu *cpu;
	struct fp_cuda *cuda;
	char desc[160];
};

#ifdef FP_HAVE_CUDA
/* The CUDA backend (cuda_api.h): linked in with FP_CUDA_STATIC (the
 * standalone gpu-check build), else loaded from libfp_cuda.so on first use.
 * Where the module is looked for, in order: $FEDPATH_CUDA_MODULE; beside
 * the executable; ../lib/fedpath/ from it (an install); the build tree's
 * copy (FP_CUDA_MODULE_PATH). */
static const struct fp_cuda_api *cu;
static char cu_why[600] = "not loaded";
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

#ifndef FP_CUDA_STATIC
static enum fp_status host_error_set(enum fp_status code, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fp_error_set(code, file, line, "%s", msg);
}

static void host_log(enum fp_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fp_log(lvl, "%s", msg);
}

static const struct fp_cuda_host cu_host = {FP_CUDA_API_VERSION, host_error_set, fp_error_msg, host_log,
                                            fp_cpu_cox_forward, fp_cpu_cox_backward, fp_conv2d_out_h,
                                            fp_conv2d_out_w, fp_pool2d_out_h, fp_pool2d_out_w};

static int try_module(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(cu_why, sizeof cu_why, "%s", dlerror());
		return 0;
	}
	fp_cuda_module_init_fn init = (fp_cuda_module_init_fn)(uintptr_t)dlsym(h, FP_CUDA_MODULE_ENTRY);
	cu = init ? init(&cu_host) : NULL;
	if (!cu) {
		snprintf(cu_why, sizeof cu_why, "%s: no %s of version %d", path, FP_CUDA_MODULE_ENTRY, FP_CUDA_API_VERSION);
		dlclose(h);
		return 0;
	}
	return 1; /* kept loaded for the life of the process */
}
#endif

static void cu_load(void)
{
#ifdef FP_CUDA_STATIC
	static struct fp_cuda_api table;
	FP_CUDA_API_FILL(&table);
	cu = &table;
#else
	char exe[4096], path[4200];
	const char *env = getenv("FEDPATH_CUDA_MODULE");
	if (env && *env) {
		try_module(env);
		return;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof path, "%s/libfp_cuda.so", exe);
			if (try_module(path)) return;
			snprintf(path, sizeof path, "%s/../lib/fedpath/libfp_cuda.so", exe);
			if (try_module(path)) return;
		}
	}
#ifdef FP_CUDA_MODULE_PATH
	try_module(FP_CUDA_MODULE_PATH);
#endif
#endif
}

/* The backend table, loading the module once; NULL with the reason in cu_why. */
static const struct fp_cuda_api *cuda_api(void)
{
	pthread_once(&cu_once, cu_load);
	return cu;
}
#endif

void fp_kernels_options_default(struct fp_kernels_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->backend = FP_BACKEND_CPU;
	opt->deterministic = 1;
}

int fp_kernels_cuda_available(void)
{
#ifdef FP_HAVE_CUDA
	/* No NVIDIA driver device node: no GPU, and no need to load the module
	 * (and cuBLAS/cuDNN with it) to learn that. */
	if (access("/dev/nvidiactl", F_OK) != 0 && !getenv("FEDPATH_CUDA_MODULE")) return 0;
	return cuda_api() && cu->device_count() > 0;
#else
	return 0;
#endif
}

static enum fp_status kernels_open_cuda(struct fp_kernels *k, const struct fp_kernels_options *opt)
{
#ifdef FP_HAVE_CUDA
	/* No NVIDIA device node: say so without loading cuBLAS/cuDNN (the module). */
	if (access("/dev/nvidiactl", F_OK) != 0 && !getenv("FEDPATH_CUDA_MODULE"))
		return FP_FAIL(FP_ERR_BACKEND, "kernels: no NVIDIA GPU on this machine (/dev/nvidiactl is absent)");
	if (!cuda_api())
		return FP_FAIL(FP_ERR_BACKEND, "kernels: the CUDA backend module could not be loaded: %s", cu_why);
	enum fp_status st = cu->create(opt->device, opt->deterministic, opt->mixed, &k->cuda);
	if (st != FP_OK)
		return st;
	snprintf(k->desc, sizeof(k->desc), "%s", cu->describe(k->cuda));
	return FP_OK;
#else
	(void)k;
	return FP_FAIL(FP_ERR_UNSUPPORTED, "kernels: backend cuda:%d requested but this build has no CUDA "
	               "(configure with -DFP_WITH_CUDA=ON)", opt->device);
#endif
}

enum fp_status fp_kernels_create(const struct fp_kernels_options *opt, struct fp_kernels **out)
{
	struct fp_kernels_options def;
	enum fp_status st = FP_OK;
	struct fp_kernels *k = NULL;
	if (!out)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: out is NULL");
	if (!opt) {
		fp_kernels_options_default(&def);
		opt = &def;
	}
	if (opt->threads < 0 || opt->device < 0)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: threads %d / device %d must be >= 0",
		               opt->threads, opt->device);
	k = calloc(1, sizeof(*k));
	if (!k)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: handle");
	if (opt->backend == FP_BACKEND_CUDA) {
		st = kernels_open_cuda(k, opt);
		if (st != FP_OK && opt->require)
			goto fail;
		if (st != FP_OK) {
			FP_WARN("kernels: CUDA backend unavailable (%s); using the CPU backend", fp_error_msg());
			fp_error_clear();
			st = FP_OK;
		}
	}
	if (!k->cuda) {
		FP_CHECK(st, fp_cpu_create(opt->threads, &k->cpu));
		snprintf(k->desc, sizeof(k->desc), "cpu (%d threads)", fp_cpu_threads(k->cpu));
	}
	*out = k;
	return FP_OK;
fail:
	fp_kernels_destroy(k);
	return st;
}

void fp_kernels_destroy(struct fp_kernels *k)
{
	if (!k)
		return;
	fp_cpu_destroy(k->cpu);
#ifdef FP_HAVE_CUDA
	if (k->cuda) cu->destroy(k->cuda);
#endif
	free(k);
}

enum fp_backend_kind fp_kernels_backend(const struct fp_kernels *k)
{
	return k && k->cuda ? FP_BACKEND_CUDA : FP_BACKEND_CPU;
}

const char *fp_kernels_describe(const struct fp_kernels *k)
{
	return k ? k->desc : "(null)";
}

/* CALL(op, args...): the backend's implementation of op. */
#ifdef FP_HAVE_CUDA
#define CALL(k, op, ...) ((k)->cuda ? cu->op((k)->cuda, __VA_ARGS__) : fp_cpu_##op((k)->cpu, __VA_ARGS__))
#else
#define CALL(k, op, ...) fp_cpu_##op((k)->cpu, __VA_ARGS__)
#endif

#define NEED(cond)                                                                     \
	do {                                                                               \
		if (!(cond))                                                                   \
			return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: %s: requires %s", __func__, #cond); \
	} while (0)

enum fp_status fp_kernels_alloc(struct fp_kernels *k, size_t bytes, void **out)
{
	NEED(k && out);
	size_t rounded = (bytes + 255) / 256 * 256;
	NEED(rounded >= bytes);
#ifdef FP_HAVE_CUDA
	if (k->cuda)
		return cu->alloc(k->cuda, rounded ? rounded : 256, out);
#endif
	void *p = aligned_alloc(256, rounded ? rounded : 256);
	if (!p)
		return FP_FAIL(FP_ERR_NOMEM, "kernels: allocating %zu bytes", bytes);
	*out = p;
	return FP_OK;
}

void fp_kernels_free(struct fp_kernels *k, void *p)
{
	if (!k || !p)
		return;
#ifdef FP_HAVE_CUDA
	if (k->cuda) {
		cu->free(k->cuda, p);
		return;
	}
#endif
	free(p);
}

enum fp_status fp_kernels_upload(struct fp_kernels *k, void *dst, const void *host, size_t bytes)
{
	NEED(k && dst && host);
#ifdef FP_HAVE_CUDA
	if (k->cuda)
		return cu->upload(k->cuda, dst, host, bytes);
#endif
	memmove(dst, host, bytes);
	return FP_OK;
}

enum fp_status fp_kernels_download(struct fp_kernels *k, void *host, const void *src, size_t bytes)
{
	NEED(k && src && host);
#ifdef FP_HAVE_CUDA
	if (k->cuda)
		return cu->download(k->cuda, host, src, bytes);
#endif
	memmove(host, src, bytes);
	return FP_OK;
}

enum fp_status fp_kernels_zero(struct fp_kernels *k, void *p, size_t bytes)
{
	NEED(k && p);
#ifdef FP_HAVE_CUDA
	if (k->cuda)
		return cu->zero(k->cuda, p, bytes);
#endif
	memset(p, 0, bytes);
	return FP_OK;
}

enum fp_status fp_kernels_sync(struct fp_kernels *k)
{
	NEED(k);
#ifdef FP_HAVE_CUDA
	if (k->cuda)
		return cu->sync(k->cuda);
#endif
	return FP_OK;
}

enum fp_status fp_k_accumulate(struct fp_kernels *k, float *y, const float *x, size_t n)
{
	NEED(k && y && x);
	return CALL(k, accumulate, y, x, n);
}

enum fp_status fp_k_add(struct fp_kernels *k, float *y, const float *a, const float *b, size_t n)
{
	NEED(k && y && a && b);
	return CALL(k, add, y, a, b, n);
}

enum fp_status fp_k_scale(struct fp_kernels *k, float *x, size_t n, float s)
{
	NEED(k && x);
	return CALL(k, scale, x, n, s);
}

enum fp_status fp_k_relu_forward(struct fp_kernels *k, float *y, const float *x, size_t n)
{
	NEED(k && y && x);
	return CALL(k, relu_forward, y, x, n);
}

enum fp_status fp_k_relu_backward(struct fp_kernels *k, float *dx, const float *dy, const float *y, size_t n)
{
	NEED(k && dx && dy && y);
	return CALL(k, relu_backward, dx, dy, y, n);
}

enum fp_status fp_k_gelu_forward(struct fp_kernels *k, float *y, const float *x, size_t n)
{
	NEED(k && y && x);
	return CALL(k, gelu_forward, y, x, n);
}

enum fp_status fp_k_gelu_backward(struct fp_kernels *k, float *dx, const float *dy, const float *x, size_t n)
{
	NEED(k && dx && dy && x);
	return CALL(k, gelu_backward, dx, dy, x, n);
}

enum fp_status fp_k_dropout_forward(struct fp_kernels *k, float *y, const float *x, size_t n, float p, uint64_t seed)
{
	NEED(k && y && x);
	if (!(p >= 0 && p < 1))
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: dropout p=%g outside [0, 1)", (double)p);
	return CALL(k, dropout_forward, y, x, n, p, seed);
}

enum fp_status fp_k_dropout_backward(struct fp_kernels *k, float *dx, const float *dy, size_t n, float p, uint64_t seed)
{
	return fp_k_dropout_forward(k, dx, dy, n, p, seed);
}

int fp_conv2d_out_h(const struct fp_conv2d_shape *s)
{
	return (s->h + 2 * s->pad - s->kh) / s->stride + 1;
}

int fp_conv2d_out_w(const struct fp_conv2d_shape *s)
{
	return (s->w + 2 * s->pad - s->kw) / s->stride + 1;
}

static enum fp_status conv_check(const struct fp_conv2d_shape *s)
{
	if (!s || s->n <= 0 || s->c_in <= 0 || s->h <= 0 || s->w <= 0 || s->c_out <= 0 || s->kh <= 0 ||
	    s->kw <= 0 || s->stride <= 0 || s->pad < 0 || s->h + 2 * s->pad < s->kh || s->w + 2 * s->pad < s->kw)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: conv2d shape n=%d c_in=%d h=%d w=%d c_out=%d k=%dx%d "
		               "stride=%d pad=%d is invalid", s ? s->n : 0, s ? s->c_in : 0, s ? s->h : 0,
		               s ? s->w : 0, s ? s->c_out : 0, s ? s->kh : 0, s ? s->kw : 0,
		               s ? s->stride : 0, s ? s->pad : 0);
	return FP_OK;
}

enum fp_status fp_k_conv2d_forward(struct fp_kernels *k, const struct fp_conv2d_shape *s,
                                   float *y, const float *x, const float *w, const float *b)
{
	NEED(k && y && x && w);
	FP_TRY(conv_check(s));
	return CALL(k, conv2d_forward, s, y, x, w, b);
}

enum fp_status fp_k_conv2d_backward(struct fp_kernels *k, const struct fp_conv2d_shape *s,
                                    float *dx, float *dw, float *db, const float *dy,
                                    const float *x, const float *w)
{
	NEED(k && dy && x && w);
	FP_TRY(conv_check(s));
	return CALL(k, conv2d_backward, s, dx, dw, db, dy, x, w);
}

int fp_pool2d_out_h(const struct fp_pool2d_shape *s)
{
	return (s->h + 2 * s->pad - s->k) / s->stride + 1;
}

int fp_pool2d_out_w(const struct fp_pool2d_shape *s)
{
	return (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

static enum fp_status pool_check(const struct fp_pool2d_shape *s)
{
	/* pad <= k/2 as PyTorch: every window then holds at least one real pixel. */
	if (!s || s->n <= 0 || s->c <= 0 || s->h <= 0 || s->w <= 0 || s->k <= 0 || s->stride <= 0 ||
	    s->pad < 0 || 2 * s->pad > s->k || s->h + 2 * s->pad < s->k || s->w + 2 * s->pad < s->k)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: pool2d shape n=%d c=%d h=%d w=%d k=%d stride=%d pad=%d "
		               "is invalid", s ? s->n : 0, s ? s->c : 0, s ? s->h : 0, s ? s->w : 0,
		               s ? s->k : 0, s ? s->stride : 0, s ? s->pad : 0);
	return FP_OK;
}

enum fp_status fp_k_maxpool2d_forward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	NEED(k && y && x);
	FP_TRY(pool_check(s));
	return CALL(k, maxpool2d_forward, s, y, x);
}

enum fp_status fp_k_maxpool2d_backward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *dx,
                                       const float *dy, const float *x)
{
	NEED(k && dx && dy && x);
	FP_TRY(pool_check(s));
	return CALL(k, maxpool2d_backward, s, dx, dy, x);
}

enum fp_status fp_k_avgpool2d_forward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *y, const float *x)
{
	NEED(k && y && x);
	FP_TRY(pool_check(s));
	return CALL(k, avgpool2d_forward, s, y, x);
}

enum fp_status fp_k_avgpool2d_backward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *dx, const float *dy)
{
	NEED(k && dx && dy);
	FP_TRY(pool_check(s));
	return CALL(k, avgpool2d_backward, s, dx, dy);
}

enum fp_status fp_k_gap_forward(struct fp_kernels *k, float *y, const float *x, int n, int c, int hw)
{
	NEED(k && y && x && n > 0 && c > 0 && hw > 0);
	return CALL(k, gap_forward, y, x, n, c, hw);
}

enum fp_status fp_k_gap_backward(struct fp_kernels *k, float *dx, const float *dy, int n, int c, int hw)
{
	NEED(k && dx && dy && n > 0 && c > 0 && hw > 0);
	return CALL(k, gap_backward, dx, dy, n, c, hw);
}

enum fp_status fp_k_linear_forward(struct fp_kernels *k, float *y, const float *x, const float *w,
                                   const float *b, int n, int in, int out)
{
	NEED(k && y && x && w && n > 0 && in > 0 && out > 0);
	return CALL(k, linear_forward, y, x, w, b, n, in, out);
}

enum fp_status fp_k_linear_backward(struct fp_kernels *k, float *dx, float *dw, float *db, const float *dy,
                                    const float *x, const float *w, int n, int in, int out)
{
	NEED(k && dy && x && w && n > 0 && in > 0 && out > 0);
	return CALL(k, linear_backward, dx, dw, db, dy, x, w, n, in, out);
}

enum fp_status fp_k_groupnorm_forward(struct fp_kernels *k, float *y, float *mean, float *rstd,
                                      const float *x, const float *gamma, const float *beta,
                                      int n, int c, int hw, int groups, float eps)
{
	NEED(k && y && mean && rstd && x && gamma && beta && n > 0 && c > 0 && hw > 0);
	NEED(groups > 0 && c % groups == 0 && eps > 0);
	return CALL(k, groupnorm_forward, y, mean, rstd, x, gamma, beta, n, c, hw, groups, eps);
}

enum fp_status fp_k_groupnorm_backward(struct fp_kernels *k, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma,
                                       int n, int c, int hw, int groups)
{
	NEED(k && dy && x && mean && rstd && gamma && n > 0 && c > 0 && hw > 0);
	NEED(groups > 0 && c % groups == 0);
	return CALL(k, groupnorm_backward, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw, groups);
}

enum fp_status fp_k_batchnorm_forward(struct fp_kernels *k, float *y, float *mean, float *rstd,
                                      float *running_mean, float *running_var,
                                      const float *x, const float *gamma, const float *beta,
                                      int n, int c, int hw, float eps, float momentum)
{
	NEED(k && y && mean && rstd && x && gamma && beta && n > 0 && c > 0 && hw > 0 && eps > 0);
	NEED((running_mean == NULL) == (running_var == NULL) && momentum >= 0 && momentum <= 1);
	return CALL(k, batchnorm_forward, y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c, hw,
	            eps, momentum);
}

enum fp_status fp_k_batchnorm_infer(struct fp_kernels *k, float *y, const float *x,
                                    const float *running_mean, const float *running_var,
                                    const float *gamma, const float *beta,
                                    int n, int c, int hw, float eps)
{
	NEED(k && y && x && running_mean && running_var && gamma && beta && n > 0 && c > 0 && hw > 0);
	return CALL(k, batchnorm_infer, y, x, running_mean, running_var, gamma, beta, n, c, hw, eps);
}

enum fp_status fp_k_batchnorm_backward(struct fp_kernels *k, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma, int n, int c, int hw)
{
	NEED(k && dy && x && mean && rstd && gamma && n > 0 && c > 0 && hw > 0);
	return CALL(k, batchnorm_backward, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
}

enum fp_status fp_k_softmax_xent_forward(struct fp_kernels *k, float *loss, float *probs,
                                         const float *logits, const int32_t *labels,
                                         const float *class_w, int n, int c)
{
	NEED(k && loss && probs && logits && labels && n > 0 && c > 0);
	return CALL(k, softmax_xent_forward, loss, probs, logits, labels, class_w, n, c);
}

enum fp_status fp_k_softmax_xent_backward(struct fp_kernels *k, float *dlogits, const float *probs,
                                          const int32_t *labels, const float *class_w,
                                          int n, int c, float dloss)
{
	NEED(k && dlogits && probs && labels && n > 0 && c > 0);
	return CALL(k, softmax_xent_backward, dlogits, probs, labels, class_w, n, c, dloss);
}

enum fp_status fp_k_bce_forward(struct fp_kernels *k, float *loss, const float *logits,
                                const float *targets, int n)
{
	NEED(k && loss && logits && targets && n > 0);
	return CALL(k, bce_forward, loss, logits, targets, n);
}

enum fp_status fp_k_bce_backward(struct fp_kernels *k, float *dlogits, const float *logits,
                                 const float *targets, int n, float dloss)
{
	NEED(k && dlogits && logits && targets && n > 0);
	return CALL(k, bce_backward, dlogits, logits, targets, n, dloss);
}

enum fp_status fp_k_mse_forward(struct fp_kernels *k, float *loss, const float *pred, const float *target, int n)
{
	NEED(k && loss && pred && target && n > 0);
	return CALL(k, mse_forward, loss, pred, target, n);
}

enum fp_status fp_k_mse_backward(struct fp_kernels *k, float *dpred, const float *pred, const float *target,
                                 int n, float dloss)
{
	NEED(k && dpred && pred && target && n > 0);
	return CALL(k, mse_backward, dpred, pred, target, n, dloss);
}

enum fp_status fp_k_cox_forward(struct fp_kernels *k, float *loss, const float *eta, const float *time,
                                const float *event, const float *weight, int n,
                                enum fp_cox_ties ties, enum fp_cox_reduction red)
{
	NEED(k && loss && eta && time && event && n > 0);
	NEED((ties == FP_COX_BRESLOW || ties == FP_COX_EFRON) && (red == FP_COX_MEAN || red == FP_COX_SUM));
	return CALL(k, cox_forward, loss, eta, time, event, weight, n, ties, red);
}

enum fp_status fp_k_cox_backward(struct fp_kernels *k, float *deta, const float *eta, const float *time,
                                 const float *event, const float *weight, int n,
                                 enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss)
{
	NEED(k && deta && eta && time && event && n > 0);
	NEED((ties == FP_COX_BRESLOW || ties == FP_COX_EFRON) && (red == FP_COX_MEAN || red == FP_COX_SUM));
	return CALL(k, cox_backward, deta, eta, time, event, weight, n, ties, red, dloss);
}

size_t fp_k_attnpool_ws_floats(int n, int d)
{
	/* gv and gu per instance (N, D) each, then the scores (N). */
	return (size_t)n * d * 2 + (size_t)n;
}

enum fp_status fp_k_attnpool_forward(struct fp_kernels *k, float *m, float *a, float *ws,
                                     const float *h, const float *V, const float *bv,
                                     const float *U, const float *bu, const float *w,
                                     int n, int l, int d)
{
	NEED(k && m && a && ws && h && V && bv && U && bu && w && n > 0 && l > 0 && d > 0);
	return CALL(k, attnpool_forward, m, a, ws, h, V, bv, U, bu, w, n, l, d);
}

enum fp_status fp_k_attnpool_backward(struct fp_kernels *k, float *dh, float *dV, float *dbv,
                                      float *dU, float *dbu, float *dw, const float *dm,
                                      const float *a, float *ws, const float *h,
                                      const float *V, const float *U, const float *w,
                                      int n, int l, int d)
{
	NEED(k && dV && dbv && dU && dbu && dw && dm && a && ws && h && V && U && w);
	NEED(n > 0 && l > 0 && d > 0);
	return CALL(k, attnpool_backward, dh, dV, dbv, dU, dbu, dw, dm, a, ws, h, V, U, w, n, l, d);
}

enum fp_status fp_k_adamw_update(struct fp_kernels *k, float *p, const float *g, float *m, float *v,
                                 size_t n, const struct fp_adamw *o, int decay, float grad_scale)
{
	NEED(k && p && g && m && v && o && o->step >= 1);
	NEED(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0);
	return CALL(k, adamw_update, p, g, m, v, n, o, decay, grad_scale);
}

enum fp_status fp_k_sgd_update(struct fp_kernels *k, float *p, const float *g, float *buf, size_t n,
                               float lr, float momentum, float weight_decay, int decay, float grad_scale)
{
	NEED(k && p && g && buf && momentum >= 0);
	return CALL(k, sgd_update, p, g, buf, n, lr, momentum, weight_decay, decay, grad_scale);
}

enum fp_status fp_k_sumsq(struct fp_kernels *k, const float *x, size_t n, double *host_acc)
{
	NEED(k && x && host_acc);
	return CALL(k, sumsq, x, n, host_acc);
}

float fp_kernels_clip_scale(double sumsq, float max_norm)
{
	double norm = sqrt(sumsq), s = max_norm / (norm + 1e-6);
	return s < 1.0 ? (float)s : 1.0f;
}

enum fp_status fp_k_weighted_sum(struct fp_kernels *k, float *out, const float *xs, const float *host_w,
                                 int kcount, size_t p)
{
	NEED(k && out && xs && host_w && kcount > 0);
	return CALL(k, weighted_sum, out, xs, host_w, kcount, p);
}

enum fp_status fp_k_coord_median(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p)
{
	NEED(k && out && xs && kcount > 0);
	return CALL(k, coord_median, out, xs, kcount, p);
}

enum fp_status fp_k_trimmed_mean(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p, int trim)
{
	NEED(k && out && xs && kcount > 0 && trim >= 0 && 2 * trim < kcount);
	return CALL(k, trimmed_mean, out, xs, kcount, p, trim);
}

enum fp_status fp_k_mean_rows(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p)
{
	NEED(k && out && xs && kcount > 0);
	return CALL(k, mean_rows, out, xs, kcount, p);
}

enum fp_status fp_k_augment_tiles(struct fp_kernels *k, float *x, const uint8_t *rgb,
                                  const struct fp_tile_aug *aug, int n, int t, int s)
{
	NEED(k && x && rgb && n > 0 && s > 0 && t > 0);
	if (t % s)
		return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: augment: %d px tiles cannot be box-filtered to %d px "
		               "(need an integer factor)", t, s);
	for (int i = 0; aug && i < n; i++)
		if (aug[i].rot90 < 0 || aug[i].rot90 > 3 || (aug[i].flip_h | aug[i].flip_v) & ~1)
			return FP_FAIL(FP_ERR_INVALID_ARG, "kernels: augment: tile %d: rot90 %d (0..3), flips %d/%d (0/1)", i,
			               aug[i].rot90, aug[i].flip_h, aug[i].flip_v);
	return CALL(k, augment_tiles, x, rgb, aug, n, t, s);
}

enum fp_status fp_k_l2_norm(struct fp_kernels *k, const float *x, size_t n, double *host_norm)
{
	double acc = 0;
	NEED(k && x && host_norm);
	FP_TRY(CALL(k, sumsq, x, n, &acc));
	*host_norm = sqrt(acc);
	return FP_OK;
}
