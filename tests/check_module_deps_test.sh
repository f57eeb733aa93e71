#!/usr/bin/env bash
# scripts/check-module-deps passes on this repo and fails, naming the file,
# on a tree where a module includes one it may not use, where a file
# outside rpc includes grpcpp or a *.grpc.pb.h, or where a client module
# (recorder, agent, cli) includes rpc's service side.
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

# Sources too, and the generated gRPC headers (issue #15 item 3).
mkdir -p "$tmp/gen/libmez/recorder" "$tmp/gen/libmez/rpc"
echo '#include "mezite/v1/recording.grpc.pb.h"' \
  >"$tmp/gen/libmez/recorder/uploader.cc"
expect "grpc.pb.h in a .cc outside rpc" 1 "$tmp/gen" \
  "uploader.cc includes grpcpp or a \*.grpc.pb.h"
rm "$tmp/gen/libmez/recorder/uploader.cc"
echo '#include <grpcpp/grpcpp.h>' >"$tmp/gen/libmez/rpc/client.cc"
expect "grpcpp inside rpc" 0 "$tmp/gen"

# recorder links rpc's client library: its client headers only.
echo '#include "libmez/rpc/client.h"' >"$tmp/gen/libmez/recorder/recorders.cc"
expect "recorder uses rpc's client" 0 "$tmp/gen"
echo '#include "libmez/rpc/ingest.h"' >"$tmp/gen/libmez/recorder/recorders.cc"
expect "recorder includes rpc's service side" 1 "$tmp/gen" \
  "includes libmez/rpc/ingest.h"

mkdir -p "$tmp/new/libmez/shiny"
expect "module not in the graph" 1 "$tmp/new" "libmez/shiny is not in the module graph"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
