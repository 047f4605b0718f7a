//===- MockCublasLt.cpp - a host-only stand-in for libcublasLt.so.13 ------===//
//
// The cuBLASLt functions the bptt CUDA runtime calls, on the mock driver's
// streams. Descriptors keep what was set on them; the heuristic offers two
// algorithms (both the same host product, so BPTT_GEMM_TUNE has a choice to
// make) within the preference's workspace, and cublasLtMatmul checks its
// arguments as cuBLASLt documents them (fp32 layouts whose sizes agree with
// the transposes, leading dimensions, C and D of one shape and, when they
// are the same matrix, one layout, a bias epilogue's vector in device memory
// and 16-byte aligned, every accessed element in device memory, an
// algorithm from the heuristic) and computes the column-major product on the
// host in double precision.
//
//===----------------------------------------------------------------------===//

#include "MockCuda.h"

#include <cublasLt.h>

#include <cstdint>
#include <cstring>

struct cublasLtContext {
  bool live = true;
};

namespace {

constexpr uint64_t kMagic = 0x6d6f636b4c74ull; // "mockLt"

/// What the mock keeps in the semi-opaque descriptors' storage.
struct Desc {
  uint64_t magic;
  cublasComputeType_t compute;
  cublasOperation_t transa, transb;
  cublasLtEpilogue_t epilogue;
  const float *bias;
};
struct Layout {
  uint64_t magic;
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
};
struct Preference {
  uint64_t magic;
  uint64_t maxWorkspace;
};
static_assert(sizeof(Desc) <= sizeof(cublasLtMatmulDescOpaque_t), "");
static_assert(sizeof(Layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "");
static_assert(sizeof(Preference) <= sizeof(cublasLtMatmulPreferenceOpaque_t),
              "");

template <typename T, typename Opaque> T *as(Opaque *p) {
  T *t = reinterpret_cast<T *>(p);
  return t && t->magic == kMagic ? t : nullptr;
}

/// A new semi-opaque descriptor holding `value`.
template <typename Opaque, typename T> Opaque *make(const T &value) {
  auto *opaque = new Opaque{};
  *reinterpret_cast<T *>(opaque) = value;
  return opaque;
}


} // namespace

extern "C" {

cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t *handle) {
  if (!handle)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!mockcuda::hasContext())
    return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(
    cublasLtMatmulDesc_t *desc, cublasComputeType_t computeType,
    cudaDataType_t scaleType) {
  if (!desc)
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((computeType != CUBLAS_COMPUTE_32F &&
       computeType != CUBLAS_COMPUTE_32F_FAST_TF32) ||
      scaleType != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  *desc = make<cublasLtMatmulDescOpaque_t>(
      Desc{kMagic, computeType, CUBLAS_OP_N, CUBLAS_OP_N,
           CUBLASLT_EPILOGUE_DEFAULT, nullptr});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(
    cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr,
    const void *buf, size_t sizeInBytes) {
  Desc *d = as<Desc>(matmulDesc);
  if (!d || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_DESC_EPILOGUE) {
    if (sizeInBytes != sizeof(cublasLtEpilogue_t))
      return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtEpilogue_t e;
    std::memcpy(&e, buf, sizeof(e));
    if (e != CUBLASLT_EPILOGUE_DEFAULT && e != CUBLASLT_EPILOGUE_BIAS)
      return CUBLAS_STATUS_NOT_SUPPORTED; // the runtime uses no other
    d->epilogue = e;
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr == CUBLASLT_MATMUL_DESC_BIAS_POINTER) {
    if (sizeInBytes != sizeof(const float *))
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&d->bias, buf, sizeof(d->bias));
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr != CUBLASLT_MATMUL_DESC_TRANSA &&
      attr != CUBLASLT_MATMUL_DESC_TRANSB)
    return CUBLAS_STATUS_NOT_SUPPORTED; // the runtime sets nothing else
  if (sizeInBytes != sizeof(cublasOperation_t))
    return CUBLAS_STATUS_INVALID_VALUE;
  cublasOperation_t op;
  std::memcpy(&op, buf, sizeof(op));
  if (op != CUBLAS_OP_N && op != CUBLAS_OP_T)
    return CUBLAS_STATUS_INVALID_VALUE;
  (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->transa : d->transb) = op;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(
    cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
    uint64_t cols, int64_t ld) {
  if (!matLayout)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (type != CUDA_R_32F)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (ld < int64_t(rows > 1 ? rows : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  *matLayout = make<cublasLtMatrixLayoutOpaque_t>(
      Layout{kMagic, type, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI
cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
  if (!pref)
    return CUBLAS_STATUS_INVALID_VALUE;
  *pref = make<cublasLtMatmulPreferenceOpaque_t>(Preference{kMagic, 0});
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
    const void *buf, size_t sizeInBytes) {
  Preference *p = as<Preference>(pref);
  if (!p || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (sizeInBytes != sizeof(uint64_t))
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&p->maxWorkspace, buf, sizeof(uint64_t));
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES ||
      attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES ||
      attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES ||
      attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
    return sizeInBytes == sizeof(uint32_t) ? CUBLAS_STATUS_SUCCESS
                                           : CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t CUBLASWINAPI
cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  if (!as<Preference>(pref))
    return CUBLAS_STATUS_INVALID_VALUE;
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
    cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
    cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
    cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
    int *returnAlgoCount) {
  if (!lightHandle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!as<Desc>(operationDesc) || !as<Layout>(Adesc) || !as<Layout>(Bdesc) ||
      !as<Layout>(Cdesc) || !as<Layout>(Ddesc) ||
      !as<Preference>(preference) || requestedAlgoCount < 1 ||
      !heuristicResultsArray || !returnAlgoCount)
    return CUBLAS_STATUS_INVALID_VALUE;
  // Two algorithms: the second asks for 256 bytes of workspace.
  int offered = as<Preference>(preference)->maxWorkspace >= 256 ? 2 : 1;
  int count = offered < requestedAlgoCount ? offered : requestedAlgoCount;
  for (int i = 0; i < count; ++i) {
    cublasLtMatmulHeuristicResult_t &r = heuristicResultsArray[i];
    r = cublasLtMatmulHeuristicResult_t{};
    r.algo.data[0] = kMagic;
    r.algo.data[1] = uint64_t(i);
    r.workspaceSize = i == 0 ? 0 : 256;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
  }
  *returnAlgoCount = count;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmul(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
    const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc,
    const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta,
    const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
    cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo,
    void *workspace, size_t workspaceSizeInBytes, cudaStream_t stream) {
  if (!lightHandle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  Desc *d = as<Desc>(computeDesc);
  Layout *la = as<Layout>(Adesc), *lb = as<Layout>(Bdesc),
         *lc = as<Layout>(Cdesc), *ld = as<Layout>(Ddesc);
  if (!d || !la || !lb || !lc || !ld || !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!algo || algo->data[0] != kMagic || algo->data[1] > 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (workspaceSizeInBytes < (algo->data[1] == 1 ? 256u : 0u) ||
      (workspaceSizeInBytes &&
       !mockcuda::isDevice(workspace, workspaceSizeInBytes)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (lc->rows != ld->rows || lc->cols != ld->cols ||
      (C == D && lc->ld != ld->ld))
    return CUBLAS_STATUS_INVALID_VALUE;
  bool nA = d->transa == CUBLAS_OP_N, nB = d->transb == CUBLAS_OP_N;
  int64_t m = int64_t(lc->rows), n = int64_t(lc->cols);
  int64_t k = int64_t(nA ? la->cols : la->rows);
  if (int64_t(nA ? la->rows : la->cols) != m ||
      int64_t(nB ? lb->rows : lb->cols) != k ||
      int64_t(nB ? lb->cols : lb->rows) != n)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0)
    return CUBLAS_STATUS_SUCCESS;
  int64_t lda = la->ld, ldb = lb->ld, ldc = lc->ld, ldd = ld->ld;
  float b = *static_cast<const float *>(beta);
  const float *bias =
      d->epilogue == CUBLASLT_EPILOGUE_BIAS ? d->bias : nullptr;
  if (d->epilogue == CUBLASLT_EPILOGUE_BIAS &&
      (!bias || reinterpret_cast<uintptr_t>(bias) % 16 != 0))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!mockcuda::matrixInDevice(D, m, n, ldd) ||
      (b != 0 && !mockcuda::matrixInDevice(C, m, n, ldc)) ||
      !mockcuda::matrixInDevice(A, nA ? m : k, nA ? k : m, lda) ||
      !mockcuda::matrixInDevice(B, nB ? k : n, nB ? n : k, ldb) ||
      (bias && !mockcuda::isDevice(bias, uint64_t(m) * sizeof(float))))
    return CUBLAS_STATUS_EXECUTION_FAILED; // an illegal address, really
  CUresult r = mockcuda::enqueueGemm(
      reinterpret_cast<CUstream>(stream), !nA, !nB, m, n, k,
      *static_cast<const float *>(alpha), static_cast<const float *>(A), lda,
      static_cast<const float *>(B), ldb, b, static_cast<const float *>(C),
      ldc, static_cast<float *>(D), ldd, bias);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS
                           : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // extern "C"
