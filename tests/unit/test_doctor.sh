#!/bin/sh
# test_doctor.sh: `fedpath doctor` as site IT runs it before joining a study:
# a good tile cache passes, a corrupted one fails naming the file, a
# certificate near expiry warns, an expired or foreign one fails, a key that
# is readable by others warns and one of another certificate fails, a closed
# aggregator port fails, and the exit status is 0 exactly when nothing FAILs.
# Needs FEDPATH (the built CLI) and the openssl command-line tool.
set -u
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T" || exit 1
F="$FEDPATH"

"$F" synth --out cohort --size tiny --centers 1 --patients 2 --quiet 2>/dev/null || fail "synth exit $?"
"$F" tile --site H01 --out data/tiles --manifest cohort/H01/clinical.csv 2>/dev/null >/dev/null || fail "tile exit $?"
printf '[site]\nid = H01\ndata_dir = %s/data\n' "$T" >site.ini

# A clean site: every check OK or SKIP, exit 0.
"$F" doctor --config site.ini >out 2>err || fail "good site exit $?: $(cat out err)"
grep -q '^OK    tile-caches  2 caches, [1-9][0-9]* tiles, all readable' out || fail "good caches: $(cat out)"
grep -q '^OK    disk ' out || fail "disk: $(cat out)"
grep -q '^OK    gpu .*CPU backend will be used' out || grep -q '^OK    gpu ' out || fail "gpu: $(cat out)"
grep -q '^SKIP  clock skew .*not measured' out || fail "clock skew must be skipped without an aggregator: $(cat out)"
grep -q -E '^(OK|WARN)  +clock +' out || fail "the NTP state must be reported: $(cat out)"
grep -q '^OK    openssl      OpenSSL 3' out || fail "openssl: $(cat out)"
grep -q '^FAIL' out && fail "unexpected FAIL: $(cat out)"

# --json: the same verdict as one object.
"$F" doctor --config site.ini --json >j || fail "json exit $?"
grep -q '"ok": true' j || fail "json ok: $(cat j)"
grep -q '"name": "tile-caches"' j || fail "json checks: $(cat j)"

# A corrupted cache: FAIL naming it, and exit 1; the good ones still counted.
mkdir data/more
good=$(ls data/tiles/*.h5 | head -1)
cp "$good" data/more/broken.h5
size=$(wc -c <data/more/broken.h5)
dd if=/dev/zero of=data/more/broken.h5 bs=1 seek=$((size / 2)) count=20000 conv=notrunc 2>/dev/null
cp "$good" data/more/short.h5
truncate -s 4000 data/more/short.h5
"$F" doctor --config site.ini >out 2>err
rc=$?
[ $rc -eq 1 ] || fail "corrupted cache: exit $rc: $(cat out)"
grep -q '^FAIL  tile-caches  2 of 4 caches bad; first: .*data/more/' out || fail "bad cache line: $(cat out)"
grep -q '^      fix: delete the bad caches' out || fail "bad cache fix: $(cat out)"
rm -r data/more

# Certificates from the study PKI: 10 days left warns, and still exits 0.
"$F" pki init --ca ca --study t >/dev/null 2>&1 || fail "pki init"
mkdir key
"$F" pki csr --site H01 --out key >/dev/null 2>&1 || fail "pki csr"
"$F" pki sign --ca ca --csr key/H01.csr --site H01 --role site --days 10 --out key/H01.crt >/dev/null 2>&1 ||
	fail "pki sign"
"$F" doctor --config site.ini --cert key/H01.crt --ca ca/ca.crt >out 2>err || fail "soon-expiring exit $?: $(cat out)"
grep -q '^WARN  certificate  key/H01.crt (.*CN=H01) expires in [0-9]* days' out || fail "expiry warning: $(cat out)"

# The site key: private and matching passes; readable by others warns.
"$F" doctor --config site.ini --cert key/H01.crt --key key/H01.key >out 2>err || fail "key exit $?: $(cat out)"
grep -q '^OK    key          key/H01.key is private (mode 0600) and matches the certificate' out ||
	fail "key line: $(cat out)"
chmod 644 key/H01.key
"$F" doctor --config site.ini --key key/H01.key >out 2>err || fail "readable key must only warn: $(cat out)"
grep -q '^WARN  key          key/H01.key is readable by others (mode 0644)' out || fail "key mode: $(cat out)"
chmod 600 key/H01.key

# A certificate from another CA: FAIL against the study CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -subj /CN=H01 \
	-days 100 -out other.crt 2>/dev/null || fail "openssl req"
"$F" doctor --config site.ini --cert other.crt --ca ca/ca.crt >out 2>err
[ $? -eq 1 ] || fail "foreign certificate must fail: $(cat out)"
grep -q '^FAIL  certificate  other.crt is not accepted by the study CA' out || fail "foreign line: $(cat out)"
# ... and the site key does not belong to it.
"$F" doctor --config site.ini --cert other.crt --key key/H01.key >out 2>err
[ $? -eq 1 ] || fail "key of another certificate must fail"
grep -q '^FAIL  key          key/H01.key does not belong to the certificate other.crt' out || fail "key mismatch: $(cat out)"

# An expired certificate (validity 2020-2021, made with openssl ca): FAIL.
mkdir old && : >old/index.txt && echo 01 >old/serial
cat >old.cnf <<CNF
[ca]
default_ca = d
[d]
dir = ./old
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout old/k.pem -subj /CN=H01 \
	-out old/r.csr 2>/dev/null || fail "openssl req (old)"
openssl ca -config old.cnf -selfsign -keyfile old/k.pem -in old/r.csr -startdate 20200101000000Z \
	-enddate 20210101000000Z -batch -out expired.crt >/dev/null 2>&1 || fail "openssl ca"
"$F" doctor --config site.ini --cert expired.crt >out 2>err
[ $? -eq 1 ] || fail "expired certificate must fail: $(cat out)"
grep -q '^FAIL  certificate  expired.crt (/CN=H01) expired [0-9]* days ago' out || fail "expired line: $(cat out)"

# An aggregator port nobody listens on: FAIL with the firewall hint; skew skipped.
"$F" doctor --config site.ini --aggregator 127.0.0.1:1 >out 2>err
[ $? -eq 1 ] || fail "closed aggregator must fail: $(cat out)"
grep -q '^FAIL  aggregator   127.0.0.1:1: Connection refused' out || fail "aggregator line: $(cat out)"
grep -q '^SKIP  clock skew' out || fail "clock skew with unreachable aggregator: $(cat out)"

# A missing data folder fails; usage errors exit 2.
"$F" doctor --data "$T/nowhere" >out 2>err
[ $? -eq 1 ] || fail "missing data folder must fail"
grep -q "^FAIL  disk         data folder '.*nowhere' does not exist" out || fail "missing folder line: $(cat out)"
"$F" doctor --aggregator 2>/dev/null
[ $? -eq 2 ] || fail "--aggregator without a value must be a usage error"
"$F" doctor --aggregator nocolon --data data >out 2>&1
grep -q "^FAIL  aggregator   'nocolon' is not HOST:PORT" out || fail "bad address: $(cat out)"
echo "doctor: all checks behaved"
