#!/usr/bin/env bash
# README command (b): set up, build, and run every test (lit regression tests
# and GoogleTest unit tests). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BPTT_BUILD_DIR:-build}
LIT=/usr/lib/llvm-22/bin/lit
set +e
"$LIT" -sv "$BUILD_DIR/test" "$BUILD_DIR/test/Unit" | tee "$BUILD_DIR/lit.log"
status=${PIPESTATUS[0]}
set -e
# One summary line that any CI reader understands.
passed=$(sed -n 's/^ *Passed *: *\([0-9]*\).*/\1/p' "$BUILD_DIR/lit.log")
failed=$(sed -n 's/^ *Failed *: *\([0-9]*\).*/\1/p' "$BUILD_DIR/lit.log")
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
