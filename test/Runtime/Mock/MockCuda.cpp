//===- MockCuda.cpp - a host-only stand-in for libcuda.so.1 ---------------===//
//
// See MockCuda.h. Implements the driver functions that the bptt CUDA runtime
// and bptt-gpu-run call, and two kernels: bptt_scale (x[i] *= factor for
// i < n), the kernel of bptt-linear-rnn.so, and bptt_spin, the profiler's
// (a no-op here).
//
//===----------------------------------------------------------------------===//

#include "MockCuda.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

using Op = std::function<void()>;

struct CUctx_st {
  int device = 0;
};
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  std::vector<Op> captured;
  /// A stream that waited on an event of a capture joins it (as CUDA's
  /// cross-stream capture does): its work goes into the capturing stream's
  /// list, in enqueue order, and the capture may end only after the
  /// capturing stream has waited on an event recorded after its last work.
  CUstream_st *captureOrigin = nullptr;
  std::set<CUstream_st *> joined; // on the capturing stream
  uint64_t enqueuedWhileJoined = 0, joinedUpTo = 0;
};
struct CUevent_st {
  unsigned flags = 0;
  double ms = -1; // time of the last executed record
  bool inCapture = false;
  CUstream_st *recordedOn = nullptr;
  uint64_t recordedAt = 0; // recordedOn->enqueuedWhileJoined then
};
struct CUgraph_st {
  std::vector<Op> ops;
};
struct CUgraphExec_st {
  std::vector<Op> ops;
};
struct CUmod_st {
  std::set<std::string> entries;
};
struct CUfunc_st {
  std::string name;
};

namespace {

const uint64_t kGranularity = uint64_t(2) << 20;

bool gInitialised = false;
CUctx_st gContext;
thread_local CUcontext tCurrent = nullptr;
std::set<CUstream> gStreams;
uint64_t gPhysicalInUse = 0;
std::map<uintptr_t, uint64_t> gReserved; // start -> size
std::map<uintptr_t, uint64_t> gMapped;   // start -> size
std::map<CUmemGenericAllocationHandle, uint64_t> gHandles;
CUmemGenericAllocationHandle gNextHandle = 1;

uint64_t deviceMemory() {
  const char *text = std::getenv("MOCK_CUDA_MEMORY");
  return text && *text ? std::strtoull(text, nullptr, 10) : uint64_t(1) << 30;
}

/// MOCK_CUDA_FAIL=<name> makes the driver function <name> fail.
bool failHere(const char *function) {
  const char *text = std::getenv("MOCK_CUDA_FAIL");
  return text && std::strcmp(text, function) == 0;
}

double nowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool anyCapturing() {
  for (CUstream s : gStreams)
    if (s->capturing)
      return true;
  return false;
}

/// Synchronisation and allocation during a capture invalidate it.
CUresult captureViolation(CUstream stream) {
  if (stream && stream->capturing)
    stream->invalidated = true;
  return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

#define REQUIRE_CONTEXT()                                                      \
  do {                                                                         \
    if (!gInitialised)                                                         \
      return CUDA_ERROR_NOT_INITIALIZED;                                       \
    if (!tCurrent)                                                             \
      return CUDA_ERROR_INVALID_CONTEXT;                                       \
  } while (false)

#define FAIL_POINT(name, code)                                                 \
  do {                                                                         \
    if (failHere(name))                                                        \
      return code;                                                             \
  } while (false)

bool knownStream(CUstream s) { return !s || gStreams.count(s); }

std::set<std::string> entriesOf(const char *image) {
  std::set<std::string> names;
  std::string text(image);
  size_t at = 0;
  while ((at = text.find(".entry", at)) != std::string::npos) {
    at += 6;
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t'))
      ++at;
    size_t end = at;
    while (end < text.size() &&
           (isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
      ++end;
    if (end > at)
      names.insert(text.substr(at, end - at));
  }
  return names;
}

} // namespace

namespace mockcuda {

CUresult enqueue(CUstream stream, Op op) {
  if (!knownStream(stream))
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream && stream->captureOrigin) {
    ++stream->enqueuedWhileJoined;
    stream = stream->captureOrigin;
  }
  if (stream && stream->capturing) {
    if (stream->invalidated)
      return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    stream->captured.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  op();
  return CUDA_SUCCESS;
}

bool isDevice(const void *p, size_t bytes) {
  uintptr_t at = reinterpret_cast<uintptr_t>(p), end = at + bytes;
  if (bytes == 0)
    return true;
  while (at < end) {
    auto it = gMapped.upper_bound(at);
    if (it == gMapped.begin())
      return false;
    --it;
    if (at >= it->first + it->second)
      return false;
    at = it->first + it->second;
  }
  return true;
}

bool matrixInDevice(const void *p, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0)
    return true;
  uint64_t elements = uint64_t((cols - 1) * ld + rows);
  return isDevice(p, elements * sizeof(float));
}

CUresult enqueueGemm(CUstream stream, bool transA, bool transB, int64_t m,
                     int64_t n, int64_t k, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta,
                     const float *C, int64_t ldc, float *D, int64_t ldd,
                     const float *bias) {
  double a = alpha, b = beta;
  return enqueue(stream, [=] {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += double(transA ? A[p + i * lda] : A[i + p * lda]) *
                 double(transB ? B[j + p * ldb] : B[p + j * ldb]);
        double d = a * sum;
        if (b != 0)
          d += b * double(C[i + j * ldc]);
        if (bias)
          d += double(bias[i]);
        D[i + j * ldd] = float(d);
      }
  });
}

bool hasContext() { return tCurrent != nullptr; }

bool isCapturing(CUstream stream) {
  return stream && (stream->capturing || stream->captureOrigin);
}

} // namespace mockcuda

using mockcuda::enqueue;
using mockcuda::isDevice;

extern "C" {

CUresult CUDAAPI cuGetErrorName(CUresult error, const char **pStr) {
  static const std::map<CUresult, const char *> names = {
      {CUDA_SUCCESS, "CUDA_SUCCESS"},
      {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE"},
      {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY"},
      {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED"},
      {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED"},
      {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE"},
      {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE"},
      {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE"},
      {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT"},
      {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX"},
      {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE"},
      {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND"},
      {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED"},
      {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED"},
      {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE"},
      {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
       "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"},
      {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
       "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"},
      {CUDA_ERROR_CAPTURED_EVENT, "CUDA_ERROR_CAPTURED_EVENT"},
  };
  auto it = names.find(error);
  if (it == names.end()) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = it->second;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char **pStr) {
  const char *name = nullptr;
  if (cuGetErrorName(error, &name) != CUDA_SUCCESS) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = "mock driver error";
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuInit(unsigned int flags) {
  FAIL_POINT("cuInit", CUDA_ERROR_NO_DEVICE);
  if (flags)
    return CUDA_ERROR_INVALID_VALUE;
  gInitialised = true;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  *count = 1;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0 || len < 1)
    return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, size_t(len), "%s", "Mock CUDA device");
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib,
                                      CUdevice dev) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *pi = 9;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *pi = 0;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    *pi = std::getenv("MOCK_CUDA_NO_VMM") ? 0 : 1;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
    *pi = 227 * 1024;
    return CUDA_SUCCESS;
  default:
    return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult CUDAAPI cuDeviceTotalMem(size_t *bytes, CUdevice dev) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *bytes = size_t(deviceMemory());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *pctx = &gContext;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (ctx && ctx != &gContext)
    return CUDA_ERROR_INVALID_CONTEXT;
  tCurrent = ctx;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx) {
  if (!gInitialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  *pctx = tCurrent;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *device) {
  REQUIRE_CONTEXT();
  *device = tCurrent->device;
  return CUDA_SUCCESS;
}

//===--- Streams and graphs -----------------------------------------------===//

CUresult CUDAAPI cuStreamCreate(CUstream *phStream, unsigned int flags) {
  REQUIRE_CONTEXT();
  if (flags & ~unsigned(CU_STREAM_NON_BLOCKING))
    return CUDA_ERROR_INVALID_VALUE;
  CUstream s = new CUstream_st;
  gStreams.insert(s);
  *phStream = s;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream) {
  REQUIRE_CONTEXT();
  if (!knownStream(hStream))
    return CUDA_ERROR_INVALID_HANDLE;
  if (hStream && hStream->capturing)
    return captureViolation(hStream);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent,
                                   unsigned int flags) {
  REQUIRE_CONTEXT();
  if (!knownStream(hStream) || !hEvent || flags)
    return CUDA_ERROR_INVALID_VALUE;
  CUstream from = hEvent->inCapture ? hEvent->recordedOn : nullptr;
  CUstream origin = from && from->captureOrigin ? from->captureOrigin : from;
  if (hStream && origin && hStream != origin && !hStream->capturing &&
      !hStream->captureOrigin) {
    // Joins the capture.
    hStream->captureOrigin = origin;
    hStream->enqueuedWhileJoined = hStream->joinedUpTo = 0;
    origin->joined.insert(hStream);
  } else if (hStream && hStream->capturing && from &&
             from->captureOrigin == hStream) {
    from->joinedUpTo = std::max(from->joinedUpTo, hEvent->recordedAt);
  }
  return enqueue(hStream, [] {});
}

CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream,
                                     CUstreamCaptureStatus *captureStatus) {
  REQUIRE_CONTEXT();
  if (!knownStream(hStream))
    return CUDA_ERROR_INVALID_HANDLE;
  *captureStatus = !hStream || !hStream->capturing
                       ? CU_STREAM_CAPTURE_STATUS_NONE
                       : (hStream->invalidated
                              ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                              : CU_STREAM_CAPTURE_STATUS_ACTIVE);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamBeginCapture(CUstream hStream,
                                      CUstreamCaptureMode mode) {
  REQUIRE_CONTEXT();
  if (!hStream)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // the legacy stream
  if (!knownStream(hStream))
    return CUDA_ERROR_INVALID_HANDLE;
  if (hStream->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  (void)mode;
  hStream->capturing = true;
  hStream->invalidated = false;
  hStream->captured.clear();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) {
  REQUIRE_CONTEXT();
  if (!hStream || !knownStream(hStream))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!hStream->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  hStream->capturing = false;
  bool unjoined = false;
  for (CUstream other : hStream->joined) {
    unjoined |= other->enqueuedWhileJoined > other->joinedUpTo;
    other->captureOrigin = nullptr;
  }
  hStream->joined.clear();
  if (unjoined) {
    hStream->captured.clear();
    *phGraph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
  }
  if (hStream->invalidated) {
    hStream->captured.clear();
    *phGraph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  CUgraph g = new CUgraph_st;
  g->ops = std::move(hStream->captured);
  hStream->captured.clear();
  *phGraph = g;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph,
                                    unsigned long long flags) {
  REQUIRE_CONTEXT();
  if (!hGraph || flags)
    return CUDA_ERROR_INVALID_VALUE;
  CUgraphExec e = new CUgraphExec_st;
  e->ops = hGraph->ops;
  *phGraphExec = e;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphDestroy(CUgraph hGraph) {
  if (!hGraph)
    return CUDA_ERROR_INVALID_VALUE;
  delete hGraph;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  REQUIRE_CONTEXT();
  if (!hGraphExec || !knownStream(hStream))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  REQUIRE_CONTEXT();
  if (!hGraphExec)
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<Op> ops = hGraphExec->ops;
  return enqueue(hStream, [ops] {
    for (const Op &op : ops)
      op();
  });
}

CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec hGraphExec) {
  if (!hGraphExec)
    return CUDA_ERROR_INVALID_VALUE;
  delete hGraphExec;
  return CUDA_SUCCESS;
}

//===--- Events -----------------------------------------------------------===//

CUresult CUDAAPI cuEventCreate(CUevent *phEvent, unsigned int Flags) {
  REQUIRE_CONTEXT();
  CUevent e = new CUevent_st;
  e->flags = Flags;
  *phEvent = e;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent) {
  if (!hEvent)
    return CUDA_ERROR_INVALID_HANDLE;
  delete hEvent;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream) {
  REQUIRE_CONTEXT();
  if (!hEvent)
    return CUDA_ERROR_INVALID_HANDLE;
  hEvent->inCapture = mockcuda::isCapturing(hStream);
  hEvent->recordedOn = hStream;
  // The count of the work before this record, counted in enqueue() below
  // for the record itself.
  hEvent->recordedAt = hStream ? hStream->enqueuedWhileJoined + 1 : 0;
  // Recorded during a capture, an event only orders the captured work: the
  // graph keeps no reference to it (it may be destroyed before a launch).
  if (hEvent->inCapture)
    return enqueue(hStream, [] {});
  return enqueue(hStream, [hEvent] { hEvent->ms = nowMs(); });
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent) {
  REQUIRE_CONTEXT();
  if (!hEvent)
    return CUDA_ERROR_INVALID_HANDLE;
  if (hEvent->inCapture && anyCapturing())
    return CUDA_ERROR_CAPTURED_EVENT;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventElapsedTime(float *pMilliseconds, CUevent hStart,
                                    CUevent hEnd) {
  REQUIRE_CONTEXT();
  if (!hStart || !hEnd)
    return CUDA_ERROR_INVALID_HANDLE;
  if ((hStart->flags | hEnd->flags) & CU_EVENT_DISABLE_TIMING)
    return CUDA_ERROR_INVALID_HANDLE;
  if (hStart->ms < 0 || hEnd->ms < 0)
    return CUDA_ERROR_NOT_READY;
  *pMilliseconds = float(hEnd->ms - hStart->ms);
  return CUDA_SUCCESS;
}

//===--- Memory -----------------------------------------------------------===//

CUresult CUDAAPI cuMemGetAllocationGranularity(
    size_t *granularity, const CUmemAllocationProp *prop,
    CUmemAllocationGranularity_flags option) {
  REQUIRE_CONTEXT();
  if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      prop->location.id != 0)
    return CUDA_ERROR_INVALID_VALUE;
  (void)option;
  *granularity = size_t(kGranularity);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size,
                                     size_t alignment, CUdeviceptr addr,
                                     unsigned long long flags) {
  REQUIRE_CONTEXT();
  if (size == 0 || size % kGranularity || addr || flags ||
      (alignment && alignment % kGranularity))
    return CUDA_ERROR_INVALID_VALUE;
  // Over-reserve to align the start to the granularity.
  size_t span = size + size_t(kGranularity);
  void *p = mmap(nullptr, span, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  uintptr_t start =
      (reinterpret_cast<uintptr_t>(p) + kGranularity - 1) / kGranularity *
      kGranularity;
  gReserved[start] = size;
  *ptr = CUdeviceptr(start);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop,
                             unsigned long long flags) {
  REQUIRE_CONTEXT();
  FAIL_POINT("cuMemCreate", CUDA_ERROR_OUT_OF_MEMORY);
  if (anyCapturing())
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // the runtime must not
  if (!prop || size == 0 || size % kGranularity || flags)
    return CUDA_ERROR_INVALID_VALUE;
  if (gPhysicalInUse + size > deviceMemory())
    return CUDA_ERROR_OUT_OF_MEMORY;
  gPhysicalInUse += size;
  *handle = gNextHandle++;
  gHandles[*handle] = size;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle,
                          unsigned long long flags) {
  REQUIRE_CONTEXT();
  auto h = gHandles.find(handle);
  if (h == gHandles.end() || h->second != size || offset || flags ||
      ptr % kGranularity)
    return CUDA_ERROR_INVALID_VALUE;
  // Inside one reservation, over nothing mapped.
  auto r = gReserved.upper_bound(uintptr_t(ptr));
  if (r == gReserved.begin())
    return CUDA_ERROR_INVALID_VALUE;
  --r;
  if (ptr + size > r->first + r->second)
    return CUDA_ERROR_INVALID_VALUE;
  for (auto [start, length] : gMapped)
    if (start < ptr + size && ptr < start + length)
      return CUDA_ERROR_INVALID_VALUE;
  if (mprotect(reinterpret_cast<void *>(uintptr_t(ptr)), size,
               PROT_READ | PROT_WRITE) != 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  gMapped[uintptr_t(ptr)] = size;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size,
                                const CUmemAccessDesc *desc, size_t count) {
  REQUIRE_CONTEXT();
  if (!desc || count != 1 || desc->flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
    return CUDA_ERROR_INVALID_VALUE;
  if (!isDevice(reinterpret_cast<void *>(uintptr_t(ptr)), size))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (!gHandles.erase(handle))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS; // mapped memory stays until unmapped
}

CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src,
                               size_t ByteCount, CUstream hStream) {
  REQUIRE_CONTEXT();
  void *d = reinterpret_cast<void *>(uintptr_t(dst));
  const void *s = reinterpret_cast<const void *>(uintptr_t(src));
  bool dDevice = isDevice(d, ByteCount), sDevice = isDevice(s, ByteCount);
  // A pointer into the reserved range that is not fully mapped is an
  // out-of-bounds device access.
  for (auto [p, isDev] : {std::pair{uintptr_t(dst), dDevice},
                          std::pair{uintptr_t(src), sDevice}})
    for (auto [start, size] : gReserved)
      if (!isDev && p >= start && p < start + size)
        return CUDA_ERROR_INVALID_VALUE;
  if (mockcuda::isCapturing(hStream) && (!dDevice || !sDevice))
    return captureViolation(hStream); // pageable host memory
  return enqueue(hStream, [d, s, ByteCount] { std::memmove(d, s, ByteCount); });
}

CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui,
                                  size_t N, CUstream hStream) {
  REQUIRE_CONTEXT();
  auto *d = reinterpret_cast<unsigned int *>(uintptr_t(dstDevice));
  if (dstDevice % 4 || !isDevice(d, N * 4))
    return CUDA_ERROR_INVALID_VALUE;
  return enqueue(hStream, [d, ui, N] {
    for (size_t i = 0; i < N; ++i)
      d[i] = ui;
  });
}

CUresult CUDAAPI cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us,
                                  size_t N, CUstream hStream) {
  REQUIRE_CONTEXT();
  auto *d = reinterpret_cast<unsigned short *>(uintptr_t(dstDevice));
  if (dstDevice % 2 || !isDevice(d, N * 2))
    return CUDA_ERROR_INVALID_VALUE;
  return enqueue(hStream, [d, us, N] {
    for (size_t i = 0; i < N; ++i)
      d[i] = us;
  });
}

//===--- Modules and kernels ----------------------------------------------===//

CUresult CUDAAPI cuModuleLoadData(CUmodule *module, const void *image) {
  REQUIRE_CONTEXT();
  if (!image)
    return CUDA_ERROR_INVALID_VALUE;
  std::set<std::string> entries = entriesOf(static_cast<const char *>(image));
  if (entries.empty())
    return CUDA_ERROR_INVALID_IMAGE;
  *module = new CUmod_st{entries};
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *module, const void *image,
                                    unsigned int numOptions,
                                    CUjit_option *options,
                                    void **optionValues) {
  REQUIRE_CONTEXT();
  char *log = nullptr;
  size_t logSize = 0;
  for (unsigned i = 0; i < numOptions; ++i) {
    if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
      log = static_cast<char *>(optionValues[i]);
    else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
      logSize = size_t(reinterpret_cast<uintptr_t>(optionValues[i]));
    else if (options[i] == CU_JIT_OPTIMIZATION_LEVEL) {
      uintptr_t level = reinterpret_cast<uintptr_t>(optionValues[i]);
      if (level > 4)
        return CUDA_ERROR_INVALID_VALUE;
    } else
      return CUDA_ERROR_INVALID_VALUE;
  }
  const char *text = static_cast<const char *>(image);
  if (!text || !std::strstr(text, ".version") || !std::strstr(text, ".target")) {
    if (log && logSize)
      std::snprintf(log, logSize, "%s",
                    "mock ptxas: no .version/.target directive");
    return CUDA_ERROR_INVALID_PTX;
  }
  return cuModuleLoadData(module, image);
}

CUresult CUDAAPI cuModuleUnload(CUmodule hmod) {
  REQUIRE_CONTEXT();
  if (!hmod)
    return CUDA_ERROR_INVALID_HANDLE;
  delete hmod;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod,
                                     const char *name) {
  REQUIRE_CONTEXT();
  if (!hmod || !name)
    return CUDA_ERROR_INVALID_HANDLE;
  if (!hmod->entries.count(name))
    return CUDA_ERROR_NOT_FOUND;
  *hfunc = new CUfunc_st{name};
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction hfunc) {
  if (!hfunc)
    return CUDA_ERROR_INVALID_HANDLE;
  *name = hfunc->name.c_str();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc,
                                    CUfunction_attribute attrib, int value) {
  if (!hfunc)
    return CUDA_ERROR_INVALID_HANDLE;
  if (attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES &&
      value > 227 * 1024)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX,
                                unsigned int gridDimY, unsigned int gridDimZ,
                                unsigned int blockDimX, unsigned int blockDimY,
                                unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream,
                                void **kernelParams, void **extra) {
  REQUIRE_CONTEXT();
  FAIL_POINT("cuLaunchKernel", CUDA_ERROR_LAUNCH_FAILED);
  if (!f || !kernelParams || extra || sharedMemBytes > 227 * 1024)
    return CUDA_ERROR_INVALID_VALUE;
  if (f->name == "bptt_spin")
    return enqueue(hStream, [] {}); // the profiler's: time passes anyway
  if (f->name != "bptt_scale")
    return CUDA_ERROR_NOT_SUPPORTED; // the mock runs these kernels only
  // Parameters are copied at launch, as the driver does.
  float *x;
  uint64_t n;
  float factor;
  std::memcpy(&x, kernelParams[0], sizeof(x));
  std::memcpy(&n, kernelParams[1], sizeof(n));
  std::memcpy(&factor, kernelParams[2], sizeof(factor));
  uint64_t threads = uint64_t(gridDimX) * gridDimY * gridDimZ * blockDimX *
                     blockDimY * blockDimZ;
  uint64_t count = n < threads ? n : threads;
  if (!isDevice(x, count * sizeof(float)))
    return CUDA_ERROR_LAUNCH_FAILED; // an illegal address, really
  return enqueue(hStream, [x, count, factor] {
    for (uint64_t i = 0; i < count; ++i)
      x[i] *= factor;
  });
}

} // extern "C"
