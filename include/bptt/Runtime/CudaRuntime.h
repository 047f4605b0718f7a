/*===- CudaRuntime.h - the bptt CUDA runtime's C API ------------*- C -*-===//
 *
 * The C API of libbptt_cuda_runtime.so, as specified by docs/gpu-abi.md:
 * the mgpu* entry points that MLIR 22's gpu-to-llvm lowering calls, the
 * matrix product called by generated code, the device memory pool, CUDA
 * graph capture and a few helpers for runners. Usable from C and C++; no
 * CUDA header is needed to use it (CUDA handles are passed as void *).
 *
 * Model (see docs/gpu-abi.md for the full statement):
 *  - one device (0, or the ordinal in the environment variable
 *    BPTT_CUDA_DEVICE), its primary context, initialised lazily and
 *    thread-safely by the first call to any function here; every function
 *    makes that context current on the calling thread;
 *  - one program stream: all work (kernels, copies, memsets, cuBLAS) is
 *    ordered on it; mgpuStreamCreate returns it; a side stream takes the
 *    work the compiler puts in side regions (below);
 *  - one device memory pool: every device allocation goes through it, with
 *    exact accounting, and frees are ordered by the program stream;
 *  - every CUDA driver and cuBLAS call is checked: on failure the runtime
 *    prints "bptt-cuda-runtime: <call> failed: <NAME>: <description>" to
 *    stderr and aborts. Misuse of the API (unknown pointers, foreign
 *    streams, a pool that would grow during capture) is reported the same
 *    way.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BPTT_RUNTIME_CUDARUNTIME_H
#define BPTT_RUNTIME_CUDARUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BPTT_RUNTIME_EXPORT __attribute__((visibility("default")))
#else
#define BPTT_RUNTIME_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*===--- mgpu*: the functions MLIR 22's gpu-to-llvm lowering calls --------===*/

/* Loads a cubin or fatbin (the size is not needed by the driver). */
BPTT_RUNTIME_EXPORT void *mgpuModuleLoad(void *data, size_t gpuBlobSize);
/* JIT-compiles NUL-terminated PTX; a failure prints the JIT's error log. */
BPTT_RUNTIME_EXPORT void *mgpuModuleLoadJIT(void *data, int optLevel);
BPTT_RUNTIME_EXPORT void mgpuModuleUnload(void *module);
BPTT_RUNTIME_EXPORT void *mgpuModuleGetFunction(void *module,
                                                const char *name);
/* paramsCount is passed by the lowering for other backends; CUDA needs the
 * kernel's own parameter layout only. */
BPTT_RUNTIME_EXPORT void
mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                 intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                 intptr_t blockZ, int32_t smem, void *stream, void **params,
                 void **extra, size_t paramsCount);

/* Returns the program stream (the same stream every time). */
BPTT_RUNTIME_EXPORT void *mgpuStreamCreate(void);
/* A no-op on the program stream. */
BPTT_RUNTIME_EXPORT void mgpuStreamDestroy(void *stream);
/* Synchronises the program stream; a no-op while it is being captured. */
BPTT_RUNTIME_EXPORT void mgpuStreamSynchronize(void *stream);
BPTT_RUNTIME_EXPORT void mgpuStreamWaitEvent(void *stream, void *event);

/* Events without timing (timing is the runner's business). */
BPTT_RUNTIME_EXPORT void *mgpuEventCreate(void);
BPTT_RUNTIME_EXPORT void mgpuEventDestroy(void *event);
/* A no-op while the program stream is being captured. */
BPTT_RUNTIME_EXPORT void mgpuEventSynchronize(void *event);
BPTT_RUNTIME_EXPORT void mgpuEventRecord(void *event, void *stream);

/* Device memory from the pool; 0 bytes gives NULL. isHostShared (managed
 * memory) is not supported and is reported as an error. */
BPTT_RUNTIME_EXPORT void *mgpuMemAlloc(uint64_t sizeBytes, void *stream,
                                       bool isHostShared);
/* Returns a pool allocation (NULL is a no-op). */
BPTT_RUNTIME_EXPORT void mgpuMemFree(void *ptr, void *stream);
BPTT_RUNTIME_EXPORT void mgpuMemcpy(void *dst, void *src, size_t sizeBytes,
                                    void *stream);
BPTT_RUNTIME_EXPORT void mgpuMemset32(void *dst, unsigned int value,
                                      size_t count, void *stream);
BPTT_RUNTIME_EXPORT void mgpuMemset16(void *dst, unsigned short value,
                                      size_t count, void *stream);
/* Selects the device before initialisation (BPTT_CUDA_DEVICE overrides it);
 * after initialisation only the device in use may be named. */
BPTT_RUNTIME_EXPORT void mgpuSetDefaultDevice(int32_t device);

/*===--- Matrix products -------------------------------------------------===*/

/* MLIR's C-interface descriptor of a memref<?x?xf32, strided<[?, ?],
 * offset: ?>>. */
typedef struct BpttMemRef2DF32 {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
} BpttMemRef2DF32;

/* C[m][n] += sum_k A[m][k] * B[k][n] on the program stream, through cuBLAS.
 * Each operand must be contiguous along one dimension (stride 1 or size 1)
 * with a leading dimension that keeps rows (columns) apart; C must not
 * overlap A or B. mode 0: fp32 (CUBLAS_COMPUTE_32F), 1: tf32
 * (CUBLAS_COMPUTE_32F_FAST_TF32). M, N or K = 0: nothing to do. */
BPTT_RUNTIME_EXPORT void _mlir_ciface_bpttMatmulF32(BpttMemRef2DF32 *A,
                                                    BpttMemRef2DF32 *B,
                                                    BpttMemRef2DF32 *C,
                                                    int32_t mode);

/* MLIR's C-interface descriptor of a memref<?xf32, strided<[?], offset: ?>>. */
typedef struct BpttMemRef1DF32 {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} BpttMemRef1DF32;

/* C[m][n] = sum_k A[m][k] * B[k][n] + S[m][n] + bias[n] on the program
 * stream, in one cuBLASLt call with a bias epilogue (the compiler emits it
 * for a product whose accumulator was just set to a row-broadcast bias,
 * plus a matrix or not). S may be C itself (C += A·B + bias). mode bit 0:
 * tf32 as for bpttMatmulF32; bit 1: no S (C = A·B + bias), S is not read.
 * C and S must be row-major (stride 1 along n) and of the same shape; the
 * bias has N contiguous elements, 16-byte aligned; K must not be 0 unless M
 * or N is. Anything else is reported and aborts: generated code checks the
 * layout and alignment before it calls, and otherwise keeps the plain
 * product. */
BPTT_RUNTIME_EXPORT void _mlir_ciface_bpttMatmulBiasF32(
    BpttMemRef2DF32 *A, BpttMemRef2DF32 *B, BpttMemRef2DF32 *S,
    BpttMemRef1DF32 *bias, BpttMemRef2DF32 *C, int32_t mode);

/*===--- The memory pool -------------------------------------------------===*/

typedef struct BpttPoolStats {
  uint64_t inUseBytes;     /* sum of the requested sizes of live allocations */
  uint64_t peakInUseBytes; /* maximum of inUseBytes since the last reset */
  uint64_t reservedBytes;  /* device memory the pool holds from the driver */
  uint64_t allocations;    /* allocations made (not counting 0-byte ones) */
  uint64_t frees;          /* allocations returned */
} BpttPoolStats;

BPTT_RUNTIME_EXPORT void bpttPoolGetStats(BpttPoolStats *out);
/* peak := current in-use. */
BPTT_RUNTIME_EXPORT void bpttPoolResetPeak(void);
BPTT_RUNTIME_EXPORT void *bpttDeviceAlloc(uint64_t bytes);
BPTT_RUNTIME_EXPORT void bpttDeviceFree(void *ptr);

/*===--- CUDA graphs -----------------------------------------------------===*/

/* Starts capturing the program stream (thread-local capture mode). */
BPTT_RUNTIME_EXPORT void bpttGraphBeginCapture(void);
/* Ends the capture and returns the captured work, instantiated and uploaded:
 * an opaque handle to CUDA graphs of at most BPTT_GRAPH_PIECE_OPS (default
 * 65536) operations each, which bpttGraphLaunch launches in order. */
BPTT_RUNTIME_EXPORT void *bpttGraphEndCapture(void);
/* How many CUDA graphs the capture was cut into. */
BPTT_RUNTIME_EXPORT uint64_t bpttGraphPieces(void *graph);
/* Launches the captured work on the program stream. */
BPTT_RUNTIME_EXPORT void bpttGraphLaunch(void *graph);
BPTT_RUNTIME_EXPORT void bpttGraphDestroy(void *graph);

/*===--- The side stream -------------------------------------------------===*/

/* Work that generated code enqueues between bpttSideBegin and bpttSideEnd
 * runs on a second stream: after everything enqueued before bpttSideBegin,
 * concurrently with what the program stream does next, in its own order.
 * bpttSideJoin makes the program stream wait for all side work so far; the
 * compiler joins before a function returns and before it frees what the side
 * work reads. BPTT_SIDE_STREAM=0 (and profiling) turn the three calls into
 * no-ops: everything runs on the program stream in the same order. Side
 * regions do not nest. */
BPTT_RUNTIME_EXPORT void bpttSideBegin(void);
BPTT_RUNTIME_EXPORT void bpttSideEnd(void);
BPTT_RUNTIME_EXPORT void bpttSideJoin(void);

/*===--- Miscellaneous ---------------------------------------------------===*/

/* The program stream (a CUstream); initialises the runtime. */
BPTT_RUNTIME_EXPORT void *bpttProgramStream(void);
/* Waits for the program stream. An error while it is being captured. */
BPTT_RUNTIME_EXPORT void bpttSynchronize(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BPTT_RUNTIME_CUDARUNTIME_H */
