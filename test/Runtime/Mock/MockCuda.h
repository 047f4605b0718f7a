//===- MockCuda.h - a host-only stand-in for libcuda.so.1 -------*- C++ -*-===//
//
// The lit tests in test/Runtime run the CUDA runtime and bptt-gpu-run on any
// machine by putting a mock libcuda.so.1 and libcublas.so.13 first on
// LD_LIBRARY_PATH. "Device" memory is host memory mapped behind a reserved
// range; every stream operation runs at once on the host, or is recorded
// while its stream is being captured and runs when the graph is launched.
// The mock checks what the real driver would reject (no current context,
// unmapped or out-of-range device pointers, synchronisation or pageable
// copies during a capture, ...) and returns the real error codes, so the
// runtime's error paths are exercised too. MOCK_CUDA_FAIL=<function> makes
// that driver function fail; MOCK_CUDA_MEMORY=<bytes> sets the device's
// memory (default 1 GiB).
//
// This header is what the mock cuBLAS needs from the mock driver.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_TEST_MOCKCUDA_H
#define BPTT_TEST_MOCKCUDA_H

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace mockcuda {

/// Runs `op` now, or appends it to the capture when `stream` is being
/// captured. Fails as the driver would for an invalidated capture.
CUresult enqueue(CUstream stream, std::function<void()> op);
/// Whether every byte of [p, p + bytes) is mapped device memory.
bool isDevice(const void *p, size_t bytes);
/// Whether the calling thread has a current context.
bool hasContext();
/// Whether `stream` is being captured.
bool isCapturing(CUstream stream);

/// What the mock cuBLAS and cuBLASLt share: whether the column-major matrix
/// of `rows` x `cols` at `p` with leading dimension `ld` lies in device
/// memory, and D = alpha op(A) op(B) + beta C (+ bias[i] down each column,
/// cuBLASLt's bias epilogue, when `bias` is given) on `stream`, column-major,
/// in double precision (C not read when beta = 0, as cuBLAS). D may be C,
/// with the same leading dimension.
bool matrixInDevice(const void *p, int64_t rows, int64_t cols, int64_t ld);
CUresult enqueueGemm(CUstream stream, bool transA, bool transB, int64_t m,
                     int64_t n, int64_t k, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta,
                     const float *C, int64_t ldc, float *D, int64_t ldd,
                     const float *bias = nullptr);

} // namespace mockcuda

#endif // BPTT_TEST_MOCKCUDA_H
