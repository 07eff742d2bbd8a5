#!/usr/bin/python3
"""eval_quantify.py: how well `fedpath quantify` measures a phantom cohort's
tumour microenvironment (issue #6, item 7; docs/TRAINING.md).

synth -> tile -> train (on the first centre) -> quantify (every centre) ->
Spearman of each features.csv column against the truth the phantom knows
(truth/patients.csv), per centre and pooled over the held-out centres.
--oracle adds what the tile-class geometry would give with TRUE tile labels
(one-hot from the truth class maps, the trainer's label rule): it tells a
classifier problem (oracle high, model low) from a definition problem (both
low). Evaluation only: production code never reads the truth.

  /usr/bin/python3 scripts/eval_quantify.py --out DIR [--seed 7] [--size demo]
      [--centers 2] [--patients 20] [--steps 600] [--threads 1]
      [--model CKPT] [--oracle] [--fedpath build/cli/fedpath]

Needs numpy and h5py (python3-numpy, python3-h5py). Prints one table and
writes DIR/spearman.json. Reruns reuse DIR's cohort, caches and model.
"""
import argparse, csv, json, os, struct, subprocess, sys, time

import h5py
import numpy as np

PAIRS = [  # features.csv column, truth column
    ("lymph_density_tumour", "til_intra"),
    ("lymph_density_margin", "til_margin"),
    ("lymph_frac_tumour", "til_intra"),
    ("necrosis_pct", "necrosis_frac"),
    ("stroma_pct", "stroma_frac"),
]


def rank(a):
    """Ranks with ties averaged (as R's rank and scipy's rankdata)."""
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a))
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return r


def spearman(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan"), int(ok.sum())
    rx, ry = rank(x[ok]), rank(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return float("nan"), int(ok.sum())
    return float(np.corrcoef(rx, ry)[0, 1]), int(ok.sum())


def run(cmd, log):
    t = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit("eval_quantify: failed (%d): %s; see %s" % (r.returncode, " ".join(cmd), log))
    return time.time() - t


# ---- truth ----

def truth_rows(cohort):
    pats = {r["patient_id"]: r for r in csv.DictReader(open(os.path.join(cohort, "truth", "patients.csv")))}
    slides = {r["slide_file"]: r["patient_id"] for r in csv.DictReader(open(os.path.join(cohort, "truth", "slides.csv")))}
    return pats, slides


def uid_to_patient(cachedir, slides):
    out = {}
    for line in open(os.path.join(cachedir, "manifest.jsonl")):
        j = json.loads(line)
        if "slide_uid" in j and "slide" in j:
            out[j["slide_uid"]] = (slides[os.path.basename(j["slide"])], j.get("cache"))
    return out


# ---- oracle: true tile labels through the tile-class geometry ----
# The class-map reader and label rule mirror train/site_data.c; the geometry
# mirrors fp_tme_features (train/quantify.c) for the tile-class measures.

SYN2TME = {1: 0, 2: 5, 3: 1, 4: 2, 5: 3, 7: 4}  # synth class -> TME class; others "other" (6)


def load_classmap(path):
    b = open(path, "rb").read()[64:]
    w, h = struct.unpack("<2I", b[:8])
    mpp, um = struct.unpack("<2d", b[16:32])
    return np.frombuffer(b[40:], np.uint8).reshape(h, w), mpp, um


def true_labels(cm, xy, f):
    m, mpp, um = cm
    s = mpp / um
    lut = np.full(256, 6)
    for k, v in SYN2TME.items():
        lut[k] = v
    out = np.full(len(xy), 6)
    for i, (x, y) in enumerate(xy):
        mx = np.arange(max(int(np.floor(x * s)), 0), min(int(np.ceil((x + f) * s)), m.shape[1]))
        my = np.arange(max(int(np.floor(y * s)), 0), min(int(np.ceil((y + f) * s)), m.shape[0]))
        mx = mx[((mx + 0.5) / s >= x) & ((mx + 0.5) / s < x + f)]
        my = my[((my + 0.5) / s >= y) & ((my + 0.5) / s < y + f)]
        if len(mx) == 0 or len(my) == 0:
            continue
        votes = np.bincount(lut[m[np.ix_(my, mx)].ravel()], minlength=7).astype(float)
        t = votes.sum()
        if votes[4] >= 0.25 * t:
            out[i] = 4
        elif votes[2] >= 0.25 * t:
            out[i] = 2
        elif votes.max() >= 0.5 * t:
            out[i] = int(np.argmax(votes))
    return out


def geometry(cls, xy, step):
    """R, d (in grid steps) of fp_tme_features for argmax classes cls."""
    n = len(cls)
    gx = np.rint((xy[:, 0] - xy[:, 0].min()) / step).astype(int) + 1
    gy = np.rint((xy[:, 1] - xy[:, 1].min()) / step).astype(int) + 1
    grid = -np.ones((gy.max() + 3, gx.max() + 3), int)
    tis = cls != 6
    grid[gy[tis], gx[tis]] = np.nonzero(tis)[0]
    nb = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
    r0 = np.isin(cls, [0, 3, 4]) & tis

    def in_r(j, r):
        return j >= 0 and r[j]
    r = r0.copy()
    for i in np.nonzero(np.isin(cls, [1, 2]))[0]:
        if sum(in_r(grid[gy[i] + dy, gx[i] + dx], r0) for dx, dy in nb) >= 5:
            r[i] = True
    A, B = [], []
    for i in np.nonzero(r & tis)[0]:
        edge = False
        for dx, dy in nb:
            j = grid[gy[i] + dy, gx[i] + dx]
            if j < 0 or not r[j]:
                edge = True
                B.append((gx[i] + dx, gy[i] + dy))
        if edge:
            A.append((gx[i], gy[i]))
    d = np.full(n, np.inf)
    if not B:
        return r, d
    A, B = np.array(A, float), np.array(B, float)
    for i in np.nonzero(tis)[0]:
        P = B if r[i] else A
        d[i] = np.sqrt(((P - [gx[i], gy[i]]) ** 2).sum(1).min())
    return r, d


def oracle_features(cache, cm, margin_um):
    with h5py.File(cache, "r") as f:
        xy = f["tiles/coords"][()]
        mpp, tgt, ts = float(f.attrs["mpp_x"]), float(f.attrs["target_mpp"]), int(f.attrs["tile_size"])
        lymph = f["tme/lymphocytes"][()][:, 0] if "tme/lymphocytes" in f else None
    step = ts * tgt / mpp
    cls = true_labels(cm, xy, step)
    r, d = geometry(cls, xy, step)
    um = step * mpp
    inside = r & (d > 1.05)
    margin = (cls != 6) & (d * um <= margin_um)
    old_inside = r & (d * um > margin_um)
    out = {"oracle_old_frac_inside200": (cls[old_inside] == 2).mean() if old_inside.any() else np.nan,
           "oracle_lymph_frac_tumour": (cls[inside] == 2).mean() if inside.any() else np.nan,
           "oracle_necrosis_pct": 100 * (cls[r] == 3).mean() if r.any() else np.nan,
           "oracle_stroma_pct": 100 * (cls[r] == 1).mean() if r.any() else np.nan}
    if lymph is not None:  # true regions, counted cells
        bed = inside & ~np.isin(cls, [3, 4])
        ms = margin & np.isin(cls, [1, 2])
        a = um * um * 1e-6
        out["oracle_lymph_density_tumour"] = lymph[bed].sum() / (bed.sum() * a) if bed.any() else np.nan
        out["oracle_lymph_density_margin"] = lymph[ms].sum() / (ms.sum() * a) if ms.any() else np.nan
    return out


ORACLE_PAIRS = [("oracle_old_frac_inside200", "til_intra"), ("oracle_lymph_frac_tumour", "til_intra"),
                ("oracle_lymph_density_tumour", "til_intra"), ("oracle_lymph_density_margin", "til_margin"),
                ("oracle_necrosis_pct", "necrosis_frac"), ("oracle_stroma_pct", "stroma_frac")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", default="demo")
    ap.add_argument("--centers", type=int, default=2)
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", help="use this checkpoint instead of training one")
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--margin-um", type=float, default=200.0)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--fedpath", default=os.path.join(here, "build", "cli", "fedpath"))
    a = ap.parse_args()
    fp, out = a.fedpath, os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "eval.log")
    cohort = os.path.join(out, "cohort")
    times = {}
    if not os.path.exists(os.path.join(cohort, "cohort.json")):
        times["synth"] = run([fp, "synth", "--out", cohort, "--size", a.size, "--centers", str(a.centers),
                              "--patients", str(a.patients), "--seed", str(a.seed), "--threads", str(a.threads),
                              "--quiet", "--force"], log)
    sites = sorted(d for d in os.listdir(cohort) if d.startswith("H") and os.path.isdir(os.path.join(cohort, d)))
    t = time.time()
    for s in sites:
        if not os.path.exists(os.path.join(out, "caches", s, "manifest.jsonl")):
            run([fp, "tile", "--site", s, "--out", os.path.join(out, "caches", s), "--manifest",
                 os.path.join(cohort, s, "clinical.csv"), "--target-mpp", "1.0", "--tile-size", "64",
                 "--jobs", str(a.threads)], log)
    times["tile"] = time.time() - t
    model = a.model
    if not model:
        model = os.path.join(out, "models", "tme.best.h5")
        if not os.path.exists(model):
            ini = os.path.join(out, "train.ini")
            with open(ini, "w") as f:
                f.write("[site]\nid = %s\ndata_dir = %s\n[data]\ncaches = caches/%s\ntruth_dir = cohort/truth\n"
                        "val_fraction = 0.2\n[train]\nsteps = %d\nbatch = 32\nwarmup = 20\nlr = 0.002\n"
                        "patience = 0\nthreads = %d\ncheckpoint = models/tme.h5\n"
                        % (sites[0], out, sites[0], a.steps, a.threads))
            times["train"] = run([fp, "train", "--config", ini], log)
    t = time.time()
    for s in sites:
        run([fp, "quantify", "--model", model, "--cache", os.path.join(out, "caches", s), "--threads", str(a.threads),
             "--margin-um", str(a.margin_um)], log)
    times["quantify"] = time.time() - t
    pats, slides = truth_rows(cohort)
    rows = []  # (site, patient truth row, features row, oracle)
    for s in sites:
        cd = os.path.join(out, "caches", s)
        u2p = uid_to_patient(cd, slides)
        for r in csv.DictReader(open(os.path.join(cd, "features.csv"))):
            pid, cache = u2p[r["slide_uid"]]
            orc = {}
            if a.oracle:
                cm = load_classmap(os.path.join(cohort, "truth", "classmaps", pid + ".classmap"))
                orc = oracle_features(os.path.join(cd, cache), cm, a.margin_um)
            rows.append((s, pats[pid], r, orc))
    trained_on = None if a.model else sites[0]
    groups = [(s, [x for x in rows if x[0] == s]) for s in sites]
    held = [x for x in rows if x[0] != trained_on]
    groups.append(("held-out" if trained_on else "all", held))
    pairs = PAIRS + (ORACLE_PAIRS if a.oracle else [])
    res = {"seed": a.seed, "size": a.size, "model": model, "trained_on": trained_on, "seconds": times, "spearman": {}}
    print("Spearman vs truth (seed %d, %s; model trained on %s)" % (a.seed, a.size, trained_on or "elsewhere"))
    print("%-30s %-14s" % ("feature", "truth") + "".join("%14s" % g for g, _ in groups))
    for col, tcol in pairs:
        line = "%-30s %-14s" % (col, tcol)
        for g, rs in groups:
            x = [float(r[2][col]) if col in r[2] and r[2][col] != "NA" else r[3].get(col, np.nan) for r in rs]
            y = [float(r[1][tcol]) for r in rs]
            rho, n = spearman(x, y)
            res["spearman"].setdefault(col, {})[g] = {"rho": rho, "n": n}
            line += "%14s" % ("%.3f (%d)" % (rho, n))
        print(line)
    agree = sum(r[2]["phenotype"] == r[1]["phenotype"] for r in held)
    print("phenotype agreement (%s): %d/%d" % (groups[-1][0], agree, len(held)))
    res["phenotype_agreement"] = [agree, len(held)]
    print("wall seconds: " + ", ".join("%s %.0f" % kv for kv in times.items()))
    with open(os.path.join(out, "spearman.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
