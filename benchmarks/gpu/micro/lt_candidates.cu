// How fast cuBLASLt can run the LSTM benchmark's per-step products when more
// of its candidates are timed than the runtime's BPTT_GEMM_TUNE times (the
// heuristic's first 8): for each shape, up to 128 heuristic results and, for
// every algorithm id cuBLASLt lists, its tile, split-k and stage options,
// each timed in a CUDA graph of 20 calls (as the programs run), and checked
// against cublasGemmEx. Prints the fastest configurations per shape.
//
//   nvcc -O3 -arch=sm_90 -std=c++17 lt_candidates.cu -lcublas -lcublasLt -o lt_candidates
//   ./lt_candidates
#include <cublasLt.h>

#include "common.h"

#include <string>
#include <vector>

namespace {

struct Shape {
  const char *name;
  cublasOperation_t ta, tb;
  int m, n, k;
  float beta;
};

struct Timed {
  double us;
  std::string what;
  float err;
};

std::string describe(const cublasLtMatmulAlgo_t &algo) {
  int id = 0, tile = 0, split = 0, scheme = 0, stages = 0, swizzle = 0;
  size_t got;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id,
                                       sizeof(id), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                       &tile, sizeof(tile), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
                                       &split, sizeof(split), &got);
  cublasLtMatmulAlgoConfigGetAttribute(
      &algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme),
      &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID,
                                       &stages, sizeof(stages), &got);
  cublasLtMatmulAlgoConfigGetAttribute(&algo,
                                       CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING,
                                       &swizzle, sizeof(swizzle), &got);
  return "algo " + std::to_string(id) + " tile " + std::to_string(tile) +
         " splitk " + std::to_string(split) + " red " +
         std::to_string(scheme) + " stages " + std::to_string(stages) +
         " swz " + std::to_string(swizzle);
}

// The values an algorithm lists for capability `cap` (its tiles, its
// stages), or just `none` when it lists nothing.
std::vector<int> capabilityList(const cublasLtMatmulAlgo_t &algo,
                                cublasLtMatmulAlgoCapAttributes_t cap,
                                int none) {
  size_t bytes = 0;
  cublasLtMatmulAlgoCapGetAttribute(&algo, cap, nullptr, 0, &bytes);
  std::vector<int> values(bytes / sizeof(int));
  if (values.empty())
    return {none};
  cublasLtMatmulAlgoCapGetAttribute(&algo, cap, values.data(), bytes, &bytes);
  return values;
}

void run(const Shape &s) {
  BlasStream bs;
  cublasLtHandle_t lt;
  CHECK_BLAS(cublasLtCreate(&lt));
  int rowsA = s.ta == CUBLAS_OP_N ? s.m : s.k, colsA = s.ta == CUBLAS_OP_N ? s.k : s.m;
  int rowsB = s.tb == CUBLAS_OP_N ? s.k : s.n, colsB = s.tb == CUBLAS_OP_N ? s.n : s.k;
  float *A = patternBuffer(size_t(rowsA) * colsA, 1),
        *B = patternBuffer(size_t(rowsB) * colsB, 2),
        *C0 = patternBuffer(size_t(s.m) * s.n, 3);
  float *ref, *out;
  CHECK(cudaMalloc(&ref, size_t(s.m) * s.n * 4));
  CHECK(cudaMalloc(&out, size_t(s.m) * s.n * 4));
  const float one = 1.0f;
  CHECK(cudaMemcpy(ref, C0, size_t(s.m) * s.n * 4, cudaMemcpyDeviceToDevice));
  CHECK_BLAS(cublasGemmEx(bs.blas, s.ta, s.tb, s.m, s.n, s.k, &one, A,
                          CUDA_R_32F, rowsA, B, CUDA_R_32F, rowsB, &s.beta,
                          ref, CUDA_R_32F, s.m, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT));
  CHECK(cudaStreamSynchronize(bs.stream));
  std::vector<float> want(size_t(s.m) * s.n);
  CHECK(cudaMemcpy(want.data(), ref, want.size() * 4, cudaMemcpyDeviceToHost));
  double gemmEx = timeGraph(bs.stream, [&] {
    for (int i = 0; i < 20; ++i)
      CHECK_BLAS(cublasGemmEx(bs.blas, s.ta, s.tb, s.m, s.n, s.k, &one, A,
                              CUDA_R_32F, rowsA, B, CUDA_R_32F, rowsB,
                              &s.beta, out, CUDA_R_32F, s.m,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }, 20) * 1e3 / 20;

  cublasLtMatmulDesc_t desc;
  CHECK_BLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                            &s.ta, sizeof(s.ta)));
  CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                            &s.tb, sizeof(s.tb)));
  cublasLtMatrixLayout_t la, lb, lc;
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, rowsA, colsA, rowsA));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, rowsB, colsB, rowsB));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, s.m, s.n, s.m));
  size_t workspaceBytes = BlasStream::kWorkspaceBytes;

  std::vector<cublasLtMatmulAlgo_t> algos;
  // The heuristic's candidates.
  cublasLtMatmulPreference_t pref;
  CHECK_BLAS(cublasLtMatmulPreferenceCreate(&pref));
  CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
      sizeof(workspaceBytes)));
  std::vector<cublasLtMatmulHeuristicResult_t> heur(128);
  int found = 0;
  CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref,
                                            int(heur.size()), heur.data(),
                                            &found));
  for (int i = 0; i < found; ++i)
    algos.push_back(heur[i].algo);
  int heuristicCount = found;
  // Every algorithm id with its tiles, split-k counts and stages.
  int ids[64], nIds = 0;
  CHECK_BLAS(cublasLtMatmulAlgoGetIds(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F,
                                      CUDA_R_32F, CUDA_R_32F, CUDA_R_32F,
                                      CUDA_R_32F, 64, ids, &nIds));
  for (int a = 0; a < nIds; ++a) {
    cublasLtMatmulAlgo_t algo;
    if (cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_32F,
                               CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, ids[a],
                               &algo) != CUBLAS_STATUS_SUCCESS)
      continue;
    std::vector<int> tiles = capabilityList(
        algo, CUBLASLT_ALGO_CAP_TILE_IDS, CUBLASLT_MATMUL_TILE_UNDEFINED);
    std::vector<int> stages = capabilityList(
        algo, CUBLASLT_ALGO_CAP_STAGES_IDS, CUBLASLT_MATMUL_STAGES_UNDEFINED);
    size_t bytes = 0;
    int splitSupport = 0;
    cublasLtMatmulAlgoCapGetAttribute(&algo,
                                      CUBLASLT_ALGO_CAP_SPLITK_SUPPORT,
                                      &splitSupport, sizeof(int), &bytes);
    std::vector<int> splits = {1};
    if (splitSupport)
      splits = {1, 2, 3, 4, 6, 8, 16};
    for (int tile : tiles)
      for (int stage : stages)
        for (int split : splits) {
          cublasLtMatmulAlgo_t c = algo;
          cublasLtMatmulAlgoConfigSetAttribute(
              &c, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile));
          cublasLtMatmulAlgoConfigSetAttribute(
              &c, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stage, sizeof(stage));
          cublasLtMatmulAlgoConfigSetAttribute(
              &c, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split, sizeof(split));
          if (split > 1) {
            int scheme = CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
            cublasLtMatmulAlgoConfigSetAttribute(
                &c, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                sizeof(scheme));
          }
          cublasLtMatmulHeuristicResult_t check;
          if (cublasLtMatmulAlgoCheck(lt, desc, la, lb, lc, lc, &c, &check) !=
                  CUBLAS_STATUS_SUCCESS ||
              check.workspaceSize > workspaceBytes)
            continue;
          algos.push_back(c);
        }
  }
  std::vector<Timed> results;
  for (size_t i = 0; i < algos.size(); ++i) {
    const cublasLtMatmulAlgo_t &algo = algos[i];
    auto call = [&] {
      return cublasLtMatmul(lt, desc, &one, A, la, B, lb, &s.beta, C0, lc,
                            out, lc, &algo, bs.workspace, workspaceBytes,
                            bs.stream);
    };
    if (call() != CUBLAS_STATUS_SUCCESS) {
      cudaGetLastError();
      continue;
    }
    if (cudaStreamSynchronize(bs.stream) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    std::vector<float> got(want.size());
    CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
    float err = maxRelErr(got, want);
    double us = timeGraph(bs.stream, [&] {
      for (int r = 0; r < 20; ++r)
        call();
    }, 10) * 1e3 / 20;
    results.push_back({us, (int(i) < heuristicCount ? "heuristic #" + std::to_string(i) + " "
                                                     : std::string("listed ")) +
                               describe(algo),
                       err});
  }
  std::sort(results.begin(), results.end(),
            [](const Timed &a, const Timed &b) { return a.us < b.us; });
  std::printf("%s m=%d n=%d k=%d: cublasGemmEx %.2f us; %zu configurations "
              "ran (%d from the heuristic)\n",
              s.name, s.m, s.n, s.k, gemmEx, results.size(), heuristicCount);
  for (size_t i = 0; i < results.size() && i < 12; ++i)
    std::printf("  %7.2f us  %s  err %.1e\n", results[i].us,
                results[i].what.c_str(), results[i].err);
}

} // namespace

int main() {
  // Column-major views of the row-major products (bptt's runtime swaps
  // operands the same way).
  run({"fwd h W_hh^T B128", CUBLAS_OP_N, CUBLAS_OP_N, 4096, 128, 1024, 1.0f});
  run({"dh B128", CUBLAS_OP_T, CUBLAS_OP_N, 1024, 128, 4096, 0.0f});
  run({"fwd h W_hh^T B64", CUBLAS_OP_N, CUBLAS_OP_N, 2048, 64, 512, 1.0f});
  run({"dh B64", CUBLAS_OP_T, CUBLAS_OP_N, 512, 64, 2048, 0.0f});
  run({"input proj 2 steps B128", CUBLAS_OP_N, CUBLAS_OP_N, 4096, 256, 128, 0.0f});
  return 0;
}
