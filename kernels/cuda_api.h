/*
 * cuda_api.h: the CUDA backend as a table of functions, so that it can live
 * in a module loaded at run time (libfp_cuda.so, cuda_module.cu) instead of
 * being linked into every program. Linking cuBLAS, cuBLASLt and cuDNN made
 * every fedpath process, GPU or not, start 0.14 s slower and map ~230 MB
 * (their load-time initialisation); now only a process that uses a GPU
 * pays it. Internal to kernels/.
 *
 * One member per fp_cuda_<op> of kernels_impl.h (FP_KERNEL_OPS and the
 * handle/memory functions), same name without the prefix, same arguments. The module gets the host's error, log and
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

#define FP_CUDA_API_VERSION 2 /* 2: mean_rows, augment_tiles */

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
#define FP_CUDA_API_MEMBER(name, args) enum fp_status (*name)(struct fp_cuda *be, FP_UNPAREN args);
	FP_KERNEL_OPS(FP_CUDA_API_MEMBER)
#undef FP_CUDA_API_MEMBER
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
#define FP_CUDA_API_SET_OP(name, args) fp_api_->name = fp_cuda_##name;
#define FP_CUDA_API_FILL(t)                                  \
	do {                                                     \
		struct fp_cuda_api *fp_api_ = (t);                   \
		fp_api_->version = FP_CUDA_API_VERSION;              \
		fp_api_->create = fp_cuda_create;                    \
		fp_api_->destroy = fp_cuda_destroy;                  \
		fp_api_->describe = fp_cuda_describe;                \
		fp_api_->device_count = fp_cuda_device_count;        \
		fp_api_->alloc = fp_cuda_alloc;                      \
		fp_api_->free = fp_cuda_free;                        \
		fp_api_->upload = fp_cuda_upload;                    \
		fp_api_->download = fp_cuda_download;                \
		fp_api_->zero = fp_cuda_zero;                        \
		fp_api_->sync = fp_cuda_sync;                        \
		FP_KERNEL_OPS(FP_CUDA_API_SET_OP)                    \
	} while (0)

/* The module's one exported entry point (FP_CUDA_MODULE_ENTRY): returns the
 * table, or NULL when the host's version differs. */
typedef const struct fp_cuda_api *(*fp_cuda_module_init_fn)(const struct fp_cuda_host *host);
#define FP_CUDA_MODULE_ENTRY "fp_cuda_module_init"

#ifdef __cplusplus
}
#endif

#endif
