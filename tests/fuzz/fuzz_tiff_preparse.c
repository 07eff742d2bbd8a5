/*
 * fuzz_tiff_preparse.c: libFuzzer entry for the bounded TIFF pre-parser
 * (data/tiff_preparse.c). Any input must return a status, never crash, read
 * out of bounds or loop; an accepted file must satisfy the documented limits.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fp_slide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_tiff_info info;
	if (fp_tiff_preparse_mem(data, size, "fuzz", &info) == FP_OK) {
		if (info.n_ifds < 1 || info.n_ifds > FP_TIFF_MAX_IFDS) abort();
		for (int i = 0; i < info.n_ifds; i++) {
			const struct fp_tiff_ifd_info *d = &info.ifd[i];
			if (d->width == 0 || d->width > FP_TIFF_MAX_DIM || d->height == 0 || d->height > FP_TIFF_MAX_DIM) abort();
			if (d->tile_w && (d->tile_w > FP_TIFF_MAX_TILE || d->tile_w % 16 || d->n_tiles > FP_TIFF_MAX_TILES)) abort();
		}
	}
	fp_error_clear();
	return 0;
}
