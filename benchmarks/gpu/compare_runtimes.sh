#!/usr/bin/env bash
# Two builds of the CUDA runtime on the same programs, in one job on one GPU:
#
#   benchmarks/gpu/compare_runtimes.sh RUNNER BEFORE_LIB_DIR AFTER_LIB_DIR ITERS PROGRAM.so...
#
# Each program runs (CUDA graph replays, 2 warm-ups, ITERS timed iterations)
# in each variant of VARIANTS, in that order (a variant may repeat, to
# interleave A/B runs); prints the median ms per iteration and the
# gradients' FNV-1a hashes of each, one line per program and variant.
# Variants (default "before after after-tuned"):
#   before            BEFORE's libbptt_cuda_runtime.so
#   after             AFTER's
#   after-tuned       AFTER's with BPTT_GEMM_TUNE=1
#   one-stream        AFTER's with BPTT_SIDE_STREAM=0 (no side stream: the
#                     same gradients, bit for bit, as after)
#   one-stream-tuned  AFTER's with BPTT_GEMM_TUNE=1 and BPTT_SIDE_STREAM=0
# RUNNER_ARGS adds runner options (--no-graph: direct calls).
set -uo pipefail
RUNNER=$1 BEFORE=$2 AFTER=$3 ITERS=$4
shift 4
printf '# %s\n' "runner options: ${RUNNER_ARGS:-(graph replays)}"
printf '%-52s %-16s %10s  %s\n' program variant ms_median gradient_hashes
for so in "$@"; do
  for variant in ${VARIANTS:-before after after-tuned}; do
    side=1
    case $variant in
      before) dir=$BEFORE tune=0 ;;
      after) dir=$AFTER tune=0 ;;
      after-tuned) dir=$AFTER tune=1 ;;
      one-stream) dir=$AFTER tune=0 side=0 ;;
      one-stream-tuned) dir=$AFTER tune=1 side=0 ;;
      *) echo "compare_runtimes: unknown variant $variant" >&2; exit 2 ;;
    esac
    out=$(LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" BPTT_GEMM_TUNE=$tune \
          BPTT_SIDE_STREAM=$side \
          "$RUNNER" "$so" --warmup 2 --iters "$ITERS" --seed 1 ${RUNNER_ARGS:-} 2>&1)
    ms=$(sed -n 's/^time *median \([0-9.]*\) ms.*/\1/p' <<<"$out")
    hashes=$(grep -oE 'fnv1a 0x[0-9a-f]+' <<<"$out" | awk '{print substr($2, 3, 6)}' | paste -sd, -)
    printf '%-52s %-16s %10s  %s\n' "$(basename "$so")" "$variant" "${ms:-error}" "$hashes"
    [ -n "$ms" ] || tail -3 <<<"$out"
  done
done
