#!/usr/bin/python3
"""Writes tests/data/malformed/: small broken slide files, each of which
`fedpath tile` and the reader must refuse cleanly (exit 1, one message, no
crash, no hang, no output that looks complete). Also seeds the fuzz corpora
tests/fuzz/corpus/tiff_preparse/ and slide_reader/.

Command (run from the repository root, needs libvips-tools):
    /usr/bin/python3 scripts/make_malformed_corpus.py

The base file is a 128x128 tiled JPEG TIFF (64x64 tiles, two levels) written
by `vips tiffsave`; every other file is that base with one defect. Output is
committed; rerunning reproduces it as long as vips writes the same base.
"""
import os
import random
import struct
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "malformed")
FUZZ = os.path.join(ROOT, "tests", "fuzz", "corpus")


def base_tiff():
    w = h = 128
    pix = bytearray()
    for y in range(h):
        for x in range(w):
            inside = (x - 64) ** 2 + (y - 64) ** 2 < 45 ** 2
            if inside:
                pix += bytes([(200 + x) % 256, (120 + 3 * y) % 256, 180])
            else:
                pix += bytes([243, 242, 245])
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src.ppm")
        with open(src, "wb") as f:
            f.write(b"P6 %d %d 255\n" % (w, h) + bytes(pix))
        dst = os.path.join(d, "base.tif")
        subprocess.run(["vips", "tiffsave", src, dst, "--tile", "--pyramid", "--compression", "jpeg",
                        "--Q", "60", "--tile-width", "64", "--tile-height", "64",
                        "--xres", "4000", "--yres", "4000", "--strip"], check=True)
        with open(dst, "rb") as f:
            return bytearray(f.read())


class Tiff:
    """Classic little-endian TIFF: IFD entries by tag, for targeted damage."""

    def __init__(self, data):
        assert data[:4] == b"II*\x00"
        self.d = data
        self.ifds = []
        off = struct.unpack_from("<I", data, 4)[0]
        while off:
            self.ifds.append(off)
            n = struct.unpack_from("<H", data, off)[0]
            off = struct.unpack_from("<I", data, off + 2 + 12 * n)[0]

    def entry(self, ifd, tag):
        off = self.ifds[ifd]
        n = struct.unpack_from("<H", self.d, off)[0]
        for i in range(n):
            e = off + 2 + 12 * i
            t, typ, cnt = struct.unpack_from("<HHI", self.d, e)
            if t == tag:
                return e, typ, cnt
        raise KeyError(tag)

    def values(self, ifd, tag):
        e, typ, cnt = self.entry(ifd, tag)
        size = {3: 2, 4: 4, 7: 1, 16: 8}[typ] * cnt
        voff = e + 8 if size <= 4 else struct.unpack_from("<I", self.d, e + 8)[0]
        fmt = {3: "H", 4: "I", 7: "B", 16: "Q"}[typ]
        return [struct.unpack_from("<" + fmt, self.d, voff + i * struct.calcsize(fmt))[0] for i in range(cnt)], voff, typ

    def set_scalar(self, ifd, tag, value):
        e, typ, cnt = self.entry(ifd, tag)
        if value > 0xFFFF and typ == 3:
            struct.pack_into("<H", self.d, e + 2, 4)  # widen SHORT to LONG in place
            typ = 4
        if typ == 3:
            struct.pack_into("<H", self.d, e + 8, value)
        else:
            struct.pack_into("<I", self.d, e + 8, value)


def write(name, data, note):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(data))
    return "%-28s %6d bytes  %s" % (name, len(data), note)


def main():
    os.makedirs(OUT, exist_ok=True)
    base = base_tiff()
    notes = []
    rnd = random.Random(20261127)

    notes.append(write("empty.tif", b"", "zero bytes"))
    notes.append(write("wrong_type.svs", b"\x89PNG\r\n\x1a\n" + bytes(200), "a PNG header named .svs"))
    notes.append(write("text.tif", b"this is not a slide\n" * 10, "plain text"))
    notes.append(write("truncated.tif", base[: len(base) // 2], "first half of a valid slide"))
    notes.append(write("header_only.tif", base[:8], "the 8-byte header, IFD missing"))

    t = Tiff(bytearray(base))
    last = t.ifds[-1]
    n = struct.unpack_from("<H", t.d, last)[0]
    struct.pack_into("<I", t.d, last + 2 + 12 * n, t.ifds[0])
    notes.append(write("ifd_loop.tif", t.d, "last IFD points back at the first"))

    t = Tiff(bytearray(base))
    t.set_scalar(0, 322, 0)
    notes.append(write("zero_tile_size.tif", t.d, "TileWidth 0"))

    t = Tiff(bytearray(base))
    t.set_scalar(0, 322, 40)
    notes.append(write("odd_tile_size.tif", t.d, "TileWidth 40 (not a multiple of 16)"))

    t = Tiff(bytearray(base))
    t.set_scalar(0, 256, 0x7FFFFFF0)
    notes.append(write("absurd_dimensions.tif", t.d, "ImageWidth 2^31-16"))

    t = Tiff(bytearray(base))
    for k in range(len(t.ifds)):
        vals, voff, typ = t.values(k, 347)
        for i in range(2, len(vals) - 2):
            t.d[voff + i] = rnd.randrange(256)
    notes.append(write("bad_jpeg_tables.tif", t.d, "JPEGTables body of every level replaced by random bytes"))

    t = Tiff(bytearray(base))
    e, typ, cnt = t.entry(0, 347)
    struct.pack_into("<I", t.d, e + 4, 1)
    notes.append(write("jpeg_tables_1byte.tif", t.d, "JPEGTables of 1 byte (libtiff CVE-2016-9453)"))

    t = Tiff(bytearray(base))
    for k in range(len(t.ifds)):
        offs, _, _ = t.values(k, 324)
        cnts, _, _ = t.values(k, 325)
        for o, c in zip(offs, cnts):
            for i in range(o + c // 3, o + c):
                t.d[i] = rnd.randrange(256)
    notes.append(write("corrupted_tile_data.tif", t.d, "last two thirds of every tile random"))

    t = Tiff(bytearray(base))
    for k in range(len(t.ifds)):
        cnts, coff, ctyp = t.values(k, 325)
        for i, c in enumerate(cnts):
            fmt = "<H" if ctyp == 3 else "<I"
            struct.pack_into(fmt, t.d, coff + i * struct.calcsize(fmt), c // 2)
    notes.append(write("truncated_tiles.tif", t.d, "every TileByteCount halved"))

    t = Tiff(bytearray(base))
    offs, ooff, otyp = t.values(0, 324)
    struct.pack_into("<I", t.d, ooff, len(t.d) + 1000)
    notes.append(write("tile_offset_past_eof.tif", t.d, "first tile offset past the end"))

    t = Tiff(bytearray(base))
    struct.pack_into("<H", t.d, t.ifds[0], 60000)
    notes.append(write("tag_flood.tif", t.d, "IFD claims 60000 entries"))

    t = Tiff(bytearray(base))
    e, typ, cnt = t.entry(0, 324)
    struct.pack_into("<I", t.d, e + 4, 0x40000000)
    notes.append(write("huge_tag_count.tif", t.d, "TileOffsets count 2^30"))

    big = bytearray(b"II+\x00\x08\x00\x00\x00") + struct.pack("<Q", 1 << 40)
    notes.append(write("bigtiff_bad_offset.tif", big, "BigTIFF whose first IFD is at 1 TiB"))

    with open(os.path.join(OUT, "README.txt"), "w") as f:
        f.write("Malformed slides; every one must give a clean error (exit 1) from `fedpath tile`.\n")
        f.write("Generated by scripts/make_malformed_corpus.py; do not edit by hand.\n\n")
        f.write("\n".join(notes) + "\n")

    for target in ("tiff_preparse", "slide_reader"):
        d = os.path.join(FUZZ, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "base.tif"), "wb") as f:
            f.write(bytes(base))
        for name in ("ifd_loop.tif", "truncated.tif", "bad_jpeg_tables.tif", "zero_tile_size.tif"):
            with open(os.path.join(OUT, name), "rb") as src, open(os.path.join(d, name), "wb") as f:
                f.write(src.read())
    print("\n".join(notes))


if __name__ == "__main__":
    main()
