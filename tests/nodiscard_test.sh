#!/usr/bin/env bash
# Status and Result are [[nodiscard]]: a call whose Status or Result is
# dropped does not compile under the project's warnings-as-errors build.
# Compiles two snippets with the same compiler: one that drops a Status and
# one that drops a Result must fail with -Werror=unused-result; one that
# uses both must compile.
#   tests/nodiscard_test.sh CXX REPO
set -euo pipefail
cxx=$1
repo=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

compile() {
  "$cxx" -std=c++20 -fsyntax-only -Werror=unused-result -I "$repo" \
    -x c++ "$1" 2>"$dir/err"
}

cat >"$dir/drop_status.cc" <<'CC'
#include "libmez/util/status.h"
mez::Status Work() { return mez::Status::Ok(); }
void Caller() { Work(); }
CC
cat >"$dir/drop_result.cc" <<'CC'
#include "libmez/util/status.h"
mez::Result<int> Work() { return 1; }
void Caller() { Work(); }
CC
cat >"$dir/use.cc" <<'CC'
#include "libmez/util/status.h"
mez::Status Work() { return mez::Status::Ok(); }
mez::Result<int> Count() { return 1; }
bool Caller() { return Work().ok() && Count().ok(); }
CC

status=0
for f in drop_status drop_result; do
  if compile "$dir/$f.cc"; then
    echo "nodiscard_test: $f.cc compiled: its result is not [[nodiscard]]" >&2
    status=1
  fi
done
if ! compile "$dir/use.cc"; then
  echo "nodiscard_test: use.cc did not compile:" >&2
  cat "$dir/err" >&2
  status=1
fi
[[ $status -eq 0 ]] && echo "nodiscard_test: dropping a Status or a Result does not compile"
exit $status
