#!/usr/bin/env bash
# Kernel traces of compiled programs and of cuDNN nn.LSTM, on the GPU
# machine, from the repository root (docs/gpu-benchmarks.md, "Kernel traces"):
#
#   benchmarks/gpu/trace/trace_job.sh OUT PROGRAM.so... -- T:B:H...
#
# Builds the tracer, runs each program (--warmup 2 --iters 5) and peers.py's
# cuDNN step for each T:B:H under it, and writes OUT/trace.md (one
# summarize.py table per run) and OUT/traces.tar.gz (the raw traces).
set -uo pipefail
OUT=$1; shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/benchmarks/gpu/trace
CUDA=${CUDA_ROOT:-/usr/local/cuda}
WORK=$(mktemp -d /tmp/bptt-trace.XXXXXX)
mkdir -p "$OUT"
g++ -O2 -shared -fPIC "$HERE/kernel_trace.cpp" -I"$CUDA/include" \
    -L"$CUDA/lib64" -lcupti -o "$WORK/libkernel_trace.so" || exit 1
export LD_LIBRARY_PATH=$CUDA/lib64:${LD_LIBRARY_PATH:-}
RUNNER=${BPTT_GPU_RUN:-$ROOT/build/bin/bptt-gpu-run}
programs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do programs+=("$1"); shift; done
[ $# -gt 0 ] && shift
: > "$OUT/trace.md"
n=0
for p in "${programs[@]}"; do
  n=$((n + 1)); tsv=$WORK/program-$n-$(basename "$p" .so).tsv
  BPTT_TRACE_FILE=$tsv LD_PRELOAD=$WORK/libkernel_trace.so \
      timeout 120 "$RUNNER" "$p" --warmup 2 --iters 5 --seed 1 > "$WORK/log" 2>&1
  { grep -m1 -E "^time" "$WORK/log" | sed 's/^/    (traced) /'; echo; } >> "$OUT/trace.md"
  python3 "$HERE/summarize.py" "$tsv" --title "bptt $(basename "$p" .so)" \
      --top 40 >> "$OUT/trace.md" 2>&1
done
for cfg in "$@"; do
  tsv=$WORK/cudnn-${cfg//:/-}.tsv
  BPTT_TRACE_FILE=$tsv LD_PRELOAD=$WORK/libkernel_trace.so \
      timeout 200 python3 "$HERE/cudnn_iterations.py" --config "$cfg" \
      --iters 6 > "$WORK/log" 2>&1 || tail -5 "$WORK/log" >> "$OUT/trace.md"
  python3 "$HERE/summarize.py" "$tsv" --marker spin_kernel \
      --title "cuDNN nn.LSTM (peers.py full) T:B:H = $cfg" --top 30 --all \
      >> "$OUT/trace.md" 2>&1
done
tar -czf "$OUT/traces.tar.gz" -C "$WORK" $(cd "$WORK" && ls *.tsv)
rm -rf "$WORK"
