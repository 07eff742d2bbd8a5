/*
 * cuda_module.cu: the entry point of libfp_cuda.so, the CUDA backend as a
 * module that kernels.c loads only when a process uses a GPU (cuda_api.h
 * says why). Built only into that module, never linked into a program.
 *
 * The backend's sources call a few host functions (error context, logging,
 * the host Cox loss, shape helpers). The module defines them here as
 * forwards to the table the host passes at init, so that an error raised in
 * the module lands in the host's error context, which fp_error_msg() reads.
 * The module is linked with -Bsymbolic: these definitions serve the module
 * only, whatever the host exports.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cuda_api.h"

static const struct fp_cuda_host *host;

extern "C" {

enum fp_status fp_error_set(enum fp_status code, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return host->error_set(code, file, line, "%s", msg);
}

const char *fp_error_msg(void)
{
	return host->error_msg();
}

void fp_log(enum fp_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	host->log(lvl, "%s", msg);
}

enum fp_status fp_cpu_cox_forward(struct fp_cpu *be, float *loss, const float *eta, const float *time,
                                  const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                  enum fp_cox_reduction red)
{
	return host->cpu_cox_forward(be, loss, eta, time, event, weight, n, ties, red);
}

enum fp_status fp_cpu_cox_backward(struct fp_cpu *be, float *deta, const float *eta, const float *time,
                                   const float *event, const float *weight, int n, enum fp_cox_ties ties,
                                   enum fp_cox_reduction red, float dloss)
{
	return host->cpu_cox_backward(be, deta, eta, time, event, weight, n, ties, red, dloss);
}

int fp_conv2d_out_h(const struct fp_conv2d_shape *s) { return host->conv2d_out_h(s); }
int fp_conv2d_out_w(const struct fp_conv2d_shape *s) { return host->conv2d_out_w(s); }
int fp_pool2d_out_h(const struct fp_pool2d_shape *s) { return host->pool2d_out_h(s); }
int fp_pool2d_out_w(const struct fp_pool2d_shape *s) { return host->pool2d_out_w(s); }

__attribute__((visibility("default"))) const struct fp_cuda_api *fp_cuda_module_init(const struct fp_cuda_host *h)
{
	static struct fp_cuda_api table;
	if (!h || h->version != FP_CUDA_API_VERSION) return NULL;
	host = h;
	FP_CUDA_API_FILL(&table);
	return &table;
}

} /* extern "C" */
