//===- CudaRuntime.cpp - the bptt CUDA runtime ----------------------------===//
//
// libbptt_cuda_runtime.so: the CUDA driver API and cuBLAS behind the C API of
// include/bptt/Runtime/CudaRuntime.h (specification: docs/gpu-abi.md).
//
// State: one leaked, never-destroyed Runtime object (so nothing is torn down
// under a program's global destructors at exit), created on first use under
// std::call_once: the primary context of one device, the program stream, the
// memory pool's arena and the cuBLAS handle with its workspace.
//
// The memory pool is an offset allocator (PoolAllocator: deterministic best
// fit, exact accounting) over one virtual address range as large as the
// device's memory, reserved once with cuMemAddressReserve. Growing the pool
// maps more physical memory (cuMemCreate + cuMemMap) at the end of what is
// mapped, so the arena stays contiguous and placement never depends on when
// the pool grew. The pool refuses to grow while the program stream is being
// captured.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/CudaRuntime.h"

#include "bptt/Runtime/GemmLayout.h"
#include "bptt/Runtime/PoolAllocator.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda.h>

#include <atomic>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

using bptt::runtime::BlasMatrix;
using bptt::runtime::GemmCall;
using bptt::runtime::MatrixView;
using bptt::runtime::PoolAllocator;
using bptt::runtime::PoolCounters;

namespace {

//===--- Errors -----------------------------------------------------------===//

[[noreturn]] void fatal(const std::string &message) {
  std::fprintf(stderr, "bptt-cuda-runtime: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string cuErrorText(CUresult result) {
  const char *name = nullptr, *description = nullptr;
  // These two only translate a code; when the code is unknown to the driver
  // they fail, and the number is all there is to print.
  if (cuGetErrorName(result, &name) != CUDA_SUCCESS || !name)
    name = "CUDA_ERROR_UNKNOWN_CODE";
  if (cuGetErrorString(result, &description) != CUDA_SUCCESS || !description)
    description = "unrecognised error code";
  return std::string(name) + ": " + description + " (" +
         std::to_string(static_cast<int>(result)) + ")";
}

[[noreturn]] void failCu(CUresult result, const char *call,
                         const std::string &context) {
  fatal(std::string(call) + " failed: " + cuErrorText(result) +
        (context.empty() ? "" : " [" + context + "]"));
}

[[noreturn]] void failCublas(cublasStatus_t status, const char *call,
                             const std::string &context) {
  const char *name = cublasGetStatusName(status);
  const char *description = cublasGetStatusString(status);
  fatal(std::string(call) + " failed: " + (name ? name : "CUBLAS_STATUS_?") +
        ": " + (description ? description : "unknown status") +
        (context.empty() ? "" : " [" + context + "]"));
}

// Checks a driver call; CONTEXT (a std::string expression) is evaluated only
// on failure.
#define BPTT_CU_CTX(call, context)                                             \
  do {                                                                         \
    CUresult bpttResult_ = (call);                                             \
    if (bpttResult_ != CUDA_SUCCESS)                                           \
      failCu(bpttResult_, #call, (context));                                   \
  } while (false)
#define BPTT_CU(call) BPTT_CU_CTX(call, std::string())

#define BPTT_CUBLAS_CTX(call, context)                                         \
  do {                                                                         \
    cublasStatus_t bpttStatus_ = (call);                                       \
    if (bpttStatus_ != CUBLAS_STATUS_SUCCESS)                                  \
      failCublas(bpttStatus_, #call, (context));                               \
  } while (false)
#define BPTT_CUBLAS(call) BPTT_CUBLAS_CTX(call, std::string())

std::string hex(const void *p) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%p", p);
  return buffer;
}

/// Reads a non-negative decimal integer from the environment; `fallback`
/// when unset or empty; a malformed value is an error.
uint64_t envUnsigned(const char *name, uint64_t fallback, uint64_t max) {
  const char *text = std::getenv(name);
  if (!text || !*text)
    return fallback;
  uint64_t value = 0;
  for (const char *p = text; *p; ++p) {
    // (digit > max first: max - digit must not wrap around.)
    if (*p < '0' || *p > '9' || static_cast<uint64_t>(*p - '0') > max ||
        value > (max - static_cast<uint64_t>(*p - '0')) / 10)
      fatal(std::string(name) + "='" + text +
            "' is not an integer between 0 and " + std::to_string(max));
    value = value * 10 + static_cast<uint64_t>(*p - '0');
  }
  return value;
}

//===--- The runtime's state ----------------------------------------------===//

// Every pool block starts on this boundary (cudaMalloc's guarantee).
constexpr uint64_t kPoolAlignment = 256;
// The pool grows by at least this much (rounded up to the driver's
// granularity), so a first run maps few chunks.
constexpr uint64_t kMinPoolGrowth = uint64_t(32) << 20;
// Default cuBLAS workspace (NVIDIA's recommendation for Hopper).
constexpr uint64_t kDefaultBlasWorkspace = uint64_t(32) << 20;
// Above this much dynamic shared memory a kernel must opt in.
constexpr int32_t kDefaultMaxDynamicSmem = 48 * 1024;

/// Per-launch timing (BPTT_PROFILE=path): every kernel launch and library
/// call outside graph capture is bracketed by two timing events; the
/// durations are collected when the host synchronises, and written at exit
/// as one line per call site (first-launch order): what a step costs, op by
/// op, without a profiler on the GPU machine. Timing events serialise
/// nothing the stream does not already serialise, but each adds a little
/// host time, so profile runs are for attribution, not for the headline.
struct Profiler {
  struct Site {
    std::string name;
    uint64_t calls = 0;
    double totalMs = 0;
  };
  struct Pending {
    size_t site;
    CUevent start, end;
  };
  std::string path;
  /// A one-thread kernel that keeps the GPU busy for `spinNs` before each
  /// timed call: the host enqueues the call (cuBLAS's host side can take
  /// longer than the work) while the GPU spins, so the events bracket the
  /// call's GPU time alone, not the GPU waiting for the host.
  CUmodule spinModule = nullptr;
  CUfunction spin = nullptr;
  uint64_t spinNs = 0;
  std::mutex mutex;
  std::vector<Site> sites;
  std::map<std::string, size_t> siteOf;
  std::vector<Pending> pending;
  std::vector<CUevent> freeEvents;

  CUevent event() {
    if (!freeEvents.empty()) {
      CUevent e = freeEvents.back();
      freeEvents.pop_back();
      return e;
    }
    CUevent e = nullptr;
    BPTT_CU(cuEventCreate(&e, CU_EVENT_DEFAULT));
    return e;
  }

  size_t site(const std::string &key) {
    auto [it, inserted] = siteOf.try_emplace(key, sites.size());
    if (inserted)
      sites.push_back(Site{key, 0, 0});
    return it->second;
  }

  /// Adds up what has finished (all of it after a synchronisation).
  void collect() {
    for (Pending &p : pending) {
      BPTT_CU(cuEventSynchronize(p.end));
      float ms = 0;
      BPTT_CU(cuEventElapsedTime(&ms, p.start, p.end));
      sites[p.site].calls += 1;
      sites[p.site].totalMs += ms;
      freeEvents.push_back(p.start);
      freeEvents.push_back(p.end);
    }
    pending.clear();
  }

  void write() {
    std::lock_guard<std::mutex> lock(mutex);
    FILE *out = std::fopen(path.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "bptt runtime: cannot write the profile to %s\n",
                   path.c_str());
      return;
    }
    std::fprintf(out, "# site\tcalls\ttotal_ms\tmean_us\n");
    for (const Site &site : sites)
      std::fprintf(out, "%s\t%" PRIu64 "\t%.4f\t%.2f\n", site.name.c_str(),
                   site.calls, site.totalMs,
                   site.calls ? 1000.0 * site.totalMs / double(site.calls)
                              : 0.0);
    std::fclose(out);
  }
};

// bptt_spin(ns): returns once %globaltimer has advanced by ns (PTX ISA 7.0,
// any GPU from sm_75 on).
const char kSpinPtx[] = R"(.version 7.0
.target sm_75
.address_size 64
.visible .entry bptt_spin(.param .u64 bptt_spin_ns)
{
    .reg .pred %p<2>;
    .reg .b64 %rd<5>;
    ld.param.u64 %rd1, [bptt_spin_ns];
    mov.u64 %rd2, %globaltimer;
    add.s64 %rd3, %rd2, %rd1;
SPIN:
    mov.u64 %rd4, %globaltimer;
    setp.lt.u64 %p1, %rd4, %rd3;
    @%p1 bra SPIN;
    ret;
}
)";

/// What a product's cuBLASLt plan depends on: the planned call (sizes,
/// transposes, leading dimensions), the precision, and the operands'
/// alignment (log2 of the largest power of two up to 256 dividing each
/// address: cuBLASLt's algorithms may assume it).
struct GemmKey {
  int64_t m, n, k, ldx, ldy, ldc;
  int opX, opY, tf32, alignX, alignY, alignC;
  /// bpttMatmulBiasF32's products: the bias epilogue, and the seed matrix's
  /// leading dimension and alignment (ldc and alignC for the others).
  int bias = 0;
  int64_t lds = 0;
  int alignS = 0;
  auto tied() const {
    return std::tie(m, n, k, ldx, ldy, ldc, opX, opY, tf32, alignX, alignY,
                    alignC, bias, lds, alignS);
  }
  bool operator<(const GemmKey &o) const { return tied() < o.tied(); }
};

/// One product shape's cuBLASLt descriptors and algorithm, made once: a
/// call then costs the launch, not cublasGemmEx's heuristic query on every
/// call (about 11 us of host time each, which bounds runs without a graph).
struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  /// `s` is the layout of the matrix added to the product (cuBLASLt's C),
  /// `c` that of the result (its D); they differ only for a seed matrix
  /// with its own leading dimension.
  cublasLtMatrixLayout_t x = nullptr, y = nullptr, c = nullptr, s = nullptr;
  /// cuBLASLt's candidates, best first by its heuristic; `chosen` indexes
  /// them. Empty: no algorithm fits, cublasGemmEx runs the product.
  std::vector<cublasLtMatmulHeuristicResult_t> candidates;
  size_t chosen = 0;
  bool tuned = false;
};

struct Runtime {
  int ordinal = 0;
  CUdevice device = 0;
  CUcontext context = nullptr;
  CUstream stream = nullptr;

  // The pool's arena: [base, base + addressBytes) reserved, the first
  // pool->capacity() bytes mapped.
  CUdeviceptr base = 0;
  uint64_t addressBytes = 0;
  uint64_t granularity = 0;
  CUmemAllocationProp prop{};
  CUmemAccessDesc access{};
  std::mutex poolMutex;
  std::unique_ptr<PoolAllocator> pool;

  std::mutex blasMutex;
  cublasHandle_t blas = nullptr;
  void *blasWorkspace = nullptr;
  uint64_t blasWorkspaceBytes = 0;
  /// Products run through cuBLASLt with one plan per shape (below); the
  /// plans share the cuBLAS workspace (calls are serial on the stream).
  cublasLtHandle_t lt = nullptr;
  std::map<GemmKey, LtPlan> ltPlans;
  /// Unless BPTT_GEMM_TUNE=0: each shape's algorithm is the fastest of
  /// cuBLASLt's candidates, timed at its first call outside a graph capture.
  bool tuneGemms = false;

  /// Set when BPTT_PROFILE names a file.
  std::unique_ptr<Profiler> profiler;

  /// A capture is cut into graphs of at most `graphPieceOps` operations
  /// (BPTT_GRAPH_PIECE_OPS): the driver fails on one graph of a few million
  /// nodes (T = 100,000), and pieces launched in order on the one program
  /// stream run exactly as one graph would.
  uint64_t graphPieceOps = 0;
  bool capturing = false;
  uint64_t capturedOps = 0; // in the piece being captured
  std::vector<CUgraphExec> capturedPieces;
  /// Which piece each event was last recorded in (while capturing).
  std::map<CUevent, uint64_t> eventPiece;

  /// The side stream (bpttSideBegin/End/Join): work that the compiler found
  /// off a function's critical path (weight-gradient products) runs on it,
  /// concurrently with the program stream's work, in its own order. Off
  /// (BPTT_SIDE_STREAM=0, or while profiling, whose per-call timing needs
  /// one stream): the calls are no-ops and everything runs on the program
  /// stream, in the same order, with the same results.
  bool sideEnabled = false;
  CUstream side = nullptr;
  /// Between bpttSideBegin and bpttSideEnd: enqueued work goes to `side`.
  bool routingToSide = false;
  /// Side work enqueued since the last join: a capture piece cannot end.
  bool sideUnjoined = false;
  CUevent forkEvent = nullptr, joinEvent = nullptr;
  /// Products on the side stream run concurrently with the program
  /// stream's, so they need a cuBLAS workspace of their own.
  void *sideBlasWorkspace = nullptr;

  /// The stream that enqueued work goes to now.
  CUstream current() const { return routingToSide ? side : stream; }
};

/// What bpttGraphEndCapture returns: the pieces of one capture, in order.
struct CapturedGraph {
  std::vector<CUgraphExec> pieces;
};

std::once_flag gInitOnce;
std::atomic<Runtime *> gRuntime{nullptr};
std::atomic<int> gRequestedDevice{-1};

uint64_t roundUp(uint64_t value, uint64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

bool streamIsCapturing(const Runtime &r) {
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  BPTT_CU(cuStreamIsCapturing(r.stream, &status));
  return status != CU_STREAM_CAPTURE_STATUS_NONE;
}

/// Begins capturing a piece of the program stream's work.
void beginCapturedPiece(Runtime &r) {
  BPTT_CU(cuStreamBeginCapture(r.stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  r.capturedOps = 0;
}

/// Ends the capture of the current piece, instantiates it and keeps it.
void endCapturedPiece(Runtime &r) {
  CUgraph graph = nullptr;
  BPTT_CU_CTX(cuStreamEndCapture(r.stream, &graph),
              "an operation that a capture does not allow (a "
              "synchronisation, an allocation, a copy from pageable host "
              "memory, work on another stream) invalidates the capture");
  CUgraphExec exec = nullptr;
  BPTT_CU_CTX(cuGraphInstantiate(&exec, graph, 0),
              "piece " + std::to_string(r.capturedPieces.size()) + " of " +
                  std::to_string(r.capturedOps) + " operations");
  BPTT_CU(cuGraphDestroy(graph));
  BPTT_CU(cuGraphUpload(exec, r.stream));
  r.capturedPieces.push_back(exec);
}

/// Makes the program stream wait for all work enqueued on the side stream.
void joinSide(Runtime &r) {
  if (!r.sideUnjoined)
    return;
  BPTT_CU(cuEventRecord(r.joinEvent, r.side));
  BPTT_CU(cuStreamWaitEvent(r.stream, r.joinEvent, 0));
  r.sideUnjoined = false;
}

/// Called after each operation enqueued on the program or side stream:
/// while capturing, a full piece is closed and the next one begun, once the
/// side stream has joined (a capture cannot end with unjoined work).
void noteEnqueued(Runtime &r) {
  if (r.routingToSide)
    r.sideUnjoined = true;
  if (!r.capturing || ++r.capturedOps < r.graphPieceOps || r.sideUnjoined)
    return;
  endCapturedPiece(r);
  beginCapturedPiece(r);
}

/// Maps `bytes` of new physical memory at `offset` of the arena. Returns
/// false (with `error`) only when the device is out of memory; any other
/// failure is fatal.
bool mapChunk(Runtime &r, uint64_t offset, uint64_t bytes,
              std::string &error) {
  CUmemGenericAllocationHandle handle = 0;
  CUresult result = cuMemCreate(&handle, bytes, &r.prop, 0);
  if (result == CUDA_ERROR_OUT_OF_MEMORY) {
    error = "cuMemCreate of " + std::to_string(bytes) +
            " bytes failed: " + cuErrorText(result);
    return false;
  }
  if (result != CUDA_SUCCESS)
    failCu(result, "cuMemCreate(&handle, bytes, &r.prop, 0)",
           std::to_string(bytes) + " bytes");
  BPTT_CU(cuMemMap(r.base + offset, bytes, 0, handle, 0));
  BPTT_CU(cuMemSetAccess(r.base + offset, bytes, &r.access, 1));
  // The mapping keeps the memory alive; the handle is not needed again.
  BPTT_CU(cuMemRelease(handle));
  return true;
}

/// PoolAllocator's grow callback (called with poolMutex held).
bool growPool(Runtime &r, uint64_t required, uint64_t &capacity,
              std::string &error) {
  if (streamIsCapturing(r)) {
    error = "the memory pool would have to grow from " +
            std::to_string(capacity) + " to at least " +
            std::to_string(required) +
            " bytes while the program stream is being captured into a CUDA "
            "graph, which must not allocate; run the program once uncaptured "
            "first so that the first call sizes the pool (bptt-gpu-run: "
            "--warmup 1 or more), and make every call allocate the same way";
    return false;
  }
  if (required > r.addressBytes) {
    error = "the memory pool would need " + std::to_string(required) +
            " bytes, more than the device's " +
            std::to_string(r.addressBytes) + " bytes of memory";
    return false;
  }
  uint64_t exact = roundUp(required, r.granularity);
  uint64_t generous = roundUp(capacity + kMinPoolGrowth, r.granularity);
  if (generous < exact)
    generous = exact;
  if (generous > r.addressBytes)
    generous = r.addressBytes;
  std::string why;
  if (mapChunk(r, capacity, generous - capacity, why)) {
    capacity = generous;
    return true;
  }
  if (generous > exact && mapChunk(r, capacity, exact - capacity, why)) {
    capacity = exact;
    return true;
  }
  error = "device out of memory: the pool holds " + std::to_string(capacity) +
          " bytes and needs " + std::to_string(required) + " (" + why + ")";
  return false;
}

void initialisePool(Runtime &r) {
  int vmm = 0;
  BPTT_CU(cuDeviceGetAttribute(
      &vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
      r.device));
  if (!vmm)
    fatal("device " + std::to_string(r.ordinal) +
          " does not support virtual memory management "
          "(CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED is 0); the "
          "memory pool needs it");
  r.prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  r.prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  r.prop.location.id = r.device;
  size_t granularity = 0;
  BPTT_CU(cuMemGetAllocationGranularity(&granularity, &r.prop,
                                        CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  if (granularity == 0 || granularity % kPoolAlignment)
    fatal("the driver's allocation granularity " +
          std::to_string(granularity) + " is not a multiple of " +
          std::to_string(kPoolAlignment));
  r.granularity = granularity;
  size_t total = 0;
  BPTT_CU(cuDeviceTotalMem(&total, r.device));
  r.addressBytes = roundUp(total, r.granularity);
  BPTT_CU(cuMemAddressReserve(&r.base, r.addressBytes, 0, 0, 0));
  r.access.location = r.prop.location;
  r.access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  Runtime *self = &r;
  r.pool = std::make_unique<PoolAllocator>(
      kPoolAlignment,
      [self](uint64_t required, uint64_t &capacity, std::string &error) {
        return growPool(*self, required, capacity, error);
      });
}

void *poolAllocate(Runtime &r, uint64_t bytes, const char *caller) {
  if (bytes == 0)
    return nullptr;
  std::lock_guard<std::mutex> lock(r.poolMutex);
  uint64_t offset = 0;
  std::string error;
  if (!r.pool->allocate(bytes, offset, error)) {
    PoolCounters c = r.pool->counters();
    fatal(std::string(caller) + " of " + std::to_string(bytes) +
          " bytes failed: " + error + " [pool: " +
          std::to_string(c.inUseBytes) + " bytes in use, " +
          std::to_string(c.reservedBytes) + " reserved]");
  }
  return reinterpret_cast<void *>(static_cast<uintptr_t>(r.base + offset));
}

void poolFree(Runtime &r, void *ptr, const char *caller) {
  if (!ptr)
    return;
  uintptr_t address = reinterpret_cast<uintptr_t>(ptr);
  if (address < r.base || address - r.base >= r.addressBytes)
    fatal(std::string(caller) + "(" + hex(ptr) +
          "): the pointer is not in the memory pool (every device buffer "
          "must come from mgpuMemAlloc or bpttDeviceAlloc)");
  std::lock_guard<std::mutex> lock(r.poolMutex);
  std::string error;
  if (!r.pool->release(address - r.base, error))
    fatal(std::string(caller) + "(" + hex(ptr) + "): " + error);
}

void initialiseBlas(Runtime &r) {
  r.blasWorkspaceBytes = envUnsigned("BPTT_CUBLAS_WORKSPACE_BYTES",
                                     kDefaultBlasWorkspace, uint64_t(1) << 40);
  BPTT_CUBLAS(cublasCreate(&r.blas));
  // cublasSetStream resets the workspace to cuBLAS's own pool, so the
  // stream comes first, the workspace second.
  BPTT_CUBLAS(cublasSetStream(r.blas, r.stream));
  BPTT_CUBLAS(cublasSetPointerMode(r.blas, CUBLAS_POINTER_MODE_HOST));
  BPTT_CUBLAS(cublasSetMathMode(r.blas, CUBLAS_DEFAULT_MATH));
  r.blasWorkspace =
      poolAllocate(r, r.blasWorkspaceBytes, "the cuBLAS workspace allocation");
  BPTT_CUBLAS(cublasSetWorkspace(r.blas, r.blasWorkspace,
                                 static_cast<size_t>(r.blasWorkspaceBytes)));
  BPTT_CUBLAS(cublasLtCreate(&r.lt));
  r.tuneGemms = envUnsigned("BPTT_GEMM_TUNE", 1, 1) == 1;
}

void initialiseSideStream(Runtime &r) {
  r.sideEnabled =
      envUnsigned("BPTT_SIDE_STREAM", 1, 1) == 1 && !r.profiler;
  if (!r.sideEnabled)
    return;
  BPTT_CU(cuStreamCreate(&r.side, CU_STREAM_NON_BLOCKING));
  BPTT_CU(cuEventCreate(&r.forkEvent, CU_EVENT_DISABLE_TIMING));
  BPTT_CU(cuEventCreate(&r.joinEvent, CU_EVENT_DISABLE_TIMING));
  r.sideBlasWorkspace = poolAllocate(
      r, r.blasWorkspaceBytes, "the side stream's cuBLAS workspace allocation");
}

void initialise() {
  // Leaked on purpose: programs unload their modules from global
  // destructors, which may run after this library's would.
  Runtime *r = new Runtime;
  uint64_t fromEnv = envUnsigned("BPTT_CUDA_DEVICE", UINT64_MAX, INT_MAX);
  int requested = gRequestedDevice.load();
  r->ordinal = fromEnv != UINT64_MAX ? static_cast<int>(fromEnv)
                                     : (requested >= 0 ? requested : 0);
  BPTT_CU(cuInit(0));
  int count = 0;
  BPTT_CU(cuDeviceGetCount(&count));
  if (r->ordinal >= count)
    fatal("CUDA device " + std::to_string(r->ordinal) +
          " was requested (BPTT_CUDA_DEVICE or mgpuSetDefaultDevice) but " +
          std::to_string(count) + " device(s) are visible");
  BPTT_CU(cuDeviceGet(&r->device, r->ordinal));
  BPTT_CU(cuDevicePrimaryCtxRetain(&r->context, r->device));
  BPTT_CU(cuCtxSetCurrent(r->context));
  BPTT_CU(cuStreamCreate(&r->stream, CU_STREAM_NON_BLOCKING));
  initialisePool(*r);
  initialiseBlas(*r);
  r->graphPieceOps =
      envUnsigned("BPTT_GRAPH_PIECE_OPS", 65536, uint64_t(1) << 40);
  if (r->graphPieceOps == 0)
    fatal("BPTT_GRAPH_PIECE_OPS must be at least 1 (operations per captured "
          "graph piece)");
  if (const char *path = std::getenv("BPTT_PROFILE"); path && *path) {
    r->profiler = std::make_unique<Profiler>();
    r->profiler->path = path;
    r->profiler->spinNs =
        1000 * envUnsigned("BPTT_PROFILE_SPIN_US", 200, 1000000);
    BPTT_CU_CTX(cuModuleLoadData(&r->profiler->spinModule, kSpinPtx),
                "the profiler's spin kernel");
    BPTT_CU(cuModuleGetFunction(&r->profiler->spin, r->profiler->spinModule,
                                "bptt_spin"));
    // Host data only: no CUDA call at exit.
    std::atexit([] {
      if (Runtime *rt = gRuntime.load(std::memory_order_acquire))
        rt->profiler->write();
    });
  }
  initialiseSideStream(*r);
  gRuntime.store(r, std::memory_order_release);
}

/// The runtime, initialised, with its context current on this thread.
Runtime &runtime() {
  std::call_once(gInitOnce, initialise);
  Runtime &r = *gRuntime.load(std::memory_order_acquire);
  CUcontext current = nullptr;
  BPTT_CU(cuCtxGetCurrent(&current));
  if (current != r.context)
    BPTT_CU(cuCtxSetCurrent(r.context));
  return r;
}

/// Brackets one launch on the program stream with timing events when
/// profiling (and not capturing: a graph's nodes are timed as a whole).
class ProfiledCall {
public:
  ProfiledCall(Runtime &r, const std::function<std::string()> &key)
      : r(r) {
    if (!r.profiler || streamIsCapturing(r))
      return;
    std::lock_guard<std::mutex> lock(r.profiler->mutex);
    site = r.profiler->site(key());
    start = r.profiler->event();
    uint64_t ns = r.profiler->spinNs;
    void *params[] = {&ns};
    BPTT_CU_CTX(cuLaunchKernel(r.profiler->spin, 1, 1, 1, 1, 1, 1, 0,
                               r.stream, params, nullptr),
                "the profiler's spin kernel");
    BPTT_CU(cuEventRecord(start, r.stream));
  }
  ~ProfiledCall() {
    if (!start)
      return;
    std::lock_guard<std::mutex> lock(r.profiler->mutex);
    CUevent end = r.profiler->event();
    BPTT_CU(cuEventRecord(end, r.stream));
    r.profiler->pending.push_back({site, start, end});
    // Bounded: a long program is collected as it goes.
    if (r.profiler->pending.size() >= 4096)
      r.profiler->collect();
  }

private:
  Runtime &r;
  size_t site = 0;
  CUevent start = nullptr;
};

/// Collects the profile's finished timings (after a synchronisation).
void collectProfile(Runtime &r) {
  if (!r.profiler)
    return;
  std::lock_guard<std::mutex> lock(r.profiler->mutex);
  r.profiler->collect();
}

/// The program stream, for a stream argument that must be it (or null).
CUstream programStream(Runtime &r, void *stream, const char *caller) {
  CUstream s = static_cast<CUstream>(stream);
  if (s == nullptr || s == r.stream)
    return r.stream;
  fatal(std::string(caller) + ": stream " + hex(stream) +
        " is not the program stream " + hex(r.stream) +
        " (the bptt runtime orders all work on its one program stream, which "
        "mgpuStreamCreate returns)");
}

/// Where work enqueued "on the program stream" goes: the side stream between
/// bpttSideBegin and bpttSideEnd, else the program stream.
CUstream workStream(Runtime &r, void *stream, const char *caller) {
  programStream(r, stream, caller);
  return r.current();
}

unsigned launchDim(intptr_t value, const char *what) {
  if (value < 1 || static_cast<uintmax_t>(value) > UINT_MAX)
    fatal(std::string("mgpuLaunchKernel: ") + what + " = " +
          std::to_string(value) + " is outside [1, " +
          std::to_string(UINT_MAX) + "]");
  return static_cast<unsigned>(value);
}

std::string kernelName(CUfunction function) {
  const char *name = nullptr;
  // Only used to decorate an error that is being reported anyway.
  if (cuFuncGetName(&name, function) != CUDA_SUCCESS || !name)
    return "?";
  return name;
}

MatrixView viewOf(const BpttMemRef2DF32 *m) {
  MatrixView v;
  v.rows = m->sizes[0];
  v.cols = m->sizes[1];
  v.rowStride = m->strides[0];
  v.colStride = m->strides[1];
  return v;
}

/// The address of a view's first element (BpttMemRef2DF32 or 1DF32).
template <typename MemRef>
uintptr_t firstElement(const MemRef *m, const char *fn, const char *name) {
  if (!m->aligned)
    fatal(std::string(fn) + ": operand " + name + " has a null data pointer");
  if (m->offset < 0)
    fatal(std::string(fn) + ": operand " + name + " has a negative offset " +
          std::to_string(m->offset));
  return reinterpret_cast<uintptr_t>(m->aligned) +
         static_cast<uintptr_t>(m->offset) * sizeof(float);
}

cublasOperation_t blasOp(bptt::runtime::BlasOp op) {
  return op == bptt::runtime::BlasOp::N ? CUBLAS_OP_N : CUBLAS_OP_T;
}

} // namespace

//===--- mgpu* ------------------------------------------------------------===//

extern "C" {

void *mgpuModuleLoad(void *data, size_t gpuBlobSize) {
  runtime();
  if (!data)
    fatal("mgpuModuleLoad: null module image");
  CUmodule module = nullptr;
  BPTT_CU_CTX(cuModuleLoadData(&module, data),
              "a GPU binary of " + std::to_string(gpuBlobSize) + " bytes");
  return module;
}

void *mgpuModuleLoadJIT(void *data, int optLevel) {
  runtime();
  if (!data)
    fatal("mgpuModuleLoadJIT: null PTX");
  if (optLevel < 0 || optLevel > 4)
    fatal("mgpuModuleLoadJIT: optimisation level " + std::to_string(optLevel) +
          " is outside [0, 4]");
  char errorLog[16384] = {};
  CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_OPTIMIZATION_LEVEL};
  void *values[] = {errorLog,
                    reinterpret_cast<void *>(uintptr_t(sizeof(errorLog) - 1)),
                    reinterpret_cast<void *>(uintptr_t(optLevel))};
  CUmodule module = nullptr;
  BPTT_CU_CTX(cuModuleLoadDataEx(&module, data, 3, options, values),
              std::string("PTX JIT log: ") +
                  (errorLog[0] ? errorLog : "(empty)"));
  return module;
}

void mgpuModuleUnload(void *module) {
  Runtime *r = gRuntime.load(std::memory_order_acquire);
  if (!r)
    fatal("mgpuModuleUnload(" + hex(module) +
          ") before the runtime loaded any module");
  // Programs unload their modules from global destructors. At process exit
  // the driver may have shut down before them; then there is nothing left
  // to unload, and CUDA_ERROR_DEINITIALIZED is the expected answer.
  CUresult result = cuCtxSetCurrent(r->context);
  if (result == CUDA_ERROR_DEINITIALIZED)
    return;
  if (result != CUDA_SUCCESS)
    failCu(result, "cuCtxSetCurrent(r->context)", "");
  result = cuModuleUnload(static_cast<CUmodule>(module));
  if (result == CUDA_ERROR_DEINITIALIZED)
    return;
  if (result != CUDA_SUCCESS)
    failCu(result, "cuModuleUnload(module)", "module " + hex(module));
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  runtime();
  if (!name)
    fatal("mgpuModuleGetFunction: null kernel name");
  CUfunction function = nullptr;
  BPTT_CU_CTX(
      cuModuleGetFunction(&function, static_cast<CUmodule>(module), name),
      std::string("kernel '") + name + "'");
  return function;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t paramsCount) {
  Runtime &r = runtime();
  CUstream s = workStream(r, stream, "mgpuLaunchKernel");
  CUfunction f = static_cast<CUfunction>(function);
  if (!f)
    fatal("mgpuLaunchKernel: null kernel");
  unsigned gx = launchDim(gridX, "gridX"), gy = launchDim(gridY, "gridY"),
           gz = launchDim(gridZ, "gridZ"), bx = launchDim(blockX, "blockX"),
           by = launchDim(blockY, "blockY"), bz = launchDim(blockZ, "blockZ");
  if (smem < 0)
    fatal("mgpuLaunchKernel: negative dynamic shared memory " +
          std::to_string(smem));
  if (smem > kDefaultMaxDynamicSmem)
    BPTT_CU_CTX(cuFuncSetAttribute(
                    f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
                "kernel '" + kernelName(f) + "', " + std::to_string(smem) +
                    " bytes of dynamic shared memory");
  ProfiledCall timed(r, [&] {
    return kernelName(f) + " grid " + std::to_string(gx) + "x" +
           std::to_string(gy) + "x" + std::to_string(gz) + " block " +
           std::to_string(bx) + "x" + std::to_string(by) + "x" +
           std::to_string(bz) + " @" + hex(function);
  });
  BPTT_CU_CTX(cuLaunchKernel(f, gx, gy, gz, bx, by, bz,
                             static_cast<unsigned>(smem), s, params, extra),
              "kernel '" + kernelName(f) + "', grid " + std::to_string(gx) +
                  "x" + std::to_string(gy) + "x" + std::to_string(gz) +
                  ", block " + std::to_string(bx) + "x" + std::to_string(by) +
                  "x" + std::to_string(bz) + ", " + std::to_string(smem) +
                  " bytes of shared memory");
  noteEnqueued(r);
}

void *mgpuStreamCreate(void) { return runtime().stream; }

void mgpuStreamDestroy(void *stream) {
  Runtime &r = runtime();
  programStream(r, stream, "mgpuStreamDestroy"); // a no-op on it
}

void mgpuStreamSynchronize(void *stream) {
  Runtime &r = runtime();
  CUstream s = programStream(r, stream, "mgpuStreamSynchronize");
  if (streamIsCapturing(r))
    return; // nothing runs while capturing; the graph keeps the order
  joinSide(r);
  BPTT_CU(cuStreamSynchronize(s));
  collectProfile(r);
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  Runtime &r = runtime();
  CUstream s = programStream(r, stream, "mgpuStreamWaitEvent");
  CUevent e = static_cast<CUevent>(event);
  if (r.capturing) {
    // Events are recorded on the program stream only, so one recorded in
    // an earlier piece has happened when this piece runs; the capture
    // could not wait on it anyway.
    auto it = r.eventPiece.find(e);
    if (it != r.eventPiece.end() && it->second < r.capturedPieces.size())
      return;
  }
  BPTT_CU(cuStreamWaitEvent(s, e, 0));
}

void *mgpuEventCreate(void) {
  runtime();
  CUevent event = nullptr;
  BPTT_CU(cuEventCreate(&event, CU_EVENT_DISABLE_TIMING));
  return event;
}

void mgpuEventDestroy(void *event) {
  runtime();
  BPTT_CU(cuEventDestroy(static_cast<CUevent>(event)));
}

void mgpuEventSynchronize(void *event) {
  Runtime &r = runtime();
  if (streamIsCapturing(r))
    return; // as mgpuStreamSynchronize
  BPTT_CU(cuEventSynchronize(static_cast<CUevent>(event)));
  collectProfile(r);
}

void mgpuEventRecord(void *event, void *stream) {
  Runtime &r = runtime();
  CUstream s = programStream(r, stream, "mgpuEventRecord");
  BPTT_CU(cuEventRecord(static_cast<CUevent>(event), s));
  if (r.capturing)
    r.eventPiece[static_cast<CUevent>(event)] = r.capturedPieces.size();
  noteEnqueued(r);
}

void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared) {
  Runtime &r = runtime();
  programStream(r, stream, "mgpuMemAlloc");
  if (isHostShared)
    fatal("mgpuMemAlloc(" + std::to_string(sizeBytes) +
          " bytes, host-shared): host-shared (managed) memory is not "
          "supported by the bptt runtime; generated code must use device "
          "memory");
  return poolAllocate(r, sizeBytes, "mgpuMemAlloc");
}

void mgpuMemFree(void *ptr, void *stream) {
  Runtime &r = runtime();
  programStream(r, stream, "mgpuMemFree");
  poolFree(r, ptr, "mgpuMemFree");
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  Runtime &r = runtime();
  CUstream s = workStream(r, stream, "mgpuMemcpy");
  if (sizeBytes == 0)
    return;
  BPTT_CU_CTX(cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                            reinterpret_cast<CUdeviceptr>(src), sizeBytes, s),
              std::to_string(sizeBytes) + " bytes from " + hex(src) + " to " +
                  hex(dst));
  noteEnqueued(r);
}

void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream) {
  Runtime &r = runtime();
  CUstream s = workStream(r, stream, "mgpuMemset32");
  if (count == 0)
    return;
  BPTT_CU_CTX(
      cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(dst), value, count, s),
      std::to_string(count) + " words at " + hex(dst));
  noteEnqueued(r);
}

void mgpuMemset16(void *dst, unsigned short value, size_t count,
                  void *stream) {
  Runtime &r = runtime();
  CUstream s = workStream(r, stream, "mgpuMemset16");
  if (count == 0)
    return;
  BPTT_CU_CTX(
      cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(dst), value, count, s),
      std::to_string(count) + " half-words at " + hex(dst));
  noteEnqueued(r);
}

void mgpuSetDefaultDevice(int32_t device) {
  if (device < 0)
    fatal("mgpuSetDefaultDevice(" + std::to_string(device) +
          "): not a device ordinal");
  Runtime *r = gRuntime.load(std::memory_order_acquire);
  if (!r) {
    gRequestedDevice.store(device);
    return;
  }
  if (device != r->ordinal)
    fatal("mgpuSetDefaultDevice(" + std::to_string(device) +
          "): the bptt runtime already runs on device " +
          std::to_string(r->ordinal) +
          " and uses one device only (select it before the first runtime "
          "call, or with BPTT_CUDA_DEVICE)");
}

//===--- Matrix products --------------------------------------------------===//

namespace {

int alignmentLog2(uintptr_t address) {
  int log = 0;
  while (log < 8 && (address >> log & 1) == 0)
    ++log;
  return log;
}

std::string describeGemm(const GemmCall &call, bool tf32, bool overwrite) {
  return "m=" + std::to_string(call.m) + " n=" + std::to_string(call.n) +
         " k=" + std::to_string(call.k) +
         " opA=" + (call.opX == bptt::runtime::BlasOp::N ? "N" : "T") +
         " opB=" + (call.opY == bptt::runtime::BlasOp::N ? "N" : "T") +
         " lda=" + std::to_string(call.ldx) +
         " ldb=" + std::to_string(call.ldy) +
         " ldc=" + std::to_string(call.ldc) + (tf32 ? " tf32" : " fp32") +
         (overwrite ? " beta=0" : "");
}

/// The matrix added to a product (cuBLASLt's C) and the bias epilogue:
/// for bpttMatmulF32 the result itself, and no bias.
struct Addend {
  int64_t lds;
  uintptr_t s;
  bool bias;
};

/// The cuBLASLt plan of a product, made at its shape's first call: the
/// descriptors and cuBLASLt's candidate algorithms for them (host work only,
/// so it may happen during a graph capture). Candidates are asked for with
/// the operands' actual alignment and at most the shared workspace.
LtPlan &ltPlanFor(Runtime &r, const GemmCall &call, bool tf32, uintptr_t x,
                  uintptr_t y, uintptr_t c, const Addend &addend) {
  GemmKey key{call.m,
              call.n,
              call.k,
              call.ldx,
              call.ldy,
              call.ldc,
              int(call.opX),
              int(call.opY),
              int(tf32),
              alignmentLog2(x),
              alignmentLog2(y),
              alignmentLog2(c),
              int(addend.bias),
              addend.lds,
              alignmentLog2(addend.s)};
  auto [it, fresh] = r.ltPlans.try_emplace(key);
  LtPlan &plan = it->second;
  if (!fresh)
    return plan;
  std::string what = describeGemm(call, tf32, false) +
                     (addend.bias ? " bias" : "") +
                     (addend.lds != call.ldc
                          ? " lds=" + std::to_string(addend.lds)
                          : std::string());
  BPTT_CUBLAS_CTX(cublasLtMatmulDescCreate(&plan.desc,
                                           tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                : CUBLAS_COMPUTE_32F,
                                           CUDA_R_32F),
                  what);
  cublasOperation_t opX = blasOp(call.opX), opY = blasOp(call.opY);
  BPTT_CUBLAS_CTX(cublasLtMatmulDescSetAttribute(
                      plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opX,
                      sizeof(opX)),
                  what);
  BPTT_CUBLAS_CTX(cublasLtMatmulDescSetAttribute(
                      plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opY,
                      sizeof(opY)),
                  what);
  bool nx = call.opX == bptt::runtime::BlasOp::N,
       ny = call.opY == bptt::runtime::BlasOp::N;
  BPTT_CUBLAS_CTX(cublasLtMatrixLayoutCreate(&plan.x, CUDA_R_32F,
                                             nx ? call.m : call.k,
                                             nx ? call.k : call.m, call.ldx),
                  what);
  BPTT_CUBLAS_CTX(cublasLtMatrixLayoutCreate(&plan.y, CUDA_R_32F,
                                             ny ? call.k : call.n,
                                             ny ? call.n : call.k, call.ldy),
                  what);
  BPTT_CUBLAS_CTX(cublasLtMatrixLayoutCreate(&plan.c, CUDA_R_32F, call.m,
                                             call.n, call.ldc),
                  what);
  plan.s = plan.c;
  if (addend.lds != call.ldc)
    BPTT_CUBLAS_CTX(cublasLtMatrixLayoutCreate(&plan.s, CUDA_R_32F, call.m,
                                               call.n, addend.lds),
                    what);
  if (addend.bias) {
    // The bias runs along cuBLAS's m, the rows of the column-major result;
    // its pointer is set on the descriptor before each call.
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    BPTT_CUBLAS_CTX(cublasLtMatmulDescSetAttribute(
                        plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                        sizeof(epilogue)),
                    what);
  }
  cublasLtMatmulPreference_t preference = nullptr;
  BPTT_CUBLAS_CTX(cublasLtMatmulPreferenceCreate(&preference), what);
  uint64_t workspace = r.blasWorkspaceBytes;
  BPTT_CUBLAS_CTX(cublasLtMatmulPreferenceSetAttribute(
                      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                      &workspace, sizeof(workspace)),
                  what);
  const std::pair<cublasLtMatmulPreferenceAttributes_t, int> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.alignX},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.alignY},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.alignS},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.alignC}};
  for (auto [attribute, log2] : alignments) {
    uint32_t bytes = uint32_t(1) << log2;
    BPTT_CUBLAS_CTX(cublasLtMatmulPreferenceSetAttribute(
                        preference, attribute, &bytes, sizeof(bytes)),
                    what);
  }
  cublasLtMatmulHeuristicResult_t results[8] = {};
  int found = 0;
  cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      r.lt, plan.desc, plan.x, plan.y, plan.s, plan.c, preference, 8, results,
      &found);
  cublasLtMatmulPreferenceDestroy(preference);
  // No algorithm for these operands is not an error: cublasGemmEx runs it.
  if (status != CUBLAS_STATUS_NOT_SUPPORTED)
    BPTT_CUBLAS_CTX(status, "cublasLtMatmulAlgoGetHeuristic " + what);
  for (int i = 0; i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS)
      plan.candidates.push_back(results[i]);
  return plan;
}

/// BPTT_GEMM_TUNE: times every candidate and keeps the fastest; a later
/// candidate must beat the best so far by 3%, so that near-ties keep the
/// heuristic's order and the choice stays stable from run to run. A
/// candidate is timed as the programs run it, in a CUDA graph: ten calls
/// captured into one graph (into a scratch output from the pool, so no
/// operand changes), replayed once to warm up and once under events. Timing
/// calls launched one by one measured cuBLASLt's host time for small
/// products (about 15 us a call, more than their GPU time), and the choice
/// it made slowed T = 100 programs by 4%. Only outside a capture (it
/// synchronises): in the runner's warm-up, whose peak the timed phase does
/// not report.
void tuneLtPlan(Runtime &r, LtPlan &plan, const GemmCall &call,
                const void *x, const void *y, bool tf32, CUstream stream,
                void *workspace) {
  plan.tuned = true;
  if (plan.candidates.size() < 2)
    return;
  std::string what = describeGemm(call, tf32, true);
  uint64_t bytes =
      uint64_t(call.ldc * (call.n - 1) + call.m) * sizeof(float);
  void *out = poolAllocate(
      r, bytes, "the scratch output that BPTT_GEMM_TUNE times products into");
  CUevent start = nullptr, stop = nullptr;
  BPTT_CU(cuEventCreate(&start, CU_EVENT_DEFAULT));
  BPTT_CU(cuEventCreate(&stop, CU_EVENT_DEFAULT));
  const float one = 1.0f, zero = 0.0f;
  constexpr int kCallsPerGraph = 10;
  float bestMs = 0;
  bool haveBest = false;
  for (size_t i = 0; i < plan.candidates.size(); ++i) {
    const cublasLtMatmulHeuristicResult_t &candidate = plan.candidates[i];
    auto launch = [&] {
      return cublasLtMatmul(r.lt, plan.desc, &one, x, plan.x, y, plan.y,
                            &zero, out, plan.c, out, plan.c, &candidate.algo,
                            workspace, candidate.workspaceSize, stream);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS)
      continue; // a candidate that does not run is not chosen
    BPTT_CU_CTX(cuStreamBeginCapture(stream,
                                     CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                "capturing a candidate of " + what);
    cublasStatus_t captured = CUBLAS_STATUS_SUCCESS;
    for (int rep = 0; rep < kCallsPerGraph && captured == CUBLAS_STATUS_SUCCESS;
         ++rep)
      captured = launch();
    CUgraph graph = nullptr;
    CUresult ended = cuStreamEndCapture(stream, &graph);
    if (captured != CUBLAS_STATUS_SUCCESS) {
      // A candidate that cannot be captured is not chosen (the programs run
      // in graphs); its failure may have invalidated the capture, which
      // then ends with an error that says only that.
      if (ended == CUDA_SUCCESS)
        BPTT_CU(cuGraphDestroy(graph));
      continue;
    }
    BPTT_CU_CTX(ended, "cuStreamEndCapture of a candidate of " + what);
    CUgraphExec exec = nullptr;
    BPTT_CU_CTX(cuGraphInstantiate(&exec, graph, 0),
                "instantiating the timing graph of " + what);
    BPTT_CU(cuGraphLaunch(exec, stream));
    BPTT_CU(cuEventRecord(start, stream));
    BPTT_CU(cuGraphLaunch(exec, stream));
    BPTT_CU(cuEventRecord(stop, stream));
    BPTT_CU(cuEventSynchronize(stop));
    float ms = 0;
    BPTT_CU(cuEventElapsedTime(&ms, start, stop));
    BPTT_CU(cuGraphExecDestroy(exec));
    BPTT_CU(cuGraphDestroy(graph));
    if (!haveBest || ms < 0.97f * bestMs) {
      bestMs = ms;
      plan.chosen = i;
      haveBest = true;
    }
  }
  BPTT_CU(cuEventDestroy(start));
  BPTT_CU(cuEventDestroy(stop));
  poolFree(r, out, "the BPTT_GEMM_TUNE scratch output");
}

} // namespace

namespace {

/// Enqueues op(X)·op(Y) + beta·S (+ bias) into `out` as planned by `call`
/// (`x`, `y` already swapped as it says). S is `out` itself for
/// bpttMatmulF32; `bias` is null there.
void enqueueProduct(Runtime &r, const GemmCall &call, bool tf32,
                    const void *x, const void *y, const void *s, void *out,
                    int64_t lds, const float *bias, bool overwrite) {
  const float one = 1.0f, zero = 0.0f;
  cublasComputeType_t compute =
      tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  ProfiledCall timed(r, [&] {
    return "cublas m=" + std::to_string(call.m) + " n=" +
           std::to_string(call.n) + " k=" + std::to_string(call.k) +
           (call.opX == bptt::runtime::BlasOp::N ? " N" : " T") +
           (call.opY == bptt::runtime::BlasOp::N ? "N" : "T") +
           (overwrite ? " beta=0" : "") + (bias ? " bias" : "") +
           (s != out ? " seed" : "");
  });
  std::lock_guard<std::mutex> lock(r.blasMutex);
  CUstream stream = r.current();
  void *workspace = r.routingToSide ? r.sideBlasWorkspace : r.blasWorkspace;
  Addend addend{lds, reinterpret_cast<uintptr_t>(s), bias != nullptr};
  LtPlan &plan = ltPlanFor(r, call, tf32, reinterpret_cast<uintptr_t>(x),
                           reinterpret_cast<uintptr_t>(y),
                           reinterpret_cast<uintptr_t>(out), addend);
  std::string what = describeGemm(call, tf32, overwrite) +
                     (bias ? " with a bias epilogue" : "");
  if (bias)
    BPTT_CUBLAS_CTX(cublasLtMatmulDescSetAttribute(
                        plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                        sizeof(bias)),
                    what);
  if (!plan.candidates.empty()) {
    if (r.tuneGemms && !plan.tuned && !streamIsCapturing(r))
      tuneLtPlan(r, plan, call, x, y, tf32, stream, workspace);
    const cublasLtMatmulHeuristicResult_t &chosen =
        plan.candidates[plan.chosen];
    BPTT_CUBLAS_CTX(cublasLtMatmul(r.lt, plan.desc, &one, x, plan.x, y,
                                   plan.y, overwrite ? &zero : &one, s,
                                   plan.s, out, plan.c, &chosen.algo,
                                   workspace, chosen.workspaceSize, stream),
                    "cublasLtMatmul " + what);
    noteEnqueued(r);
    return;
  }
  // Only cuBLASLt has a bias epilogue and a separate addend.
  if (bias || s != out)
    fatal("bpttMatmulBiasF32: cuBLASLt offers no algorithm for " + what +
          " (its heuristic returned none for these operands)");
  // The handle is bound to the program stream and its workspace; a side
  // product rebinds it for the call (stream first: cublasSetStream resets
  // the workspace).
  if (r.routingToSide) {
    BPTT_CUBLAS(cublasSetStream(r.blas, stream));
    BPTT_CUBLAS(cublasSetWorkspace(r.blas, workspace,
                                   size_t(r.blasWorkspaceBytes)));
  }
  BPTT_CUBLAS_CTX(
      cublasGemmEx_64(r.blas, blasOp(call.opX), blasOp(call.opY), call.m,
                      call.n, call.k, &one, x, CUDA_R_32F, call.ldx, y,
                      CUDA_R_32F, call.ldy, overwrite ? &zero : &one, out,
                      CUDA_R_32F, call.ldc, compute, CUBLAS_GEMM_DEFAULT),
      what);
  if (r.routingToSide) {
    BPTT_CUBLAS(cublasSetStream(r.blas, r.stream));
    BPTT_CUBLAS(cublasSetWorkspace(r.blas, r.blasWorkspace,
                                   size_t(r.blasWorkspaceBytes)));
  }
  noteEnqueued(r);
}

} // namespace

void _mlir_ciface_bpttMatmulF32(BpttMemRef2DF32 *A, BpttMemRef2DF32 *B,
                                BpttMemRef2DF32 *C, int32_t mode) {
  if (!A || !B || !C)
    fatal("bpttMatmulF32: null memref descriptor");
  if (mode & ~3)
    fatal("bpttMatmulF32: mode " + std::to_string(mode) +
          " has bits other than 1 (tf32) and 2 (overwrite C)");
  bool tf32 = mode & 1, overwrite = mode & 2;
  GemmCall call;
  std::string error;
  if (!bptt::runtime::planGemm(viewOf(A), viewOf(B), viewOf(C), call, error))
    fatal("bpttMatmulF32: " + error);
  if (call.empty)
    return;
  Runtime &r = runtime();
  uintptr_t a = firstElement(A, "bpttMatmulF32", "A"),
            b = firstElement(B, "bpttMatmulF32", "B"),
            c = firstElement(C, "bpttMatmulF32", "C");
  const void *x = reinterpret_cast<const void *>(call.swapOperands ? b : a);
  const void *y = reinterpret_cast<const void *>(call.swapOperands ? a : b);
  void *out = reinterpret_cast<void *>(c);
  enqueueProduct(r, call, tf32, x, y, out, out, call.ldc, nullptr, overwrite);
}

void _mlir_ciface_bpttMatmulBiasF32(BpttMemRef2DF32 *A, BpttMemRef2DF32 *B,
                                    BpttMemRef2DF32 *S,
                                    BpttMemRef1DF32 *bias,
                                    BpttMemRef2DF32 *C, int32_t mode) {
  const char *fn = "bpttMatmulBiasF32";
  if (!A || !B || !S || !bias || !C)
    fatal(std::string(fn) + ": null memref descriptor");
  if (mode & ~3)
    fatal(std::string(fn) + ": mode " + std::to_string(mode) +
          " has bits other than 1 (tf32) and 2 (no addend S)");
  bool tf32 = mode & 1, withoutS = mode & 2;
  GemmCall call;
  std::string error;
  if (!bptt::runtime::planGemm(viewOf(A), viewOf(B), viewOf(C), call, error))
    fatal(std::string(fn) + ": " + error);
  // cuBLASLt adds its bias along the rows of its column-major result, which
  // is C's columns only when C is row-major (the product is then computed
  // as C^T = B^T A^T).
  if (!call.empty && !call.swapOperands)
    fatal(std::string(fn) + ": C (" + std::to_string(C->sizes[0]) + "x" +
          std::to_string(C->sizes[1]) + ", strides " +
          std::to_string(C->strides[0]) + ", " +
          std::to_string(C->strides[1]) +
          ") must be row-major (stride 1 along its columns), the layout "
          "the bias epilogue adds along");
  if (bias->sizes[0] != C->sizes[1])
    fatal(std::string(fn) + ": the bias has " +
          std::to_string(bias->sizes[0]) + " elements; C has " +
          std::to_string(C->sizes[1]) + " columns");
  if (bias->sizes[0] > 1 && bias->strides[0] != 1)
    fatal(std::string(fn) + ": the bias has stride " +
          std::to_string(bias->strides[0]) + "; it must be contiguous");
  int64_t lds = call.ldc;
  if (!withoutS) {
    if (S->sizes[0] != C->sizes[0] || S->sizes[1] != C->sizes[1])
      fatal(std::string(fn) + ": S is " + std::to_string(S->sizes[0]) + "x" +
            std::to_string(S->sizes[1]) + ", C " +
            std::to_string(C->sizes[0]) + "x" + std::to_string(C->sizes[1]) +
            "; they must have the same shape");
    // Read as C is: row-major, so that S^T is cuBLASLt's column-major C.
    BlasMatrix seen;
    if (!bptt::runtime::classifyView(viewOf(S), "S", seen, error))
      fatal(std::string(fn) + ": " + error);
    if (!seen.transposed)
      fatal(std::string(fn) + ": S (strides " +
            std::to_string(S->strides[0]) + ", " +
            std::to_string(S->strides[1]) +
            ") must be row-major (stride 1 along its columns), as C");
    lds = seen.ld;
  }
  if (call.empty) {
    if (C->sizes[0] > 0 && C->sizes[1] > 0)
      fatal(std::string(fn) + ": K = 0 (A has no columns): the result would "
            "be S + bias without a product, which this call does not make");
    return;
  }
  Runtime &r = runtime();
  uintptr_t a = firstElement(A, fn, "A"), b = firstElement(B, fn, "B"),
            c = firstElement(C, fn, "C");
  uintptr_t s = withoutS ? c : firstElement(S, fn, "S");
  uintptr_t biasAddress = firstElement(bias, fn, "bias");
  if (biasAddress % 16 != 0)
    fatal(std::string(fn) + ": the bias at " + hex(reinterpret_cast<void *>(
                                                    biasAddress)) +
          " is not 16-byte aligned, which cuBLASLt's bias epilogue needs");
  const void *x = reinterpret_cast<const void *>(call.swapOperands ? b : a);
  const void *y = reinterpret_cast<const void *>(call.swapOperands ? a : b);
  enqueueProduct(r, call, tf32, x, y, reinterpret_cast<const void *>(s),
                 reinterpret_cast<void *>(c), lds,
                 reinterpret_cast<const float *>(biasAddress), withoutS);
}

//===--- The memory pool --------------------------------------------------===//

void bpttPoolGetStats(BpttPoolStats *out) {
  if (!out)
    fatal("bpttPoolGetStats: null output");
  Runtime &r = runtime();
  std::lock_guard<std::mutex> lock(r.poolMutex);
  PoolCounters c = r.pool->counters();
  out->inUseBytes = c.inUseBytes;
  out->peakInUseBytes = c.peakInUseBytes;
  out->reservedBytes = c.reservedBytes;
  out->allocations = c.allocations;
  out->frees = c.frees;
}

void bpttPoolResetPeak(void) {
  Runtime &r = runtime();
  std::lock_guard<std::mutex> lock(r.poolMutex);
  r.pool->resetPeak();
}

void *bpttDeviceAlloc(uint64_t bytes) {
  return poolAllocate(runtime(), bytes, "bpttDeviceAlloc");
}

void bpttDeviceFree(void *ptr) { poolFree(runtime(), ptr, "bpttDeviceFree"); }

//===--- CUDA graphs ------------------------------------------------------===//

void bpttGraphBeginCapture(void) {
  Runtime &r = runtime();
  if (r.capturing || streamIsCapturing(r))
    fatal("bpttGraphBeginCapture: the program stream is already being "
          "captured");
  beginCapturedPiece(r);
  r.capturing = true;
  r.capturedPieces.clear();
  r.eventPiece.clear();
}

void *bpttGraphEndCapture(void) {
  Runtime &r = runtime();
  if (!r.capturing || !streamIsCapturing(r))
    fatal("bpttGraphEndCapture: the program stream is not being captured "
          "(call bpttGraphBeginCapture first)");
  if (r.routingToSide)
    fatal("bpttGraphEndCapture: between bpttSideBegin and bpttSideEnd");
  joinSide(r);
  r.capturing = false;
  endCapturedPiece(r);
  auto *graph = new CapturedGraph{std::move(r.capturedPieces)};
  r.capturedPieces.clear();
  r.eventPiece.clear();
  return graph;
}

uint64_t bpttGraphPieces(void *graph) {
  runtime();
  if (!graph)
    fatal("bpttGraphPieces: null graph");
  return static_cast<CapturedGraph *>(graph)->pieces.size();
}

void bpttGraphLaunch(void *graph) {
  Runtime &r = runtime();
  if (!graph)
    fatal("bpttGraphLaunch: null graph");
  for (CUgraphExec piece : static_cast<CapturedGraph *>(graph)->pieces)
    BPTT_CU(cuGraphLaunch(piece, r.stream));
}

void bpttGraphDestroy(void *graph) {
  runtime();
  if (!graph)
    return;
  auto *captured = static_cast<CapturedGraph *>(graph);
  for (CUgraphExec piece : captured->pieces)
    BPTT_CU(cuGraphExecDestroy(piece));
  delete captured;
}

//===--- The side stream --------------------------------------------------===//

void bpttSideBegin(void) {
  Runtime &r = runtime();
  if (r.routingToSide)
    fatal("bpttSideBegin: already between bpttSideBegin and bpttSideEnd "
          "(side regions do not nest)");
  if (!r.sideEnabled)
    return;
  // The side work may read anything enqueued before it.
  BPTT_CU(cuEventRecord(r.forkEvent, r.stream));
  BPTT_CU(cuStreamWaitEvent(r.side, r.forkEvent, 0));
  r.routingToSide = true;
}

void bpttSideEnd(void) {
  Runtime &r = runtime();
  if (!r.sideEnabled)
    return;
  if (!r.routingToSide)
    fatal("bpttSideEnd: not after bpttSideBegin");
  r.routingToSide = false;
}

void bpttSideJoin(void) {
  Runtime &r = runtime();
  if (r.routingToSide)
    fatal("bpttSideJoin: between bpttSideBegin and bpttSideEnd (end the "
          "side region first)");
  joinSide(r);
  // A piece that reached its size while side work was pending ends now.
  if (r.capturing && r.capturedOps >= r.graphPieceOps) {
    endCapturedPiece(r);
    beginCapturedPiece(r);
  }
}

//===--- Miscellaneous ----------------------------------------------------===//

void *bpttProgramStream(void) { return runtime().stream; }

void bpttSynchronize(void) {
  Runtime &r = runtime();
  if (streamIsCapturing(r))
    fatal("bpttSynchronize: the program stream is being captured into a "
          "CUDA graph (end the capture first)");
  joinSide(r);
  BPTT_CU(cuStreamSynchronize(r.stream));
  collectProfile(r);
}

} // extern "C"
