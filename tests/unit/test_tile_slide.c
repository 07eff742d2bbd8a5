/*
 * test_tile_slide.c: the slide readers and the pre-parser (fp_slide.h facts),
 * and the committed malformed corpus (tests/data/malformed/).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_slide.h"
#include "fp_test.h"
#include "test_tile_util.h"

static char *tpath(const char *name)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", fp_test_tmpdir(), name);
	return buf;
}

/* Opens, checks the level geometry and that every tile of every level decodes
 * to the pattern within `tol` (mean absolute difference). */
static void check_slide(const struct tslide *s, const char *path, double mpp, const char *vendor, double tol)
{
	struct fp_slide *sl = NULL;
	CHECK_OK(fp_slide_open(path, NULL, &sl));
	CHECK_STR_EQ(fp_slide_vendor_name(sl), vendor);
	CHECK_INT_EQ(fp_slide_level_count(sl), s->levels);
	CHECK_NEAR(fp_slide_mpp(sl), mpp, 1e-6, 1e-6);
	uint8_t *buf = malloc((size_t)s->tile * s->tile * 3);
	for (int l = 0; l < s->levels; l++) {
		const struct fp_slide_level *lv = fp_slide_level(sl, l);
		uint32_t d = 1;
		for (int i = 0; i < l; i++) d *= (uint32_t)s->ds;
		CHECK_INT_EQ(lv->width, s->w / d);
		CHECK_NEAR(lv->mpp, mpp * d, 1e-9, 1e-9);
		for (uint32_t ty = 0; ty < lv->tiles_y; ty++) {
			for (uint32_t tx = 0; tx < lv->tiles_x; tx++) {
				int missing = 1;
				CHECK_OK(fp_slide_read_tile(sl, l, tx, ty, buf, &missing));
				CHECK(!missing);
				/* Compare only the part inside the level (edges are clipped to 255). */
				uint32_t vw = lv->width - tx * s->tile < s->tile ? lv->width - tx * s->tile : s->tile;
				uint32_t vh = lv->height - ty * s->tile < s->tile ? lv->height - ty * s->tile : s->tile;
				if (vw == s->tile && vh == s->tile) {
					double diff = tdiff(s, l, tx, ty, buf);
					CHECK_MSG(diff <= tol, "level %d tile (%u,%u): mean abs diff %.3f > %.3f", l, tx, ty, diff, tol);
				} else {
					CHECK_INT_EQ(buf[((size_t)(s->tile - 1) * s->tile + s->tile - 1) * 3], 255);
				}
			}
		}
	}
	free(buf);
	fp_slide_destroy(sl);
}

FP_TEST(aperio_jpeg_ycbcr)
{
	struct tslide s = {.w = 1024, .h = 768, .tile = 256, .levels = 2, .ds = 4, .compression = COMPRESSION_JPEG,
	                   .photometric = PHOTOMETRIC_YCBCR, .desc = APERIO_DESC("0.2500"), .label = 1};
	CHECK(twrite(tpath("a.svs"), &s) == 0);
	check_slide(&s, tpath("a.svs"), 0.25, "aperio", 4.0);
	struct fp_slide *sl = NULL;
	CHECK_OK(fp_slide_open(tpath("a.svs"), NULL, &sl));
	CHECK_NEAR(fp_slide_objective_power(sl), 40, 0, 0);
	fp_slide_destroy(sl);
}

/* Photometric-RGB JPEG (Aperio "JPEG/RGB", no Adobe marker): decoded without
 * colour conversion. A YCbCr interpretation would be off by far more. */
FP_TEST(aperio_jpeg_rgb_forced)
{
	struct tslide s = {.w = 1024, .h = 768, .tile = 256, .levels = 2, .ds = 4, .compression = COMPRESSION_JPEG,
	                   .photometric = PHOTOMETRIC_RGB, .desc = APERIO_DESC("0.5")};
	CHECK(twrite(tpath("rgb.svs"), &s) == 0);
	check_slide(&s, tpath("rgb.svs"), 0.5, "aperio", 3.0);
}

FP_TEST(aperio_j2k_33003_ycbcr)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 2, .ds = 2, .compression = 33003,
	                   .desc = APERIO_DESC("0.25")};
	CHECK(twrite(tpath("j.svs"), &s) == 0);
	check_slide(&s, tpath("j.svs"), 0.25, "aperio", 1.0); /* lossless J2K; YCbCr rounding only */
}

FP_TEST(aperio_j2k_33005_rgb)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = 33005,
	                   .desc = APERIO_DESC("0.25")};
	CHECK(twrite(tpath("k.svs"), &s) == 0);
	check_slide(&s, tpath("k.svs"), 0.25, "aperio", 0.0); /* lossless: exact */
}

FP_TEST(generic_lzw_deflate_none_exact)
{
	uint16_t comps[3] = {COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_NONE};
	for (int i = 0; i < 3; i++) {
		struct tslide s = {.w = 600, .h = 400, .tile = 128, .levels = 3, .ds = 2, .compression = comps[i], .xres = 40000};
		char name[32];
		snprintf(name, sizeof name, "g%d.tif", i);
		CHECK(twrite(tpath(name), &s) == 0);
		check_slide(&s, tpath(name), 0.25, "generic", 0.0);
	}
}

FP_TEST(bigtiff_generic_jpeg)
{
	struct tslide s = {.w = 768, .h = 512, .tile = 256, .levels = 2, .ds = 2, .compression = COMPRESSION_JPEG,
	                   .photometric = PHOTOMETRIC_YCBCR, .bigtiff = 1, .xres = 20000};
	CHECK(twrite(tpath("b.tif"), &s) == 0);
	check_slide(&s, tpath("b.tif"), 0.5, "generic", 4.0);
}

FP_TEST(ome_subifd_pyramid)
{
	struct tslide s = {.w = 1024, .h = 512, .tile = 256, .levels = 3, .ds = 2, .compression = COMPRESSION_LZW, .ome = 1,
	                   .desc = "<?xml version=\"1.0\"?><OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
	                           "<Image ID=\"Image:0\"><Pixels PhysicalSizeX=\"0.2635\" PhysicalSizeXUnit=\"\xc2\xb5m\" "
	                           "SizeX=\"1024\" SizeY=\"512\"/></Image></OME>"};
	CHECK(twrite(tpath("o.ome.tif"), &s) == 0);
	check_slide(&s, tpath("o.ome.tif"), 0.2635, "ome", 0.0);
}

FP_TEST(mpp_missing_is_refused_and_override_accepted)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_LZW};
	CHECK(twrite(tpath("n.tif"), &s) == 0);
	struct fp_slide *sl = NULL;
	CHECK_STATUS(fp_slide_open(tpath("n.tif"), NULL, &sl), FP_ERR_DATA);
	CHECK_STR_CONTAINS(fp_error_msg(), "--source-mpp");
	CHECK(sl == NULL);
	struct fp_slide_options o = {.source_mpp = 0.25};
	CHECK_OK(fp_slide_open(tpath("n.tif"), &o, &sl));
	CHECK_STR_EQ(fp_slide_mpp_source(sl), "override");
	fp_slide_destroy(sl);
	o.source_mpp = 50; /* outside the documented range */
	CHECK_STATUS(fp_slide_open(tpath("n.tif"), &o, &sl), FP_ERR_INVALID_ARG);
}

/* Placeholder resolutions ("1 px/cm") and out-of-range Aperio MPP are not trusted. */
FP_TEST(mpp_out_of_range_is_not_trusted)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_LZW, .xres = 1};
	CHECK(twrite(tpath("p.tif"), &s) == 0);
	struct fp_slide *sl = NULL;
	CHECK_STATUS(fp_slide_open(tpath("p.tif"), NULL, &sl), FP_ERR_DATA);
	struct tslide a = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_LZW,
	                   .desc = APERIO_DESC("25.0"), .xres = 40000};
	CHECK(twrite(tpath("q.svs"), &a) == 0);
	CHECK_OK(fp_slide_open(tpath("q.svs"), NULL, &sl));
	CHECK_STR_EQ(fp_slide_mpp_source(sl), "tiff-resolution"); /* falls through to the next source */
	CHECK_NEAR(fp_slide_mpp(sl), 0.25, 1e-6, 0);
	fp_slide_destroy(sl);
}

FP_TEST(label_and_macro_are_never_levels)
{
	struct tslide s = {.w = 1024, .h = 768, .tile = 256, .levels = 2, .ds = 2, .compression = COMPRESSION_JPEG,
	                   .photometric = PHOTOMETRIC_YCBCR, .desc = APERIO_DESC("0.25"), .label = 1};
	CHECK(twrite(tpath("l.svs"), &s) == 0);
	struct fp_slide *sl = NULL;
	CHECK_OK(fp_slide_open(tpath("l.svs"), NULL, &sl));
	CHECK_INT_EQ(fp_slide_level_count(sl), 2);
	CHECK_INT_EQ(fp_slide_level(sl, 1)->width, 512);
	fp_slide_destroy(sl);
}

FP_TEST(region_reads_across_tiles_and_past_edges)
{
	struct tslide s = {.w = 600, .h = 400, .tile = 128, .levels = 1, .ds = 2, .compression = COMPRESSION_NONE, .xres = 40000};
	CHECK(twrite(tpath("r.tif"), &s) == 0);
	struct fp_slide *sl = NULL;
	CHECK_OK(fp_slide_open(tpath("r.tif"), NULL, &sl));
	uint8_t *buf = malloc(300 * 200 * 3);
	int missing = -1;
	CHECK_OK(fp_slide_read_region(sl, 0, 450, 300, 300, 200, buf, &missing));
	CHECK_INT_EQ(missing, 0);
	for (uint32_t y = 0; y < 200; y += 7)
		for (uint32_t x = 0; x < 300; x += 5) {
			uint8_t want[3] = {255, 255, 255};
			if (450 + x < 600 && 300 + y < 400) tpix(450 + x, 300 + y, 600, 400, want);
			CHECK_INT_EQ(buf[((size_t)y * 300 + x) * 3 + 1], want[1]);
		}
	free(buf);
	fp_slide_destroy(sl);
}

/* The copied JPEG tile is standalone: it decodes alone to the same pixels as
 * the tile decoded with its JPEGTables, for YCbCr and for photometric RGB. */
FP_TEST(native_jpeg_tile_is_standalone)
{
	uint16_t ph[2] = {PHOTOMETRIC_YCBCR, PHOTOMETRIC_RGB};
	for (int k = 0; k < 2; k++) {
		struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_JPEG,
		                   .photometric = ph[k], .desc = APERIO_DESC("0.25")};
		CHECK(twrite(tpath("s.svs"), &s) == 0);
		struct fp_slide *sl = NULL;
		CHECK_OK(fp_slide_open(tpath("s.svs"), NULL, &sl));
		uint8_t *a = malloc(256 * 256 * 3), *b = malloc(256 * 256 * 3), *j = NULL;
		size_t len = 0;
		CHECK_OK(fp_slide_read_tile(sl, 0, 1, 1, a, NULL));
		CHECK_OK(fp_slide_read_jpeg_tile(sl, 0, 1, 1, &j, &len));
		CHECK(len > 100);
		CHECK_OK(fp_codec_jpeg_decode(NULL, 0, j, len, 0, 256, 256, b));
		CHECK(memcmp(a, b, 256 * 256 * 3) == 0);
		free(a);
		free(b);
		free(j);
		fp_slide_destroy(sl);
	}
}

FP_TEST(preparse_rejects_loops_and_truncation_in_memory)
{
	/* Header + one IFD whose next-IFD pointer points at itself. */
	uint8_t t[256] = {'I', 'I', 42, 0, 8, 0, 0, 0};
	uint8_t *p = t + 8;
	p[0] = 3; /* 3 entries */
	uint16_t tags[3][2] = {{256, 3}, {257, 3}, {273, 4}};
	for (int i = 0; i < 3; i++) {
		uint8_t *e = p + 2 + 12 * i;
		e[0] = (uint8_t)tags[i][0]; e[1] = (uint8_t)(tags[i][0] >> 8);
		e[2] = (uint8_t)tags[i][1]; e[4] = 1;
		e[8] = i < 2 ? 16 : 100;
	}
	uint8_t *next = p + 2 + 36;
	next[0] = 8;
	struct fp_tiff_info info;
	CHECK(fp_tiff_preparse_mem(t, sizeof t, "loop", &info) != FP_OK);
	CHECK_STR_CONTAINS(fp_error_msg(), "loop");
	next[0] = 0;
	CHECK(fp_tiff_preparse_mem(t, 40, "short", &info) != FP_OK);
	CHECK_STR_CONTAINS(fp_error_msg(), "truncated");
	CHECK(fp_tiff_preparse_mem(t, 4, "tiny", &info) != FP_OK);
	CHECK(fp_tiff_preparse_mem((const uint8_t *)"GIF89a....", 10, "gif", &info) != FP_OK);
	CHECK_STR_CONTAINS(fp_error_msg(), "not a TIFF");
}

/* Every file of the committed corpus is refused with a message naming it;
 * none crashes the reader (a crash fails this test). */
FP_TEST(malformed_corpus_clean_errors)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/malformed", fp_test_datadir());
	DIR *d = opendir(dir);
	CHECK_MSG(d != NULL, "cannot open %s", dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".txt") || strstr(e->d_name, ".md")) continue;
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct fp_slide *sl = NULL;
		enum fp_status st = fp_slide_open(path, NULL, &sl);
		if (st == FP_OK) {
			/* Structurally valid files with damaged tiles: reading must fail cleanly. */
			int bad = 0;
			uint8_t *buf = malloc((size_t)4096 * 4096 * 3);
			for (int l = 0; l < fp_slide_level_count(sl) && !bad; l++) {
				const struct fp_slide_level *lv = fp_slide_level(sl, l);
				for (uint32_t ty = 0; ty < lv->tiles_y && !bad; ty++)
					for (uint32_t tx = 0; tx < lv->tiles_x && !bad; tx++)
						if (fp_slide_read_tile(sl, l, tx, ty, buf, NULL) != FP_OK) bad = 1;
			}
			free(buf);
			fp_slide_destroy(sl);
			CHECK_MSG(bad, "%s: opened and decoded without any error", e->d_name);
		} else {
			CHECK_MSG(strlen(fp_error_msg()) > 0, "%s: no message", e->d_name);
		}
		n++;
	}
	closedir(d);
	CHECK_MSG(n >= 8, "only %d corpus files", n);
}

/* A zero-length tile (an Aperio encoder bug) is missing: white, flagged, no error. */
FP_TEST(zero_length_tile_is_missing)
{
	struct tslide s = {.w = 512, .h = 512, .tile = 256, .levels = 1, .ds = 2, .compression = COMPRESSION_JPEG,
	                   .photometric = PHOTOMETRIC_YCBCR, .desc = APERIO_DESC("0.25"), .zero_tile = 2};
	CHECK(twrite(tpath("z.svs"), &s) == 0);
	struct fp_slide *sl = NULL;
	CHECK_OK(fp_slide_open(tpath("z.svs"), NULL, &sl));
	uint8_t *buf = malloc(256 * 256 * 3);
	int missing = 0;
	CHECK_OK(fp_slide_read_tile(sl, 0, 1, 0, buf, &missing));
	CHECK_INT_EQ(missing, 1);
	CHECK_INT_EQ(buf[12345], 255);
	CHECK_OK(fp_slide_read_tile(sl, 0, 0, 0, buf, &missing));
	CHECK_INT_EQ(missing, 0);
	CHECK_INT_EQ(fp_slide_missing_tiles(sl), 1);
	free(buf);
	fp_slide_destroy(sl);
}
