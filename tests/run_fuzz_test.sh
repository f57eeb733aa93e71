#!/usr/bin/env bash
# scripts/run-fuzz must fail when any target fails (a crash, UBSan halt,
# leak or timeout all exit non-zero), and pass when every target passes.
# Fake targets stand in for libFuzzer binaries: this tests the runner.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # NAME EXPECTED_STATUS(0|nonzero) DIR [GREP]
  local out status
  out=$("$root/scripts/run-fuzz" "$3" 1 2>&1)
  status=$?
  if [ "$2" = 0 ] && [ "$status" -ne 0 ]; then
    echo "FAIL $1: exit $status, want 0"; echo "$out"; fails=$((fails + 1)); return
  fi
  if [ "$2" != 0 ] && [ "$status" -eq 0 ]; then
    echo "FAIL $1: exit 0, want a failure"; echo "$out"; fails=$((fails + 1)); return
  fi
  if [ -n "${4:-}" ] && ! grep -q -- "$4" <<<"$out"; then
    echo "FAIL $1: output lacks '$4'"; echo "$out"; fails=$((fails + 1)); return
  fi
  echo "ok $1"
}
fake() {  # DIR NAME STATUS
  mkdir -p "$1"
  printf '#!/bin/sh\necho "stat::number_of_executed_units: 5"\n' >"$1/$2_fuzz"
  if [ "$3" -ne 0 ]; then
    printf 'echo "SUMMARY: libFuzzer: deadly signal" >&2\nexit %s\n' "$3" >>"$1/$2_fuzz"
  fi
  chmod +x "$1/$2_fuzz"
}
fake "$tmp/good" a 0
fake "$tmp/good" b 0
check all-pass 0 "$tmp/good" "2 target(s) passed"
fake "$tmp/bad" a 0
fake "$tmp/bad" b 77
fake "$tmp/bad" c 0
check one-crash nonzero "$tmp/bad" "fuzz target b failed (exit 77)"
fake "$tmp/ubsan" only 1
check ubsan-halt nonzero "$tmp/ubsan" "fuzz target only failed (exit 1)"
mkdir -p "$tmp/empty"
check no-targets nonzero "$tmp/empty" "no \*_fuzz targets"
if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all run-fuzz checks passed"
