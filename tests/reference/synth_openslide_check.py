#!/usr/bin/python3
"""synth_openslide_check.py: OpenSlide reads what `fedpath synth` writes (issue 3, items 2, 3, 8, 9).

Run by CTest as `/usr/bin/python3 tests/reference/synth_openslide_check.py` with
FEDPATH pointing at the built CLI (Debian python3-openslide 1.2 / OpenSlide 3.4.1,
python3-numpy). Checks, on a tiny cohort:
  - every slide opens; vendor aperio (svs) or generic-tiff (--format tiff);
  - level count, level dimensions (4x steps) and mpp / objective power as
    cohort.json's scanner profile says;
  - label, macro and thumbnail are associated images; the label is not a level;
  - pixels inside regions of one class (from the truth class map) have that
    class's documented colour (cohort.json class_rgb) within a tolerance, and
    the classes keep their physical order (glass brightest, lymphocytes
    haematoxylin-dominated, stroma eosin-dominated);
  - the CLI's bad-argument contract: exit 2 and no cohort.json.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import openslide

FEDPATH = os.environ.get("FEDPATH", "fedpath")
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def read_classmap(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"FPCLSMAP", path
    payload = data[64:]
    mw, mh, w0, h0 = struct.unpack_from("<4I", payload, 0)
    mpp, um = struct.unpack_from("<2d", payload, 16)
    cmap = np.frombuffer(payload, dtype=np.uint8, count=mw * mh, offset=40).reshape(mh, mw)
    return cmap, w0, h0, mpp, um


def expected_levels(w, h):
    dims = [(w, h)]
    while True:
        nw, nh = (dims[-1][0] + 3) // 4, (dims[-1][1] + 3) // 4
        if max(nw, nh) < 256:
            return dims
        dims.append((nw, nh))


def interior_cells(cmap, cls, margin=2):
    """Map cells whose (2*margin+1)^2 neighbourhood is all `cls`."""
    mh, mw = cmap.shape
    m = cmap == cls
    ok = np.ones_like(m)
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            sh = np.zeros_like(m)
            ys, ye = max(0, dy), mh + min(0, dy)
            xs, xe = max(0, dx), mw + min(0, dx)
            sh[ys - dy:ye - dy, xs - dx:xe - dx] = m[ys:ye, xs:xe]
            ok &= sh
    return np.argwhere(ok)


def check_slide(root, centre, pt_slide, patient, cj, fmt):
    path = os.path.join(root, centre["id"], "slides", pt_slide)
    s = openslide.OpenSlide(path)
    sc = centre["scanner"]
    w, h = centre["slide_width"], centre["slide_height"]
    vendor = s.properties.get(openslide.PROPERTY_NAME_VENDOR)
    check(vendor == ("aperio" if fmt == "svs" else "generic-tiff"), f"{pt_slide}: vendor {vendor}")
    exp = expected_levels(w, h)
    check(s.level_count == len(exp), f"{pt_slide}: {s.level_count} levels, expected {len(exp)}")
    check(tuple(s.level_dimensions) == tuple(exp), f"{pt_slide}: dimensions {s.level_dimensions} != {exp}")
    for k, d in enumerate(s.level_downsamples):
        check(abs(d - 4 ** k) < 0.05 * 4 ** k, f"{pt_slide}: level {k} downsample {d}")
    if fmt == "svs":
        mpp = float(s.properties.get(openslide.PROPERTY_NAME_MPP_X, "nan"))
        check(abs(mpp - sc["mpp"]) < 1e-3, f"{pt_slide}: mpp {mpp} != {sc['mpp']}")
        power = s.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        check(power == str(sc["app_mag"]), f"{pt_slide}: objective power {power}")
        assoc = set(s.associated_images)
        check({"label", "macro", "thumbnail"} <= assoc, f"{pt_slide}: associated images {assoc}")
        label = np.asarray(s.associated_images["label"].convert("RGB"))
        check(label.shape[:2] == (300, 600) and label.min() < 50, f"{pt_slide}: label shape/text {label.shape}")
        fname = s.properties.get("aperio.Filename", "")
        check(fname == patient["label_name"].replace(" ", "_"), f"{pt_slide}: Filename {fname!r}")
    else:
        unit = s.properties.get("tiff.ResolutionUnit")
        xres = float(s.properties.get("tiff.XResolution", "nan"))
        check(unit == "centimeter" and abs(10000.0 / xres - sc["mpp"]) < 1e-3, f"{pt_slide}: resolution {xres} {unit}")

    cmap, w0, h0, mpp, um = read_classmap(os.path.join(root, "truth", "classmaps", patient["patient_id"] + ".classmap"))
    check((w0, h0) == (w, h), f"{pt_slide}: class map geometry {w0}x{h0}")
    cell = um / mpp  # level-0 pixels per map cell
    names = cj["classes"]
    means = {}
    for code, name in enumerate(names):
        cells = interior_cells(cmap, code)
        if len(cells) < 3:
            continue
        idx = np.linspace(0, len(cells) - 1, num=min(12, len(cells))).astype(int)
        acc = []
        for my, mx in cells[idx]:
            x0, y0 = int(mx * cell), int(my * cell)
            reg = np.asarray(s.read_region((x0, y0), 0, (int(cell), int(cell))).convert("RGB"), dtype=np.float64)
            acc.append(reg.reshape(-1, 3).mean(axis=0))
        mean = np.mean(acc, axis=0)
        means[name] = mean
        want = np.array(centre["class_rgb"][name], dtype=np.float64)
        err = np.abs(mean - want).max()
        check(err <= 40, f"{pt_slide}: class {name} mean RGB {mean.round(1)} vs intended {want} (max diff {err:.1f})")
    if "background" in means:
        check(means["background"].min() > 215, f"{pt_slide}: glass not bright: {means['background']}")
        for name, m in means.items():
            if name != "background":
                check(m.sum() < means["background"].sum(), f"{pt_slide}: {name} brighter than glass")
    if "lymphocytes" in means:
        ly = means["lymphocytes"]
        for other in ("stroma", "liver", "necrosis"):
            if other in means:
                o = means[other]
                # haematoxylin absorbs red: lymphocyte aggregates are redder-dark and bluer
                check(ly[0] < o[0] - 20 and ly[2] - ly[0] > o[2] - o[0],
                      f"{pt_slide}: lymphocytes {ly.round(0)} not haematoxylin-dominated against {other} {o.round(0)}")
    if "stroma" in means:
        m = means["stroma"]
        check(m[0] > m[1] + 30, f"{pt_slide}: stroma not eosin-dominant: {m}")
    s.close()
    return means


def run(args):
    return subprocess.run([FEDPATH, "synth"] + args, capture_output=True, text=True)


def main():
    with tempfile.TemporaryDirectory(prefix="fp-synth-") as tmp:
        out = os.path.join(tmp, "cohort")
        r = run(["--size", "tiny", "--centers", "2", "--patients", "3", "--seed", "11", "--out", out, "--quiet"])
        check(r.returncode == 0, f"synth tiny failed: rc {r.returncode} {r.stderr}")
        if r.returncode != 0:
            return
        check("MB/s" in r.stdout and "slides/min" in r.stdout, f"summary line: {r.stdout!r}")
        with open(os.path.join(out, "cohort.json")) as f:
            cj = json.load(f)
        patients = {}
        with open(os.path.join(out, "truth", "patients.csv")) as f:
            head = f.readline().strip().split(",")
            for line in f:
                row = dict(zip(head, line.rstrip("\n").split(",")))
                patients[row["slide_file"]] = row
        n = 0
        for centre in cj["centres"]:
            for slide in sorted(os.listdir(os.path.join(out, centre["id"], "slides"))):
                check_slide(out, centre, slide, patients[slide], cj, "svs")
                n += 1
        check(n == 6, f"{n} slides, expected 6")

        out2 = os.path.join(tmp, "generic")
        r = run(["--size", "tiny", "--centers", "1", "--patients", "1", "--format", "tiff", "--out", out2, "--quiet"])
        check(r.returncode == 0, f"synth --format tiff failed: {r.stderr}")
        if r.returncode == 0:
            with open(os.path.join(out2, "cohort.json")) as f:
                cj2 = json.load(f)
            c = cj2["centres"][0]
            with open(os.path.join(out2, "truth", "patients.csv")) as f:
                head = f.readline().strip().split(",")
                row = dict(zip(head, f.readline().rstrip("\n").split(",")))
            check_slide(out2, c, row["slide_file"], row, cj2, "tiff")

        # bad arguments: exit 2, clear message, nothing that looks complete
        bad = os.path.join(tmp, "bad")
        for args, needle in ((["--centers", "0"], "--centers"), (["--size", "huge"], "huge"),
                             (["--patients", "x"], "--patients")):
            r = run(args + ["--out", bad, "--quiet"])
            check(r.returncode == 2, f"{args}: rc {r.returncode}")
            check(needle in r.stderr, f"{args}: message {r.stderr!r}")
            check(not os.path.exists(os.path.join(bad, "cohort.json")), f"{args}: cohort.json exists")
        r = run(["--size", "tiny", "--centers", "1", "--patients", "1", "--out", out, "--quiet"])
        check(r.returncode == 2 and "--force" in r.stderr, f"non-empty folder: rc {r.returncode} {r.stderr!r}")
    if FAILS:
        print(f"{len(FAILS)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("synth openslide check: all passed")


if __name__ == "__main__":
    main()
