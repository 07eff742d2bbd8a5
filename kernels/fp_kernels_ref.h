/*
 * fp_kernels_ref.h: the plain-C reference of every op in fp_kernels.h.
 *
 * The oracle of the tests: naive loops, double storage and double
 * accumulation, no threads, no libraries. Same shapes, layouts and
 * semantics as fp_kernels.h (backward overwrites its outputs; NULL outputs
 * are skipped), host memory only, no error paths: callers pass valid shapes.
 * Slow on purpose; never used in training.
 */
#ifndef FP_KERNELS_REF_H
#define FP_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "fp_kernels.h"

void fp_ref_relu_forward(double *y, const double *x, size_t n);
void fp_ref_relu_backward(double *dx, const double *dy, const double *y, size_t n);
void fp_ref_gelu_forward(double *y, const double *x, size_t n);
void fp_ref_gelu_backward(double *dx, const double *dy, const double *x, size_t n);
/* 1 when element i is kept by dropout with (p, seed); shared by all backends. */
int fp_kernels_dropout_keep(uint64_t seed, uint64_t i, float p);
void fp_ref_dropout_forward(double *y, const double *x, size_t n, float p, uint64_t seed);
void fp_ref_dropout_backward(double *dx, const double *dy, size_t n, float p, uint64_t seed);

void fp_ref_conv2d_forward(const struct fp_conv2d_shape *s, double *y, const double *x,
                           const double *w, const double *b);
void fp_ref_conv2d_backward(const struct fp_conv2d_shape *s, double *dx, double *dw, double *db,
                            const double *dy, const double *x, const double *w);
void fp_ref_maxpool2d_forward(const struct fp_pool2d_shape *s, double *y, const double *x);
void fp_ref_maxpool2d_backward(const struct fp_pool2d_shape *s, double *dx, const double *dy, const double *x);
void fp_ref_avgpool2d_forward(const struct fp_pool2d_shape *s, double *y, const double *x);
void fp_ref_avgpool2d_backward(const struct fp_pool2d_shape *s, double *dx, const double *dy);
void fp_ref_gap_forward(double *y, const double *x, int n, int c, int hw);
void fp_ref_gap_backward(double *dx, const double *dy, int n, int c, int hw);

void fp_ref_linear_forward(double *y, const double *x, const double *w, const double *b, int n, int in, int out);
void fp_ref_linear_backward(double *dx, double *dw, double *db, const double *dy, const double *x,
                            const double *w, int n, int in, int out);

void fp_ref_groupnorm_forward(double *y, double *mean, double *rstd, const double *x, const double *gamma,
                              const double *beta, int n, int c, int hw, int groups, double eps);
void fp_ref_groupnorm_backward(double *dx, double *dgamma, double *dbeta, const double *dy, const double *x,
                               const double *mean, const double *rstd, const double *gamma,
                               int n, int c, int hw, int groups);
void fp_ref_batchnorm_forward(double *y, double *mean, double *rstd, const double *x, const double *gamma,
                              const double *beta, int n, int c, int hw, double eps);
void fp_ref_batchnorm_backward(double *dx, double *dgamma, double *dbeta, const double *dy, const double *x,
                               const double *mean, const double *rstd, const double *gamma, int n, int c, int hw);

double fp_ref_softmax_xent_forward(double *probs, const double *logits, const int32_t *labels,
                                   const double *class_w, int n, int c);
void fp_ref_softmax_xent_backward(double *dlogits, const double *probs, const int32_t *labels,
                                  const double *class_w, int n, int c, double dloss);
double fp_ref_bce_forward(const double *logits, const double *targets, int n);
void fp_ref_bce_backward(double *dlogits, const double *logits, const double *targets, int n, double dloss);
double fp_ref_mse_forward(const double *pred, const double *target, int n);
void fp_ref_mse_backward(double *dpred, const double *pred, const double *target, int n, double dloss);
double fp_ref_cox_forward(const double *eta, const double *time, const double *event, const double *weight,
                          int n, enum fp_cox_ties ties, enum fp_cox_reduction red);
void fp_ref_cox_backward(double *deta, const double *eta, const double *time, const double *event,
                         const double *weight, int n, enum fp_cox_ties ties, enum fp_cox_reduction red,
                         double dloss);

/* a: (N) attention weights; m: (L). No workspace: backward recomputes. */
void fp_ref_attnpool_forward(double *m, double *a, const double *h, const double *V, const double *bv,
                             const double *U, const double *bu, const double *w, int n, int l, int d);
void fp_ref_attnpool_backward(double *dh, double *dV, double *dbv, double *dU, double *dbu, double *dw,
                              const double *dm, const double *h, const double *V, const double *bv,
                              const double *U, const double *bu, const double *w, int n, int l, int d);

void fp_ref_adamw_update(double *p, const double *g, double *m, double *v, size_t n,
                         const struct fp_adamw *o, int decay, double grad_scale);
void fp_ref_sgd_update(double *p, const double *g, double *buf, size_t n, double lr, double momentum,
                       double weight_decay, int decay, double grad_scale);

void fp_ref_weighted_sum(double *out, const double *xs, const double *w, int kcount, size_t p);
void fp_ref_coord_median(double *out, const double *xs, int kcount, size_t p);
void fp_ref_trimmed_mean(double *out, const double *xs, int kcount, size_t p, int trim);
double fp_ref_l2_norm(const double *x, size_t n);

#endif
