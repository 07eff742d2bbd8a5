#!/usr/bin/env python3
"""bench_federation_report.py: turns one run of scripts/bench/bench_federation.sh
into figures (standard library only).

  bench_federation_report.py fedpath RUN_DIR    -> one key=value line
  bench_federation_report.py flower RUN_DIR     -> one key=value line
  bench_federation_report.py table RESULTS_FILE -> the side-by-side table

RUN_DIR holds what the shell script left there:
  fedpath: agg.log (fedpath aggregate, text log), sites.out (bench_federation
           sites), time.txt (/usr/bin/time -v of the aggregator), meta
  flower:  server.out (bench_flower.py server), time.txt (/usr/bin/time -v of
           the server), client*.out, meta
meta: "side K params rounds load_before [aggregator]" on one line (aggregator:
cli = `fedpath aggregate`, released = bench_federation server).

Round times. fedpath: round 1 runs from the moment the K agents are launched
(they dial, handshake and poll at once, so this is an upper bound of "first
task sent") to the aggregator's "round 1 closed" log line; round r > 1 from
the close of r-1 to the close of r. Flower: round 1 from configure_fit (all
clients connected, instructions about to go out) to aggregate_fit's return;
round r > 1 from the end of r-1 to the end of r. Per-round overhead: the mean
of rounds 2..R minus the slowest site's local training time in that round
(fedpath measures it in the bench trainer; Flower's fit returns its input,
which costs nothing measurable).
"""
import datetime
import os
import re
import sys


def peak_rss_mb(path):
    with open(path) as f:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    return int(m.group(1)) / 1024 if m else float("nan")


def cpu_s(path):
    """User + system seconds of the process /usr/bin/time -v watched."""
    with open(path) as f:
        t = f.read()
    u = re.search(r"User time \(seconds\): (\S+)", t)
    s = re.search(r"System time \(seconds\): (\S+)", t)
    return float(u.group(1)) + float(s.group(1)) if u and s else float("nan")


def read_meta(d):
    with open(os.path.join(d, "meta")) as f:
        side, k, p, r, load = f.read().split()[:5]
    return side, int(k), int(p), int(r), load


def log_ms(ts):
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() * 1e3


def fedpath(d):
    side, k, p, rounds, load = read_meta(d)
    closes = {}
    with open(os.path.join(d, "agg.log")) as f:
        for line in f:
            m = re.match(r"(\S+Z) INFO .*aggregate: round (\d+) closed: (\d+) site", line)
            if m:
                closes[int(m.group(2))] = (log_ms(m.group(1)), int(m.group(3)))
    launch, train, rss, ok, scpu = None, {}, [], 0, 0.0
    with open(os.path.join(d, "sites.out")) as f:
        for line in f:
            w = line.split()
            if w[0] == "launch_ms":
                launch = float(w[1])
            elif w[0] == "train":
                r = int(w[2])
                train[r] = max(train.get(r, 0.0), float(w[4]))
            elif w[0] == "site" and w[3] == "ok":
                ok += 1
            elif w[0] == "rss":
                rss.append(int(w[2]) / 1024)
                scpu += float(w[4]) if len(w) > 4 else 0.0
    if launch is None or sorted(closes) != list(range(1, rounds + 1)) or ok != k:
        return f"side=fedpath sites={k} params={p} rounds={rounds} error=incomplete(closed {sorted(closes)}, sites_ok {ok})"
    times, prev = [], launch
    for r in range(1, rounds + 1):
        times.append((closes[r][0] - prev) / 1e3)
        prev = closes[r][0]
    with open(os.path.join(d, "meta")) as f:
        agg = (f.read().split() + ["cli"])[5]
    return f"aggregator={agg} " + finish("fedpath", k, p, rounds, load, times, [train.get(r, 0.0) for r in range(1, rounds + 1)],
                  peak_rss_mb(os.path.join(d, "time.txt")), max(rss) if rss else float("nan"),
                  cpu_s(os.path.join(d, "time.txt")), scpu)


def flower(d):
    side, k, p, rounds, load = read_meta(d)
    rows = {}
    with open(os.path.join(d, "server.out")) as f:
        for line in f:
            m = re.match(r"round (\d+) start_ms (\S+) end_ms (\S+) results (\d+) failures (\d+)", line)
            if m:
                rows[int(m.group(1))] = (float(m.group(2)), float(m.group(3)), int(m.group(4)))
    if sorted(rows) != list(range(1, rounds + 1)) or any(v[2] != k for v in rows.values()):
        return f"side=flower sites={k} params={p} rounds={rounds} error=incomplete(rounds {sorted(rows)})"
    times = [(rows[1][1] - rows[1][0]) / 1e3]
    for r in range(2, rounds + 1):
        times.append((rows[r][1] - rows[r - 1][1]) / 1e3)
    crss, ccpu = [], 0.0
    for name in os.listdir(d):
        if name.startswith("client") and name.endswith(".out"):
            with open(os.path.join(d, name)) as f:
                m = re.search(r"peak_rss_kb (\d+) cpu_s (\S+)", f.read())
                if m:
                    crss.append(int(m.group(1)) / 1024)
                    ccpu += float(m.group(2))
    return finish("flower", k, p, rounds, load, times, [0.0] * rounds, peak_rss_mb(os.path.join(d, "time.txt")),
                  max(crss) if crss else float("nan"), cpu_s(os.path.join(d, "time.txt")), ccpu)


def finish(side, k, p, rounds, load, times, train, rss, site_rss, agg_cpu, sites_cpu):
    later = times[1:]
    over = (sum(t - tr for t, tr in zip(later, train[1:])) / len(later)) if later else float("nan")
    return (f"side={side} sites={k} params={p} rounds={rounds} round1_s={times[0]:.3f} "
            f"rounds_s={','.join(f'{t:.3f}' for t in times)} overhead_ms={over * 1e3:.1f} "
            f"train_max_s={max(train):.4f} agg_peak_rss_mb={rss:.0f} site_peak_rss_mb={site_rss:.0f} "
            f"agg_cpu_s={agg_cpu:.1f} sites_cpu_s={sites_cpu:.1f} load={load}")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def table(path):
    """Medians over the repeats of each (side, sites, params, rounds); the
    round-time line adds the range, and the RSS lines take the largest."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("side=") or line.startswith("aggregator=cli "):
                rows.append(dict(kv.split("=", 1) for kv in line.split()))
    get = {}
    for r in rows:
        if "error" not in r:
            get.setdefault((r["side"], r["sites"], r["params"], r["rounds"]), []).append(r)

    def vals(side, k, p, r, key):
        return [float(x[key]) for x in get.get((side, k, p, r), [])]

    def val(side, k, p, r, key, how=median):
        v = vals(side, k, p, r, key)
        return how(v) if v else None

    def fmt(x, f):
        return "n/a" if x is None else f % x

    def spread(v):
        return f" [{min(v):.2f}-{max(v):.2f}]" if len(v) > 1 else ""

    out = [f"{'measure':<50} {'fedpath':>18} {'Flower':>18} {'ratio':>8}  target"]
    # The 100 MB studies are the runs with the most parameters; the others
    # are the per-round overhead studies.
    big = max((int(r["params"]) for r in rows), default=0)
    bigrows = [r for r in rows if int(r["params"]) == big]
    for k in sorted({r["sites"] for r in bigrows}, key=int):
        p = str(big)
        n = max(int(r["rounds"]) for r in bigrows if r["sites"] == k)
        mb = big * 4 / 1e6

        def later(side):
            out = []
            for x in get.get((side, k, p, str(n)), []):
                ts = [float(t) for t in x["rounds_s"].split(",")][1:]
                if ts:
                    out.append(sum(ts) / len(ts))
            return out

        for label, va, vb, target in (
                ("first round", vals("fedpath", k, p, str(n), "round1_s"), vals("flower", k, p, str(n), "round1_s"),
                 "fedpath >= 5x faster"),
                (f"rounds 2..{n}, mean", later("fedpath"), later("flower"), "(steady state, for information)")):
            if not va and not vb:
                continue
            a, b = median(va), median(vb)
            ratio = b / a if a and b else None
            reps = max(len(va), len(vb))
            what = f"{k} sites, {mb:.0f} MB: {label} (s)" + (f", median of {reps}" if reps > 1 else "")
            out.append(f"{what:<50} {fmt(a, '%.2f') + spread(va):>18} "
                       f"{fmt(b, '%.2f') + spread(vb):>18} {fmt(ratio, '%.1fx'):>8}  {target}")
            if len(va) > 1 and len(va) == len(vb):
                pairs = " ".join(f"{y / x:.1f}x" for x, y in zip(va, vb))
                out.append(f"{'  each pair in run order (Flower / fedpath)':<50} {pairs:>18}")
        r = str(n)
        a, b = val("fedpath", k, p, r, "agg_peak_rss_mb", max), val("flower", k, p, r, "agg_peak_rss_mb", max)
        ratio = b / a if a and b else None
        out.append(f"{f'{k} sites: aggregator peak RSS (MB, largest)':<50} {fmt(a, '%.0f'):>18} "
                   f"{fmt(b, '%.0f'):>18} {fmt(ratio, '%.1fx'):>8}  fedpath <= 350, same for 15 as 10")
        a, b = val("fedpath", k, p, r, "site_peak_rss_mb", max), val("flower", k, p, r, "site_peak_rss_mb", max)
        out.append(f"{f'{k} sites: one site/client peak RSS (MB)':<50} {fmt(a, '%.0f'):>18} "
                   f"{fmt(b, '%.0f'):>18} {'':>8}  (for information)")
        for key, what in (("agg_cpu_s", "aggregator/server CPU"), ("sites_cpu_s", "sites/clients CPU, all")):
            a, b = val("fedpath", k, p, r, key), val("flower", k, p, r, key)
            ratio = b / a if a and b else None
            out.append(f"{f'{k} sites: {what} (s, median)':<50} {fmt(a, '%.1f'):>18} "
                       f"{fmt(b, '%.1f'):>18} {fmt(ratio, '%.1fx'):>8}  (load-independent)")
    seen = set()
    for r in rows:
        key = (r["sites"], r["params"], r["rounds"])
        if int(r["params"]) != big and r["side"] == "fedpath" and key not in seen:
            seen.add(key)
            k, p, n = key
            a, b = val("fedpath", k, p, n, "overhead_ms"), val("flower", k, p, n, "overhead_ms")
            ratio = b / a if a and b else None
            out.append(f"{f'per-round overhead, {k} sites, {int(p) * 4 / 1e6:.0f} MB, rounds 2..{n} (ms)':<50} "
                       f"{fmt(a, '%.0f'):>18} {fmt(b, '%.0f'):>18} {fmt(ratio, '%.1fx'):>8}  fedpath <= 100 ms")
    return "\n".join(out)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("fedpath", "flower", "table"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    print({"fedpath": fedpath, "flower": flower, "table": table}[sys.argv[1]](sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
