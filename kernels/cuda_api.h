/*
 * cuda_api.h: the CUDA backend as a table of functions, so that it can live
 * in a module loaded at run time (libfp_cuda.so, cuda_module.cu) instead of
 * being linked into every program. Linking cuBLAS, cuBLASLt and cuDNN made
 * every fedpath process, GPU or not, start 0.14 s slower and map ~230 MB
 * (their load-time initialisation); now only a process that uses a GPU
 * pays it. Internal to kernels/.
 *
 * One member per fp_cuda_<op> of kernels_impl.h, same name without the
 * prefix and same arguments. The module gets the host's error, log and
 * shape helpers through struct fp_cuda_host (it must not link common/ or
 * cpu.c a second time: their error state is the host's).
 */
#ifndef FP_CUDA_API_H
#define FP_CUDA_API_H

#include "kernels_impl.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "fp_log.h" /* common/ headers are C */

#define FP_CUDA_API_VERSION 1

struct fp_cuda_api {
	int version; /* FP_CUDA_API_VERSION */
	enum fp_status (*create)(int device, int deterministic, int mixed, struct fp_cuda **out);
	void (*destroy)(struct fp_cuda *c);
	const char * (*describe)(const struct fp_cuda *c);
	int (*device_count)(void);
	enum fp_status (*alloc)(struct fp_cuda *be, size_t bytes, void **out);
	void (*free)(struct fp_cuda *be, void *p);
	enum fp_status (*upload)(struct fp_cuda *be, void *dst, const void *host, size_t bytes);
	enum fp_status (*download)(struct fp_cuda *be, void *host, const void *src, size_t bytes);
	enum fp_status (*zero)(struct fp_cuda *be, void *p, size_t bytes);
	enum fp_status (*sync)(struct fp_cuda *c);
	enum fp_status (*accumulate)(struct fp_cuda *be, float *y, const float *x, size_t n);
	enum fp_status (*add)(struct fp_cuda *be, float *y, const float *a, const float *b, size_t n);
	enum fp_status (*scale)(struct fp_cuda *be, float *x, size_t n, float s);
	enum fp_status (*relu_forward)(struct fp_cuda *be, float *y, const float *x, size_t n);
	enum fp_status (*relu_backward)(struct fp_cuda *be, float *dx, const float *dy, const float *y, size_t n);
	enum fp_status (*gelu_forward)(struct fp_cuda *be, float *y, const float *x, size_t n);
	enum fp_status (*gelu_backward)(struct fp_cuda *be, float *dx, const float *dy, const float *x, size_t n);
	enum fp_status (*dropout_forward)(struct fp_cuda *be, float *y, const float *x, size_t n, float p, uint64_t seed);
	enum fp_status (*conv2d_forward)(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *y, const float *x, const float *w, const float *b);
	enum fp_status (*conv2d_backward)(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w);
	enum fp_status (*maxpool2d_forward)(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x);
	enum fp_status (*maxpool2d_backward)(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx, const float *dy, const float *x);
	enum fp_status (*avgpool2d_forward)(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x);
	enum fp_status (*avgpool2d_backward)(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx, const float *dy);
	enum fp_status (*gap_forward)(struct fp_cuda *be, float *y, const float *x, int n, int cc, int hw);
	enum fp_status (*gap_backward)(struct fp_cuda *be, float *dx, const float *dy, int n, int cc, int hw);
	enum fp_status (*linear_forward)(struct fp_cuda *be, float *y, const float *x, const float *w, const float *b, int n, int in, int out);
	enum fp_status (*linear_backward)(struct fp_cuda *be, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int in, int out);
	enum fp_status (*groupnorm_forward)(struct fp_cuda *be, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, int groups, float eps);
	enum fp_status (*groupnorm_backward)(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw, int groups);
	enum fp_status (*batchnorm_forward)(struct fp_cuda *be, float *y, float *mean, float *rstd, float *running_mean, float *running_var, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, float eps, float momentum);
	enum fp_status (*batchnorm_infer)(struct fp_cuda *be, float *y, const float *x, const float *running_mean, const float *running_var, const float *gamma, const float *beta, int n, int cc, int hw, float eps);
	enum fp_status (*batchnorm_backward)(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw);
	enum fp_status (*softmax_xent_forward)(struct fp_cuda *be, float *loss, float *probs, const float *logits, const int32_t *labels, const float *class_w, int n, int cc);
	enum fp_status (*softmax_xent_backward)(struct fp_cuda *be, float *dlogits, const float *probs, const int32_t *labels, const float *class_w, int n, int cc, float dloss);
	enum fp_status (*bce_forward)(struct fp_cuda *be, float *loss, const float *logits, const float *targets, int n);
	enum fp_status (*bce_backward)(struct fp_cuda *be, float *dlogits, const float *logits, const float *targets, int n, float dloss);
	enum fp_status (*mse_forward)(struct fp_cuda *be, float *loss, const float *pred, const float *target, int n);
	enum fp_status (*mse_backward)(struct fp_cuda *be, float *dpred, const float *pred, const float *target, int n, float dloss);
	enum fp_status (*cox_forward)(struct fp_cuda *be, float *loss, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red);
	enum fp_status (*cox_backward)(struct fp_cuda *be, float *deta, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss);
	enum fp_status (*attnpool_forward)(struct fp_cuda *be, float *m, float *a, float *ws, const float *h, const float *V, const float *bv, const float *U, const float *bu, const float *w, int n, int l, int d);
	enum fp_status (*attnpool_backward)(struct fp_cuda *be, float *dh, float *dV, float *dbv, float *dU, float *dbu, float *dw, const float *dm, const float *a, float *ws, const float *h, const float *V, const float *U, const float *w, int n, int l, int d);
	enum fp_status (*adamw_update)(struct fp_cuda *be, float *p, const float *g, float *m, float *v, size_t n, const struct fp_adamw *o, int decay, float grad_scale);
	enum fp_status (*sgd_update)(struct fp_cuda *be, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float weight_decay, int decay, float grad_scale);
	enum fp_status (*sumsq)(struct fp_cuda *be, const float *x, size_t n, double *host_acc);
	enum fp_status (*weighted_sum)(struct fp_cuda *be, float *out, const float *xs, const float *host_w, int kcount, size_t p);
	enum fp_status (*coord_median)(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p);
	enum fp_status (*trimmed_mean)(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p, int trim);
};

struct fp_cuda_host {
	int version; /* FP_CUDA_API_VERSION */
	enum fp_status (*error_set)(enum fp_status code, const char *file, int line, const char *fmt, ...);
	const char *(*error_msg)(void);
	void (*log)(enum fp_log_level level, const char *fmt, ...);
	enum fp_status (*cpu_cox_forward)(struct fp_cpu *be, float *loss, const float *eta, const float *time,
	                                  const float *event, const float *weight, int n, enum fp_cox_ties ties,
	                                  enum fp_cox_reduction red);
	enum fp_status (*cpu_cox_backward)(struct fp_cpu *be, float *deta, const float *eta, const float *time,
	                                   const float *event, const float *weight, int n, enum fp_cox_ties ties,
	                                   enum fp_cox_reduction red, float dloss);
	int (*conv2d_out_h)(const struct fp_conv2d_shape *s);
	int (*conv2d_out_w)(const struct fp_conv2d_shape *s);
	int (*pool2d_out_h)(const struct fp_pool2d_shape *s);
	int (*pool2d_out_w)(const struct fp_pool2d_shape *s);
};

/* Fills a table from the fp_cuda_* functions linked in (the module does
 * this; a build that links the backend directly, scripts/gpu-check, too). */
#define FP_CUDA_API_FILL(t)                                                                                      \
	do {                                                                                                         \
		(t)->version = FP_CUDA_API_VERSION;                                                                      \
		(t)->create = fp_cuda_create; \
		(t)->destroy = fp_cuda_destroy; \
		(t)->describe = fp_cuda_describe; \
		(t)->device_count = fp_cuda_device_count; \
		(t)->alloc = fp_cuda_alloc; \
		(t)->free = fp_cuda_free; \
		(t)->upload = fp_cuda_upload; \
		(t)->download = fp_cuda_download; \
		(t)->zero = fp_cuda_zero; \
		(t)->sync = fp_cuda_sync; \
		(t)->accumulate = fp_cuda_accumulate; \
		(t)->add = fp_cuda_add; \
		(t)->scale = fp_cuda_scale; \
		(t)->relu_forward = fp_cuda_relu_forward; \
		(t)->relu_backward = fp_cuda_relu_backward; \
		(t)->gelu_forward = fp_cuda_gelu_forward; \
		(t)->gelu_backward = fp_cuda_gelu_backward; \
		(t)->dropout_forward = fp_cuda_dropout_forward; \
		(t)->conv2d_forward = fp_cuda_conv2d_forward; \
		(t)->conv2d_backward = fp_cuda_conv2d_backward; \
		(t)->maxpool2d_forward = fp_cuda_maxpool2d_forward; \
		(t)->maxpool2d_backward = fp_cuda_maxpool2d_backward; \
		(t)->avgpool2d_forward = fp_cuda_avgpool2d_forward; \
		(t)->avgpool2d_backward = fp_cuda_avgpool2d_backward; \
		(t)->gap_forward = fp_cuda_gap_forward; \
		(t)->gap_backward = fp_cuda_gap_backward; \
		(t)->linear_forward = fp_cuda_linear_forward; \
		(t)->linear_backward = fp_cuda_linear_backward; \
		(t)->groupnorm_forward = fp_cuda_groupnorm_forward; \
		(t)->groupnorm_backward = fp_cuda_groupnorm_backward; \
		(t)->batchnorm_forward = fp_cuda_batchnorm_forward; \
		(t)->batchnorm_infer = fp_cuda_batchnorm_infer; \
		(t)->batchnorm_backward = fp_cuda_batchnorm_backward; \
		(t)->softmax_xent_forward = fp_cuda_softmax_xent_forward; \
		(t)->softmax_xent_backward = fp_cuda_softmax_xent_backward; \
		(t)->bce_forward = fp_cuda_bce_forward; \
		(t)->bce_backward = fp_cuda_bce_backward; \
		(t)->mse_forward = fp_cuda_mse_forward; \
		(t)->mse_backward = fp_cuda_mse_backward; \
		(t)->cox_forward = fp_cuda_cox_forward; \
		(t)->cox_backward = fp_cuda_cox_backward; \
		(t)->attnpool_forward = fp_cuda_attnpool_forward; \
		(t)->attnpool_backward = fp_cuda_attnpool_backward; \
		(t)->adamw_update = fp_cuda_adamw_update; \
		(t)->sgd_update = fp_cuda_sgd_update; \
		(t)->sumsq = fp_cuda_sumsq; \
		(t)->weighted_sum = fp_cuda_weighted_sum; \
		(t)->coord_median = fp_cuda_coord_median; \
		(t)->trimmed_mean = fp_cuda_trimmed_mean; \
	} while (0)

/* The module's one exported entry point (FP_CUDA_MODULE_ENTRY): returns the
 * table, or NULL when the host's version differs. */
typedef const struct fp_cuda_api *(*fp_cuda_module_init_fn)(const struct fp_cuda_host *host);
#define FP_CUDA_MODULE_ENTRY "fp_cuda_module_init"

#ifdef __cplusplus
}
#endif

#endif
