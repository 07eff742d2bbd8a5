#!/usr/bin/env bash
# test_cli.sh: the command-line contract every subcommand follows
# (cli/fp_cli.h): --help and help CMD, --version, exit codes 0/1/2, errors on
# stderr naming the command and the value at fault.
set -u
fp="${FEDPATH:?FEDPATH must point at the fedpath executable}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0
ok()   { passes=$((passes+1)); }
fail() { echo "FAIL: $*"; fails=$((fails+1)); }
expect_rc() { # expected-rc description command...
  local want="$1" what="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else fail "$what: exit $rc, expected $want"; cat "$tmp/err"; fi
}
has() { # file pattern description
  if grep -qE -- "$2" "$1"; then ok; else fail "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1"; fi
}

expect_rc 0 "--help" "$fp" --help
has "$tmp/out" '^  version ' "--help lists version"
has "$tmp/out" '^  config ' "--help lists config"
# every command in the list has usage through both forms
for cmd in $(sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' "$tmp/out"); do
  expect_rc 0 "help $cmd" "$fp" help "$cmd"
  has "$tmp/out" "Usage: fedpath $cmd" "help $cmd prints usage"
  expect_rc 0 "$cmd --help" "$fp" "$cmd" --help
  has "$tmp/out" "Usage: fedpath $cmd" "$cmd --help prints usage"
done

expect_rc 0 "--version" "$fp" --version
has "$tmp/out" '^fedpath [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]{7,}|unknown\)' "--version names version and git hash"
has "$tmp/out" '^backends: CPU' "--version names backends"
has "$tmp/out" 'MPI' "--version names MPI"

expect_rc 2 "no command" "$fp"
expect_rc 2 "unknown command" "$fp" confgi
has "$tmp/err" "'confgi' is not a fedpath command" "unknown command named"
has "$tmp/err" "Did you mean 'fedpath config'" "suggestion"
expect_rc 2 "unknown global option" "$fp" --frobnicate
expect_rc 2 "unknown help topic" "$fp" help nosuch

# config: usage errors exit 2, runtime errors exit 1, both name what is wrong
expect_rc 2 "config without action" "$fp" config
has "$tmp/err" "^fedpath config: missing action" "usage error names the command"
expect_rc 2 "config bad action" "$fp" config frob
expect_rc 2 "config unknown schema" "$fp" config example nosuch
expect_rc 0 "config example" "$fp" config example
cp "$tmp/out" "$tmp/example.ini"
expect_rc 0 "example file checks clean" "$fp" config check "$tmp/example.ini"
has "$tmp/out" "valid site configuration" "check says valid"
has "$tmp/err" "config site.data_dir = data" "effective values echoed"
printf '[site]\nid = H01\nport = 9\n' >"$tmp/bad.ini"
expect_rc 1 "unknown key" "$fp" config check "$tmp/bad.ini"
has "$tmp/err" "bad.ini:3: unknown key 'port' in section \[site\]" "error names file:line and key"
printf '[log]\nlevel = chatty\n' >"$tmp/bad2.ini"
expect_rc 1 "bad enum" "$fp" config check "$tmp/bad2.ini"
has "$tmp/err" "bad2.ini:2: log.level: 'chatty' is not one of" "error names the value"
expect_rc 1 "missing file" "$fp" config check "$tmp/absent.ini"
has "$tmp/err" "absent.ini" "missing file named"

# the committed example files are exactly what the schemas print (never drift)
for f in "${FP_SOURCE_DIR:?}"/docs/examples/*.ini; do
  name="$(basename "$f" .ini)"
  "$fp" config example "$name" >"$tmp/gen.ini" 2>/dev/null
  if cmp -s "$tmp/gen.ini" "$f"; then ok; else fail "docs/examples/$name.ini differs from 'fedpath config example $name'"; fi
done

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
