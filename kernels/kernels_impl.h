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

enum fp_status fp_cpu_accumulate(struct fp_cpu *be, float *y, const float *x, size_t n);
enum fp_status fp_cpu_add(struct fp_cpu *be, float *y, const float *a, const float *b, size_t n);
enum fp_status fp_cpu_scale(struct fp_cpu *be, float *x, size_t n, float s);
enum fp_status fp_cpu_relu_forward(struct fp_cpu *be, float *y, const float *x, size_t n);
enum fp_status fp_cpu_relu_backward(struct fp_cpu *be, float *dx, const float *dy, const float *y, size_t n);
enum fp_status fp_cpu_gelu_forward(struct fp_cpu *be, float *y, const float *x, size_t n);
enum fp_status fp_cpu_gelu_backward(struct fp_cpu *be, float *dx, const float *dy, const float *x, size_t n);
enum fp_status fp_cpu_dropout_forward(struct fp_cpu *be, float *y, const float *x, size_t n, float p, uint64_t seed);
enum fp_status fp_cpu_conv2d_forward(struct fp_cpu *be, const struct fp_conv2d_shape *s, float *y, const float *x, const float *w, const float *b);
enum fp_status fp_cpu_conv2d_backward(struct fp_cpu *be, const struct fp_conv2d_shape *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w);
enum fp_status fp_cpu_maxpool2d_forward(struct fp_cpu *be, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_cpu_maxpool2d_backward(struct fp_cpu *be, const struct fp_pool2d_shape *s, float *dx, const float *dy, const float *x);
enum fp_status fp_cpu_avgpool2d_forward(struct fp_cpu *be, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_cpu_avgpool2d_backward(struct fp_cpu *be, const struct fp_pool2d_shape *s, float *dx, const float *dy);
enum fp_status fp_cpu_gap_forward(struct fp_cpu *be, float *y, const float *x, int n, int cc, int hw);
enum fp_status fp_cpu_gap_backward(struct fp_cpu *be, float *dx, const float *dy, int n, int cc, int hw);
enum fp_status fp_cpu_linear_forward(struct fp_cpu *be, float *y, const float *x, const float *w, const float *b, int n, int in, int out);
enum fp_status fp_cpu_linear_backward(struct fp_cpu *be, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int in, int out);
enum fp_status fp_cpu_groupnorm_forward(struct fp_cpu *be, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, int groups, float eps);
enum fp_status fp_cpu_groupnorm_backward(struct fp_cpu *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw, int groups);
enum fp_status fp_cpu_batchnorm_forward(struct fp_cpu *be, float *y, float *mean, float *rstd, float *running_mean, float *running_var, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, float eps, float momentum);
enum fp_status fp_cpu_batchnorm_infer(struct fp_cpu *be, float *y, const float *x, const float *running_mean, const float *running_var, const float *gamma, const float *beta, int n, int cc, int hw, float eps);
enum fp_status fp_cpu_batchnorm_backward(struct fp_cpu *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw);
enum fp_status fp_cpu_softmax_xent_forward(struct fp_cpu *be, float *loss, float *probs, const float *logits, const int32_t *labels, const float *class_w, int n, int cc);
enum fp_status fp_cpu_softmax_xent_backward(struct fp_cpu *be, float *dlogits, const float *probs, const int32_t *labels, const float *class_w, int n, int cc, float dloss);
enum fp_status fp_cpu_bce_forward(struct fp_cpu *be, float *loss, const float *logits, const float *targets, int n);
enum fp_status fp_cpu_bce_backward(struct fp_cpu *be, float *dlogits, const float *logits, const float *targets, int n, float dloss);
enum fp_status fp_cpu_mse_forward(struct fp_cpu *be, float *loss, const float *pred, const float *target, int n);
enum fp_status fp_cpu_mse_backward(struct fp_cpu *be, float *dpred, const float *pred, const float *target, int n, float dloss);
enum fp_status fp_cpu_cox_forward(struct fp_cpu *be, float *loss, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red);
enum fp_status fp_cpu_cox_backward(struct fp_cpu *be, float *deta, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss);
enum fp_status fp_cpu_attnpool_forward(struct fp_cpu *be, float *m, float *a, float *ws, const float *h, const float *V, const float *bv, const float *U, const float *bu, const float *w, int n, int l, int d);
enum fp_status fp_cpu_attnpool_backward(struct fp_cpu *be, float *dh, float *dV, float *dbv, float *dU, float *dbu, float *dw, const float *dm, const float *a, float *ws, const float *h, const float *V, const float *U, const float *w, int n, int l, int d);
enum fp_status fp_cpu_adamw_update(struct fp_cpu *be, float *p, const float *g, float *m, float *v, size_t n, const struct fp_adamw *o, int decay, float grad_scale);
enum fp_status fp_cpu_sgd_update(struct fp_cpu *be, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float weight_decay, int decay, float grad_scale);
enum fp_status fp_cpu_sumsq(struct fp_cpu *be, const float *x, size_t n, double *host_acc);
enum fp_status fp_cpu_weighted_sum(struct fp_cpu *be, float *out, const float *xs, const float *host_w, int kcount, size_t p);
enum fp_status fp_cpu_coord_median(struct fp_cpu *be, float *out, const float *xs, int kcount, size_t p);
enum fp_status fp_cpu_trimmed_mean(struct fp_cpu *be, float *out, const float *xs, int kcount, size_t p, int trim);

enum fp_status fp_cuda_accumulate(struct fp_cuda *be, float *y, const float *x, size_t n);
enum fp_status fp_cuda_add(struct fp_cuda *be, float *y, const float *a, const float *b, size_t n);
enum fp_status fp_cuda_scale(struct fp_cuda *be, float *x, size_t n, float s);
enum fp_status fp_cuda_relu_forward(struct fp_cuda *be, float *y, const float *x, size_t n);
enum fp_status fp_cuda_relu_backward(struct fp_cuda *be, float *dx, const float *dy, const float *y, size_t n);
enum fp_status fp_cuda_gelu_forward(struct fp_cuda *be, float *y, const float *x, size_t n);
enum fp_status fp_cuda_gelu_backward(struct fp_cuda *be, float *dx, const float *dy, const float *x, size_t n);
enum fp_status fp_cuda_dropout_forward(struct fp_cuda *be, float *y, const float *x, size_t n, float p, uint64_t seed);
enum fp_status fp_cuda_conv2d_forward(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *y, const float *x, const float *w, const float *b);
enum fp_status fp_cuda_conv2d_backward(struct fp_cuda *be, const struct fp_conv2d_shape *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w);
enum fp_status fp_cuda_maxpool2d_forward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_cuda_maxpool2d_backward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx, const float *dy, const float *x);
enum fp_status fp_cuda_avgpool2d_forward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_cuda_avgpool2d_backward(struct fp_cuda *be, const struct fp_pool2d_shape *s, float *dx, const float *dy);
enum fp_status fp_cuda_gap_forward(struct fp_cuda *be, float *y, const float *x, int n, int cc, int hw);
enum fp_status fp_cuda_gap_backward(struct fp_cuda *be, float *dx, const float *dy, int n, int cc, int hw);
enum fp_status fp_cuda_linear_forward(struct fp_cuda *be, float *y, const float *x, const float *w, const float *b, int n, int in, int out);
enum fp_status fp_cuda_linear_backward(struct fp_cuda *be, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int in, int out);
enum fp_status fp_cuda_groupnorm_forward(struct fp_cuda *be, float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, int groups, float eps);
enum fp_status fp_cuda_groupnorm_backward(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw, int groups);
enum fp_status fp_cuda_batchnorm_forward(struct fp_cuda *be, float *y, float *mean, float *rstd, float *running_mean, float *running_var, const float *x, const float *gamma, const float *beta, int n, int cc, int hw, float eps, float momentum);
enum fp_status fp_cuda_batchnorm_infer(struct fp_cuda *be, float *y, const float *x, const float *running_mean, const float *running_var, const float *gamma, const float *beta, int n, int cc, int hw, float eps);
enum fp_status fp_cuda_batchnorm_backward(struct fp_cuda *be, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int n, int cc, int hw);
enum fp_status fp_cuda_softmax_xent_forward(struct fp_cuda *be, float *loss, float *probs, const float *logits, const int32_t *labels, const float *class_w, int n, int cc);
enum fp_status fp_cuda_softmax_xent_backward(struct fp_cuda *be, float *dlogits, const float *probs, const int32_t *labels, const float *class_w, int n, int cc, float dloss);
enum fp_status fp_cuda_bce_forward(struct fp_cuda *be, float *loss, const float *logits, const float *targets, int n);
enum fp_status fp_cuda_bce_backward(struct fp_cuda *be, float *dlogits, const float *logits, const float *targets, int n, float dloss);
enum fp_status fp_cuda_mse_forward(struct fp_cuda *be, float *loss, const float *pred, const float *target, int n);
enum fp_status fp_cuda_mse_backward(struct fp_cuda *be, float *dpred, const float *pred, const float *target, int n, float dloss);
enum fp_status fp_cuda_cox_forward(struct fp_cuda *be, float *loss, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red);
enum fp_status fp_cuda_cox_backward(struct fp_cuda *be, float *deta, const float *eta, const float *time, const float *event, const float *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss);
enum fp_status fp_cuda_attnpool_forward(struct fp_cuda *be, float *m, float *a, float *ws, const float *h, const float *V, const float *bv, const float *U, const float *bu, const float *w, int n, int l, int d);
enum fp_status fp_cuda_attnpool_backward(struct fp_cuda *be, float *dh, float *dV, float *dbv, float *dU, float *dbu, float *dw, const float *dm, const float *a, float *ws, const float *h, const float *V, const float *U, const float *w, int n, int l, int d);
enum fp_status fp_cuda_adamw_update(struct fp_cuda *be, float *p, const float *g, float *m, float *v, size_t n, const struct fp_adamw *o, int decay, float grad_scale);
enum fp_status fp_cuda_sgd_update(struct fp_cuda *be, float *p, const float *g, float *buf, size_t n, float lr, float momentum, float weight_decay, int decay, float grad_scale);
enum fp_status fp_cuda_sumsq(struct fp_cuda *be, const float *x, size_t n, double *host_acc);
enum fp_status fp_cuda_weighted_sum(struct fp_cuda *be, float *out, const float *xs, const float *host_w, int kcount, size_t p);
enum fp_status fp_cuda_coord_median(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p);
enum fp_status fp_cuda_trimmed_mean(struct fp_cuda *be, float *out, const float *xs, int kcount, size_t p, int trim);

#ifdef __cplusplus
}
#endif

#endif
