/*
 * fp_kernels.h: compute primitives for training, one API over two backends.
 *
 * Stage: below train/ (layers, models) and federate/ (aggregation). Takes
 * float tensors in backend memory, produces float tensors in backend memory.
 *
 * Backends (chosen at run time by fp_kernels_create):
 *  - CPU: oneDNN for convolutions, OpenBLAS for GEMMs, OpenMP C for the rest.
 *  - CUDA (built when FP_HAVE_CUDA): cuDNN 9 backend (graph) API for
 *    convolutions with one plan per shape cached in the handle, cuBLAS for
 *    GEMMs, own kernels for the rest. Asking for CUDA where no GPU answers
 *    logs one line and gives a CPU handle (unless opt.require is set).
 * The plain-C reference (fp_kernels_ref.h, double throughout) is the oracle
 * the tests compare both backends with.
 *
 * Memory: every tensor pointer passed to an fp_k_* call is backend memory
 * from fp_kernels_alloc() (host memory for CPU, device memory for CUDA);
 * move data with fp_kernels_upload/download. Tensors are dense, row-major,
 * float32 unless stated. Images are NCHW: (N, C, H, W), W fastest.
 * Conv weights are (C_out, C_in, KH, KW), linear weights (out, in), both as
 * in PyTorch, so weights load from a PyTorch state dict without transposes.
 *
 * Gradients: every *_backward call OVERWRITES its outputs (dx, dw, db); a
 * NULL output is skipped. Sum gradients with fp_k_accumulate (residuals,
 * gradient accumulation over micro-batches).
 *
 * Determinism: with the same inputs a CPU handle gives bit-identical results
 * for any thread count (reductions run over fixed blocks in a fixed order);
 * a CUDA handle with opt.deterministic gives bit-identical results run to run
 * (non-deterministic cuDNN engines are filtered out, no float atomics).
 *
 * Errors: FP_ERR_INVALID_ARG for bad shapes/NULLs, FP_ERR_BACKEND when a
 * library call fails (the message names the call and its code).
 * A handle is used by one thread at a time.
 */
#ifndef FP_KERNELS_H
#define FP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

enum fp_backend_kind { FP_BACKEND_CPU = 0, FP_BACKEND_CUDA = 1 };

struct fp_kernels_options {
	enum fp_backend_kind backend;
	int device;        /* CUDA device index */
	int threads;       /* CPU threads; 0 = OpenMP default */
	int deterministic; /* CUDA: deterministic engines and reductions only */
	int require;       /* 1: fail instead of falling back to the CPU */
	int mixed;         /* CUDA: bf16 tensor-core compute (fp32 accumulation) in
	                    * convolutions and GEMMs; tensors, master weights and
	                    * optimiser state stay fp32 (about 1e-2 relative error).
	                    * A conv shape with no bf16 engine runs fp32/TF32 (logged).
	                    * CPU: ignored. */
};

/* Default options: CPU, device 0, default threads, deterministic, no require, fp32. */
void fp_kernels_options_default(struct fp_kernels_options *opt);

struct fp_kernels;

/* Creates a handle (owned by the caller, fp_kernels_destroy). */
enum fp_status fp_kernels_create(const struct fp_kernels_options *opt, struct fp_kernels **out);
void fp_kernels_destroy(struct fp_kernels *k);
enum fp_backend_kind fp_kernels_backend(const struct fp_kernels *k);
/* "cpu (2 threads)" or "cuda:0 NVIDIA H100 ..." (borrowed, lives with k). */
const char *fp_kernels_describe(const struct fp_kernels *k);
/* 1 when this build has the CUDA backend and a device answers. */
int fp_kernels_cuda_available(void);

/* Backend memory, `bytes` long, 256-byte aligned, uninitialised. */
enum fp_status fp_kernels_alloc(struct fp_kernels *k, size_t bytes, void **out);
void fp_kernels_free(struct fp_kernels *k, void *p);
/* `host` may also be memory of this backend: then the copy stays inside it
 * (device to device on a GPU), so a stage that takes host input can be
 * handed the output of an op on the backend without a round trip. */
enum fp_status fp_kernels_upload(struct fp_kernels *k, void *dst, const void *host, size_t bytes);
enum fp_status fp_kernels_download(struct fp_kernels *k, void *host, const void *src, size_t bytes);
enum fp_status fp_kernels_zero(struct fp_kernels *k, void *p, size_t bytes);
/* Waits for queued work (CUDA); no-op on the CPU. */
enum fp_status fp_kernels_sync(struct fp_kernels *k);

/* ---- elementwise ---- */
/* y[i] += x[i] */
enum fp_status fp_k_accumulate(struct fp_kernels *k, float *y, const float *x, size_t n);
/* y[i] = a[i] + b[i] (residual add); its backward is dy to both inputs. */
enum fp_status fp_k_add(struct fp_kernels *k, float *y, const float *a, const float *b, size_t n);
/* x[i] *= s */
enum fp_status fp_k_scale(struct fp_kernels *k, float *x, size_t n, float s);
enum fp_status fp_k_relu_forward(struct fp_kernels *k, float *y, const float *x, size_t n);
/* dx = dy * (y > 0); dx may alias dy. */
enum fp_status fp_k_relu_backward(struct fp_kernels *k, float *dx, const float *dy, const float *y, size_t n);
/* GELU, exact erf form (PyTorch's default). */
enum fp_status fp_k_gelu_forward(struct fp_kernels *k, float *y, const float *x, size_t n);
enum fp_status fp_k_gelu_backward(struct fp_kernels *k, float *dx, const float *dy, const float *x, size_t n);
/* Inverted dropout: y = x * keep / (1 - p), keep[i] = hash(seed, i) >= p. The
 * mask is a pure function of (seed, i): both backends draw the same one and
 * backward recomputes it, so nothing is stored. 0 <= p < 1. */
enum fp_status fp_k_dropout_forward(struct fp_kernels *k, float *y, const float *x, size_t n,
                                    float p, uint64_t seed);
enum fp_status fp_k_dropout_backward(struct fp_kernels *k, float *dx, const float *dy, size_t n,
                                     float p, uint64_t seed);

/* ---- convolution and pooling ---- */
struct fp_conv2d_shape {
	int n, c_in, h, w;  /* input (N, C_in, H, W) */
	int c_out, kh, kw;  /* weight (C_out, C_in, KH, KW) */
	int stride, pad;    /* same in both directions; zero padding */
};
/* Output height/width: (h + 2 pad - kh) / stride + 1. */
int fp_conv2d_out_h(const struct fp_conv2d_shape *s);
int fp_conv2d_out_w(const struct fp_conv2d_shape *s);

/* y: (N, C_out, OH, OW); x: (N, C_in, H, W); w: (C_out, C_in, KH, KW); b: (C_out) or NULL */
enum fp_status fp_k_conv2d_forward(struct fp_kernels *k, const struct fp_conv2d_shape *s,
                                   float *y, const float *x, const float *w, const float *b);
/* dx: like x or NULL; dw: like w or NULL; db: (C_out) or NULL; dy: like y */
enum fp_status fp_k_conv2d_backward(struct fp_kernels *k, const struct fp_conv2d_shape *s,
                                    float *dx, float *dw, float *db, const float *dy,
                                    const float *x, const float *w);

struct fp_pool2d_shape {
	int n, c, h, w;      /* input (N, C, H, W) */
	int k, stride, pad;  /* square window; max pool pads with -inf, avg counts pads (PyTorch default) */
};
int fp_pool2d_out_h(const struct fp_pool2d_shape *s);
int fp_pool2d_out_w(const struct fp_pool2d_shape *s);
/* y: (N, C, OH, OW). Ties go to the first maximum in row-major window order. */
enum fp_status fp_k_maxpool2d_forward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_k_maxpool2d_backward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *dx,
                                       const float *dy, const float *x);
enum fp_status fp_k_avgpool2d_forward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *y, const float *x);
enum fp_status fp_k_avgpool2d_backward(struct fp_kernels *k, const struct fp_pool2d_shape *s, float *dx, const float *dy);
/* y: (N, C) = mean over H*W of x: (N, C, HW) */
enum fp_status fp_k_gap_forward(struct fp_kernels *k, float *y, const float *x, int n, int c, int hw);
enum fp_status fp_k_gap_backward(struct fp_kernels *k, float *dx, const float *dy, int n, int c, int hw);

/* ---- linear ---- */
/* y: (N, out) = x: (N, in) * w^T, w: (out, in), + b: (out) or NULL */
enum fp_status fp_k_linear_forward(struct fp_kernels *k, float *y, const float *x, const float *w,
                                   const float *b, int n, int in, int out);
enum fp_status fp_k_linear_backward(struct fp_kernels *k, float *dx, float *dw, float *db, const float *dy,
                                    const float *x, const float *w, int n, int in, int out);

/* ---- normalisation ---- */
/* GroupNorm over x: (N, C, HW), `groups` dividing C; gamma, beta: (C).
 * mean, rstd: (N, groups) saved for backward. Biased variance, as PyTorch. */
enum fp_status fp_k_groupnorm_forward(struct fp_kernels *k, float *y, float *mean, float *rstd,
                                      const float *x, const float *gamma, const float *beta,
                                      int n, int c, int hw, int groups, float eps);
enum fp_status fp_k_groupnorm_backward(struct fp_kernels *k, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma,
                                       int n, int c, int hw, int groups);
/* BatchNorm, training mode: batch statistics over (N, HW) per channel; mean,
 * rstd: (C) saved for backward; running_mean/var (C, nullable) updated with
 * `momentum` and the unbiased variance, as PyTorch. The running statistics
 * are the site-local state of FedBN: train/ keeps them out of federation. */
enum fp_status fp_k_batchnorm_forward(struct fp_kernels *k, float *y, float *mean, float *rstd,
                                      float *running_mean, float *running_var,
                                      const float *x, const float *gamma, const float *beta,
                                      int n, int c, int hw, float eps, float momentum);
/* Inference mode: normalise with running statistics. */
enum fp_status fp_k_batchnorm_infer(struct fp_kernels *k, float *y, const float *x,
                                    const float *running_mean, const float *running_var,
                                    const float *gamma, const float *beta,
                                    int n, int c, int hw, float eps);
enum fp_status fp_k_batchnorm_backward(struct fp_kernels *k, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma, int n, int c, int hw);

/* ---- losses: the loss is written to *loss (backend memory, 1 float) ---- */
/* Softmax cross-entropy, weighted mean as PyTorch: sum_i w[y_i] nll_i / sum_i w[y_i].
 * logits: (N, C); labels: (N) int32 in [0, C) (checked on the CPU only);
 * class_w: (C) or NULL (all 1); probs: (N, C) softmax saved for backward. */
enum fp_status fp_k_softmax_xent_forward(struct fp_kernels *k, float *loss, float *probs,
                                         const float *logits, const int32_t *labels,
                                         const float *class_w, int n, int c);
/* dlogits: (N, C) = dloss * d(loss)/d(logits) */
enum fp_status fp_k_softmax_xent_backward(struct fp_kernels *k, float *dlogits, const float *probs,
                                          const int32_t *labels, const float *class_w,
                                          int n, int c, float dloss);
/* Binary cross-entropy on logits (stable form), mean over N; targets in [0, 1]. */
enum fp_status fp_k_bce_forward(struct fp_kernels *k, float *loss, const float *logits,
                                const float *targets, int n);
enum fp_status fp_k_bce_backward(struct fp_kernels *k, float *dlogits, const float *logits,
                                 const float *targets, int n, float dloss);
/* Mean squared error over N. */
enum fp_status fp_k_mse_forward(struct fp_kernels *k, float *loss, const float *pred, const float *target, int n);
enum fp_status fp_k_mse_backward(struct fp_kernels *k, float *dpred, const float *pred, const float *target,
                                 int n, float dloss);

/* Cox partial likelihood (negative log), sums in double.
 * eta: (N) log-risks; time: (N); event: (N) 1 event / 0 censored;
 * weight: (N) sample weights >= 0 or NULL (all 1). The risk sets are those
 * of this batch: accumulate patients across steps before calling (a batch
 * of one event has no comparison). NaN/Inf in eta or time: FP_ERR_NUMERIC.
 * The CUDA backend computes it on the host (a sort and a scan of N). Ties: Breslow shares one risk-set sum;
 * Efron (as R's coxph) subtracts r/d of the tied events' sum for the r-th of d.
 * FP_COX_MEAN divides by the (weighted) number of events, FP_COX_SUM does not.
 * No events: loss 0 and zero gradient. */
enum fp_cox_ties { FP_COX_BRESLOW = 0, FP_COX_EFRON = 1 };
enum fp_cox_reduction { FP_COX_MEAN = 0, FP_COX_SUM = 1 };
enum fp_status fp_k_cox_forward(struct fp_kernels *k, float *loss, const float *eta, const float *time,
                                const float *event, const float *weight, int n,
                                enum fp_cox_ties ties, enum fp_cox_reduction red);
enum fp_status fp_k_cox_backward(struct fp_kernels *k, float *deta, const float *eta, const float *time,
                                 const float *event, const float *weight, int n,
                                 enum fp_cox_ties ties, enum fp_cox_reduction red, float dloss);

/* ---- gated attention pooling (ABMIL) over one bag ----
 * h: (N, L); V, U: (D, L); bv, bu: (D); w: (D).
 * s_n = w . (tanh(V h_n + bv) * sigmoid(U h_n + bu)); a = softmax_N(s);
 * m: (L) = sum_n a_n h_n;  a: (N) attention weights (out, for display).
 * ws: workspace of fp_k_attnpool_ws_floats(N, D) floats written by forward
 * and consumed (overwritten) by backward; dh may be NULL. */
size_t fp_k_attnpool_ws_floats(int n, int d);
enum fp_status fp_k_attnpool_forward(struct fp_kernels *k, float *m, float *a, float *ws,
                                     const float *h, const float *V, const float *bv,
                                     const float *U, const float *bu, const float *w,
                                     int n, int l, int d);
enum fp_status fp_k_attnpool_backward(struct fp_kernels *k, float *dh, float *dV, float *dbv,
                                      float *dU, float *dbu, float *dw, const float *dm,
                                      const float *a, float *ws, const float *h,
                                      const float *V, const float *U, const float *w,
                                      int n, int l, int d);

/* ---- optimisers (one call per parameter tensor) ----
 * Weight decay applies only where decay = 1: pass 1 for weight matrices and
 * conv kernels, 0 for biases and norm parameters. The gradient is multiplied
 * by grad_scale first (global-norm clipping; 1 for none). */
struct fp_adamw {
	float lr, beta1, beta2, eps, weight_decay;
	long step;   /* 1 on the first update */
};
/* torch.optim.AdamW: p -= lr*wd*p; m,v EMA; p -= lr * mhat / (sqrt(vhat) + eps) */
enum fp_status fp_k_adamw_update(struct fp_kernels *k, float *p, const float *g, float *m, float *v,
                                 size_t n, const struct fp_adamw *o, int decay, float grad_scale);
/* torch.optim.SGD (dampening 0, nesterov off): g' = g + wd p; buf = mu buf + g'; p -= lr buf.
 * buf starts at zero. */
enum fp_status fp_k_sgd_update(struct fp_kernels *k, float *p, const float *g, float *buf, size_t n,
                               float lr, float momentum, float weight_decay, int decay, float grad_scale);
/* Sum of squares of x (double, fixed block order), added to *host_acc. */
enum fp_status fp_k_sumsq(struct fp_kernels *k, const float *x, size_t n, double *host_acc);
/* Global-norm clipping factor: min(1, max_norm / (norm + 1e-6)) where
 * norm = sqrt(sumsq); pass it as grad_scale. */
float fp_kernels_clip_scale(double sumsq, float max_norm);

/* ---- aggregator reductions over K site vectors, xs: (K, P) ---- */
/* out: (P) = sum_k w_k xs[k] in double, k in order. */
enum fp_status fp_k_weighted_sum(struct fp_kernels *k, float *out, const float *xs, const float *host_w,
                                 int kcount, size_t p);
/* out: (P) coordinate median (mean of the two middle values for even K). */
enum fp_status fp_k_coord_median(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p);
/* out: (P) mean after dropping the `trim` smallest and `trim` largest per coordinate; 2 trim < K. */
enum fp_status fp_k_trimmed_mean(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p, int trim);
/* *host_norm = ||x||_2, double, fixed order. */
enum fp_status fp_k_l2_norm(struct fp_kernels *k, const float *x, size_t n, double *host_norm);
/* out: (P) = (sum_k xs[k] in double, k = 0, 1, ... in order) / K, rounded
 * once to float: the data-parallel gradient mean (train/dist.c), the same
 * bits on both backends and as the host loop it replaces. */
enum fp_status fp_k_mean_rows(struct fp_kernels *k, float *out, const float *xs, int kcount, size_t p);

/* ---- tile pixels -> network input, with training augmentation ----
 * One tile's random draws, made by the caller (train/augment.c draws them
 * from its seeded stream on the host, so both backends see the same ones).
 * Output pixel (ox, oy) reads source pixel (u, v): start at (ox, oy),
 * rotate `rot90` quarter turns (u, v) <- (S-1-v, u), then mirror u when
 * flip_h and v when flip_v. The source is the mean of its f x f box of the
 * tile (f = T / S), in [0, 1]. With hed: optical density -> H, E, DAB
 * concentrations (Ruifrok & Johnston's vectors, as scikit-image's rgb2hed),
 * each c * hed_scale + hed_shift, back to RGB (Tellez et al. 2018). Then,
 * unless brightness == 0 and contrast == 1, per channel
 * v = clamp((v - mean) * contrast + mean + brightness, 0, 1) with the mean
 * over the tile before this step. All in double, rounded once per pixel. */
struct fp_tile_aug {
	int flip_h, flip_v;     /* 0 or 1 */
	int rot90;              /* quarter turns, 0..3 */
	int hed;                /* 1: apply hed_scale, hed_shift */
	double hed_scale[3], hed_shift[3];
	double brightness, contrast;
};
/* The identity (no flip, rotation, stain or colour change). */
void fp_tile_aug_identity(struct fp_tile_aug *a);
/* x: (N, 3, S, S) backend floats from rgb: (N, T, T, 3) backend uint8 (T a
 * multiple of S); aug: (N) host draws, or NULL for the identity. On a GPU the
 * tiles travel as uint8 (a quarter of the float input) and the pixel work
 * runs there; results equal the CPU's to 1e-5 absolute (libm vs CUDA
 * log/exp ulps, the order of the mean's sum). */
enum fp_status fp_k_augment_tiles(struct fp_kernels *k, float *x, const uint8_t *rgb,
                                  const struct fp_tile_aug *aug, int n, int t, int s);
/* The CPU op on one tile, without a handle (host memory; aug NULL = identity). */
enum fp_status fp_kernels_augment_tile(float *x, const uint8_t *rgb, const struct fp_tile_aug *aug, int t, int s);

#endif
