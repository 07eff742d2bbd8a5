/*
 * cuda_augment.cu: the CUDA twin of the tile -> input op
 * (fp_k_augment_tiles; per-pixel arithmetic shared with the CPU in
 * augment_impl.h). One block per tile: its threads stride over the output
 * pixels, sum the channel means in double over a fixed tree (no atomics, so
 * the result is the same run to run), then apply brightness/contrast.
 * The tiles arrive as uint8 (T, T, 3), a quarter of the bytes of the float
 * input they become; the per-tile draws (N small structs) are copied into
 * the handle's scratch, in chunks when a batch does not fit.
 */
#include "cuda_impl.h"
#include "augment_impl.h"

#define AUG_TPB 256

__device__ static double aug_block_sum(double v, double *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = AUG_TPB / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

/* x: (n, 3, s, s); rgb: (n, t, t, 3); aug: (n) or NULL (identity). */
__global__ void k_augment(float *x, const uint8_t *rgb, const struct fp_tile_aug *aug, struct fp_aug_stain st, int t,
                          int s)
{
	__shared__ double sh[AUG_TPB];
	__shared__ struct fp_tile_aug a;
	size_t tile = blockIdx.x, plane = (size_t)s * (size_t)s;
	int f = t / s;
	if (threadIdx.x == 0) {
		if (aug) {
			a = aug[tile];
		} else {
			a.flip_h = a.flip_v = a.rot90 = a.hed = 0;
			for (int c = 0; c < 3; c++) {
				a.hed_scale[c] = 1;
				a.hed_shift[c] = 0;
			}
			a.brightness = 0;
			a.contrast = 1;
		}
	}
	__syncthreads();
	float *xt = x + tile * 3 * plane;
	const uint8_t *rt = rgb + tile * 3 * (size_t)t * (size_t)t;
	double sum[3] = {0, 0, 0};
	for (size_t i = threadIdx.x; i < plane; i += AUG_TPB) {
		int oy = (int)(i / (size_t)s), ox = (int)(i % (size_t)s);
		double px[3];
		fp_aug_pixel(rt, t, s, f, &a, &st, ox, oy, px);
		for (int c = 0; c < 3; c++) {
			xt[(size_t)c * plane + i] = (float)px[c];
			sum[c] += px[c];
		}
	}
	if (!fp_aug_has_colour(&a)) return; /* the same for every thread of the block */
	double mu[3];
	for (int c = 0; c < 3; c++) mu[c] = aug_block_sum(sum[c], sh) / (double)plane;
	/* Each thread rewrites only the pixels it wrote: no barrier needed for x. */
	for (size_t i = threadIdx.x; i < plane; i += AUG_TPB)
		for (int c = 0; c < 3; c++) xt[(size_t)c * plane + i] = fp_aug_colour(xt[(size_t)c * plane + i], mu[c], &a);
}

enum fp_status fp_cuda_augment_tiles(struct fp_cuda *be, float *x, const uint8_t *rgb,
                                     const struct fp_tile_aug *host_aug, int n, int t, int s)
{
	struct fp_aug_stain st;
	size_t chunk = FP_CUDA_SCRATCH * sizeof(double) / sizeof(struct fp_tile_aug);
	size_t per = 3 * (size_t)s * (size_t)s, tb = 3 * (size_t)t * (size_t)t;
	fp_aug_stain_init(&st);
	for (size_t i0 = 0; i0 < (size_t)n; i0 += chunk) {
		size_t m = (size_t)n - i0 < chunk ? (size_t)n - i0 : chunk;
		const struct fp_tile_aug *dev = NULL;
		if (host_aug) {
			/* Stream-ordered after the previous chunk's kernel, which reads the scratch. */
			FP_TRY(fp_cuda_upload(be, be->dscratch, host_aug + i0, m * sizeof(struct fp_tile_aug)));
			dev = (const struct fp_tile_aug *)be->dscratch;
		}
		k_augment<<<(unsigned)m, AUG_TPB, 0, be->stream>>>(x + i0 * per, rgb + i0 * tb, dev, st, t, s);
		CU(cudaGetLastError());
	}
	return FP_OK;
}
