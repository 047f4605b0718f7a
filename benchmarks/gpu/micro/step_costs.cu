// What a step's pieces cost on the GPU, each measured inside CUDA graph
// replays (how bptt's programs run): a chain of dependent small kernels, with
// and without programmatic dependent launch (PDL: the next kernel launches
// while the previous runs and waits in griddepcontrol.wait), and the LSTM
// benchmark's cuBLAS products, by cublasGemmEx's default choice and by the
// fastest of cuBLASLt's heuristic candidates. Decides whether bptt's
// runtime should launch with PDL or tune its products (docs/gpu.md, "Where
// the time goes"; results in benchmarks/results/gpu/step-costs-*.txt).
//
//   nvcc -O3 -arch=sm_90 step_costs.cu -lcublas -lcublasLt -o step_costs
//   ./step_costs
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

// y = sigmoid(x) * 0.5 + y * 0.5: a step's elementwise kernel, reading what
// the previous kernel wrote.
template <bool Pdl>
__global__ void step(const float *x, float *y, int n) {
  if (Pdl) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
  }
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = 0.5f / (1.0f + __expf(-x[i])) + 0.5f * y[i];
}

static void launchStep(bool pdl, const float *x, float *y, int n,
                       cudaStream_t s) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3((n + 255) / 256);
  config.blockDim = dim3(256);
  config.stream = s;
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = pdl ? 1 : 0;
  if (pdl)
    CHECK(cudaLaunchKernelEx(&config, step<true>, x, y, n));
  else
    CHECK(cudaLaunchKernelEx(&config, step<false>, x, y, n));
}

// Timed replays per graph (the median is reported).
constexpr int kReplays = 15;

int main() {
  BlasStream bs;
  cudaStream_t s = bs.stream;
  cublasHandle_t blas = bs.blas;
  void *workspace = bs.workspace;

  const size_t big = size_t(64) << 20;
  float *p = patternBuffer(big), *q = patternBuffer(big),
        *r = patternBuffer(big);

  const int chain = 200;
  for (int n : {64 * 512, 64 * 2048, 128 * 4096}) {
    for (bool pdl : {false, true}) {
      double ms = timeGraph(s, [&] {
        for (int i = 0; i < chain; ++i)
          launchStep(pdl, i % 2 ? p : q, i % 2 ? q : p, n, s);
      }, kReplays);
      std::printf("kernel chain n=%d pdl=%d: %.2f us per kernel\n", n, pdl,
                  ms * 1000 / chain);
    }
  }

  // The LSTM benchmark's products (bptt-gpu-run profile names), column-major
  // C[m x n] = op(A) op(B), fp32 without TF32.
  cublasLtHandle_t lt;
  CHECK_BLAS(cublasLtCreate(&lt));
  const size_t wsBytes = BlasStream::kWorkspaceBytes;
  struct Gemm {
    int m, n, k;
    bool ta, tb;
  };
  const Gemm gemms[] = {
      {2048, 64, 128, false, false},   {2048, 64, 512, false, false},
      {512, 64, 2048, true, false},    {128, 64, 2048, true, false},
      {128, 64, 512, false, false},    {2048, 512, 64, false, true},
      {512, 64, 128, true, false},     {2048, 128, 64, false, true},
      {128, 512, 64, false, true},     {4096, 128, 128, false, false},
      {4096, 128, 1024, false, false}, {1024, 128, 4096, true, false},
      {4096, 1024, 128, false, true},  {128, 128, 4096, true, false},
      {128, 128, 1024, false, false},  {4096, 128, 128, false, true},
      {128, 1024, 128, false, true},   {1024, 128, 128, true, false},
      {2048, 512, 1024, false, true},  {4096, 1024, 2048, false, true}};
  const float one = 1.0f;
  for (const Gemm &g : gemms) {
    int lda = g.ta ? g.k : g.m, ldb = g.tb ? g.n : g.k;
    const int reps = 40;
    double deflt = timeGraph(s, [&] {
      for (int i = 0; i < reps; ++i)
        CHECK_BLAS(cublasGemmEx(blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n,
                                g.k, &one, p, CUDA_R_32F, lda, q, CUDA_R_32F,
                                ldb, &one, r, CUDA_R_32F, g.m,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }, kReplays) * 1000.0 / reps; // us per product
    cublasLtMatmulDesc_t desc;
    CHECK_BLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                      tb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                              &ta, sizeof(ta)));
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                              &tb, sizeof(tb)));
    cublasLtMatrixLayout_t la, lb, lc;
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, g.ta ? g.k : g.m,
                                          g.ta ? g.m : g.k, lda));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, g.tb ? g.n : g.k,
                                          g.tb ? g.k : g.n, ldb));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, g.m, g.n, g.m));
    cublasLtMatmulPreference_t pref;
    CHECK_BLAS(cublasLtMatmulPreferenceCreate(&pref));
    CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsBytes,
        sizeof(wsBytes)));
    cublasLtMatmulHeuristicResult_t results[32];
    int found = 0;
    CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref,
                                              32, results, &found));
    double best = 1e30, first = 0;
    int bestIndex = -1;
    for (int i = 0; i < found; ++i) {
      if (results[i].state != CUBLAS_STATUS_SUCCESS)
        continue;
      double t = timeGraph(s, [&] {
        for (int rep = 0; rep < reps; ++rep)
          CHECK_BLAS(cublasLtMatmul(lt, desc, &one, p, la, q, lb, &one, r, lc,
                                    r, lc, &results[i].algo, workspace,
                                    wsBytes, s));
      }, kReplays) * 1000.0 / reps;
      if (i == 0)
        first = t;
      if (t < best) {
        best = t;
        bestIndex = i;
      }
    }
    std::printf("m=%d n=%d k=%d %c%c: cublasGemmEx %.2f us, Lt heuristic #0 "
                "%.2f us, best of %d %.2f us (#%d): %.2fx\n",
                g.m, g.n, g.k, g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', deflt, first,
                found, best, bestIndex, deflt / best);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
  }
  // Direct launches (no graph), as bptt-gpu-run runs T = 100,000: the host
  // time each call takes to enqueue, and the GPU time of the batch, for a
  // small kernel and for two of the products.
  auto direct = [&](const char *what, auto call) {
    const int calls = 2000;
    for (int i = 0; i < 50; ++i)
      call();
    CHECK(cudaStreamSynchronize(s));
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    CHECK(cudaEventRecord(a, s));
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i)
      call();
    double host = std::chrono::duration<double, std::micro>(
                      std::chrono::steady_clock::now() - start)
                      .count();
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float gpu;
    CHECK(cudaEventElapsedTime(&gpu, a, b));
    std::printf("direct %s: host %.2f us per call, batch %.2f us per call\n",
                what, host / calls, gpu * 1000 / calls);
  };
  direct("kernel n=131072", [&] { launchStep(false, p, q, 131072, s); });
  for (const Gemm &g : {Gemm{2048, 64, 512, false, false},
                        Gemm{512, 64, 2048, true, false},
                        Gemm{2048, 64, 128, false, false}}) {
    int lda = g.ta ? g.k : g.m, ldb = g.tb ? g.n : g.k;
    char what[64];
    std::snprintf(what, sizeof(what), "gemm m=%d n=%d k=%d", g.m, g.n, g.k);
    direct(what, [&] {
      CHECK_BLAS(cublasGemmEx(blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k,
                              &one, p, CUDA_R_32F, lda, q, CUDA_R_32F, ldb,
                              &one, r, CUDA_R_32F, g.m, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    });
  }
  std::printf("done\n");
  return 0;
}
