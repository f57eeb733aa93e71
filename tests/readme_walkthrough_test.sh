#!/usr/bin/env bash
# README.md's walk-through, run as written: the fenced blocks marked
# `<!-- walkthrough: NAME -->` are taken out of the README in order and run
# in one bash with `set -euo pipefail`, so a command of the README that
# fails fails the test. The only changes are the ones a reader makes: the
# values of the settings block (PATH to this build, MEZ_DIR in a temporary
# directory, free loopback ports), set right after it; HOME is a fresh
# directory so msh's stored identity is not the caller's. Then: the session
# run with `msh ssh` is in the `play` block's output, and the `stop` block
# stopped both servers. Whatever still runs at the end is killed (the
# walk-through runs in its own process group).
#
# usage: readme_walkthrough_test.sh README.md BIN_DIR
#        readme_walkthrough_test.sh --self-test README.md BIN_DIR
#          (a README whose first command fails must fail the run)
set -u
self_test=0
if [ "${1:-}" = --self-test ]; then
  self_test=1
  shift
fi
readme=$1
bin=$(cd "$2" && pwd) || exit 1
blocks=(settings mezrecd node user ssh play stop)

tmp=$(mktemp -d)
pgid=""
cleanup() {
  if [ -n "$pgid" ] && kill -0 -- "-$pgid" 2>/dev/null; then
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 100); do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$tmp/transcript" ] && { echo "--- transcript"; cat "$tmp/transcript"; }
  for f in "$tmp"/walk/*.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
  done
  exit 1
}

# The block after the marker NAME, without its fences.
block() {
  awk -v name="$1" '
    $0 == "<!-- walkthrough: " name " -->" { want = 1; next }
    want == 1 && /^```sh$/ { want = 2; found = 1; next }
    want == 1 { want = 0 }
    want == 2 && /^```$/ { exit }
    want == 2 { print }
    END { if (!found) exit 1 }
  ' "$2"
}

# A loopback port nothing answers on (a connect is refused).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

src=$readme
if [ "$self_test" = 1 ]; then
  src=$tmp/README.md
  # The mezrecd block's first command replaced by one that fails.
  awk '
    $0 == "<!-- walkthrough: mezrecd -->" { mark = 1 }
    mark && /^mkdir / { print "false"; mark = 0; next }
    { print }
  ' "$readme" >"$src"
fi

mez_port=$(free_port) || fail "no free port"
mezd_port=$(free_port) || fail "no free port"
[ "$mez_port" != "$mezd_port" ] || mezd_port=$(free_port)
mkdir -p "$tmp/home"
{
  echo 'set -euo pipefail'
  for b in "${blocks[@]}"; do
    code=$(block "$b" "$src") || fail "README.md has no block marked '<!-- walkthrough: $b -->'"
    echo "echo '@@@ $b'"
    echo "$code"
    if [ "$b" = settings ]; then
      printf 'export PATH=%q:"$PATH" MEZ_DIR=%q MEZ_PORT=%q MEZD_PORT=%q\n' \
        "$bin" "$tmp/walk" "$mez_port" "$mezd_port"
    fi
  done
  echo "echo '@@@ end'"
} >"$tmp/walk.sh"

(cd "$tmp" && HOME=$tmp/home MEZ_IDENTITY='' exec setsid bash "$tmp/walk.sh") \
  >"$tmp/transcript" 2>&1 &
pid=$!
pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
[ -n "$pgid" ] || pgid=$pid
wait "$pid"
status=$?

if [ "$self_test" = 1 ]; then
  [ "$status" -ne 0 ] || fail "the walk-through passed though a command failed"
  grep -q '^@@@ node' "$tmp/transcript" &&
    fail "the walk-through went on after a failed command"
  echo "ok: a failing README command fails the walk-through (exit $status)"
  exit 0
fi

[ "$status" -eq 0 ] || fail "the walk-through exited $status"
grep -q '^@@@ end$' "$tmp/transcript" || fail "the walk-through did not finish"
# The output of one block: the lines between its marker and the next.
section() {
  awk -v name="@@@ $1" '$0 == name { on = 1; next } /^@@@ / { on = 0 } on' \
    "$tmp/transcript"
}
section ssh | grep -q 'hello from node1' || fail "msh ssh did not run the command"
section play | grep -q 'hello from node1' ||
  fail "msh play did not show the recorded output"
section play | grep -q "$(uname -s)" || fail "msh play lacks uname's output"
section play | grep -q $'\e' && fail "--format=plain left escape codes"
section node | grep -q '^  mezd ' || fail "nodes add printed no mezd command"
# The stop block stopped both servers.
for f in mezd.pid mezrecd.pid; do
  p=$(cat "$tmp/walk/$f") || fail "no $f"
  for _ in $(seq 300); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$p" 2>/dev/null && fail "${f%.pid} still runs after the stop block"
done
cat "$tmp/transcript"
echo "ok: README walk-through"
