// A kernel tracer for any CUDA program, loaded with LD_PRELOAD: it records
// the GPU start and end of every kernel, copy and memset through CUPTI's
// activity API (kernels replayed from a CUDA graph included, which no
// host-side timer can see one by one) and writes one line per record at exit.
//
//   g++ -O2 -shared -fPIC kernel_trace.cpp -I/usr/local/cuda/include \
//       -L/usr/local/cuda/lib64 -lcupti -o libkernel_trace.so
//   BPTT_TRACE_FILE=trace.tsv LD_PRELOAD=./libkernel_trace.so PROGRAM ...
//
// Columns (tab-separated): kind (K kernel, C copy, S memset), start and end
// in ns (GPU clock), stream, graph id (0 outside a graph), grid, block, name.
// summarize.py turns the file into a per-iteration breakdown.
#include <cupti.h>

#include <cstdio>
#include <cstdlib>

namespace {

FILE *traceFile = nullptr;

void check(CUptiResult result, const char *call) {
  if (result == CUPTI_SUCCESS)
    return;
  const char *text = nullptr;
  cuptiGetResultString(result, &text);
  std::fprintf(stderr, "kernel_trace: %s failed: %s\n", call,
               text ? text : "unknown CUPTI error");
}

void CUPTIAPI bufferRequested(uint8_t **buffer, size_t *size,
                              size_t *maxNumRecords) {
  *size = 16u << 20;
  *buffer = static_cast<uint8_t *>(std::aligned_alloc(8, *size));
  *maxNumRecords = 0;
}

void CUPTIAPI bufferCompleted(CUcontext, uint32_t, uint8_t *buffer, size_t,
                              size_t validSize) {
  CUpti_Activity *record = nullptr;
  while (traceFile &&
         cuptiActivityGetNextRecord(buffer, validSize, &record) ==
             CUPTI_SUCCESS) {
    switch (record->kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
    case CUPTI_ACTIVITY_KIND_KERNEL: {
      auto *k = reinterpret_cast<CUpti_ActivityKernel10 *>(record);
      std::fprintf(traceFile, "K\t%llu\t%llu\t%u\t%u\t%dx%dx%d\t%dx%dx%d\t%s\n",
                   (unsigned long long)k->start, (unsigned long long)k->end,
                   k->streamId, k->graphId, k->gridX, k->gridY, k->gridZ,
                   k->blockX, k->blockY, k->blockZ, k->name);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      auto *c = reinterpret_cast<CUpti_ActivityMemcpy6 *>(record);
      std::fprintf(traceFile, "C\t%llu\t%llu\t%u\t%u\t-\t-\tcopy %u->%u %llu B\n",
                   (unsigned long long)c->start, (unsigned long long)c->end,
                   c->streamId, c->graphId, c->srcKind, c->dstKind,
                   (unsigned long long)c->bytes);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      auto *s = reinterpret_cast<CUpti_ActivityMemset4 *>(record);
      std::fprintf(traceFile, "S\t%llu\t%llu\t%u\t%u\t-\t-\tmemset %llu B\n",
                   (unsigned long long)s->start, (unsigned long long)s->end,
                   s->streamId, s->graphId, (unsigned long long)s->bytes);
      break;
    }
    default:
      break;
    }
  }
  std::free(buffer);
}

void finish() {
  check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED),
        "cuptiActivityFlushAll");
  if (traceFile)
    std::fclose(traceFile);
  traceFile = nullptr;
}

__attribute__((constructor)) void start() {
  const char *path = std::getenv("BPTT_TRACE_FILE");
  traceFile = std::fopen(path ? path : "kernel-trace.tsv", "w");
  if (!traceFile) {
    std::fprintf(stderr, "kernel_trace: cannot write %s\n",
                 path ? path : "kernel-trace.tsv");
    return;
  }
  check(cuptiActivityRegisterCallbacks(bufferRequested, bufferCompleted),
        "cuptiActivityRegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL),
        "cuptiActivityEnable(CONCURRENT_KERNEL)");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY),
        "cuptiActivityEnable(MEMCPY)");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET),
        "cuptiActivityEnable(MEMSET)");
  std::atexit(finish);
}

} // namespace
