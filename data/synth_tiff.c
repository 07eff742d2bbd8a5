/*
 * synth_tiff.c: writes one phantom slide as a pyramidal tiled TIFF.
 *
 * Takes a tissue (synth_tissue.c) that renders level-0 rows on demand; writes
 * IFD 0 = level 0, tiled FP_SYNTH_TILE^2 JPEG (photometric YCbCr 4:2:0, one
 * shared JPEGTables, abbreviated tile streams, as Aperio scanners write them),
 * then for Aperio the thumbnail (stripped JPEG, IFD 1 where OpenSlide looks
 * for it), the reduced levels at 4x steps (NewSubfileType 1), and for Aperio
 * the label (stripped LZW RGB, "label" in its description, NewSubfileType 1)
 * and the macro ("macro", NewSubfileType 9). `--format tiff` writes the
 * levels with resolution tags and a generic description, plus the label.
 *
 * Memory: one band of level 0 (FP_SYNTH_TILE rows), one band per reduced
 * level, the thumbnail, and the compressed tiles of the reduced levels until
 * they are written (about 1/15 of the file). Pixels are encoded with
 * libjpeg(-turbo) directly and stored with TIFFWriteRawTile, so each tile is
 * compressed once. The file is written as "<path>.tmp" and published by
 * fp_file_publish (fsync + rename).
 */
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>

#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>

#include "fp_arith.h"
#include "fp_file.h"
#include "synth_internal.h"

#define T FP_SYNTH_TILE
#define MAX_LEVELS 10
#define THUMB_MAX 1024
#define LABEL_W 600
#define LABEL_H 300
#define APERIO_HEAD "Aperio Image Library vFEDPATH-SYNTH-1\r\n"
/* Associated images: "\n" alone, as Aperio writes them; OpenSlide 3.4 names
 * them by the first word of the second line. */
#define APERIO_ASSOC "Aperio Image Library vFEDPATH-SYNTH-1\n"

struct jpeg_enc {
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int ready;
	unsigned char *tables;
	unsigned long tables_len;
};

static void jpeg_fail(j_common_ptr c)
{
	struct jpeg_enc *e = (struct jpeg_enc *)c->client_data;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

/* Growing store of compressed tiles of one reduced level. */
struct level {
	uint32_t w, h, tiles_x, tiles_y;
	uint8_t *band;        /* (T, w, 3) rows of this level not yet tiled */
	uint32_t *acc;        /* (w, 3) sums of the destination row being built */
	uint32_t acc_rows;    /* source rows summed into acc */
	uint32_t next_row;    /* next row of this level to produce */
	uint8_t *data;        /* compressed tiles, concatenated */
	size_t len, cap;
	uint64_t *off, *size; /* per tile */
};

struct writer {
	const struct synth_slide_geom *g;
	const struct synth_tiff_meta *meta;
	TIFF *tif;
	struct jpeg_enc enc;
	int n_levels;
	struct level lv[MAX_LEVELS];
	uint8_t *tilebuf;     /* (T, T, 3) */
	unsigned char *jbuf;  /* encoder output */
	unsigned long jcap;
	uint32_t tw, th, tf;  /* thumbnail size and factor */
	uint32_t *thumb_acc;
};

static enum fp_status enc_init(struct jpeg_enc *e, int quality)
{
	e->c.err = jpeg_std_error(&e->jerr);
	e->jerr.error_exit = jpeg_fail;
	e->c.client_data = e;
	if (setjmp(e->jb)) return FP_FAIL(FP_ERR_INTERNAL, "JPEG encoder setup: %s", e->msg);
	jpeg_create_compress(&e->c);
	e->ready = 1;
	e->c.image_width = T;
	e->c.image_height = T;
	e->c.input_components = 3;
	e->c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&e->c);
	jpeg_set_colorspace(&e->c, JCS_YCbCr); /* 2x2 luma sampling: TIFF YCbCrSubsampling 2,2 */
	jpeg_set_quality(&e->c, quality, TRUE);
	e->c.write_JFIF_header = FALSE;
	e->c.dct_method = JDCT_ISLOW;
	/* The tables-only stream for the JPEGTables tag; tiles then omit them. */
	jpeg_mem_dest(&e->c, &e->tables, &e->tables_len);
	jpeg_write_tables(&e->c);
	return FP_OK;
}

static void enc_close(struct jpeg_enc *e)
{
	if (e->ready) jpeg_destroy_compress(&e->c);
	free(e->tables);
	e->ready = 0;
	e->tables = NULL;
}

/* Encodes (h, w, 3) RGB as an abbreviated JPEG stream into w->jbuf. */
static enum fp_status encode(struct writer *wr, const uint8_t *rgb, uint32_t w, uint32_t h, unsigned long *len)
{
	struct jpeg_enc *e = &wr->enc;
	unsigned char *out = wr->jbuf;
	unsigned long size = wr->jcap;
	if (setjmp(e->jb)) return FP_FAIL(FP_ERR_INTERNAL, "JPEG encoding failed: %s", e->msg);
	e->c.image_width = w;
	e->c.image_height = h;
	jpeg_mem_dest(&e->c, &out, &size);
	jpeg_suppress_tables(&e->c, TRUE);
	jpeg_start_compress(&e->c, FALSE);
	while (e->c.next_scanline < h) {
		JSAMPROW row = (JSAMPROW)(rgb + (size_t)e->c.next_scanline * w * 3);
		jpeg_write_scanlines(&e->c, &row, 1);
	}
	jpeg_finish_compress(&e->c);
	if (out != wr->jbuf) { /* libjpeg grew the buffer: keep the bigger one */
		free(wr->jbuf);
		wr->jbuf = out;
		wr->jcap = size;
	}
	*len = size;
	return FP_OK;
}

/* Copies tile (tx, ty) out of a band of rows, replicating edge pixels. */
static void cut_tile(const uint8_t *band, uint32_t w, uint32_t rows, uint32_t tx, uint8_t *tile)
{
	for (uint32_t y = 0; y < T; y++) {
		const uint8_t *src = band + (size_t)(y < rows ? y : rows - 1) * w * 3;
		uint32_t x0 = tx * T;
		uint32_t n = x0 + T <= w ? T : w - x0;
		memcpy(tile + (size_t)y * T * 3, src + (size_t)x0 * 3, (size_t)n * 3);
		for (uint32_t x = n; x < T; x++) memcpy(tile + ((size_t)y * T + x) * 3, src + ((size_t)w - 1) * 3, 3);
	}
}

static enum fp_status store_tile(struct level *L, uint32_t idx, const unsigned char *data, unsigned long len)
{
	if (L->len + len > L->cap) {
		size_t cap = L->cap ? L->cap : 1 << 20;
		while (cap < L->len + len) cap *= 2;
		uint8_t *p = realloc(L->data, cap);
		if (!p) return FP_FAIL(FP_ERR_NOMEM, "reduced-level tiles: out of memory (%zu bytes)", cap);
		L->data = p;
		L->cap = cap;
	}
	memcpy(L->data + L->len, data, len);
	L->off[idx] = L->len;
	L->size[idx] = len;
	L->len += len;
	return FP_OK;
}

/* Encodes the band of level l (rows [y0, y0 + rows)) into tiles. */
static enum fp_status flush_band(struct writer *wr, int l, uint32_t y0, uint32_t rows)
{
	struct level *L = &wr->lv[l];
	uint32_t ty = y0 / T;
	for (uint32_t tx = 0; tx < L->tiles_x; tx++) {
		cut_tile(L->band, L->w, rows, tx, wr->tilebuf);
		unsigned long len;
		FP_TRY(encode(wr, wr->tilebuf, T, T, &len));
		uint32_t idx = ty * L->tiles_x + tx;
		if (l == 0) {
			if (TIFFWriteRawTile(wr->tif, idx, wr->jbuf, (tmsize_t)len) < 0)
				return FP_FAIL(FP_ERR_IO, "writing tile %u of level 0 failed", idx);
		} else {
			FP_TRY(store_tile(L, idx, wr->jbuf, len));
		}
	}
	return FP_OK;
}

/* Feeds row y of level l-1 (pixels `row`, width of that level) into level l. */
static enum fp_status push_row(struct writer *wr, int l, const uint8_t *row, uint32_t y_src)
{
	if (l >= wr->n_levels) return FP_OK;
	struct level *L = &wr->lv[l], *S = &wr->lv[l - 1];
	uint32_t full = S->w / 4; /* destination columns with 4 source columns */
	uint32_t *acc = L->acc;
	for (uint32_t x = 0; x < full; x++) {
		const uint8_t *p = row + (size_t)x * 12;
		acc[3 * x] += (uint32_t)p[0] + p[3] + p[6] + p[9];
		acc[3 * x + 1] += (uint32_t)p[1] + p[4] + p[7] + p[10];
		acc[3 * x + 2] += (uint32_t)p[2] + p[5] + p[8] + p[11];
	}
	if (full < L->w) { /* the right edge: fewer columns, weighted as if 4 */
		uint32_t n = S->w - full * 4;
		for (int c = 0; c < 3; c++) {
			uint32_t sum = 0;
			for (uint32_t xs = full * 4; xs < S->w; xs++) sum += row[xs * 3 + c];
			acc[3 * full + c] += (sum * 4 + n / 2) / n;
		}
	}
	L->acc_rows++;
	if (L->acc_rows < 4 && y_src + 1 < S->h) return FP_OK;
	/* complete a destination row: average (edge rows count as repeated) */
	uint32_t yd = L->next_row++;
	uint8_t *dst = L->band + (size_t)(yd % T) * L->w * 3;
	for (size_t i = 0; i < (size_t)L->w * 3; i++) {
		dst[i] = (uint8_t)((L->acc[i] + 2 * L->acc_rows) / (4 * L->acc_rows));
		L->acc[i] = 0;
	}
	L->acc_rows = 0;
	FP_TRY(push_row(wr, l + 1, dst, yd));
	if (yd % T == T - 1 || yd + 1 == L->h) FP_TRY(flush_band(wr, l, yd - yd % T, yd % T + 1));
	return FP_OK;
}

static void thumb_add(struct writer *wr, const uint8_t *row, uint32_t y)
{
	uint32_t *acc = wr->thumb_acc + (size_t)(y / wr->tf) * wr->tw * 3;
	uint32_t w = wr->g->width;
	for (uint32_t tx = 0; tx < wr->tw; tx++) {
		uint32_t x0 = tx * wr->tf, x1 = x0 + wr->tf < w ? x0 + wr->tf : w, r = 0, g = 0, b = 0;
		for (uint32_t x = x0; x < x1; x++) {
			r += row[3 * x];
			g += row[3 * x + 1];
			b += row[3 * x + 2];
		}
		acc[3 * tx] += r;
		acc[3 * tx + 1] += g;
		acc[3 * tx + 2] += b;
	}
}

static void set_common(TIFF *tif, uint32_t w, uint32_t h)
{
	TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
	TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
	TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
	TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
	TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
}

static void set_jpeg(struct writer *wr)
{
	TIFF *tif = wr->tif;
	TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
	TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
	TIFFSetField(tif, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
	TIFFSetField(tif, TIFFTAG_JPEGTABLES, (uint32_t)wr->enc.tables_len, wr->enc.tables);
	/* readers that decode through libtiff get RGB out */
	TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
}

static void set_resolution(TIFF *tif, double mpp)
{
	TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
	TIFFSetField(tif, TIFFTAG_XRESOLUTION, 10000.0 / mpp);
	TIFFSetField(tif, TIFFTAG_YRESOLUTION, 10000.0 / mpp);
}

static void describe(struct writer *wr, int l, char *buf, size_t n)
{
	const struct synth_scanner *sc = wr->meta->scanner;
	const struct synth_slide_geom *g = wr->g;
	double ds = (double)g->width / wr->lv[l].w;
	if (wr->meta->format == FP_SYNTH_TIFF) {
		snprintf(buf, n, "fedpath synth phantom H&E slide, level %d, %.4f um/px", l, g->mpp * ds);
		return;
	}
	if (l == 0) {
		char user[40];
		snprintf(user, sizeof user, "%016llx", (unsigned long long)synth_mix64(wr->meta->key));
		char fname[64];
		snprintf(fname, sizeof fname, "%s", wr->meta->fake_name);
		for (char *p = fname; *p; p++)
			if (*p == ' ') *p = '_';
		snprintf(buf, n,
		         APERIO_HEAD "%ux%u [0,100 %ux%u] (%dx%d) JPEG/YCC Q=%d|AppMag = %d|StripeWidth = 2040"
		         "|ScanScope ID = %s|Filename = %s|Title = fedpath synth phantom|Date = 11/27/26"
		         "|Time = 12:00:00|User = %s|MPP = %.4f|Left = 20.0|Top = 20.0"
		         "|OriginalWidth = %u|OriginalHeight = %u",
		         g->width, g->height, g->width, g->height, T, T, sc->jpeg_quality, sc->app_mag, sc->name, fname, user,
		         g->mpp, g->width, g->height);
	} else {
		snprintf(buf, n, APERIO_HEAD "%ux%u [0,100 %ux%u] (%dx%d) -> %ux%u JPEG/YCC Q=%d|AppMag = %d|MPP = %.4f",
		         g->width, g->height, g->width, g->height, T, T, wr->lv[l].w, wr->lv[l].h, sc->jpeg_quality,
		         sc->app_mag, g->mpp);
	}
}

static enum fp_status write_level_dir(struct writer *wr, int l)
{
	TIFF *tif = wr->tif;
	struct level *L = &wr->lv[l];
	char desc[1024];
	set_common(tif, L->w, L->h);
	if (l > 0) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
	TIFFSetField(tif, TIFFTAG_TILEWIDTH, T);
	TIFFSetField(tif, TIFFTAG_TILELENGTH, T);
	set_jpeg(wr);
	set_resolution(tif, wr->g->mpp * ((double)wr->g->width / L->w));
	describe(wr, l, desc, sizeof desc);
	TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
	if (l == 0) return FP_OK; /* tiles follow as they are rendered */
	for (uint32_t i = 0; i < L->tiles_x * L->tiles_y; i++)
		if (TIFFWriteRawTile(tif, i, L->data + L->off[i], (tmsize_t)L->size[i]) < 0)
			return FP_FAIL(FP_ERR_IO, "writing tile %u of level %d failed", i, l);
	if (!TIFFWriteDirectory(tif)) return FP_FAIL(FP_ERR_IO, "writing the directory of level %d failed", l);
	return FP_OK;
}

/* A stripped JPEG image (thumbnail, macro): one abbreviated stream as one strip. */
static enum fp_status write_stripped_jpeg(struct writer *wr, const uint8_t *rgb, uint32_t w, uint32_t h,
                                          const char *desc, uint32_t subfile)
{
	TIFF *tif = wr->tif;
	set_common(tif, w, h);
	if (subfile) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, subfile);
	TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
	set_jpeg(wr);
	TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
	unsigned long len;
	FP_TRY(encode(wr, rgb, w, h, &len));
	if (TIFFWriteRawStrip(tif, 0, wr->jbuf, (tmsize_t)len) < 0) return FP_FAIL(FP_ERR_IO, "writing a strip failed");
	if (!TIFFWriteDirectory(tif)) return FP_FAIL(FP_ERR_IO, "writing an associated image's directory failed");
	return FP_OK;
}

static enum fp_status write_label(struct writer *wr, const uint8_t *rgb, const char *desc)
{
	TIFF *tif = wr->tif;
	set_common(tif, LABEL_W, LABEL_H);
	TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
	TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
	TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
	TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 16);
	TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
	for (uint32_t s = 0; s * 16 < LABEL_H; s++) {
		uint32_t rows = LABEL_H - s * 16 < 16 ? LABEL_H - s * 16 : 16;
		if (TIFFWriteEncodedStrip(tif, s, (void *)(rgb + (size_t)s * 16 * LABEL_W * 3), (tmsize_t)rows * LABEL_W * 3) < 0)
			return FP_FAIL(FP_ERR_IO, "writing the label failed");
	}
	if (!TIFFWriteDirectory(tif)) return FP_FAIL(FP_ERR_IO, "writing the label's directory failed");
	return FP_OK;
}

static void writer_free(struct writer *wr)
{
	for (int l = 0; l < MAX_LEVELS; l++) {
		free(wr->lv[l].band);
		free(wr->lv[l].acc);
		free(wr->lv[l].data);
		free(wr->lv[l].off);
		free(wr->lv[l].size);
	}
	free(wr->tilebuf);
	free(wr->jbuf);
	free(wr->thumb_acc);
	enc_close(&wr->enc);
}

static enum fp_status setup_levels(struct writer *wr)
{
	const struct synth_slide_geom *g = wr->g;
	uint32_t w = g->width, h = g->height;
	wr->n_levels = 0;
	for (;;) {
		struct level *L = &wr->lv[wr->n_levels++];
		L->w = w;
		L->h = h;
		L->tiles_x = (w + T - 1) / T;
		L->tiles_y = (h + T - 1) / T;
		FP_TRY(fp_alloc_array((size_t)T * w, 3, (void **)&L->band, "level band"));
		if (wr->n_levels > 1) {
			size_t nt = (size_t)L->tiles_x * L->tiles_y;
			FP_TRY(fp_calloc_array((size_t)w * 3, sizeof(uint32_t), (void **)&L->acc, "level row"));
			FP_TRY(fp_calloc_array(nt, sizeof(uint64_t), (void **)&L->off, "tile index"));
			FP_TRY(fp_calloc_array(nt, sizeof(uint64_t), (void **)&L->size, "tile index"));
		}
		uint32_t nw = (w + 3) / 4, nh = (h + 3) / 4;
		if ((nw > nh ? nw : nh) < T || wr->n_levels == MAX_LEVELS) break;
		w = nw;
		h = nh;
	}
	wr->tf = (uint32_t)((((g->width > g->height ? g->width : g->height)) + THUMB_MAX - 1) / THUMB_MAX);
	if (wr->tf < 1) wr->tf = 1;
	wr->tw = (g->width + wr->tf - 1) / wr->tf;
	wr->th = (g->height + wr->tf - 1) / wr->tf;
	FP_TRY(fp_calloc_array((size_t)wr->tw * wr->th, 3 * sizeof(uint32_t), (void **)&wr->thumb_acc, "thumbnail"));
	FP_TRY(fp_alloc_array((size_t)T * T, 3, (void **)&wr->tilebuf, "tile"));
	wr->jcap = (unsigned long)T * T * 3 + 65536;
	FP_TRY(fp_alloc_array(wr->jcap, 1, (void **)&wr->jbuf, "JPEG buffer"));
	return FP_OK;
}

enum fp_status synth_tiff_write(const char *path, struct synth_tissue *t, const struct synth_slide_geom *g,
                                const struct synth_tiff_meta *meta, uint64_t *bytes)
{
	enum fp_status st = FP_OK;
	struct writer wr;
	memset(&wr, 0, sizeof wr);
	wr.g = g;
	wr.meta = meta;
	uint8_t *thumb = NULL, *label = NULL, *macro = NULL;
	char tmp[4096], desc[1024];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return FP_FAIL(FP_ERR_INVALID_ARG, "slide path too long: %s", path);
	FP_CHECK(st, setup_levels(&wr));
	FP_CHECK(st, enc_init(&wr.enc, meta->scanner->jpeg_quality));
	uint64_t px = (uint64_t)g->width * g->height;
	wr.tif = TIFFOpen(tmp, px > (1ull << 30) ? "w8" : "w");
	if (!wr.tif) {
		st = FP_FAIL(FP_ERR_IO, "cannot create %s", tmp);
		goto fail;
	}
	FP_CHECK(st, write_level_dir(&wr, 0));
	for (uint32_t y0 = 0; y0 < g->height; y0 += T) {
		uint32_t rows = g->height - y0 < T ? g->height - y0 : T;
		FP_CHECK(st, synth_tissue_render(t, y0, rows, wr.lv[0].band));
		FP_CHECK(st, flush_band(&wr, 0, y0, rows));
		for (uint32_t r = 0; r < rows; r++) {
			const uint8_t *row = wr.lv[0].band + (size_t)r * g->width * 3;
			thumb_add(&wr, row, y0 + r);
			FP_CHECK(st, push_row(&wr, 1, row, y0 + r));
		}
	}
	if (!TIFFWriteDirectory(wr.tif)) {
		st = FP_FAIL(FP_ERR_IO, "writing the directory of level 0 of %s failed", tmp);
		goto fail;
	}
	/* thumbnail: box average of level 0 */
	FP_CHECK(st, fp_alloc_array((size_t)wr.tw * wr.th, 3, (void **)&thumb, "thumbnail"));
	for (uint32_t y = 0; y < wr.th; y++)
		for (uint32_t x = 0; x < wr.tw; x++) {
			uint32_t nx = (x + 1) * wr.tf <= g->width ? wr.tf : g->width - x * wr.tf;
			uint32_t ny = (y + 1) * wr.tf <= g->height ? wr.tf : g->height - y * wr.tf;
			for (int c = 0; c < 3; c++) {
				size_t i = ((size_t)y * wr.tw + x) * 3 + (size_t)c;
				thumb[i] = (uint8_t)((wr.thumb_acc[i] + nx * ny / 2) / (nx * ny));
			}
		}
	if (meta->format == FP_SYNTH_SVS) {
		snprintf(desc, sizeof desc, APERIO_HEAD "%ux%u -> %ux%u - |AppMag = %d|MPP = %.4f", g->width, g->height,
		         wr.tw, wr.th, meta->scanner->app_mag, g->mpp);
		FP_CHECK(st, write_stripped_jpeg(&wr, thumb, wr.tw, wr.th, desc, 0));
	}
	for (int l = 1; l < wr.n_levels; l++) {
		FP_CHECK(st, write_level_dir(&wr, l));
		free(wr.lv[l].data); /* written: release early */
		wr.lv[l].data = NULL;
	}
	/* label with the fake patient name: never to be copied by the tiler */
	FP_CHECK(st, fp_alloc_array((size_t)LABEL_W * LABEL_H, 3, (void **)&label, "label"));
	char line2[64];
	snprintf(line2, sizeof line2, "%s HE", meta->patient_id);
	synth_label_draw(label, LABEL_W, LABEL_H, meta->fake_name, line2, meta->key);
	if (meta->format == FP_SYNTH_SVS)
		snprintf(desc, sizeof desc, APERIO_ASSOC "label %dx%d", LABEL_W, LABEL_H);
	else
		snprintf(desc, sizeof desc, "label %dx%d", LABEL_W, LABEL_H);
	FP_CHECK(st, write_label(&wr, label, desc));
	if (meta->format == FP_SYNTH_SVS) {
		/* macro: the label beside a picture of the whole glass */
		uint32_t mw = LABEL_W + (uint32_t)((uint64_t)wr.tw * LABEL_H / wr.th), mh = LABEL_H;
		FP_CHECK(st, fp_alloc_array((size_t)mw * mh, 3, (void **)&macro, "macro"));
		for (uint32_t y = 0; y < mh; y++)
			for (uint32_t x = 0; x < mw; x++) {
				const uint8_t *src;
				if (x < LABEL_W) src = &label[((size_t)y * LABEL_W + x) * 3];
				else {
					uint32_t sx = (uint32_t)((uint64_t)(x - LABEL_W) * wr.th / LABEL_H);
					uint32_t sy = (uint32_t)((uint64_t)y * wr.th / LABEL_H);
					if (sx >= wr.tw) sx = wr.tw - 1;
					if (sy >= wr.th) sy = wr.th - 1;
					src = &thumb[((size_t)sy * wr.tw + sx) * 3];
				}
				memcpy(&macro[((size_t)y * mw + x) * 3], src, 3);
			}
		snprintf(desc, sizeof desc, APERIO_ASSOC "macro %ux%u", mw, mh);
		FP_CHECK(st, write_stripped_jpeg(&wr, macro, mw, mh, desc, 9));
	}
	TIFFClose(wr.tif);
	wr.tif = NULL;
	struct stat sb;
	if (stat(tmp, &sb) != 0) {
		st = FP_FAIL(FP_ERR_IO, "cannot stat %s", tmp);
		goto fail;
	}
	FP_CHECK(st, fp_file_publish(tmp, path));
	if (bytes) *bytes = (uint64_t)sb.st_size;
	free(thumb);
	free(label);
	free(macro);
	writer_free(&wr);
	return FP_OK;
fail:
	if (wr.tif) TIFFClose(wr.tif);
	remove(tmp);
	free(thumb);
	free(label);
	free(macro);
	writer_free(&wr);
	return st;
}
