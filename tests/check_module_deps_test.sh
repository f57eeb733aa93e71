#!/usr/bin/env bash
# scripts/check-module-deps passes on this repo and fails, naming the file,
# on a tree where a module includes one it may not use, or where a header
# of a module other than rpc/agent/proxy includes grpcpp.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() {  # NAME WANT(0|1) REPO [GREP]
  local out status
  out=$("$root/scripts/check-module-deps" "$3" 2>&1)
  status=$?
  if [ "$status" -ne "$2" ]; then
    echo "FAIL $1: exit $status, want $2"; echo "$out"; fails=$((fails + 1)); return
  fi
  if [ -n "${4:-}" ] && ! grep -q -- "$4" <<<"$out"; then
    echo "FAIL $1: output lacks '$4'"; echo "$out"; fails=$((fails + 1)); return
  fi
  echo "ok $1"
}
expect "this repo" 0 "$root"

mkdir -p "$tmp/up/libmez/util" "$tmp/up/libmez/auth"
echo '#include "libmez/util/status.h"' >"$tmp/up/libmez/auth/token.h"
expect "allowed include" 0 "$tmp/up"
echo '#include "libmez/auth/token.h"' >"$tmp/up/libmez/util/status.h"
expect "util includes auth" 1 "$tmp/up" "libmez/util/status.h includes libmez/auth/"
# Tests may include anything.
rm "$tmp/up/libmez/util/status.h"
echo '#include "libmez/auth/token.h"' >"$tmp/up/libmez/util/status_test.cc"
expect "tests are not checked" 0 "$tmp/up"

mkdir -p "$tmp/grpc/libmez/catalog"
echo '#include <grpcpp/grpcpp.h>' >"$tmp/grpc/libmez/catalog/catalog.h"
expect "grpcpp outside rpc" 1 "$tmp/grpc" "catalog.h includes grpcpp"

mkdir -p "$tmp/new/libmez/shiny"
expect "module not in the graph" 1 "$tmp/new" "libmez/shiny is not in the module graph"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
