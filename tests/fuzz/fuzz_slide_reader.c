/*
 * fuzz_slide_reader.c: libFuzzer entry for the whole slide reader: pre-parse,
 * libtiff, JPEG / JPEG 2000 / LZW / Deflate decoding, region reads. The input
 * is served from a memfd (no disk); a few tiles of every level are decoded.
 * Any input must end in a status, never a crash, leak or hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fp_slide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-slide", MFD_CLOEXEC);
	if (fd < 0) return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct fp_slide_options o = {.allow_unknown_mpp = 1, .max_alloc = 64u << 20};
	struct fp_slide *s = NULL;
	if (fp_slide_open(path, &o, &s) == FP_OK) {
		for (int l = 0; l < fp_slide_level_count(s); l++) {
			const struct fp_slide_level *lv = fp_slide_level(s, l);
			if (lv->tile_w > 1024 || lv->tile_h > 1024) continue;
			uint8_t *buf = malloc((size_t)lv->tile_w * lv->tile_h * 3);
			if (!buf) break;
			for (uint32_t k = 0; k < 4 && k < lv->tiles_x * lv->tiles_y; k++)
				fp_slide_read_tile(s, l, k % lv->tiles_x, k / lv->tiles_x, buf, NULL);
			fp_slide_read_region(s, l, -3, -5, lv->tile_w / 2, lv->tile_h / 2, buf, NULL);
			uint8_t *j = NULL;
			size_t len = 0;
			fp_slide_read_jpeg_tile(s, l, 0, 0, &j, &len);
			free(j);
			free(buf);
		}
		char hex[65];
		fp_slide_quickhash(s, hex);
		fp_slide_destroy(s);
	}
	fp_error_clear();
	close(fd);
	return 0;
}
