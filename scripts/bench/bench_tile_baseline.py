#!/usr/bin/python3
"""Baseline for scripts/bench/bench_tile.sh: openslide-python + h5py doing the
job of `fedpath tile`: for every slide, read_region at the same level-0
coordinates and level that fedpath chose (taken from fedpath's caches), reduce
with PIL's box filter when fedpath resampled, and write the tiles raw to HDF5
(one chunk per tile, as CLAM's legacy layout), in N processes.

    bench_tile_baseline.py JOBS OUTDIR CACHE_DIR SLIDE...
Prints one JSON line: tiles, seconds, bytes.
"""
import glob
import json
import multiprocessing as mp
import os
import sys
import time

import h5py
import numpy as np
import openslide
from PIL import Image


def quickhash_map(cache_dir):
    """slide path -> cache, through fedpath's manifest."""
    out = {}
    with open(os.path.join(cache_dir, "manifest.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("cache"):
                out[os.path.abspath(r["slide"])] = os.path.join(cache_dir, r["cache"])
    return out


def one(args):
    slide, cache, outdir = args
    with h5py.File(cache, "r") as c:
        coords = c["tiles/coords"][:]
        level = int(c.attrs["source_level"])
        T = int(c.attrs["tile_size"])
        fp = float(c["coords"].attrs["patch_size"])
    osr = openslide.OpenSlide(slide)
    size = int(round(fp))
    path = os.path.join(outdir, os.path.basename(slide) + ".h5")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("imgs", (len(coords), T, T, 3), dtype="uint8", chunks=(1, T, T, 3))
        f.create_dataset("coords", data=coords.astype(np.int64))
        for i, (x, y) in enumerate(coords):
            im = osr.read_region((int(x), int(y)), level, (size, size)).convert("RGB")
            if size != T:
                im = im.resize((T, T), Image.BOX)
            d[i] = np.asarray(im)
    return len(coords), os.path.getsize(path)


def main():
    jobs, outdir, cache_dir, slides = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    os.makedirs(outdir, exist_ok=True)
    m = quickhash_map(cache_dir)
    work = [(s, m[os.path.abspath(s)], outdir) for s in slides if os.path.abspath(s) in m]
    t0 = time.monotonic()
    with mp.Pool(jobs) as pool:
        res = pool.map(one, work, chunksize=1)
    dt = time.monotonic() - t0
    print(json.dumps({"tiles": sum(r[0] for r in res), "seconds": dt, "bytes": sum(r[1] for r in res)}))


if __name__ == "__main__":
    main()
