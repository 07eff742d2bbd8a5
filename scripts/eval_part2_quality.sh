#!/usr/bin/env bash
# scripts/eval_part2_quality.sh: issue 7 item 6 measured through the real
# pipeline, on held-out centres of a phantom cohort whose truth is known.
#
#   scripts/eval_part2_quality.sh --work DIR [--seed 1] [--centres 8] [--patients 150]
#       [--heldout 2] [--train-n "40 150"] [--features "truth quantified"]
#       [--rounds 20] [--steps 20] [--lr 0.001] [--weight-decay 1e-4] [--hidden 16]
#       [--mu 0] [--margin X] [--train-seeds 1] [--boot 1000] [--p1-rounds 3]
#       [--p1-steps 15] [--tag NAME] [--size demo] [--fedpath BIN] [--jobs 2]
#
# Pipeline (each stage is skipped when its output exists, so a second call with
# other Part 2 settings reuses the cohort, tiles, Part 1 model and features;
# with --features truth alone, stages 2-4 are skipped):
#  1. fedpath synth --centers C --patients P --seed S --size demo  -> DIR/cohort
#     (--size tiny: the same patients, smaller slides; only with --features truth)
#  2. fedpath tile (1.0 um/px, 64 px, --jobs J) of every centre      -> DIR/caches/<c>
#  3. Part 1, federated over the TRAINING centres only (fedpath simulate, the
#     demo's model and plan: 3 rounds x 15 steps, batch 32, lr 0.002) -> DIR/p1
#  4. fedpath quantify of every centre with that model (held-out ones too)
#  5. for every feature kind (truth: the phantom's true TME values, a stand-in
#     for a perfect Part 1; quantified: step 4) and every training size n (the
#     first n patients of each training centre in clinical.csv order): Part 2
#     federated over the training centres (fedpath simulate, one rank per
#     centre, plan rounds x steps), then fedpath predict on the held-out centres.
# The held-out centres are the last --heldout centres (sorted); no row of
# theirs reaches Part 1, the pooled standardisation, Part 2 or the baselines.
# Measured on all patients of the held-out centres (decided before any model):
#  - C: Harrell's C of eta under the received regimen, stratified by centre
#    (pairs never cross centres; tied scores count 1/2; an event at the time
#    another patient is censored precedes it), checked against
#    `fedpath stats cindex --strata centre`; the same for the true linear
#    predictor lp_<received> (truth/patients.csv); gap = C(truth) - C(model).
#    Item 6 target: gap <= 0.03.
#  - agreement: share of held-out patients whose recommended regimen is the
#    true best (argmin of the true lp), for predict's recommendation (model
#    margin, or --margin) and for margin 0 (argmin eta, the rule that defines
#    the truth); baseline: always recommending the most common true best
#    regimen of the held-out patients (generous to the baseline).
#    Item 6 target: agreement clearly above the baseline (the CI of the
#    difference above 0).
#  - 95% CIs: C, gap and agreement - baseline: percentile bootstrap of the
#    held-out patients resampled within each centre (--boot resamples, seed 1,
#    the same resamples for every model: paired); agreement: Wilson.
#  - --train-seeds K: K models per setting (plan seeds 1..K); a "mean of K"
#    row averages them (CIs: the mean of their paired bootstrap replicates).
# Output: a markdown table (stdout and DIR/runs/TAG/quality.md), quality.csv and
# quality.json beside it; logs under DIR/logs and DIR/runs/TAG/logs.
# Needs Open MPI (mpirun or $MPIEXEC) and /usr/bin/python3 with numpy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fp="${FEDPATH:-$here/build/cli/fedpath}"
work="" seed=1 centres=8 patients=150 heldout=2 train_n="40 150" feats="truth quantified"
rounds=20 steps=20 lr=0.001 wd="" hidden=16 mu=0 margin="" n_seeds=1 boot=1000 p1_rounds=3 p1_steps=15
tag="" jobs=2 size=demo
while [ $# -gt 0 ]; do
  case "$1" in
    --work) shift; work="$1" ;;
    --seed) shift; seed="$1" ;;
    --centres|--centers) shift; centres="$1" ;;
    --patients) shift; patients="$1" ;;
    --heldout) shift; heldout="$1" ;;
    --train-n) shift; train_n="$1" ;;
    --features) shift; feats="$1" ;;
    --rounds) shift; rounds="$1" ;;
    --steps) shift; steps="$1" ;;
    --lr) shift; lr="$1" ;;
    --weight-decay) shift; wd="$1" ;;
    --hidden) shift; hidden="$1" ;;
    --mu) shift; mu="$1" ;;
    --margin) shift; margin="$1" ;;
    --train-seeds) shift; n_seeds="$1" ;;
    --boot) shift; boot="$1" ;;
    --p1-rounds) shift; p1_rounds="$1" ;;
    --p1-steps) shift; p1_steps="$1" ;;
    --tag) shift; tag="$1" ;;
    --fedpath) shift; fp="$1" ;;
    --jobs) shift; jobs="$1" ;;
    --size) shift; size="$1" ;;
    -h|--help) sed -n '2,48p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "eval_part2_quality: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$work" ] || { echo "eval_part2_quality: needs --work DIR" >&2; exit 2; }
[ -x "$fp" ] || { echo "eval_part2_quality: no fedpath at $fp (build it, or pass --fedpath BIN)" >&2; exit 2; }
[ "$heldout" -ge 1 ] && [ "$heldout" -lt "$centres" ] || { echo "eval_part2_quality: --heldout must be 1..centres-1" >&2; exit 2; }
for n in $train_n; do [ "$n" -le "$patients" ] || { echo "eval_part2_quality: --train-n $n > --patients $patients" >&2; exit 2; }; done
py=/usr/bin/python3
mpiexec="${MPIEXEC:-mpirun}"
export NO_COLOR=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$work/logs"
work="$(cd "$work" && pwd)"
[ -n "$tag" ] || tag="r${rounds}x${steps}-lr${lr}-wd${wd:-default}-h${hidden}-mu${mu}-m${margin:-model}"
t0=$(date +%s.%N)
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
stage() { echo "[$(secs "$t0")s] $*"; }

# 1. cohort
if [ ! -f "$work/cohort/cohort.json" ]; then
  t=$(date +%s.%N)
  "$fp" synth --centers "$centres" --patients "$patients" --seed "$seed" --size "$size" --out "$work/cohort" \
    --threads "$jobs" --force --quiet 2>"$work/logs/synth.log"
  echo "synth $(secs "$t")" >>"$work/logs/times"
fi
sites=$(cd "$work/cohort" && for d in */; do if [ -f "$d/clinical.csv" ]; then echo "${d%/}"; fi; done | LC_ALL=C sort)
n_all=$(echo $sites | wc -w)
train_sites=$(echo $sites | tr ' ' '\n' | head -n $((n_all - heldout)) | tr '\n' ' ')
test_sites=$(echo $sites | tr ' ' '\n' | tail -n "$heldout" | tr '\n' ' ')
n_train=$(echo $train_sites | wc -w)
stage "cohort $work/cohort: training centres $train_sites; held-out centres $test_sites"

need_slides=0
case " $feats " in *" quantified "*) need_slides=1 ;; esac
[ "$need_slides" = 0 ] || [ "$size" = demo ] || { echo "eval_part2_quality: quantified features need --size demo" >&2; exit 2; }
mkdir -p "$work/features/quantified" "$work/features/truth"
if [ "$need_slides" = 1 ]; then
# 2. tiles
for s in $sites; do
  if [ ! -f "$work/caches/$s/.done" ]; then
    t=$(date +%s.%N)
    "$fp" tile --site "$s" --out "$work/caches/$s" --manifest "$work/cohort/$s/clinical.csv" \
      --target-mpp 1.0 --tile-size 64 --jobs "$jobs" >"$work/logs/tile-$s.out" 2>"$work/logs/tile-$s.log"
    touch "$work/caches/$s/.done"
    echo "tile-$s $(secs "$t")" >>"$work/logs/times"
  fi
done
stage "tiles in $work/caches"

# 3. Part 1 over the training centres only
p1="$work/p1"
if [ ! -f "$p1/state/part1-model.h5" ]; then
  t=$(date +%s.%N)
  rm -rf "$p1"; mkdir -p "$p1/cohort"
  for s in $train_sites; do ln -s "$work/cohort/$s" "$p1/cohort/$s"; done
  ln -s "$work/cohort/truth" "$p1/cohort/truth"   # simulate reads the tile labels from COHORT/truth
  cat >"$p1/train.ini" <<INI
[site]
id = $(echo $train_sites | cut -d' ' -f1)
data_dir = $p1
[data]
truth_dir = $work/cohort/truth
[model]
input_size = 32
width1 = 8
width2 = 16
width3 = 32
blocks = 1
groups = 4
[train]
batch = 32
threads = 1
lr = 0.002
INI
  cat >"$p1/plan.ini" <<INI
[study]
id = eval-part1
model = part1
seed = 1
[aggregator]
state_dir = $p1/state
[rounds]
count = $p1_rounds
quorum = $n_train
[local]
steps = $p1_steps
INI
  "$mpiexec" --oversubscribe -np $((n_train + 1)) "$fp" simulate --plan "$p1/plan.ini" --cohort "$p1/cohort" \
    --caches "$work/caches" --train-config "$p1/train.ini" >"$work/logs/part1.out" 2>"$work/logs/part1.log"
  echo "part1 $(secs "$t")" >>"$work/logs/times"
fi
stage "Part 1 model $p1/state/part1-model.h5 ($p1_rounds rounds x $p1_steps steps, training centres only)"

# 4. quantify every centre; features keyed by patient_id (slide_uid -> slide
# file from the cache manifest -> patient from clinical.csv; one slide each
# in a synth cohort, but a patient's slides are averaged as the table does).
for s in $sites; do
  if [ ! -f "$work/features/quantified/$s.csv" ]; then
    t=$(date +%s.%N)
    "$fp" quantify --model "$p1/state/part1-model.h5" --cache "$work/caches/$s" --threads "$jobs" \
      >/dev/null 2>"$work/logs/quantify-$s.log"
    echo "quantify-$s $(secs "$t")" >>"$work/logs/times"
    "$py" - "$work/caches/$s" "$work/cohort/$s/clinical.csv" "$work/features/quantified/$s.csv" <<'PY'
import csv, json, os, sys
cache, clin, out = sys.argv[1:]
uid2file = {}
for line in open(f"{cache}/manifest.jsonl"):
    j = json.loads(line)
    if j.get("status") in ("ok", "skipped") and "slide_uid" in j:
        uid2file[j["slide_uid"]] = os.path.basename(j.get("path") or j.get("slide") or j.get("source", ""))
file2pid = {r["slide_file"]: r["patient_id"] for r in csv.DictReader(open(clin))}
rows = list(csv.reader(open(f"{cache}/features.csv")))
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write(",".join(["patient_id"] + rows[0][1:]) + "\n")
    for r in rows[1:]:
        pid = file2pid[uid2file[r[0]]]  # a KeyError here is a broken link, never skipped
        f.write(",".join([pid] + r[1:]) + "\n")
os.replace(tmp, out)
PY
  fi
done
fi
for s in $sites; do
  if [ ! -f "$work/features/truth/$s.csv" ]; then
    awk -F, -v c="$s" 'NR == 1 { for (i = 1; i <= NF; i++) k[$i] = i
                                 print "patient_id,phenotype,til_intra,til_margin,stroma_frac,necrosis_frac,tumour_frac"; next }
      $k["centre"] == c { print $k["patient_id"] "," $k["phenotype"] "," $k["til_intra"] "," $k["til_margin"] "," \
                          $k["stroma_frac"] "," $k["necrosis_frac"] "," $k["tumour_frac"] }' \
      "$work/cohort/truth/patients.csv" >"$work/features/truth/$s.csv"
  fi
done
stage "features in $work/features/{truth,quantified}"

# 5. Part 2 runs and predictions on the held-out centres
run="$work/runs/$tag"
mkdir -p "$run/logs"
extra=(--hidden "$hidden" --lr "$lr")
[ -n "$wd" ] && extra+=(--weight-decay "$wd")
pm=(); [ -n "$margin" ] && pm=(--margin "$margin")
base=$(echo $train_sites | cut -d' ' -f1)   # any training centre's baseline: C and agreement use eta only
tseeds=$(seq 1 "$n_seeds")
keys=""
for f in $feats; do
  for n in $train_n; do
    for sd in $tseeds; do
      key="$f-n$n-s$sd"; keys="$keys $key"
      d="$run/$key"
      [ -f "$d/heldout.csv" ] && continue
      rm -rf "$d"; mkdir -p "$d/data" "$d/pred"
      for s in $train_sites; do
        mkdir -p "$d/data/$s"
        head -n $((n + 1)) "$work/cohort/$s/clinical.csv" >"$d/data/$s/clinical.csv"
        cp "$work/features/$f/$s.csv" "$d/data/$s/features.csv"
      done
      cat >"$d/plan.ini" <<INI
[study]
id = eval-part2-$key
model = part2
seed = $sd
[aggregator]
state_dir = $d/state
[rounds]
count = $rounds
quorum = $n_train
[local]
steps = $steps
fedprox_mu = $mu
INI
      t=$(date +%s.%N)
      "$mpiexec" --oversubscribe -np $((n_train + 1)) "$fp" simulate --plan "$d/plan.ini" --cohort "$d/data" \
        --out "$d/model.ckpt" "${extra[@]}" >"$run/logs/train-$key.out" 2>"$run/logs/train-$key.log" || {
          echo "eval_part2_quality: training $key failed:" >&2; tail -5 "$run/logs/train-$key.log" >&2; exit 1; }
      tt=$(secs "$t")
      echo "centre,patient_id,time,event,regimen,eta_surgery,eta_tace,eta_tace_tki,recommended" >"$d/heldout.tmp"
      for s in $test_sites; do
        "$fp" predict --model "$d/model.ckpt" --clinical "$work/cohort/$s/clinical.csv" \
          --features "$work/features/$f/$s.csv" --site "$base" "${pm[@]}" --out "$d/pred/$s.csv" \
          >/dev/null 2>>"$run/logs/predict-$key.log"
        awk -F, -v c="$s" 'FILENAME == ARGV[1] { if (FNR == 1) { for (i = 1; i <= NF; i++) k[$i] = i; next }
              t[$k["patient_id"]] = $k["rfs_months"]; e[$k["patient_id"]] = $k["rfs_event"]; r[$k["patient_id"]] = $k["regimen"]; next }
            FNR == 1 { for (i = 1; i <= NF; i++) p[$i] = i; next }
            { id = $p["patient_id"]; print c "," id "," t[id] "," e[id] "," r[id] "," $p["eta_surgery"] "," \
                $p["eta_tace"] "," $p["eta_tace_tki"] "," $p["recommended"] }' \
          "$work/cohort/$s/clinical.csv" "$d/pred/$s.csv" >>"$d/heldout.tmp"
      done
      awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) k[$i] = i; print "centre,time,event,risk"; next }
               { print $k["centre"] "," $k["time"] "," $k["event"] "," $k["eta_" $k["regimen"]] }' "$d/heldout.tmp" >"$d/cindex-in.csv"
      "$fp" stats cindex --csv "$d/cindex-in.csv" --time time --event event --score risk --strata centre \
        >"$d/cindex.json" 2>>"$run/logs/stats.log"
      sed -n 's/^training_patients //p' "$run/logs/train-$key.out" >"$d/training_patients"
      echo "$tt" >"$d/train_s"
      mv "$d/heldout.tmp" "$d/heldout.csv"
      stage "$key: $(cat "$d/training_patients") training patients, trained in ${tt}s"
    done
  done
done

"$py" - "$work" "$run" "$boot" "$seed" "$tag" $keys <<'PY'
import csv, json, math, sys
import numpy as np

work, run, boot, cseed, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
keys = sys.argv[6:]
truth = {r["patient_id"]: r for r in csv.DictReader(open(f"{work}/cohort/truth/patients.csv"))}
REG = ["surgery", "tace", "tace_tki"]

def load(key):
    return list(csv.DictReader(open(f"{run}/{key}/heldout.csv")))
first = load(keys[0])
ids = [r["patient_id"] for r in first]
centre = np.array([r["centre"] for r in first])
time = np.array([float(r["time"]) for r in first])
event = np.array([int(r["event"]) for r in first])
best = np.array([truth[i]["best_regimen"] for i in ids])
lp_true = np.array([float(truth[i]["lp_" + truth[i]["regimen"]]) for i in ids])
strata = [np.flatnonzero(centre == c) for c in sorted(set(centre))]

def cindex(score, sample=None):
    num = den = 0.0
    for k, idx in enumerate(strata):
        j = idx if sample is None else idx[sample[k]]
        t, e, s = time[j], event[j], score[j]
        # comparable: i an event before j's time, or at j's time when j is censored (survival::concordance)
        comp = (e[:, None] == 1) & ((t[:, None] < t[None, :]) | ((t[:, None] == t[None, :]) & (e[None, :] == 0)))
        num += (comp & (s[:, None] > s[None, :])).sum() + 0.5 * (comp & (s[:, None] == s[None, :])).sum()
        den += comp.sum()
    return num / den

def wilson(k, n, z=1.959964):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [c - h, c + h]

counts = {b: int((best == b).sum()) for b in REG}
most = max(REG, key=lambda b: counts[b])
base_hit = (best == most).astype(float)
rng = np.random.default_rng(1)
samples = [[rng.integers(0, len(idx), len(idx)) for idx in strata] for _ in range(boot)]
flat = [np.concatenate([idx[s] for idx, s in zip(strata, smp)]) for smp in samples]
c_truth = cindex(lp_true)
rep_truth = np.array([cindex(lp_true, s) for s in samples])
ci = lambda x: [float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))]
reps_c, reps_a = {}, {}
res = {"cohort_seed": int(cseed), "tag": tag, "held_out_patients": len(ids), "held_out_events": int(event.sum()),
       "held_out_centres": sorted(set(centre)), "truth_c": c_truth, "truth_c_ci": ci(rep_truth),
       "best_counts": counts, "always": {"regimen": most, "hits": int(base_hit.sum())}, "runs": {}}
for key in keys:
    rows = load(key)
    assert [r["patient_id"] for r in rows] == ids, f"{key}: held-out rows differ"
    eta = np.array([[float(r["eta_" + a]) for a in REG] for r in rows])
    recv = np.array([REG.index(r["regimen"]) for r in rows])
    risk = eta[np.arange(len(rows)), recv]
    c = cindex(risk)
    fs = json.load(open(f"{run}/{key}/cindex.json"))
    assert abs(c - fs["c"]) < 1e-9, f"{key}: C {c} differs from fedpath stats {fs['c']}"
    rep = np.array([cindex(risk, s) for s in samples])
    reps_c[key] = rep
    out = {"c": c, "c_ci": ci(rep), "c_se_ij": fs.get("se"), "gap": c_truth - c, "gap_ci": ci(rep_truth - rep),
           "training_patients": int(open(f"{run}/{key}/training_patients").read() or 0),
           "train_s": float(open(f"{run}/{key}/train_s").read())}
    for name, rec in (("model_margin", np.array([r["recommended"] for r in rows])),
                      ("margin0", np.array([REG[i] for i in eta.argmin(axis=1)]))):
        hit = (rec == best).astype(float)
        diff = np.array([hit[f].mean() - base_hit[f].mean() for f in flat])
        reps_a[(key, name)] = (hit, diff)
        out[name] = {"hits": int(hit.sum()), "share": float(hit.mean()), "wilson": wilson(int(hit.sum()), len(ids)),
                     "minus_always": float(hit.mean() - base_hit.mean()), "minus_always_ci": ci(diff),
                     "recommended_counts": {a: int((rec == a).sum()) for a in REG}}
    res["runs"][key] = out
# Several training seeds: their mean, with the mean of the paired bootstrap
# replicates as its CI (agreement: percentile bootstrap, not Wilson).
groups = {}
for key in keys:
    groups.setdefault(key.rsplit("-s", 1)[0], []).append(key)
res["seed_means"] = {}
for g, ks in groups.items():
    if len(ks) < 2:
        continue
    rep = np.mean([reps_c[k] for k in ks], axis=0)
    m = {"keys": ks, "c": float(np.mean([res["runs"][k]["c"] for k in ks])), "c_ci": ci(rep),
         "training_patients": res["runs"][ks[0]]["training_patients"]}
    m["gap"] = c_truth - m["c"]
    m["gap_ci"] = ci(rep_truth - rep)
    for name in ("model_margin", "margin0"):
        hits = np.mean([reps_a[(k, name)][0] for k in ks], axis=0)
        m[name] = {"share": float(hits.mean()), "ci": ci([hits[f].mean() for f in flat]),
                   "minus_always": float(hits.mean() - base_hit.mean()),
                   "minus_always_ci": ci(np.mean([reps_a[(k, name)][1] for k in ks], axis=0))}
    res["seed_means"][g] = m
json.dump(res, open(f"{run}/quality.json", "w"), indent=2)

n = len(ids)
lines = [f"Held-out centres {', '.join(res['held_out_centres'])}: {n} patients, {int(event.sum())} events; cohort seed {cseed}; "
         f"Part 2 settings: {tag}; CIs: {boot} centre-stratified bootstrap resamples (paired), agreement Wilson.",
         "",
         "| cohort seed | features | training patients | C-index, model (95% CI) | C-index, true LP (95% CI) | gap (95% CI) "
         "| rec = true best, model margin (95% CI) | rec = true best, margin 0 (95% CI) | always the most common best "
         "| minus always, model margin (95% CI) | minus always, margin 0 (95% CI) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
with open(f"{run}/quality.csv", "w") as f:
    f.write("cohort_seed,key,training_patients,c,c_lo,c_hi,c_truth,gap,gap_lo,gap_hi,agree_model_margin,agree_margin0,"
            "always,margin0_minus_always_lo,margin0_minus_always_hi,train_s\n")
    for key in keys:
        r = res["runs"][key]
        feat = key.split("-n")[0] + ("" if key.endswith("-s1") else " (train seed %s)" % key.rsplit("-s", 1)[1])
        a, z = r["model_margin"], r["margin0"]
        lines.append(
            f"| {cseed} | {feat} | {r['training_patients']} | {r['c']:.3f} [{r['c_ci'][0]:.3f}, {r['c_ci'][1]:.3f}] "
            f"| {c_truth:.3f} [{res['truth_c_ci'][0]:.3f}, {res['truth_c_ci'][1]:.3f}] "
            f"| {r['gap']:.3f} [{r['gap_ci'][0]:.3f}, {r['gap_ci'][1]:.3f}] "
            f"| {a['hits']}/{n} = {100 * a['share']:.1f}% [{100 * a['wilson'][0]:.1f}, {100 * a['wilson'][1]:.1f}] "
            f"| {z['hits']}/{n} = {100 * z['share']:.1f}% [{100 * z['wilson'][0]:.1f}, {100 * z['wilson'][1]:.1f}] "
            f"| {most}: {counts[most]}/{n} ({100 * counts[most] / n:.1f}%) "
            f"| {100 * a['minus_always']:+.1f} [{100 * a['minus_always_ci'][0]:+.1f}, {100 * a['minus_always_ci'][1]:+.1f}] "
            f"| {100 * z['minus_always']:+.1f} [{100 * z['minus_always_ci'][0]:+.1f}, {100 * z['minus_always_ci'][1]:+.1f}] |")
        f.write(f"{cseed},{key},{r['training_patients']},{r['c']:.6f},{r['c_ci'][0]:.6f},{r['c_ci'][1]:.6f},{c_truth:.6f},"
                f"{r['gap']:.6f},{r['gap_ci'][0]:.6f},{r['gap_ci'][1]:.6f},{a['share']:.4f},{z['share']:.4f},"
                f"{counts[most] / n:.4f},{z['minus_always_ci'][0]:.4f},{z['minus_always_ci'][1]:.4f},{r['train_s']:.1f}\n")
for g, m in res["seed_means"].items():
    a, z = m["model_margin"], m["margin0"]
    lines.append(
        f"| {cseed} | {g.split('-n')[0]}, mean of {len(m['keys'])} training seeds | {m['training_patients']} "
        f"| {m['c']:.3f} [{m['c_ci'][0]:.3f}, {m['c_ci'][1]:.3f}] "
        f"| {c_truth:.3f} [{res['truth_c_ci'][0]:.3f}, {res['truth_c_ci'][1]:.3f}] "
        f"| {m['gap']:.3f} [{m['gap_ci'][0]:.3f}, {m['gap_ci'][1]:.3f}] "
        f"| {100 * a['share']:.1f}% [{100 * a['ci'][0]:.1f}, {100 * a['ci'][1]:.1f}] (bootstrap) "
        f"| {100 * z['share']:.1f}% [{100 * z['ci'][0]:.1f}, {100 * z['ci'][1]:.1f}] (bootstrap) "
        f"| {most}: {counts[most]}/{n} ({100 * counts[most] / n:.1f}%) "
        f"| {100 * a['minus_always']:+.1f} [{100 * a['minus_always_ci'][0]:+.1f}, {100 * a['minus_always_ci'][1]:+.1f}] "
        f"| {100 * z['minus_always']:+.1f} [{100 * z['minus_always_ci'][0]:+.1f}, {100 * z['minus_always_ci'][1]:+.1f}] |")
open(f"{run}/quality.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "tables: $run/quality.md, quality.csv, quality.json; stage times: $work/logs/times; total $(secs "$t0")s"
