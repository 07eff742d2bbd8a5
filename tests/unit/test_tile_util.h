/*
 * test_tile_util.h: small slide writers for the tile tests (libtiff), so the
 * reader tests build their own inputs: Aperio-like SVS (JPEG YCbCr or RGB,
 * JPEG 2000 33003/33005), generic pyramids (JPEG, LZW, Deflate, none),
 * BigTIFF and OME-TIFF with SubIFD levels. The picture is a deterministic
 * H&E-like ellipse of tissue on a white background; level l samples it at
 * every ds^l-th pixel, so each level is exactly predictable.
 */
#ifndef TEST_TILE_UTIL_H
#define TEST_TILE_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "slide_codec.h"

struct tslide {
	uint32_t w, h, tile;
	int levels, ds;        /* levels >= 1, downsample step between levels */
	uint16_t compression;  /* 1, 5, 7, 8, 33003, 33005 */
	uint16_t photometric;  /* 2 or 6 (JPEG YCbCr) */
	int bigtiff;
	const char *desc;      /* IFD 0 ImageDescription, may be NULL */
	double xres;           /* pixels per cm, 0 for none */
	int ome;               /* levels as SubIFDs of IFD 0 */
	int label;             /* add a stripped label (NewSubfileType 1) and macro (9) */
	int zero_tile;         /* > 0: tile index zero_tile - 1 of level 0 is written with 0 bytes */
};

/* Background ~white; inside an ellipse of half the slide, pink texture with purple nuclei. */
static inline void tpix(uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint8_t *o)
{
	double dx = (x - w / 2.0) / (w * 0.3), dy = (y - h / 2.0) / (h * 0.3);
	if (dx * dx + dy * dy > 1) {
		o[0] = 243; o[1] = 242; o[2] = 245;
		return;
	}
	int nuc = ((x / 7) * 31 + (y / 7) * 17) % 11 == 0;
	if (nuc) { o[0] = 95; o[1] = 60; o[2] = 150; return; }
	o[0] = (uint8_t)(215 + (int)(10 * sin(x * 0.21)));
	o[1] = (uint8_t)(135 + (int)(12 * cos(y * 0.17)));
	o[2] = (uint8_t)(185 + ((x + y) % 9));
}

static inline void tlevel_tile(const struct tslide *s, int lv, uint32_t tx, uint32_t ty, uint8_t *buf)
{
	uint32_t d = 1;
	for (int i = 0; i < lv; i++) d *= (uint32_t)s->ds;
	for (uint32_t y = 0; y < s->tile; y++)
		for (uint32_t x = 0; x < s->tile; x++)
			tpix((tx * s->tile + x) * d, (ty * s->tile + y) * d, s->w, s->h, buf + ((size_t)y * s->tile + x) * 3);
}

static inline int twrite_level(TIFF *t, const struct tslide *s, int lv, int with_desc, uint32_t subfile)
{
	uint32_t d = 1;
	for (int i = 0; i < lv; i++) d *= (uint32_t)s->ds;
	uint32_t w = s->w / d, h = s->h / d;
	TIFFSetField(t, TIFFTAG_SUBFILETYPE, subfile);
	TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
	TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
	TIFFSetField(t, TIFFTAG_TILEWIDTH, s->tile);
	TIFFSetField(t, TIFFTAG_TILELENGTH, s->tile);
	TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
	TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
	TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(t, TIFFTAG_COMPRESSION, s->compression);
	if (with_desc && s->desc) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, s->desc);
	if (s->xres > 0) {
		TIFFSetField(t, TIFFTAG_XRESOLUTION, (float)(s->xres / d));
		TIFFSetField(t, TIFFTAG_YRESOLUTION, (float)(s->xres / d));
		TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
	}
	if (s->compression == COMPRESSION_JPEG) {
		TIFFSetField(t, TIFFTAG_PHOTOMETRIC, s->photometric);
		TIFFSetField(t, TIFFTAG_JPEGQUALITY, 92);
		if (s->photometric == PHOTOMETRIC_YCBCR) TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
	} else {
		TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
	}
	uint8_t *buf = malloc((size_t)s->tile * s->tile * 3);
	if (!buf) return -1;
	for (uint32_t ty = 0; ty * s->tile < h; ty++) {
		for (uint32_t tx = 0; tx * s->tile < w; tx++) {
			tlevel_tile(s, lv, tx, ty, buf);
			uint32_t idx = TIFFComputeTile(t, tx * s->tile, ty * s->tile, 0, 0);
			if (lv == 0 && s->zero_tile && idx == (uint32_t)s->zero_tile - 1) {
				TIFFWriteRawTile(t, idx, buf, 0);
			} else if (s->compression == 33003 || s->compression == 33005) {
				uint8_t *j = NULL;
				size_t jl = 0;
				if (fp_codec_j2k_encode(buf, s->tile, s->tile, s->compression == 33003, &j, &jl) != FP_OK) {
					free(buf);
					return -1;
				}
				TIFFWriteRawTile(t, idx, j, (tmsize_t)jl);
				free(j);
			} else {
				TIFFWriteEncodedTile(t, idx, buf, (tmsize_t)s->tile * s->tile * 3);
			}
		}
	}
	free(buf);
	return 0;
}

static inline void twrite_strip_image(TIFF *t, uint32_t w, uint32_t h, uint32_t subfile, uint8_t value)
{
	TIFFSetField(t, TIFFTAG_SUBFILETYPE, subfile);
	TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
	TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
	TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
	TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
	TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
	TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
	TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
	uint8_t *row = malloc((size_t)w * 3 * h);
	memset(row, value, (size_t)w * 3 * h);
	TIFFWriteEncodedStrip(t, 0, row, (tmsize_t)w * 3 * h);
	free(row);
	TIFFWriteDirectory(t);
}

/* Writes the slide; returns 0 on success. */
static inline int twrite(const char *path, const struct tslide *s)
{
	TIFF *t = TIFFOpen(path, s->bigtiff ? "w8" : "w");
	if (!t) return -1;
	int rc = 0;
	if (s->ome) {
		int nsub = s->levels - 1;
		toff_t offs[16] = {0};
		if (nsub > 0) TIFFSetField(t, TIFFTAG_SUBIFD, (uint16_t)nsub, offs);
		rc |= twrite_level(t, s, 0, 1, 0);
		TIFFWriteDirectory(t);
		for (int l = 1; l < s->levels; l++) {
			rc |= twrite_level(t, s, l, 0, FILETYPE_REDUCEDIMAGE);
			TIFFWriteDirectory(t);
		}
	} else {
		for (int l = 0; l < s->levels; l++) {
			rc |= twrite_level(t, s, l, l == 0, l == 0 ? 0 : (s->desc && strncmp(s->desc, "Aperio", 6) == 0 ? 0 : FILETYPE_REDUCEDIMAGE));
			TIFFWriteDirectory(t);
			if (l == 0 && s->label) twrite_strip_image(t, 64, 48, 0, 200); /* Aperio thumbnail */
		}
		if (s->label) {
			twrite_strip_image(t, 40, 40, FILETYPE_REDUCEDIMAGE, 10);  /* label: identifying, never read */
			twrite_strip_image(t, 120, 40, 9, 20);                     /* macro */
		}
	}
	TIFFClose(t);
	return rc;
}

/* Mean absolute difference between a decoded level tile and the pattern. */
static inline double tdiff(const struct tslide *s, int lv, uint32_t tx, uint32_t ty, const uint8_t *got)
{
	uint8_t *want = malloc((size_t)s->tile * s->tile * 3);
	tlevel_tile(s, lv, tx, ty, want);
	double acc = 0;
	for (size_t i = 0; i < (size_t)s->tile * s->tile * 3; i++) acc += fabs((double)want[i] - got[i]);
	free(want);
	return acc / ((double)s->tile * s->tile * 3);
}

#define APERIO_DESC(mpp) "Aperio Image Library v12.0.15\r\n2048x1536 [0,0 2048x1536] (256x256) JPEG/RGB Q=92|AppMag = 40|MPP = " mpp "|Filename = PATIENT-NAME-SHOULD-NEVER-BE-COPIED|User = someone"

#endif
