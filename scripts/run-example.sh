#!/usr/bin/env bash
# README command (a): set up, build, and run the main job on the shipped
# default example, examples/lstm.mlir (LSTM language model, B=64, H=512,
# V=128, T=1000, 64 MiB budget, MSM): derive the cell's backward step
# (rnn-differentiate), plan and materialise the schedule (rnn-remat), lower
# it to the CPU, JIT-compile it and run one training step. bptt-run prints
# the strategy, the budget, the planned and measured forward steps and peak
# bytes, the time and a checksum of the gradients.
# Extra arguments go to bptt-run (e.g. --strategy hsm --budget 5%).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
BUILD_DIR=${BPTT_BUILD_DIR:-build}
EXAMPLE=examples/lstm.mlir
if [ $# -gt 0 ] && [[ "$1" == *.mlir ]]; then EXAMPLE=$1; shift; fi
"$BUILD_DIR/bin/bptt-run" "$EXAMPLE" "$@"
