#!/bin/sh
# test_report_pull.sh: `fedpath report pull` wiring (cli/cmd_report.c): the
# statistician.ini is read and range-checked, the certificate made by
# `fedpath pki sign --role statistician` is used to dial the aggregator, and
# a failure to reach it is exit 1 with nothing written. The exchange itself
# (results fetched, anything else refused) is tested in test_federation.c.
# Needs FEDPATH (CTest).
set -u
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$FEDPATH" report pull --out "$T/r" >/dev/null 2>&1
[ $? -eq 2 ] || fail "pull without --config should be a usage error (2)"
"$FEDPATH" report --help | grep -q '^       fedpath report pull --config' || fail "usage does not show pull"

"$FEDPATH" pki init --ca "$T/ca" --study pulltest >/dev/null 2>&1 || fail "pki init"
"$FEDPATH" pki csr --site stat1 --out "$T/me" >/dev/null 2>&1 || fail "pki csr"
"$FEDPATH" pki sign --ca "$T/ca" --csr "$T/me/stat1.csr" --site stat1 --role statistician --out "$T/me/stat1.crt" \
	>/dev/null 2>&1 || fail "pki sign --role statistician"
# a port nothing listens on: bind one, note it, release it
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >"$T/statistician.ini" <<INI
[statistician]
id = stat1
[aggregator]
address = 127.0.0.1:$port
server_name = aggregator.test
[tls]
ca = $T/ca/ca.crt
cert = $T/me/stat1.crt
key = $T/me/stat1.key
[pull]
io_timeout_s = 5
INI
timeout 60 "$FEDPATH" report pull --config "$T/statistician.ini" --out "$T/r" --report "$T/rep" 2>"$T/err" >/dev/null
rc=$?
[ $rc -eq 1 ] || fail "pull from a closed port: exit $rc, expected 1 ($(cat "$T/err"))"
[ -s "$T/err" ] || fail "pull failed silently"
[ ! -e "$T/r/pooled.json" ] && [ ! -e "$T/rep/report.html" ] || fail "a failed pull wrote results"

printf '[pull]\nio_timeout_s = 1\n' >"$T/bad.ini"
"$FEDPATH" report pull --config "$T/bad.ini" --out "$T/r" 2>"$T/err" >/dev/null
[ $? -eq 1 ] || fail "an out-of-range key should exit 1"
grep -q "bad.ini:2" "$T/err" || fail "the config error does not name file:line: $(cat "$T/err")"
echo "PASS report_pull ($(head -c 120 "$T/err"))"
