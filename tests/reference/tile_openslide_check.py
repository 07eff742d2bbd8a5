#!/usr/bin/python3
"""Reference test: tiles written by `fedpath tile` against OpenSlide's
read_region at the same level-0 coordinates.

Inputs are made here: a natural-looking H&E-like picture written as a
pyramidal JPEG TIFF by another tool (`vips tiffsave --tile --pyramid`), and,
when `fedpath synth` exists, its tiny synthetic SVS. Checks:
  1. raw tiles at a native level (no resampling): bit-exact with OpenSlide;
  2. re-encoded JPEG tiles (default quality, 4:4:4, --no-copy) at a native
     level: PSNR >= 40 dB;
  3. copied native JPEG tiles: bit-exact after decoding;
  4. resampled tiles (target 1.9 x the level-0 mpp, e.g. 0.2635 -> 0.5): raw
     output within rounding (PSNR >= 50 dB) of OpenSlide's region put through
     the documented area filter written independently in numpy, and the same
     tiles re-encoded at the default quality: PSNR >= 40 dB;
  5. resampled at exactly 2 x the level-0 mpp (native tiles reduced one by
     one): raw output identical in the same way, JPEG PSNR >= 40 dB.
Needs /usr/bin/python3 with python3-openslide, python3-h5py, numpy, PIL, and
libvips-tools. Environment: FEDPATH (the built CLI).
Exit 0 pass, 1 fail, 77 skipped (a tool missing).
"""
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import openslide
    from PIL import Image, ImageFilter
except ImportError as e:  # pragma: no cover
    print("SKIP: %s" % e)
    sys.exit(77)

FEDPATH = os.environ.get("FEDPATH")
if not FEDPATH or not shutil.which("vips"):
    print("SKIP: FEDPATH or vips missing")
    sys.exit(77)

failures = []
RS_ARGS = os.environ.get("TILE_REF_RS_ARGS", "").split()
EXTRA_ARGS = os.environ.get("TILE_REF_ARGS", "").split()


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def make_vips_slide(d):
    rng = np.random.default_rng(7)
    h, w = 2304, 3072
    # Smooth stain fields plus cell-sized blobs: closer to H&E than pure noise.
    small = rng.random((h // 32, w // 32, 3))
    img = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    tissue = ((xx - w * 0.45) / (w * 0.38)) ** 2 + ((yy - h * 0.5) / (h * 0.4)) ** 2 < 1
    pink = np.stack([205 + 0.15 * img[..., 0], 120 + 0.25 * img[..., 1], 170 + 0.15 * img[..., 2]], -1)
    # Nuclei about 7 um across at 0.25 um/px (a 2-px grating would test JPEG, not tiling).
    nuclei = (np.sin(xx / 9.1) * np.sin(yy / 8.3) + 0.3 * img[..., 0] / 255) > 0.95
    pink[nuclei] = [95, 60, 150]
    out = np.full((h, w, 3), 242.0)
    out[tissue] = pink[tissue]
    out += rng.normal(0, 1.0, out.shape)
    src = os.path.join(d, "src.ppm")
    # A scanner's optics blur edges over about 1 um (4 px at 0.25 um/px; sigma 2 px).
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2.0)).save(src)
    path = os.path.join(d, "vips.tif")
    subprocess.run(["vips", "tiffsave", src, path, "--tile", "--pyramid", "--compression", "jpeg", "--Q", "90",
                    "--tile-width", "256", "--tile-height", "256", "--xres", "4000", "--yres", "4000"], check=True)
    return path


def run_tile(slide, out, *args):
    cmd = [FEDPATH, "tile", "--site", "REF", "--out", out, "--min-tissue", "0.25", *EXTRA_ARGS, *args, slide]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, "%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr[-500:]))
    caches = glob.glob(os.path.join(out, "*.h5"))
    check(len(caches) == 1, "%s: %d caches" % (out, len(caches)))
    return h5py.File(caches[0], "r") if caches else None


def tiles(f):
    if "pixels" in f["tiles"]:
        for i in range(f["tiles/coords"].shape[0]):
            yield i, f["tiles/coords"][i], f["tiles/pixels"][i]
    else:
        off = f["tiles/offsets"][:]
        data = f["tiles/jpeg"]
        for i in range(f["tiles/coords"].shape[0]):
            b = data[off[i]:off[i + 1]].tobytes()
            yield i, f["tiles/coords"][i], np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))


def area_weights(origin, scale, n_out, n_in):
    """(n_out, n_in) matrix of the documented area filter: output pixel i
    averages input pixels by their overlap with [origin + i*scale, +scale)."""
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = origin + i * scale, origin + (i + 1) * scale
        for k in range(int(np.floor(a)), int(np.ceil(b))):
            ov = min(b, k + 1) - max(a, k)
            if ov > 0:
                w[i, min(max(k, 0), n_in - 1)] += ov / scale
    return w


def check_slide(name, slide, mpp0, d):
    osr = openslide.OpenSlide(slide)
    for lv in range(min(osr.level_count, 2)):
        ds = osr.level_downsamples[lv]
        mpp = mpp0 * ds
        f = run_tile(slide, os.path.join(d, "%s-raw%d" % (name, lv)), "--raw", "--target-mpp", "%.6f" % mpp)
        n = exact = 0
        for i, (x, y), t in tiles(f):
            ref = np.asarray(osr.read_region((int(x), int(y)), lv, (256, 256)).convert("RGB"))
            n += 1
            exact += int(np.array_equal(ref, t))
        check(n > 0 and exact == n, "%s level %d raw: %d of %d tiles bit-exact" % (name, lv, exact, n))
        print("%s level %d raw: %d/%d tiles bit-exact with OpenSlide" % (name, lv, exact, n))

        f = run_tile(slide, os.path.join(d, "%s-jpeg%d" % (name, lv)), "--no-copy", "--target-mpp", "%.6f" % mpp)
        worst = min((psnr(np.asarray(osr.read_region((int(x), int(y)), lv, (256, 256)).convert("RGB")), t)
                     for i, (x, y), t in tiles(f)), default=0)
        q = int(f.attrs["jpeg_quality"])
        check(worst >= 40, "%s level %d re-encoded JPEG q%d: worst PSNR %.2f dB < 40" % (name, lv, q, worst))
        print("%s level %d q%d re-encoded: worst tile PSNR %.2f dB" % (name, lv, q, worst))
        if f.attrs["encoding"] == b"jpeg":
            size = f["tiles/jpeg"].shape[0] / max(1, f["tiles/coords"].shape[0])
            print("%s level %d: %.0f bytes per q%d tile" % (name, lv, size, q))

    if osr.level_count > 1:
        f = run_tile(slide, os.path.join(d, name + "-copy"), "--target-mpp", "%.6f" % (mpp0 * osr.level_downsamples[1]))
        if f.attrs["copied_native_jpeg"] == 1:
            n = exact = 0
            for i, (x, y), t in tiles(f):
                ref = np.asarray(osr.read_region((int(x), int(y)), 1, (256, 256)).convert("RGB"))
                n += 1
                exact += int(np.array_equal(ref, t))
            check(n > 0 and exact == n, "%s copied native JPEG: %d of %d exact" % (name, exact, n))
            print("%s copied native JPEG tiles: %d/%d exact" % (name, exact, n))

        # Resampled: 1.9 x the level-0 mpp (the fractional area filter) and
        # 2 x (integer factor: native tiles reduced one by one), read from
        # level 0, compared with OpenSlide's pixels put through the same
        # filter written independently in numpy (not PIL's BOX, which weighs
        # pixels by centre-in-box, not by overlap).
        for factor, mode, args, need in ((1.9, "raw", ["--raw"], 50.0), (1.9, "jpeg", [], 40.0),
                                         (2.0, "raw", ["--raw"], 50.0), (2.0, "jpeg", [], 40.0)):
            if any(abs(ds - factor) / factor <= 0.01 for ds in osr.level_downsamples):
                continue  # a native level: nothing to resample
            target = mpp0 * factor  # 1.9: e.g. a 0.2635 um/px scanner tiled at 0.5
            f = run_tile(slide, os.path.join(d, "%s-rs%.1f-%s" % (name, factor, mode)), "--target-mpp", "%.6f" % target,
                         *args, *RS_ARGS)
            if f is None:
                continue
            if mode == "jpeg":
                mode = "q%d" % int(f.attrs["jpeg_quality"])
            src_level = int(f.attrs["source_level"])
            check(int(f.attrs["resampled"]) == 1, "%s: not resampled at %.3f" % (name, target))
            ds = osr.level_downsamples[src_level]
            scale = target / (mpp0 * ds)
            worst, n = 99.0, 0
            for i, (x, y), t in tiles(f):
                n += 1
                lx, ly = x / ds, y / ds  # level coordinates, may be fractional
                ix, iy = int(np.floor(lx)), int(np.floor(ly))
                span = int(np.ceil(256 * scale)) + 2
                reg = osr.read_region((int(round(ix * ds)), int(round(iy * ds))), src_level, (span, span)).convert("RGB")
                r = np.asarray(reg).astype(np.float64)
                wx = area_weights(lx - ix, scale, 256, span)
                wy = area_weights(ly - iy, scale, 256, span)
                rows = (wy @ r.reshape(span, span * 3)).reshape(256, span, 3)
                ref = np.clip(np.rint(np.einsum("lk,ikc->ilc", wx, rows)), 0, 255).astype(np.uint8)
                worst = min(worst, psnr(ref, t))
            # raw: the geometry and the filter (only rounding may differ);
            # JPEG: the geometry, the filter and the JPEG loss.
            check(n > 0, "%s resampled %s: no tiles" % (name, mode))
            check(worst >= need, "%s resampled x%.2f %s: worst PSNR %.2f dB < %.0f" % (name, scale, mode, worst, need))
            print("%s resampled x%.3f (area filter, %s): worst tile PSNR %.2f dB (%d tiles; 99 = identical)" % (name, scale, mode, worst, n))


def main():
    d = tempfile.mkdtemp(prefix="tile-ref-")
    try:
        check_slide("vips", make_vips_slide(d), 0.25, d)
        for extra in filter(None, os.environ.get("TILE_REF_EXTRA_SLIDES", "").split(":")):
            osr = openslide.OpenSlide(extra)
            check_slide(os.path.basename(extra), extra, float(osr.properties["openslide.mpp-x"]), d)
        r = subprocess.run([FEDPATH, "--help"], capture_output=True, text=True)
        if " synth " in r.stdout or "\n  synth" in r.stdout:
            sd = os.path.join(d, "synth")
            s = subprocess.run([FEDPATH, "synth", "--size", "tiny", "--out", sd], capture_output=True, text=True)
            svs = sorted(glob.glob(os.path.join(sd, "**", "*.svs"), recursive=True))
            if s.returncode == 0 and svs:
                osr = openslide.OpenSlide(svs[0])
                check_slide("synth-svs", svs[0], float(osr.properties["openslide.mpp-x"]), d)
            else:
                print("note: fedpath synth gave no SVS (%s); synthetic SVS part skipped" % s.stderr[-200:])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all OpenSlide reference checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
