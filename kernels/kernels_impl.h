/*
 * kernels_impl.h: what kernels.c (the public API: argument checks, then
 * dispatch) needs from each backend. Internal to kernels/.
 *
 * Every op exists twice with the same arguments: fp_cpu_<op>(struct fp_cpu *)
 * in cpu*.c and fp_cuda_<op>(struct fp_cuda *) in cuda*.cu (FP_HAVE_CUDA).
 * Arguments arrive checked (non-NULL where required, positive sizes).
 * Pointers are backend memory. Dropout backward is dropout forward of dy.
 * fp_cpu_cox_* ignore their handle (NULL is fine): the CUDA backend runs
 * the Cox loss on the host through them.
 */
#ifndef FP_KERNELS_IMPL_H
#define FP_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "fp_kernels.h"

struct fp_cpu;
enum fp_status fp_cpu_create(int threads, struct fp_cpu **out);
void fp_cpu_destroy(struct fp_cpu *c);
int fp_cpu_threads(const struct fp_cpu *c);

struct fp_cuda;
/* Fails with FP_ERR_BACKEND (message says why) when no device answers. */
enum fp_status fp_cuda_create(int device, int deterministic, int mixed, struct fp_cuda **out);
void fp_cuda_destroy(struct fp_cuda *c);
const char *fp_cuda_describe(const struct fp_cuda *c);
int fp_cuda_device_count(void);
enum fp_status fp_cuda_alloc(struct fp_cuda *be, size_t bytes, void **out);
void fp_cuda_free(struct fp_cuda *be, void *p);
enum fp_status fp_cuda_upload(struct fp_cuda *be, void *dst, const void *host, size_t bytes);
enum fp_status fp_cuda_download(struct fp_cuda *be, void *host, const void *src, size_t bytes);
enum fp_status fp_cuda_zero(struct fp_cuda *be, void *p, size_t bytes);
enum fp_status fp_cuda_sync(struct fp_cuda *c);

/* The ops, once: X(name, (arguments after the backend handle)). Each
 * backend implements fp_<backend>_<name>(its handle, arguments); kernels.c
 * dispatches through CALL, the CUDA module through struct fp_cuda_api. */
#define FP_KERNEL_OPS(X) \
	X(accumulate, (float *y, const float *x, size_t n)) \
	X(add, (float *y, const float *a, const float *b, size_t n)) \
	X(scale, (float *x, size_t n, float s)) \
	X(relu_forward, (float *y, const float *x, size_t n)) \
	X(relu_backward, (float *dx, const float *dy, const float *y, size_t n)) \
	X(gelu_forward, (float *y, const float *x, size_t n)) \
	X(gelu_backward, (float *dx, const float *dy, const float *x, size_t n)) \
	X(dropout_forward, (float *y, const float *x, size_t n, float p, uint64_t seed)) \
	X(conv2d_forward, (const struct fp_conv2d_shape *s, float *y, const float *x, const float *w, const float *b)) \
	X(conv2d_backward, (const struct fp_conv2d_shape *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w)) \
	X(maxpool2d_forward, (const struct fp_pool2d_shape *s, float *y, const float *x)) \
	X(maxpool2d_backward, (const struct fp_pool2d_shape *s, float *dx, const float *dy, const float *x)) \
	X(avgpool2d_forward, (const struct fp_pool2d_shape *s, float *y, const float *x)) \
	X(avgpool2d_backward, (const struct fp_pool2d_shape *s, float *dx, const float *dy)) \
	X(gap_forward, (float *y, const float *x, int n, int cc, int hw)) \
	X(gap_backward, (float *dx, const float *dy, int n, int cc, int hw)) \
	X(linear_forward, (float *y, const float *x, const float *w, const float *b, int n, int in, int out)) \
	X(linear_backward, (float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int in, int out)) \
	X(groupnorm_forward, (float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, int groups, float eps)) \
	X(groupnorm_backward, (float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw, int groups)) \
	X(batchnorm_forward, (float *y, float *mean, float *rstd, float *running_mean, float *running_var, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, float eps, float momentum)) \
	X(batchnorm_infer, (float *y, const float *x, const float *running_mean, const float *running_var, const float *gamma, const float *beta, int n, int cc, int hw, float eps)) \
	X(batchnorm_backward, (float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw)) \
	X(softmax_xent_forward, (float *loss, float *probs, const float *logits, const int32_t *labels, const float *class_w, int n, int cc)) \
	X(softmax_xent_backward, (float *dlogits, const float *probs, const int32_t *labels, const float *class_w, int n, int cc, float dloss)) \
	X(bce_forward, (float *loss, const float *logits, const float *targets, int n)) \
	X(bce_backward, (float *dlogits, const float *logits, const float *targets, int n, float dloss)) \
	X(mse_forward, (float *loss, const float *pred, const float *target, int n)) \
	X(mse_backward, (float *dpred, const float *pred, const float *target, int n, float dloss)) \
	X(cox_forward, (float *loss, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red)) \
	X(cox_backward, (float *deta, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss)) \
	X(attnpool_forward, (float *m, float *a, float *ws, const float *h, const float *V, const float *bv, const float *U, const float *bu, const float *w, int n, int l, int d)) \
	X(attnpool_backward, (float *dh, float *dV, float *dbv, float *dU, float *dbu, float *dw, const float *dm, const float *a, float *ws, const float *h, const float *V, const float *U, const float *w, int n, int l, int d)) \
	X(adamw_update, (float *p, const float *g, float *m, float *v, size_t n, const struct fp_adamw *o, int decay, float grad_scale)) \
	X(sgd_update, (float *p, const float *g, float *buf, size_t n, float lr, float momentum, float weight_decay, int decay, float grad_scale)) \
	X(sumsq, (const float *x, size_t n, double *host_acc)) \
	X(weighted_sum, (float *out, const float *xs, const float *host_w, int kcount, size_t p)) \
	X(coord_median, (float *out, const float *xs, int kcount, size_t p)) \
	X(trimmed_mean, (float *out, const float *xs, int kcount, size_t p, int trim)) \
	X(mean_rows, (float *out, const float *xs, int kcount, size_t p)) \
	X(augment_tiles, (float *x, const uint8_t *rgb, const struct fp_tile_aug *host_aug, int n, int t, int s))

#define FP_UNPAREN(...) __VA_ARGS__
#define FP_DECLARE_CPU_OP(name, args) enum fp_status fp_cpu_##name(struct fp_cpu *be, FP_UNPAREN args);
#define FP_DECLARE_CUDA_OP(name, args) enum fp_status fp_cuda_##name(struct fp_cuda *be, FP_UNPAREN args);
FP_KERNEL_OPS(FP_DECLARE_CPU_OP)
FP_KERNEL_OPS(FP_DECLARE_CUDA_OP)

#ifdef __cplusplus
}
#endif

#endif
