/*
 * fp_kernels_rng.h: the counter-based hash behind seeded dropout, shared by
 * the reference, the CPU and the CUDA backend so that all three draw the same
 * mask: keep(seed, i) depends on nothing else (no state, no thread order).
 * Internal to kernels/.
 */
#ifndef FP_KERNELS_RNG_H
#define FP_KERNELS_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define FP_HD __host__ __device__ __forceinline__
#else
#define FP_HD static inline
#endif

/* splitmix64 finaliser of seed and index: a well-mixed 64-bit value. */
FP_HD uint64_t fp_rng_mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 bits, exactly representable in float. */
FP_HD float fp_rng_uniform(uint64_t seed, uint64_t i)
{
	return (float)(fp_rng_mix(seed, i) >> 40) * (1.0f / 16777216.0f);
}

#endif
