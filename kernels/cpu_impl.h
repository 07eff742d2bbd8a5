/*
 * cpu_impl.h: the CPU backend's private state, shared by cpu.c and
 * cpu_conv.c. Internal to kernels/.
 */
#ifndef FP_CPU_IMPL_H
#define FP_CPU_IMPL_H

#include "kernels_impl.h"

struct fp_cpu_conv_cache;

struct fp_cpu {
	int threads;
	struct fp_cpu_conv_cache *conv; /* oneDNN engine, stream and primitives per shape */
};

enum fp_status fp_cpu_conv_init(struct fp_cpu *c);
void fp_cpu_conv_close(struct fp_cpu *c);
/* Row-major C(M, N) = alpha op(A) op(B) + beta C; ta/tb: 1 = transposed. */
void fp_cpu_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *cc, int ldc);

#endif
