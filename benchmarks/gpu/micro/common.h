// What the micro-benchmarks share: error checks that exit with the failing
// call, and the median time of CUDA graph replays (how bptt's programs run).
#ifndef BPTT_BENCHMARKS_GPU_MICRO_COMMON_H
#define BPTT_BENCHMARKS_GPU_MICRO_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK(x)                                                               \
  do {                                                                         \
    cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess) {                                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,          \
                   cudaGetErrorString(e_));                                    \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)
#define CHECK_BLAS(x)                                                          \
  do {                                                                         \
    cublasStatus_t s_ = (x);                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                         \
      std::fprintf(stderr, "%s:%d: %s: status %d\n", __FILE__, __LINE__, #x,   \
                   int(s_));                                                   \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

// The stream graphs are captured on, and a cuBLAS handle bound to it with a
// workspace of its own (cuBLAS may not allocate during a capture).
struct BlasStream {
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *workspace;
  BlasStream() {
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CHECK_BLAS(cublasCreate(&blas));
    CHECK_BLAS(cublasSetStream(blas, stream));
    CHECK(cudaMalloc(&workspace, kWorkspaceBytes));
    CHECK_BLAS(cublasSetWorkspace(blas, workspace, kWorkspaceBytes));
  }
};

// A device buffer of n floats holding a fixed pattern in [-0.5, 0.5): value
// i is element i + shift of one sequence, so buffers with different shifts
// hold different data.
static float *patternBuffer(size_t n, size_t shift = 0) {
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i)
    host[i] = float(((i + shift) * 2654435761u) % 1000) / 1000.0f - 0.5f;
  float *device;
  CHECK(cudaMalloc(&device, n * sizeof(float)));
  CHECK(cudaMemcpy(device, host.data(), n * sizeof(float),
                   cudaMemcpyHostToDevice));
  return device;
}

// The largest difference between `got` and `want`, relative to the largest
// magnitude in `want`.
static float maxRelErr(const std::vector<float> &got,
                       const std::vector<float> &want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num = std::max(num, std::fabs(double(got[i]) - want[i]));
    den = std::max(den, std::fabs(double(want[i])));
  }
  return float(num / std::max(den, 1e-30));
}

// One k of a register-tiled product: acc[i][j] += a[i] * b[j] for the RM
// values at `a` and the RN values at `b` (each a multiple of four, read as
// 16-byte vectors), with fused multiply-adds.
template <int RM, int RN>
__device__ __forceinline__ void outerProductFma(float (&acc)[RM][RN],
                                                const float *a,
                                                const float *b) {
  float ra[RM], rb[RN];
#pragma unroll
  for (int i = 0; i < RM; i += 4)
    *reinterpret_cast<float4 *>(&ra[i]) =
        *reinterpret_cast<const float4 *>(a + i);
#pragma unroll
  for (int j = 0; j < RN; j += 4)
    *reinterpret_cast<float4 *>(&rb[j]) =
        *reinterpret_cast<const float4 *>(b + j);
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; ++j)
      acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
}

// Median milliseconds of one replay, over `replays` timed replays (after
// three untimed ones), of the graph captured from `body` on `s` and
// instantiated with `flags`.
template <typename F>
static double timeGraph(cudaStream_t s, F body, int replays,
                        unsigned long long flags = 0) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  body();
  CHECK(cudaStreamEndCapture(s, &graph));
  CHECK(cudaGraphInstantiateWithFlags(&exec, graph, flags));
  for (int i = 0; i < 3; ++i)
    CHECK(cudaGraphLaunch(exec, s));
  CHECK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int i = 0; i < replays; ++i) {
    CHECK(cudaEventRecord(a, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float t;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  return ms[ms.size() / 2];
}

#endif // BPTT_BENCHMARKS_GPU_MICRO_COMMON_H
