#!/usr/bin/env bash
# README command (a): set up, build, and run the main job on the shipped
# default example, examples/lstm.mlir (LSTM, B=64, H=512, T=1000): verify it
# derive its backward step (rnn-differentiate), and plan its rnn.bptt within
# the memory budget (remark + rnn.plan).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
BUILD_DIR=${BPTT_BUILD_DIR:-build}
EXAMPLE=${1:-examples/lstm.mlir}
"$BUILD_DIR/bin/bptt-opt" "$EXAMPLE" -rnn-differentiate -rnn-plan --mlir-print-op-on-diagnostic=false
