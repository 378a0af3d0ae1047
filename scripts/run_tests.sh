#!/usr/bin/env bash
# Runs every test binary in DIR (or those whose name contains one of the PATTERNs), from the
# repository root so fixtures under tests/data resolve, and sums cmocka's per-suite counts.
# Ends with the line "tests: N passed, N failed" and a non-zero exit when anything failed.
set -u
dir=$1; shift
pass=0; fail=0; crashed=()
for bin in "$dir"/test_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  if [ $# -gt 0 ]; then
    keep=0; for p in "$@"; do [[ $name == *$p* ]] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  log=$(mktemp)
  "$bin" >"$log" 2>&1; rc=$?
  cat "$log"
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail + 1)); crashed+=("$name (exit $rc)"); fi
  rm -f "$log"
done
[ ${#crashed[@]} -gt 0 ] && printf 'crashed: %s\n' "${crashed[@]}"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
