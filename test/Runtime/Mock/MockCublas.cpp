//===- MockCublas.cpp - a host-only stand-in for libcublas.so.13 ----------===//
//
// The cuBLAS functions the bptt CUDA runtime calls, on the mock driver's
// streams: cublasGemmEx_64 checks its arguments as cuBLAS documents them
// (leading dimensions, types, every accessed element in device memory, a
// user workspace during capture) and computes the column-major product on
// the host in double precision.
//
//===----------------------------------------------------------------------===//

#include "MockCuda.h"

#include <cublas_v2.h>

#include <cstdint>

struct cublasContext {
  CUstream stream = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
  bool userWorkspace = false;
  cublasPointerMode_t pointerMode = CUBLAS_POINTER_MODE_HOST;
};

extern "C" {

const char *CUBLASWINAPI cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS:
    return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "CUBLAS_STATUS_EXECUTION_FAILED";
  default:
    return "CUBLAS_STATUS_UNKNOWN";
  }
}

const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "mock cuBLAS error";
}

cublasStatus_t CUBLASWINAPI cublasCreate(cublasHandle_t *handle) {
  if (!mockcuda::hasContext())
    return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetStream(cublasHandle_t handle,
                                            cudaStream_t streamId) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = streamId;
  // As documented: setting the stream resets the workspace to cuBLAS's own.
  handle->userWorkspace = false;
  handle->workspace = nullptr;
  handle->workspaceBytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetPointerMode(cublasHandle_t handle,
                                                 cublasPointerMode_t mode) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->pointerMode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle,
                                              cublasMath_t mode) {
  (void)mode;
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetWorkspace(cublasHandle_t handle,
                                               void *workspace,
                                               size_t workspaceSizeInBytes) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (workspaceSizeInBytes &&
      (reinterpret_cast<uintptr_t>(workspace) % 256 ||
       !mockcuda::isDevice(workspace, workspaceSizeInBytes)))
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspaceBytes = workspaceSizeInBytes;
  handle->userWorkspace = true;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGemmEx_64(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
    int64_t m, int64_t n, int64_t k, const void *alpha, const void *A,
    cudaDataType Atype, int64_t lda, const void *B, cudaDataType Btype,
    int64_t ldb, const void *beta, void *C, cudaDataType Ctype, int64_t ldc,
    cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F ||
      (computeType != CUBLAS_COMPUTE_32F &&
       computeType != CUBLAS_COMPUTE_32F_FAST_TF32) ||
      algo != CUBLAS_GEMM_DEFAULT)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (handle->pointerMode != CUBLAS_POINTER_MODE_HOST)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  bool nA = transa == CUBLAS_OP_N, nB = transb == CUBLAS_OP_N;
  if ((!nA && transa != CUBLAS_OP_T) || (!nB && transb != CUBLAS_OP_T))
    return CUBLAS_STATUS_INVALID_VALUE;
  auto atLeast = [](int64_t ld, int64_t rows) {
    return ld >= (rows > 1 ? rows : 1);
  };
  if (m < 0 || n < 0 || k < 0 || !atLeast(lda, nA ? m : k) ||
      !atLeast(ldb, nB ? k : n) || !atLeast(ldc, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0)
    return CUBLAS_STATUS_SUCCESS;
  if (!mockcuda::matrixInDevice(C, m, n, ldc) || !mockcuda::matrixInDevice(A, nA ? m : k, nA ? k : m, lda) ||
      !mockcuda::matrixInDevice(B, nB ? k : n, nB ? n : k, ldb))
    return CUBLAS_STATUS_EXECUTION_FAILED; // an illegal address, really
  if (mockcuda::isCapturing(handle->stream) && !handle->userWorkspace)
    return CUBLAS_STATUS_NOT_SUPPORTED; // would allocate during capture
  CUresult r = mockcuda::enqueueGemm(
      handle->stream, !nA, !nB, m, n, k, *static_cast<const float *>(alpha),
      static_cast<const float *>(A), lda, static_cast<const float *>(B), ldb,
      *static_cast<const float *>(beta), static_cast<const float *>(C), ldc,
      static_cast<float *>(C), ldc);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS
                           : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // extern "C"
