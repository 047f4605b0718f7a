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

} // namespace mockcuda

#endif // BPTT_TEST_MOCKCUDA_H
