#!/usr/bin/env bash
# Planner speed on one core of the development machine; writes JSON and a
# readable table under benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
mkdir -p benchmarks/results
taskset -c 0 build/bin/bptt-planner-benchmark \
  --benchmark_out=benchmarks/results/planner.json --benchmark_out_format=json \
  | tee benchmarks/results/planner.txt
