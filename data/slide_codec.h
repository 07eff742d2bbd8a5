/*
 * slide_codec.h: data/-internal image codecs shared by the slide readers, the
 * tile-cache writer and the tile-cache reader. Not part of the public API.
 *
 * JPEG through libjpeg-turbo (default ISLOW IDCT and fancy upsampling, the
 * same settings OpenSlide uses, so decoded pixels agree bit for bit), JPEG
 * 2000 codestreams through OpenJPEG. Every decoder checks the decoded size
 * against the expected one and treats a libjpeg "corrupt data" warning as an
 * error: a damaged tile is reported, never returned as if it were whole.
 */
#ifndef FP_SLIDE_CODEC_H
#define FP_SLIDE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "fp_status.h"

/* Decodes an (optionally abbreviated) JPEG stream; `tables`/`tables_len`
 * (JPEGTables, may be NULL) are read first. force_rgb: the stream's
 * components are R, G, B (TIFF photometric RGB) whatever its markers say.
 * out: (h, w, 3) uint8, the decoded image must be exactly w x h. */
enum fp_status fp_codec_jpeg_decode(const uint8_t *tables, size_t tables_len, const uint8_t *data,
                                    size_t len, int force_rgb, uint32_t w, uint32_t h, uint8_t *out);

/* Same, decoded at half size through libjpeg's 1/2 IDCT scaling (much
 * cheaper; for QC of copied tiles). out: (h/2, w/2, 3); w and h even. */
enum fp_status fp_codec_jpeg_decode_half(const uint8_t *data, size_t len, uint32_t w, uint32_t h, uint8_t *out);

/* Reads only the header: width and height of a standalone JPEG. */
enum fp_status fp_codec_jpeg_size(const uint8_t *data, size_t len, uint32_t *w, uint32_t *h);

/* Encodes in: (h, w, 3) RGB as baseline JPEG, 4:4:4 when subsample == 0,
 * 4:2:0 otherwise; deterministic (no timestamps). *out malloc'ed. */
enum fp_status fp_codec_jpeg_encode(const uint8_t *in, uint32_t w, uint32_t h, int quality,
                                    int subsample, uint8_t **out, size_t *len);

/* Decodes a raw JPEG 2000 codestream (TIFF compression 33003: YCbCr,
 * converted here; 33005: RGB). out: (h, w, 3). */
enum fp_status fp_codec_j2k_decode(const uint8_t *data, size_t len, int ycbcr, uint32_t w,
                                   uint32_t h, uint8_t *out);

/* Encodes in: (h, w, 3) as a lossless J2K codestream (tests build 33003 and
 * 33005 slides with it). ycbcr: convert to YCbCr first and use no MCT. */
enum fp_status fp_codec_j2k_encode(const uint8_t *in, uint32_t w, uint32_t h, int ycbcr,
                                   uint8_t **out, size_t *len);

#endif
