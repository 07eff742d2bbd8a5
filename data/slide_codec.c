/*
 * slide_codec.c: JPEG (libjpeg-turbo) and JPEG 2000 (OpenJPEG) for tiles.
 * Contract in slide_codec.h. libjpeg errors longjmp back here; nothing of
 * libjpeg's default error handling (which calls exit()) is left in place.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <openjpeg.h>

#include "fp_arith.h"
#include "slide_codec.h"

struct jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX];
	int warnings;
};

static void jerr_exit(j_common_ptr c)
{
	struct jerr *e = (struct jerr *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jump, 1);
}

static void jerr_emit(j_common_ptr c, int level)
{
	struct jerr *e = (struct jerr *)c->err;
	if (level < 0) { /* warnings: corrupt data, premature end of segment */
		if (!e->warnings) (*c->err->format_message)(c, e->msg);
		e->warnings++;
	}
}

static void jerr_silent(j_common_ptr c) { (void)c; }

static void jerr_setup(struct jerr *e, j_common_ptr c)
{
	(void)c;
	jpeg_std_error(&e->pub);
	e->pub.error_exit = jerr_exit;
	e->pub.emit_message = jerr_emit;
	e->pub.output_message = jerr_silent;
	e->msg[0] = 0;
	e->warnings = 0;
}

static enum fp_status jpeg_decode(const uint8_t *tables, size_t tables_len, const uint8_t *data, size_t len,
                                  int force_rgb, int half, uint32_t w, uint32_t h, uint8_t *out);

enum fp_status fp_codec_jpeg_decode(const uint8_t *tables, size_t tables_len, const uint8_t *data,
                                    size_t len, int force_rgb, uint32_t w, uint32_t h, uint8_t *out)
{
	return jpeg_decode(tables, tables_len, data, len, force_rgb, 0, w, h, out);
}

enum fp_status fp_codec_jpeg_decode_half(const uint8_t *data, size_t len, uint32_t w, uint32_t h, uint8_t *out)
{
	return jpeg_decode(NULL, 0, data, len, 0, 1, w, h, out);
}

static enum fp_status jpeg_decode(const uint8_t *tables, size_t tables_len, const uint8_t *data, size_t len,
                                  int force_rgb, int half, uint32_t w, uint32_t h, uint8_t *out)
{
	struct jpeg_decompress_struct d;
	struct jerr e;
	volatile enum fp_status status = FP_OK;
	memset(&d, 0, sizeof d);
	jerr_setup(&e, NULL);
	d.err = &e.pub;
	if (setjmp(e.jump)) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG: %s", e.msg);
		goto fail;
	}
	jpeg_create_decompress(&d);
	if (tables && tables_len) {
		jpeg_mem_src(&d, tables, (unsigned long)tables_len);
		if (jpeg_read_header(&d, FALSE) != JPEG_HEADER_TABLES_ONLY) {
			status = FP_FAIL(FP_ERR_FORMAT, "JPEG: JPEGTables hold more than tables");
			goto fail;
		}
	}
	if (len < 4) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG: %zu-byte stream", len);
		goto fail;
	}
	jpeg_mem_src(&d, data, (unsigned long)len);
	if (jpeg_read_header(&d, TRUE) != JPEG_HEADER_OK) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG: no image in stream");
		goto fail;
	}
	if (d.num_components != 3) {
		status = FP_FAIL(FP_ERR_UNSUPPORTED, "JPEG: %d components (expected 3)", d.num_components);
		goto fail;
	}
	if (force_rgb) d.jpeg_color_space = JCS_RGB;
	d.out_color_space = JCS_RGB;
	if (half) {
		d.scale_num = 1;
		d.scale_denom = 2;
	}
	jpeg_start_decompress(&d);
	if (d.image_width != w || d.image_height != h || d.output_components != 3) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG: decoded %ux%u, expected %ux%u", d.image_width,
		                 d.image_height, w, h);
		goto fail;
	}
	/* A local stride, not `w`: a parameter changed after setjmp may be clobbered. */
	size_t stride = (size_t)d.output_width * 3;
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out + (size_t)d.output_scanline * stride;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	if (e.warnings) status = FP_FAIL(FP_ERR_FORMAT, "JPEG: corrupt data: %s", e.msg);
fail:
	jpeg_destroy_decompress(&d);
	return status;
}

enum fp_status fp_codec_jpeg_size(const uint8_t *data, size_t len, uint32_t *w, uint32_t *h)
{
	struct jpeg_decompress_struct d;
	struct jerr e;
	volatile enum fp_status status = FP_OK;
	memset(&d, 0, sizeof d);
	jerr_setup(&e, NULL);
	d.err = &e.pub;
	if (setjmp(e.jump)) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG: %s", e.msg);
		goto fail;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, data, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	*w = d.image_width;
	*h = d.image_height;
fail:
	jpeg_destroy_decompress(&d);
	return status;
}

enum fp_status fp_codec_jpeg_encode(const uint8_t *in, uint32_t w, uint32_t h, int quality,
                                    int subsample, uint8_t **out, size_t *len)
{
	struct jpeg_compress_struct c;
	struct jerr e;
	volatile enum fp_status status = FP_OK;
	unsigned char *buf = NULL;
	unsigned long blen = 0;
	memset(&c, 0, sizeof c);
	jerr_setup(&e, NULL);
	c.err = &e.pub;
	if (setjmp(e.jump)) {
		status = FP_FAIL(FP_ERR_INTERNAL, "JPEG encode: %s", e.msg);
		free(buf);
		buf = NULL;
		goto fail;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &buf, &blen);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	if (!subsample) {
		for (int i = 0; i < 3; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
	}
	c.dct_method = JDCT_ISLOW;
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(in + (size_t)c.next_scanline * w * 3);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	*out = buf;
	*len = blen;
fail:
	jpeg_destroy_compress(&c);
	return status;
}

/* ---- JPEG 2000 ---- */

struct memstream {
	const uint8_t *data;
	size_t len, pos;
	uint8_t *wbuf;
	size_t wlen, wcap;
};

static OPJ_SIZE_T ms_read(void *buf, OPJ_SIZE_T n, void *user)
{
	struct memstream *m = user;
	if (m->pos >= m->len) return (OPJ_SIZE_T)-1;
	size_t k = m->len - m->pos < n ? m->len - m->pos : n;
	memcpy(buf, m->data + m->pos, k);
	m->pos += k;
	return k;
}

static OPJ_OFF_T ms_skip(OPJ_OFF_T n, void *user)
{
	struct memstream *m = user;
	size_t lim = m->wbuf ? m->wlen : m->len;
	if (n < 0) {
		if ((size_t)(-n) > m->pos) return -1;
		m->pos -= (size_t)(-n);
	} else {
		if ((size_t)n > lim - m->pos) n = (OPJ_OFF_T)(lim - m->pos);
		m->pos += (size_t)n;
	}
	return n;
}

static OPJ_BOOL ms_seek(OPJ_OFF_T n, void *user)
{
	struct memstream *m = user;
	size_t lim = m->wbuf ? m->wcap : m->len;
	if (n < 0 || (size_t)n > lim) return OPJ_FALSE;
	m->pos = (size_t)n;
	return OPJ_TRUE;
}

static OPJ_SIZE_T ms_write(void *buf, OPJ_SIZE_T n, void *user)
{
	struct memstream *m = user;
	if (m->pos + n > m->wcap) {
		size_t cap = (m->pos + n) * 2;
		uint8_t *p = realloc(m->wbuf, cap);
		if (!p) return (OPJ_SIZE_T)-1;
		m->wbuf = p;
		m->wcap = cap;
	}
	memcpy(m->wbuf + m->pos, buf, n);
	m->pos += n;
	if (m->pos > m->wlen) m->wlen = m->pos;
	return n;
}

static void opj_quiet(const char *msg, void *user) { (void)msg; (void)user; }

static void opj_capture(const char *msg, void *user)
{
	char *dst = user;
	if (!dst[0]) {
		snprintf(dst, 256, "%s", msg);
		size_t n = strlen(dst);
		if (n && dst[n - 1] == '\n') dst[n - 1] = 0;
	}
}

static uint8_t clamp8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

enum fp_status fp_codec_j2k_decode(const uint8_t *data, size_t len, int ycbcr, uint32_t w,
                                   uint32_t h, uint8_t *out)
{
	volatile enum fp_status status = FP_OK;
	struct memstream m = {.data = data, .len = len};
	opj_codec_t *codec = NULL;
	opj_stream_t *st = NULL;
	opj_image_t *img = NULL;
	char err[256] = "";
	opj_dparameters_t p;

	codec = opj_create_decompress(OPJ_CODEC_J2K);
	st = opj_stream_create(65536, OPJ_TRUE);
	if (!codec || !st) {
		status = FP_FAIL(FP_ERR_NOMEM, "JPEG 2000: cannot create decoder");
		goto fail;
	}
	opj_set_info_handler(codec, opj_quiet, NULL);
	opj_set_warning_handler(codec, opj_quiet, NULL);
	opj_set_error_handler(codec, opj_capture, err);
	opj_stream_set_user_data(st, &m, NULL);
	opj_stream_set_user_data_length(st, len);
	opj_stream_set_read_function(st, ms_read);
	opj_stream_set_skip_function(st, ms_skip);
	opj_stream_set_seek_function(st, ms_seek);
	opj_set_default_decoder_parameters(&p);
	if (!opj_setup_decoder(codec, &p) || !opj_read_header(st, codec, &img) ||
	    !opj_decode(codec, st, img) || !opj_end_decompress(codec, st)) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG 2000: %s", err[0] ? err : "decode failed");
		goto fail;
	}
	if (img->numcomps != 3 || img->x1 - img->x0 != w || img->y1 - img->y0 != h) {
		status = FP_FAIL(FP_ERR_FORMAT, "JPEG 2000: decoded %u components of %ux%u, expected 3 of %ux%u",
		                 img->numcomps, img->x1 - img->x0, img->y1 - img->y0, w, h);
		goto fail;
	}
	for (int c = 0; c < 3; c++) {
		opj_image_comp_t *k = &img->comps[c];
		if (!k->data || k->prec != 8 || k->sgnd || k->dx < 1 || k->dy < 1 || k->dx > 2 || k->dy > 2 ||
		    k->w < (w + k->dx - 1) / k->dx || k->h < (h + k->dy - 1) / k->dy) {
			status = FP_FAIL(FP_ERR_UNSUPPORTED, "JPEG 2000: component %d has precision %u, subsampling %ux%u",
			                 c, k->prec, k->dx, k->dy);
			goto fail;
		}
	}
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			int v[3];
			for (int c = 0; c < 3; c++) {
				opj_image_comp_t *k = &img->comps[c];
				v[c] = k->data[(size_t)(y / k->dy) * k->w + x / k->dx];
			}
			uint8_t *o = out + ((size_t)y * w + x) * 3;
			if (ycbcr) {
				/* JFIF full-range YCbCr -> RGB, as OpenSlide does for 33003. */
				double Y = v[0], cb = v[1] - 128.0, cr = v[2] - 128.0;
				o[0] = clamp8((int)lround(Y + 1.402 * cr));
				o[1] = clamp8((int)lround(Y - 0.344136 * cb - 0.714136 * cr));
				o[2] = clamp8((int)lround(Y + 1.772 * cb));
			} else {
				o[0] = clamp8(v[0]);
				o[1] = clamp8(v[1]);
				o[2] = clamp8(v[2]);
			}
		}
	}
fail:
	if (img) opj_image_destroy(img);
	if (st) opj_stream_destroy(st);
	if (codec) opj_destroy_codec(codec);
	return status;
}

enum fp_status fp_codec_j2k_encode(const uint8_t *in, uint32_t w, uint32_t h, int ycbcr,
                                   uint8_t **out, size_t *len)
{
	volatile enum fp_status status = FP_OK;
	opj_cparameters_t p;
	opj_image_cmptparm_t cp[3];
	opj_image_t *img = NULL;
	opj_codec_t *codec = NULL;
	opj_stream_t *st = NULL;
	struct memstream m = {0};

	memset(cp, 0, sizeof cp);
	for (int c = 0; c < 3; c++) {
		cp[c].dx = cp[c].dy = 1;
		cp[c].w = w;
		cp[c].h = h;
		cp[c].prec = 8;
	}
	img = opj_image_create(3, cp, ycbcr ? OPJ_CLRSPC_SYCC : OPJ_CLRSPC_SRGB);
	if (!img) {
		status = FP_FAIL(FP_ERR_NOMEM, "JPEG 2000: image");
		goto fail;
	}
	img->x1 = w;
	img->y1 = h;
	for (size_t i = 0; i < (size_t)w * h; i++) {
		int r = in[3 * i], g = in[3 * i + 1], b = in[3 * i + 2];
		if (ycbcr) {
			img->comps[0].data[i] = clamp8((int)lround(0.299 * r + 0.587 * g + 0.114 * b));
			img->comps[1].data[i] = clamp8((int)lround(-0.168736 * r - 0.331264 * g + 0.5 * b + 128));
			img->comps[2].data[i] = clamp8((int)lround(0.5 * r - 0.418688 * g - 0.081312 * b + 128));
		} else {
			img->comps[0].data[i] = r;
			img->comps[1].data[i] = g;
			img->comps[2].data[i] = b;
		}
	}
	opj_set_default_encoder_parameters(&p);
	p.tcp_mct = ycbcr ? 0 : 1;
	codec = opj_create_compress(OPJ_CODEC_J2K);
	st = opj_stream_create(65536, OPJ_FALSE);
	if (!codec || !st || !opj_setup_encoder(codec, &p, img)) {
		status = FP_FAIL(FP_ERR_INTERNAL, "JPEG 2000: encoder setup");
		goto fail;
	}
	opj_set_info_handler(codec, opj_quiet, NULL);
	opj_set_warning_handler(codec, opj_quiet, NULL);
	opj_stream_set_user_data(st, &m, NULL);
	opj_stream_set_write_function(st, ms_write);
	opj_stream_set_skip_function(st, ms_skip);
	opj_stream_set_seek_function(st, ms_seek);
	if (!opj_start_compress(codec, img, st) || !opj_encode(codec, st) || !opj_end_compress(codec, st)) {
		status = FP_FAIL(FP_ERR_INTERNAL, "JPEG 2000: encode failed");
		goto fail;
	}
	*out = m.wbuf;
	*len = m.wlen;
	m.wbuf = NULL;
fail:
	free(m.wbuf);
	if (st) opj_stream_destroy(st);
	if (codec) opj_destroy_codec(codec);
	if (img) opj_image_destroy(img);
	return status;
}
