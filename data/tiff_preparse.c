/*
 * tiff_preparse.c: a bounded check of a TIFF's structure before libtiff sees it.
 *
 * Takes bytes (memory or a file read with pread), produces struct fp_tiff_info
 * (one entry per IFD of the main chain and of every SubIFD). It refuses, with
 * the IFD, tag and value named: a bad header; more than FP_TIFF_MAX_IFDS IFDs;
 * an IFD visited twice (loop); more than FP_TIFF_MAX_TAGS entries; unknown
 * field types; count x size overflow or above FP_TIFF_MAX_TAG_BYTES; values or
 * IFDs outside the file; zero or absurd dimensions; tiles that are zero, not a
 * multiple of 16 or above FP_TIFF_MAX_TILE; tile/strip offset and byte-count
 * arrays of the wrong length or pointing past the end of the file; JPEGTables
 * too short to hold SOI..EOI (libtiff CVE-2016-9453). Reads at most the IFDs
 * and the offset arrays; never allocates from a file-given length.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp_slide.h"

struct src {
	const uint8_t *mem;
	int fd;
	uint64_t size;
	const char *name;
	int be;
	int big;
};

static enum fp_status src_read(const struct src *s, uint64_t off, void *buf, size_t n)
{
	if (off > s->size || n > s->size - off)
		return FP_FAIL(FP_ERR_FORMAT, "%s: truncated: %zu bytes at offset %" PRIu64
		               " past the end of the file (%" PRIu64 " bytes)", s->name, n, off, s->size);
	if (s->mem) {
		memcpy(buf, s->mem + off, n);
		return FP_OK;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(s->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0)
			return FP_FAIL(FP_ERR_IO, "%s: read at offset %" PRIu64 ": %s", s->name, off + done,
			               r < 0 ? strerror(errno) : "unexpected end of file");
		done += (size_t)r;
	}
	return FP_OK;
}

static uint64_t get_u(const struct src *s, const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		int k = s->be ? i : n - 1 - i;
		v = (v << 8) | p[k];
	}
	return v;
}

/* Bytes of one value of TIFF field type t; 0 for unknown types. */
static unsigned type_size(unsigned t)
{
	switch (t) {
	case 1: case 2: case 6: case 7: return 1;   /* BYTE ASCII SBYTE UNDEFINED */
	case 3: case 8: return 2;                   /* SHORT SSHORT */
	case 4: case 9: case 11: case 13: return 4; /* LONG SLONG FLOAT IFD */
	case 5: case 10: case 12: return 8;         /* RATIONAL SRATIONAL DOUBLE */
	case 16: case 17: case 18: return 8;        /* LONG8 SLONG8 IFD8 */
	default: return 0;
	}
}

struct entry {
	uint16_t tag, type;
	uint64_t count;
	uint64_t bytes;
	uint64_t value_off; /* where the value bytes are in the file */
};

/* Reads element i of an integer array entry (SHORT, LONG, LONG8, IFD, IFD8). */
static enum fp_status entry_int(const struct src *s, const struct entry *e, uint64_t i, uint64_t *out)
{
	unsigned ts = type_size(e->type);
	if (!(e->type == 3 || e->type == 4 || e->type == 13 || e->type == 16 || e->type == 18))
		return FP_FAIL(FP_ERR_FORMAT, "%s: tag %u has type %u, expected an integer type", s->name,
		               e->tag, e->type);
	uint8_t b[8];
	FP_TRY(src_read(s, e->value_off + i * ts, b, ts));
	*out = get_u(s, b, (int)ts);
	return FP_OK;
}

static enum fp_status check_array(const struct src *s, int ifd, const struct entry *off_e,
                                  const struct entry *cnt_e, uint64_t expected, const char *what)
{
	if (!off_e || !cnt_e)
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %s offsets or byte counts missing", s->name, ifd, what);
	if (off_e->count != expected || cnt_e->count != expected)
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %" PRIu64 " %s offsets and %" PRIu64
		               " byte counts, expected %" PRIu64, s->name, ifd, off_e->count, what,
		               cnt_e->count, expected);
	/* Arrays are read in blocks so that the check costs no allocation. */
	enum { BLOCK = 512 };
	uint8_t ob[BLOCK * 8], cb[BLOCK * 8];
	unsigned os = type_size(off_e->type), cs = type_size(cnt_e->type);
	if (!(off_e->type == 4 || off_e->type == 16 || off_e->type == 13 || off_e->type == 18) ||
	    !(cnt_e->type == 3 || cnt_e->type == 4 || cnt_e->type == 16))
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %s offsets/byte counts of types %u/%u", s->name,
		               ifd, what, off_e->type, cnt_e->type);
	for (uint64_t i = 0; i < expected; i += BLOCK) {
		uint64_t n = expected - i < BLOCK ? expected - i : BLOCK;
		FP_TRY(src_read(s, off_e->value_off + i * os, ob, (size_t)(n * os)));
		FP_TRY(src_read(s, cnt_e->value_off + i * cs, cb, (size_t)(n * cs)));
		for (uint64_t k = 0; k < n; k++) {
			uint64_t o = get_u(s, ob + k * os, (int)os), c = get_u(s, cb + k * cs, (int)cs);
			if (c == 0) continue; /* a missing tile, allowed */
			if (o > s->size || c > s->size - o)
				return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %s %" PRIu64 " (offset %" PRIu64
				               ", %" PRIu64 " bytes) lies past the end of the file (%" PRIu64 " bytes)",
				               s->name, ifd, what, i + k, o, c, s->size);
		}
	}
	return FP_OK;
}

static int seen(const uint64_t *v, int n, uint64_t off)
{
	for (int i = 0; i < n; i++)
		if (v[i] == off) return 1;
	return 0;
}

struct walk {
	struct src s;
	struct fp_tiff_info *info;
	uint64_t visited[FP_TIFF_MAX_IFDS];
	int n_visited;
};

static enum fp_status parse_ifd(struct walk *w, uint64_t off, int parent, int main_index,
                                int sub_index, uint64_t *next);

static enum fp_status parse_chain(struct walk *w, uint64_t off, int parent)
{
	int idx = 0;
	while (off != 0) {
		uint64_t next = 0;
		FP_TRY(parse_ifd(w, off, parent, parent < 0 ? idx : -1, parent < 0 ? -1 : idx, &next));
		/* libtiff reaches SubIFDs through the parent's list only, so a chain
		 * hanging off a SubIFD is not followed (and not a level). */
		if (parent >= 0) break;
		off = next;
		idx++;
	}
	return FP_OK;
}

static enum fp_status parse_ifd(struct walk *w, uint64_t off, int parent, int main_index,
                                int sub_index, uint64_t *next)
{
	const struct src *s = &w->s;
	struct fp_tiff_info *info = w->info;
	if (seen(w->visited, w->n_visited, off))
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD loop: offset %" PRIu64 " reached twice", s->name, off);
	if (w->n_visited >= FP_TIFF_MAX_IFDS)
		return FP_FAIL(FP_ERR_LIMIT, "%s: more than %d IFDs", s->name, FP_TIFF_MAX_IFDS);
	if (off & 1)
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD at odd offset %" PRIu64, s->name, off);
	w->visited[w->n_visited++] = off;
	int me = info->n_ifds++;
	struct fp_tiff_ifd_info *d = &info->ifd[me];
	memset(d, 0, sizeof *d);
	d->offset = off;
	d->is_subifd = parent >= 0;
	d->parent = parent;
	d->main_index = main_index;
	d->sub_index = sub_index;
	d->samples = 1;
	d->bits = 1;
	d->planar = 1;
	d->compression = 1;

	int csz = s->big ? 8 : 2, esz = s->big ? 20 : 12, vsz = s->big ? 8 : 4, nsz = s->big ? 8 : 4;
	uint8_t b[20];
	FP_TRY(src_read(s, off, b, (size_t)csz));
	uint64_t n = get_u(s, b, csz);
	if (n == 0 || n > FP_TIFF_MAX_TAGS)
		return FP_FAIL(n ? FP_ERR_LIMIT : FP_ERR_FORMAT, "%s: IFD %d at offset %" PRIu64 " has %" PRIu64
		               " entries (allowed 1..%d)", s->name, me, off, n, FP_TIFF_MAX_TAGS);
	FP_TRY(src_read(s, off + (uint64_t)csz + n * (uint64_t)esz, b, (size_t)nsz));
	*next = get_u(s, b, nsz);

	struct entry toff = {0}, tcnt = {0}, soff = {0}, scnt = {0}, subifd = {0};
	int have_toff = 0, have_tcnt = 0, have_soff = 0, have_scnt = 0, have_sub = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t eo = off + (uint64_t)csz + i * (uint64_t)esz;
		FP_TRY(src_read(s, eo, b, (size_t)esz));
		struct entry e;
		e.tag = (uint16_t)get_u(s, b, 2);
		e.type = (uint16_t)get_u(s, b + 2, 2);
		e.count = get_u(s, b + 4, s->big ? 8 : 4);
		unsigned ts = type_size(e.type);
		if (ts == 0)
			return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: tag %u has unknown type %u", s->name, me, e.tag, e.type);
		if (e.count > FP_TIFF_MAX_TAG_BYTES / ts)
			return FP_FAIL(FP_ERR_LIMIT, "%s: IFD %d: tag %u count %" PRIu64 " x %u bytes exceeds %u bytes",
			               s->name, me, e.tag, e.count, ts, FP_TIFF_MAX_TAG_BYTES);
		e.bytes = e.count * ts;
		uint64_t voff = eo + 4 + (uint64_t)(s->big ? 8 : 4);
		if (e.bytes > (uint64_t)vsz) {
			voff = get_u(s, b + 4 + (s->big ? 8 : 4), vsz);
			if (voff > s->size || e.bytes > s->size - voff)
				return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: tag %u value (%" PRIu64 " bytes at offset %" PRIu64
				               ") lies past the end of the file (%" PRIu64 " bytes)", s->name, me, e.tag,
				               e.bytes, voff, s->size);
		}
		e.value_off = voff;
		uint64_t v = 0;
		int scalar = e.count == 1 && (e.type == 3 || e.type == 4 || e.type == 16);
		if (scalar) FP_TRY(entry_int(s, &e, 0, &v));
		switch (e.tag) {
		case 254: if (scalar) d->subfile_type = (uint32_t)v; break;
		case 256: case 257: case 322: case 323:
			if (!scalar)
				return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: tag %u must be one integer (type %u, count %" PRIu64 ")",
				               s->name, me, e.tag, e.type, e.count);
			if (v > UINT32_MAX) v = UINT32_MAX;
			if (e.tag == 256) d->width = (uint32_t)v;
			else if (e.tag == 257) d->height = (uint32_t)v;
			else if (e.tag == 322) d->tile_w = (uint32_t)v ? (uint32_t)v : UINT32_MAX;
			else d->tile_h = (uint32_t)v ? (uint32_t)v : UINT32_MAX;
			break;
		case 258: if (e.count >= 1 && e.type == 3) { FP_TRY(entry_int(s, &e, 0, &v)); d->bits = (uint16_t)v; } break;
		case 259: if (scalar) d->compression = (uint16_t)v; break;
		case 262: if (scalar) d->photometric = (uint16_t)v; break;
		case 277: if (scalar) d->samples = (uint16_t)v; break;
		case 284: if (scalar) d->planar = (uint16_t)v; break;
		case 273: soff = e; have_soff = 1; break;
		case 279: scnt = e; have_scnt = 1; break;
		case 324: toff = e; have_toff = 1; break;
		case 325: tcnt = e; have_tcnt = 1; break;
		case 330: subifd = e; have_sub = 1; break;
		case 347: {
			uint8_t h[2], t[2];
			if (e.bytes < 4)
				return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: JPEGTables of %" PRIu64 " bytes", s->name, me, e.bytes);
			FP_TRY(src_read(s, e.value_off, h, 2));
			FP_TRY(src_read(s, e.value_off + e.bytes - 2, t, 2));
			if (h[0] != 0xFF || h[1] != 0xD8 || t[0] != 0xFF || t[1] != 0xD9)
				return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: JPEGTables do not run from SOI to EOI", s->name, me);
			break;
		}
		default: break;
		}
	}

	if (d->width == 0 || d->height == 0 || d->width > FP_TIFF_MAX_DIM || d->height > FP_TIFF_MAX_DIM)
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: image size %ux%u outside 1..%u", s->name, me,
		               d->width, d->height, FP_TIFF_MAX_DIM);
	if (d->samples == 0 || d->samples > 8)
		return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %u samples per pixel", s->name, me, d->samples);
	uint64_t planes = d->planar == 2 ? d->samples : 1;
	if (d->tile_w || d->tile_h) {
		if (d->tile_w == 0 || d->tile_h == 0 || d->tile_w == UINT32_MAX || d->tile_h == UINT32_MAX ||
		    d->tile_w % 16 || d->tile_h % 16 || d->tile_w > FP_TIFF_MAX_TILE || d->tile_h > FP_TIFF_MAX_TILE)
			return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: tile size %dx%d (must be multiples of 16, 16..%u)",
			               s->name, me, d->tile_w == UINT32_MAX ? 0 : (int)d->tile_w,
			               d->tile_h == UINT32_MAX ? 0 : (int)d->tile_h, FP_TIFF_MAX_TILE);
		uint64_t tx = (d->width + (uint64_t)d->tile_w - 1) / d->tile_w;
		uint64_t ty = (d->height + (uint64_t)d->tile_h - 1) / d->tile_h;
		d->n_tiles = tx * ty * planes;
		if (d->n_tiles > FP_TIFF_MAX_TILES)
			return FP_FAIL(FP_ERR_LIMIT, "%s: IFD %d: %" PRIu64 " tiles (limit %u)", s->name, me,
			               d->n_tiles, FP_TIFF_MAX_TILES);
		FP_TRY(check_array(s, me, have_toff ? &toff : NULL, have_tcnt ? &tcnt : NULL, d->n_tiles, "tile"));
	} else {
		/* Stripped images (thumbnail, label, macro) are never decoded, but
		 * libtiff reads their directories, so their arrays must be sane too. */
		if (!have_soff || !have_scnt)
			return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: neither tiles nor strips", s->name, me);
		if (soff.count == 0 || soff.count > FP_TIFF_MAX_TILES)
			return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: %" PRIu64 " strips", s->name, me, soff.count);
		FP_TRY(check_array(s, me, &soff, &scnt, soff.count, "strip"));
	}

	if (have_sub) {
		if (subifd.count > FP_TIFF_MAX_IFDS)
			return FP_FAIL(FP_ERR_LIMIT, "%s: IFD %d: %" PRIu64 " SubIFDs", s->name, me, subifd.count);
		for (uint64_t i = 0; i < subifd.count; i++) {
			uint64_t so;
			FP_TRY(entry_int(s, &subifd, i, &so));
			uint64_t dummy;
			if (so == 0) return FP_FAIL(FP_ERR_FORMAT, "%s: IFD %d: SubIFD %" PRIu64 " at offset 0", s->name, me, i);
			(void)dummy;
			FP_TRY(parse_ifd(w, so, me, -1, (int)i, &dummy));
		}
	}
	return FP_OK;
}

static enum fp_status preparse(struct walk *w)
{
	struct src *s = &w->s;
	uint8_t h[16];
	if (s->size < 8)
		return FP_FAIL(FP_ERR_FORMAT, "%s: not a TIFF file (%" PRIu64 " bytes)", s->name, s->size);
	FP_TRY(src_read(s, 0, h, 8));
	if (h[0] == 'I' && h[1] == 'I') s->be = 0;
	else if (h[0] == 'M' && h[1] == 'M') s->be = 1;
	else return FP_FAIL(FP_ERR_FORMAT, "%s: not a TIFF file (bad byte-order mark)", s->name);
	uint64_t magic = get_u(s, h + 2, 2), first;
	if (magic == 42) {
		first = get_u(s, h + 4, 4);
	} else if (magic == 43) {
		s->big = 1;
		FP_TRY(src_read(s, 0, h, 16));
		if (get_u(s, h + 4, 2) != 8 || get_u(s, h + 6, 2) != 0)
			return FP_FAIL(FP_ERR_FORMAT, "%s: BigTIFF header with offset size %u", s->name,
			               (unsigned)get_u(s, h + 4, 2));
		first = get_u(s, h + 8, 8);
	} else {
		return FP_FAIL(FP_ERR_FORMAT, "%s: not a TIFF file (magic %u)", s->name, (unsigned)magic);
	}
	if (first == 0) return FP_FAIL(FP_ERR_FORMAT, "%s: no image directory", s->name);
	memset(w->info, 0, sizeof *w->info);
	w->info->bigtiff = s->big;
	w->info->big_endian = s->be;
	w->info->file_size = s->size;
	return parse_chain(w, first, -1);
}

enum fp_status fp_tiff_preparse_mem(const uint8_t *data, size_t len, const char *name,
                                    struct fp_tiff_info *out)
{
	if (!out || (!data && len)) return FP_FAIL(FP_ERR_INVALID_ARG, "fp_tiff_preparse_mem: NULL argument");
	static const uint8_t empty[1];
	struct walk w = {.s = {.mem = data ? data : empty, .fd = -1, .size = len, .name = name ? name : "(memory)"},
	                 .info = out};
	return preparse(&w);
}

enum fp_status fp_tiff_preparse_file(const char *path, struct fp_tiff_info *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return FP_FAIL(FP_ERR_IO, "%s: open: %s", path, strerror(errno));
	struct stat st;
	enum fp_status status;
	if (fstat(fd, &st) != 0) {
		status = FP_FAIL(FP_ERR_IO, "%s: stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		status = FP_FAIL(FP_ERR_FORMAT, "%s: not a regular file", path);
		goto fail;
	}
	struct walk w = {.s = {.mem = NULL, .fd = fd, .size = (uint64_t)st.st_size, .name = path}, .info = out};
	status = preparse(&w);
fail:
	close(fd);
	return status;
}
