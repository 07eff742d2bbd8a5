#!/bin/sh
# bench_federation.sh: fedpath against Flower, side by side in one run on this
# machine (issue 8 item 9; a benchmark, not a timed test).
#
#   scripts/bench/bench_federation.sh [BUILD_DIR]      (default: build)
#
# For each of SITES (default "10 15"): a study of BIG_ROUNDS rounds (default
# 2) with a PARAMS-float32 model (default 25,000,000 = 100 MB) over loopback
# TLS, REPEAT times per side (default 3; the pairs alternate which side runs
# first), then SMALL_ROUNDS rounds (default 5) with SMALL_PARAMS (default
# 250,000 = 1 MB) and 10 sites. The table gives each side's median over the
# repeats (range in brackets) and the ratio of the medians, for the first
# round (the target: everything fresh, as in a study's first round) and for
# the later rounds (steady state: a study has tens of rounds). Why repeats:
# on a virtual machine that hands freed memory back to its host at once, the
# first touch of fresh memory costs a host fault (1 GB: 0.7-3.9 s measured on
# the 2-core CI VM), so one run's figure moves with the host's state; the
# median of alternating runs gives both sides the same odds.
#  fedpath: the real `fedpath aggregate` process (mutual TLS 1.3, PKI from
#    `fedpath pki`, state folder with persisted updates and journal, FedAvg)
#    and K site agents as separate processes (bench_federation sites: forked
#    fp_agent_run processes whose bench-only trainer returns the model
#    unchanged, i.e. a zero delta of the full size).
#  Flower: flwr==FLWR_VERSION (default 1.42.0), legacy start_server /
#    start_client (gRPC, deprecated but shipped), FedAvg, min clients K, K
#    client processes returning the parameters unchanged, TLS with a server
#    certificate made here with openssl (Flower has no client certificates).
# Measured: round time, aggregator/server peak RSS (/usr/bin/time -v), one
# site's peak RSS, per-round overhead with the 1 MB model; load average
# before each run. Definitions: scripts/bench/bench_federation_report.py.
#
# Python: the script makes its OWN virtual environment,
# BUILD_DIR/bench/flower-venv, with `python3 -m venv` and
# `pip install flwr==1.42.0` (which brings numpy and grpcio); nothing is
# installed outside it and scripts/bootstrap is not involved. Needs
# /usr/bin/time (Debian: time) and openssl.
# Environment: SITES, REPEAT, BIG_ROUNDS, PARAMS, SMALL_PARAMS, SMALL_ROUNDS, FLWR_VERSION,
# LOG_LEVEL (of `fedpath aggregate`, default info; debug adds close timings),
# SKIP_FLOWER=1 (fedpath only), AGGREGATOR=released (instead of `fedpath
# aggregate`, bench_federation server: the same fp_server_run with the
# round-0 model file mapped and released once listening), PYTHON (for the venv; default python3), KEEP=1
# (keep the run folder: logs, certificates; the fedpath state folders are
# removed after each run either way, 1-1.5 GB each), STATE_ROOT (put the
# aggregator's state folders there, e.g. a tmpfs, to see what fsync costs).
# Output: the table on stdout; every raw line also in
# BUILD_DIR/bench/federation-results-<UTC time>.txt. Wall time about
# 10 min on 2 shared cores with the defaults.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
SITES=${SITES:-"10 15"}
PARAMS=${PARAMS:-25000000}
SMALL_PARAMS=${SMALL_PARAMS:-250000}
SMALL_ROUNDS=${SMALL_ROUNDS:-5}
FLWR_VERSION=${FLWR_VERSION:-1.42.0}
SKIP_FLOWER=${SKIP_FLOWER:-0}
PYTHON=${PYTHON:-python3}
for tool in /usr/bin/time openssl; do
	command -v $tool >/dev/null 2>&1 || { echo "bench_federation: $tool is missing (apt-get install time openssl)" >&2; exit 1; }
done

cmake --build "$build" --target fedpath bench_federation >/dev/null
build=$(cd "$build" && pwd)
FEDPATH=$build/cli/fedpath
SITESBIN=$build/tests/bench_federation
mkdir -p "$build/bench"
venv=$build/bench/flower-venv
if [ "$SKIP_FLOWER" != 1 ] && ! "$venv/bin/python" -c "import flwr, sys; sys.exit(flwr.__version__ != '$FLWR_VERSION')" 2>/dev/null; then
	echo "bench_federation: making $venv (pip install flwr==$FLWR_VERSION)" >&2
	"$PYTHON" -m venv "$venv"
	"$venv/bin/pip" install -q "flwr==$FLWR_VERSION" >&2
fi
W=$(mktemp -d "$build/bench/run.XXXXXX")
results=$build/bench/federation-results-$(date -u +%Y%m%dT%H%M%SZ).txt
PIDS=""
cleanup() { for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done; [ "${KEEP:-0}" = 1 ] || rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
load() { cut -d' ' -f1 /proc/loadavg; }
note() { echo "$*" >&2; }

# ---- fedpath PKI: one study CA per site count (the allow-list is the study) ----
pki() { # K
	pd=$W/pki$1
	[ -f "$pd/aggregator.crt" ] && return 0
	"$FEDPATH" pki init --ca "$pd" --study bench --days 2 >/dev/null 2>&1
	(cd "$pd" && "$FEDPATH" pki csr --site aggregator >/dev/null 2>&1)
	"$FEDPATH" pki sign --ca "$pd" --csr "$pd/aggregator.csr" --site aggregator --role server \
		--dns aggregator.bench --out "$pd/aggregator.crt" >/dev/null 2>&1
	pi=1
	while [ $pi -le "$1" ]; do
		ps=$(printf 'S%02d' $pi)
		mkdir -p "$pd/$ps"
		(cd "$pd/$ps" && "$FEDPATH" pki csr --site "$ps" >/dev/null 2>&1)
		"$FEDPATH" pki sign --ca "$pd" --csr "$pd/$ps/$ps.csr" --site "$ps" --role site --out "$pd/$ps/$ps.crt" >/dev/null 2>&1
		pi=$((pi + 1))
	done
}

model() { # P -> path of the init model
	[ -f "$W/model$1.f32" ] || "$SITESBIN" init "$W/model$1.f32" "$1"
	echo "$W/model$1.f32"
}

run_fedpath() { # K P ROUNDS [REP]
	k=$1 p=$2 r=$3
	d=$W/fedpath-$k-$p-$r-${4:-1}
	mkdir -p "$d"
	pki "$k"
	init=$(model "$p")
	cat >"$d/plan.ini" <<INI
[study]
id = bench
[aggregator]
state_dir = ${STATE_ROOT:-$d}/state-$k-$p-$r
listen = 127.0.0.1:0
[rounds]
count = $r
quorum = $k
deadline_s = 3600
INI
	echo "fedpath $k $p $r $(load) ${AGGREGATOR:-cli}" >"$d/meta"
	note "fedpath: $k sites, $p params, $r round(s), load $(load)"
	if [ "${AGGREGATOR:-cli}" = cli ]; then
		/usr/bin/time -v -o "$d/time.txt" "$FEDPATH" aggregate --plan "$d/plan.ini" --init "$init" \
			--tls-dir "$W/pki$k" --port 0 --log-level "${LOG_LEVEL:-info}" >"$d/agg.out" 2>"$d/agg.log" &
	else # the same fp_server_run with the round-0 model released once listening (bench_federation.c)
		/usr/bin/time -v -o "$d/time.txt" "$SITESBIN" server "$d/plan.ini" "$W/pki$k" "$init" \
			>"$d/agg.out" 2>"$d/agg.log" &
	fi
	agg=$!
	PIDS="$PIDS $agg"
	port="" i=0
	while [ -z "$port" ] && [ $i -lt 600 ]; do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/agg.log" | head -1)
		[ -z "$port" ] && sleep 0.1
		i=$((i + 1))
	done
	[ -n "$port" ] || { note "fedpath aggregate did not start: $(tail -3 "$d/agg.log")"; return 1; }
	timeout 900 "$SITESBIN" sites "$d/plan.ini" "$W/pki$k" "$port" "$k" "$p" >"$d/sites.out" 2>"$d/sites.err" ||
		note "fedpath sites: $(grep -v ' rc ok ' "$d/sites.out" | grep '^site' | head -2) $(tail -2 "$d/sites.err")"
	wait "$agg" || note "fedpath aggregate exited non-zero: $(tail -2 "$d/agg.log")"
	/usr/bin/python3 "$here/bench_federation_report.py" fedpath "$d" | tee -a "$results"
	rm -rf "${STATE_ROOT:-$d}/state-$k-$p-$r"
}

# ---- Flower: a throwaway CA and a server certificate for 127.0.0.1 ----
flower_certs() {
	c=$W/flower-certs
	[ -f "$c/server.crt" ] && return 0
	mkdir -p "$c"
	openssl ecparam -name prime256v1 -genkey -noout -out "$c/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$c/ca.key" -subj "/CN=bench flower CA" -days 2 -out "$c/ca.crt" 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout -out "$c/server.key" 2>/dev/null
	openssl req -new -key "$c/server.key" -subj "/CN=127.0.0.1" -out "$c/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$c/ext.cnf"
	openssl x509 -req -in "$c/server.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 2 \
		-extfile "$c/ext.cnf" -out "$c/server.crt" 2>/dev/null
}

run_flower() { # K P ROUNDS [REP]
	k=$1 p=$2 r=$3
	d=$W/flower-$k-$p-$r-${4:-1}
	mkdir -p "$d"
	flower_certs
	port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "flower $k $p $r $(load)" >"$d/meta"
	note "Flower: $k clients, $p params, $r round(s), load $(load)"
	vpy=$venv/bin/python fl=$here/bench_flower.py
	/usr/bin/time -v -o "$d/time.txt" "$vpy" "$fl" server --port "$port" --clients "$k" --params "$p" --rounds "$r" \
		--certs "$W/flower-certs" >"$d/server.out" 2>"$d/server.log" &
	srv=$!
	PIDS="$PIDS $srv"
	# Legacy Flower clients give up on a refused connection: start them once the server listens.
	i=0
	while ! grep -q "gRPC server running" "$d/server.log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	grep -q "gRPC server running" "$d/server.log" || { note "Flower server did not start: $(tail -3 "$d/server.log")"; return 1; }
	cl=""
	i=1
	while [ $i -le "$k" ]; do
		"$vpy" "$fl" client --port "$port" --params "$p" --certs "$W/flower-certs" >"$d/client$i.out" 2>&1 &
		cl="$cl $!"
		i=$((i + 1))
	done
	PIDS="$PIDS $cl"
	i=0
	while kill -0 "$srv" 2>/dev/null && [ $i -lt 9000 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$srv" 2>/dev/null; then
		note "Flower server still running after 900 s; killed"
		kill -9 "$srv" 2>/dev/null || true
	fi
	wait "$srv" || note "Flower server exited non-zero: $(tail -3 "$d/server.log")"
	for c in $cl; do
		i=0
		while kill -0 "$c" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$c" 2>/dev/null || true
		wait "$c" 2>/dev/null || true
	done
	/usr/bin/python3 "$here/bench_federation_report.py" flower "$d" | tee -a "$results"
}

{
	echo "# bench_federation $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores"
	echo "# fedpath $("$FEDPATH" --version 2>&1 | head -1)"
	[ "$SKIP_FLOWER" = 1 ] || echo "# flwr $("$venv/bin/python" -c 'import flwr; print(flwr.__version__)' 2>/dev/null)"
} | tee "$results" >&2
REPEAT=${REPEAT:-3}
BIG_ROUNDS=${BIG_ROUNDS:-2}
for k in $SITES; do
	rep=1
	while [ $rep -le "$REPEAT" ]; do
		if [ $((rep % 2)) = 1 ] || [ "$SKIP_FLOWER" = 1 ]; then
			run_fedpath "$k" "$PARAMS" "$BIG_ROUNDS" $rep >&2
			[ "$SKIP_FLOWER" = 1 ] || run_flower "$k" "$PARAMS" "$BIG_ROUNDS" $rep >&2
		else
			run_flower "$k" "$PARAMS" "$BIG_ROUNDS" $rep >&2
			run_fedpath "$k" "$PARAMS" "$BIG_ROUNDS" $rep >&2
		fi
		rep=$((rep + 1))
	done
done
run_fedpath 10 "$SMALL_PARAMS" "$SMALL_ROUNDS" >&2
[ "$SKIP_FLOWER" = 1 ] || run_flower 10 "$SMALL_PARAMS" "$SMALL_ROUNDS" >&2
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results" >&2
/usr/bin/python3 "$here/bench_federation_report.py" table "$results" | tee -a "$results"
echo "(raw lines: $results)"
