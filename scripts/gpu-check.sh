#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: checks the CUDA runtime and bptt-gpu-run
# with the hand-written program build/lib/bptt-linear-rnn.so (no compiler,
# no LLVM needed; only build/bin, build/lib, this checkout's
# test/Runtime/Inputs and python3). Exits non-zero on the first failure.
#   1. loss and gradients against float64 BPTT at several shapes (fp32);
#   2. the measured activation peak equals the planned peak exactly;
#   3. CUDA graph replays give bitwise the results of direct calls, and the
#      dumped inputs read back give them again;
#   4. a larger run (T=1000, B=64, H=512) in both modes and in tf32, with
#      timings (BPTT_GPU_CHECK_SMALL_ONLY=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BPTT_BUILD_DIR:-build}
RUN="$BUILD_DIR/bin/bptt-gpu-run"
PROG="$BUILD_DIR/lib/bptt-linear-rnn.so"
CHECK=test/Runtime/Inputs/check_linear_rnn.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "gpu-check: FAIL: $*" >&2; exit 1; }
sums() { grep -E '^(loss|stats|dh0|dxs|dw) ' "$1"; }
planned() { sed -n 's/^plan .* planned peak \([0-9]*\) B,.*/\1/p' "$1"; }
measured() { sed -n 's/^memory *activation peak \([0-9]*\) B,.*/\1/p' "$1"; }

for shape in "16 4 8" "5 9 3" "3 1 1" "7 2 13" "64 32 96"; do
  read -r T B H <<< "$shape"
  export BPTT_LINEAR_RNN_T=$T BPTT_LINEAR_RNN_B=$B BPTT_LINEAR_RNN_H=$H
  rm -rf "$tmp/dump"
  "$RUN" "$PROG" --dump "$tmp/dump" > "$tmp/graph.txt" || fail "T=$T B=$B H=$H (graph)"
  python3 "$CHECK" "$tmp/dump" || fail "gradients at T=$T B=$B H=$H"
  [ "$(planned "$tmp/graph.txt")" = "$(measured "$tmp/graph.txt")" ] ||
    fail "activation peak $(measured "$tmp/graph.txt") != planned $(planned "$tmp/graph.txt")"
  "$RUN" "$PROG" --no-graph --iters 3 > "$tmp/direct.txt" || fail "T=$T B=$B H=$H (direct)"
  diff <(sums "$tmp/graph.txt") <(sums "$tmp/direct.txt") > /dev/null ||
    fail "graph and direct results differ at T=$T B=$B H=$H"
  "$RUN" "$PROG" --inputs-from "$tmp/dump" --seed 7 --warmup 2 > "$tmp/files.txt" ||
    fail "--inputs-from at T=$T B=$B H=$H"
  diff <(sums "$tmp/graph.txt") <(sums "$tmp/files.txt") > /dev/null ||
    fail "results from the dumped inputs differ at T=$T B=$B H=$H"
done

if [ "${BPTT_GPU_CHECK_SMALL_ONLY:-0}" = 1 ]; then
  echo "gpu-check: PASS (small shapes only)"
  exit 0
fi
# W uniform in [-0.01, 0.01] keeps h_t = h_{t-1} W + x_t bounded over 1000
# steps at H = 512.
export BPTT_LINEAR_RNN_T=1000 BPTT_LINEAR_RNN_B=64 BPTT_LINEAR_RNN_H=512
"$RUN" "$PROG" --scale 0.01 --iters 20 --json "$tmp/large.json" | tee "$tmp/large.txt"
"$RUN" "$PROG" --scale 0.01 --iters 5 --no-graph > "$tmp/large-direct.txt"
grep -E '^(run|time)' "$tmp/large-direct.txt"
diff <(sums "$tmp/large.txt") <(sums "$tmp/large-direct.txt") > /dev/null ||
  fail "graph and direct results differ at T=1000 B=64 H=512"
[ "$(planned "$tmp/large.txt")" = "$(measured "$tmp/large.txt")" ] ||
  fail "activation peak != planned peak at T=1000 B=64 H=512"
BPTT_LINEAR_RNN_TF32=1 "$RUN" "$PROG" --scale 0.01 --iters 5 | grep -E '^(entry|time|loss)'
echo "gpu-check: PASS"
