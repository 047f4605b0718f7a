#!/usr/bin/env bash
# The whole GPU job, one command, on the GPU machine (CUDA, PyTorch with
# cuDNN, numpy; no LLVM needed), from the repository root:
#
#   benchmarks/gpu/device_job.sh [BUILD_DIR] [PROGRAMS]
#
#   BUILD_DIR  default build: bin/bptt-gpu-run, bin/bptt-matmul-check and
#              lib/libbptt_cuda_runtime.so
#   PROGRAMS   default BUILD_DIR/gpu-programs: build_programs.py's directory,
#              or its .tar.xz / .tar.gz
#
# 0. the runtime's matrix products (bptt-matmul-check --large: cuBLASLt's
#    bias epilogue and the plain product against a host product);
# 1. correctness: check_pytorch.py on the programs of the 'check' set against
#    PyTorch (cuDNN, fp32, TF32 off) and, where PROGRAMS/cpu-dumps has the
#    case, against the CPU path's dump on the same inputs; each program runs
#    twice (--warmup 1 --iters 1), so the dump is that of a repeated call;
# 2. benchmark: bench.py on the 'bench' set and the PyTorch peers.
#
# Writes six files into $OUT (default ./gpu-out): matmul-check.txt,
# check.txt, results.json, results.md, plot.svg, log.txt (everything
# printed). Starts nothing new
# after BPTT_JOB_SECONDS (default 480) and kills what still runs 45 s later,
# so that the job ends within 9 minutes. Exit status: 0 when the correctness
# check passed and the benchmark ran, 1 otherwise.
set -uo pipefail

START=$(date +%s)
LIMIT=${BPTT_JOB_SECONDS:-480}
DEADLINE=$((START + LIMIT))
HARD=$((DEADLINE + 45))
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd) || { echo "device_job: no build directory ${1:-$ROOT/build}" >&2; exit 1; }
PROGS=${2:-$BUILD/gpu-programs}
OUT=${OUT:-$PWD/gpu-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"

stamp() { echo "== $(date +%H:%M:%S) (+$(( $(date +%s) - START )) s) $*"; }

job() {

stamp "bptt GPU job: build $BUILD, programs $PROGS, out $OUT, deadline +$LIMIT s"
WORK=$(mktemp -d /tmp/bptt-gpu-job.XXXXXX)
trap 'rm -rf "$WORK"' EXIT   # job runs in a subshell (the pipe to tee)

# Programs: a directory or an archive of one.
case "$PROGS" in
  *.tar.xz|*.tar.gz|*.tgz|*.tar)
    stamp "unpacking $PROGS"
    tar -xf "$PROGS" -C "$WORK" || { echo "device_job: cannot unpack $PROGS"; return 1; }
    PROGS=$(dirname "$(find "$WORK" -maxdepth 2 -name programs.json | head -1)")
    ;;
esac
if [ ! -f "$PROGS/programs.json" ]; then
  echo "device_job: no programs.json in $PROGS (run benchmarks/gpu/build_programs.py on the build host)"
  return 1
fi
PROGS=$(cd "$PROGS" && pwd)

RUNNER=$BUILD/bin/bptt-gpu-run
export LD_LIBRARY_PATH="$BUILD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

stamp "environment"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.max.sm --format=csv 2>&1 | head -5
"$PY" - <<'EOF' 2>&1
import sys
try:
    import torch, numpy
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}, numpy {numpy.__version__}, "
          f"GPU available: {torch.cuda.is_available()}")
except Exception as e:
    print(f"python {sys.version.split()[0]}: {type(e).__name__}: {e}")
EOF
ls -la "$RUNNER" "$BUILD"/lib/libbptt_cuda_runtime.so* 2>&1
du -sh "$PROGS" 2>&1
STATUS=0
if [ ! -x "$RUNNER" ]; then
  echo "device_job: $RUNNER is missing or not executable"
  STATUS=1
fi

# 0. The runtime's products.
stamp "the runtime's matrix products (bptt-matmul-check --large)"
if ! timeout --kill-after=10 120 "$BUILD/bin/bptt-matmul-check" --large > "$OUT/matmul-check.txt" 2>&1; then
  STATUS=1
fi
tail -1 "$OUT/matmul-check.txt"

# 1. Correctness.
REMAIN=$((DEADLINE - $(date +%s)))
CHECK_LIMIT=$(( REMAIN * 30 / 100 < 150 ? REMAIN * 30 / 100 : 150 ))
AGAINST=()
if [ -d "$PROGS/cpu-dumps" ]; then
  AGAINST=(--against "$PROGS/cpu-dumps")
fi
stamp "correctness: check set against PyTorch${AGAINST[*]:+ and the CPU dumps} (at most ${CHECK_LIMIT} s)"
timeout --kill-after=10 $((CHECK_LIMIT + 60)) \
  "$PY" "$ROOT/benchmarks/gpu/check_pytorch.py" suite \
    --programs "$PROGS/programs.json" --set check \
    --runner "$RUNNER {program} --warmup 1 --iters 1" --device "${BPTT_TORCH_DEVICE:-cuda}" "${AGAINST[@]}" \
    --report "$OUT/check.txt" --work "$WORK/check" \
    --time-limit "$CHECK_LIMIT" --timeout 120
CHECK=$?
if [ $CHECK -ne 0 ]; then
  STATUS=1
  [ -s "$OUT/check.txt" ] || echo "check_pytorch.py exited $CHECK without a report (see log.txt)" > "$OUT/check.txt"
fi
stamp "correctness: exit $CHECK"

# 2. Benchmark.
stamp "benchmark"
timeout --kill-after=10 $((HARD - $(date +%s) + 5)) \
  "$PY" "$ROOT/benchmarks/gpu/bench.py" --runner "$RUNNER" --programs "$PROGS" \
    --out "$OUT" --python "$PY" --deadline "$DEADLINE" --hard-deadline "$HARD"
BENCH=$?
[ $BENCH -eq 0 ] || STATUS=1
stamp "benchmark: exit $BENCH"

rm -f "$OUT"/*.tmp
ls -la "$OUT"
stamp "done (exit $STATUS)"
return $STATUS
}

job 2>&1 | tee -a "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
