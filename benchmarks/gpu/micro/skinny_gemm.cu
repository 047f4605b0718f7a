// Whether a plain fp32 SIMT product with a deterministic split-K over a
// thread-block cluster beats cuBLAS on the LSTM benchmark's skinny products
// (a batch of 64 or 128 columns): cuBLAS's tiles leave most of the H100's
// 132 SMs idle there (m = 2048, n = 64 gives it 16 tiles), so its time is
// latency, not arithmetic. Each configuration (tile BM x BN, per-thread
// TM x TN, split S) is timed inside CUDA graph replays against
// cublasGemmEx's default, and checked against it.
//
//   nvcc -O3 -arch=sm_90 skinny_gemm.cu -lcublas -o skinny_gemm
//   ./skinny_gemm
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace cg = cooperative_groups;

// Column-major C[m x n] = alpha op(A) op(B) + beta C, as cublasSgemm.
// Block (x, y, z): rows [x BM, +BM), columns [y BN, +BN), the z-th of S
// slices of k; the S blocks of a cluster sum their partial tiles through
// distributed shared memory in a fixed order (deterministic).
template <int BM, int BN, int BK, int TM, int TN, bool TA, bool TB>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    sgemm(const float *__restrict__ A, const float *__restrict__ B,
          float *__restrict__ C, int m, int n, int k, int lda, int ldb,
          int ldc, float alpha, float beta, int split) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int tileFloats = 2 * BK * (BM + BN);
  constexpr int redFloats = BM * BN;
  __shared__ __align__(16) float smem[tileFloats > redFloats ? tileFloats
                                                             : redFloats];
  float(*As)[BK][BM] = reinterpret_cast<float(*)[BK][BM]>(smem);
  float(*Bs)[BK][BN] =
      reinterpret_cast<float(*)[BK][BN]>(smem + 2 * BK * BM);

  const int tid = threadIdx.x;
  const int tx = tid % (BM / TM), ty = tid / (BM / TM);
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int kLen = k / split, kBegin = blockIdx.z * kLen;

  // Each thread moves LA (LB) float4 of the A (B) tile per k-step.
  constexpr int LA = BM * BK / 4 / NT, LB = BN * BK / 4 / NT;
  static_assert(LA >= 1 && LB >= 1, "tile too small for the threads");
  float4 ra[LA], rb[LB];

  auto loadA = [&](int kt) {
#pragma unroll
    for (int l = 0; l < LA; ++l) {
      int f = tid + l * NT;
      if (!TA) { // A[i + p lda], i contiguous: float4 along i
        int p = f / (BM / 4), i = (f % (BM / 4)) * 4;
        ra[l] = *reinterpret_cast<const float4 *>(
            A + (m0 + i) + size_t(kt + p) * lda);
      } else { // A[p + i lda], p contiguous: float4 along p
        int i = f / (BK / 4), p = (f % (BK / 4)) * 4;
        ra[l] = *reinterpret_cast<const float4 *>(
            A + (kt + p) + size_t(m0 + i) * lda);
      }
    }
  };
  auto storeA = [&](int buf) {
#pragma unroll
    for (int l = 0; l < LA; ++l) {
      int f = tid + l * NT;
      if (!TA) {
        int p = f / (BM / 4), i = (f % (BM / 4)) * 4;
        *reinterpret_cast<float4 *>(&As[buf][p][i]) = ra[l];
      } else {
        int i = f / (BK / 4), p = (f % (BK / 4)) * 4;
        As[buf][p + 0][i] = ra[l].x;
        As[buf][p + 1][i] = ra[l].y;
        As[buf][p + 2][i] = ra[l].z;
        As[buf][p + 3][i] = ra[l].w;
      }
    }
  };
  auto loadB = [&](int kt) {
#pragma unroll
    for (int l = 0; l < LB; ++l) {
      int f = tid + l * NT;
      if (!TB) { // B[p + j ldb], p contiguous
        int j = f / (BK / 4), p = (f % (BK / 4)) * 4;
        rb[l] = *reinterpret_cast<const float4 *>(
            B + (kt + p) + size_t(n0 + j) * ldb);
      } else { // B[j + p ldb], j contiguous
        int p = f / (BN / 4), j = (f % (BN / 4)) * 4;
        rb[l] = *reinterpret_cast<const float4 *>(
            B + (n0 + j) + size_t(kt + p) * ldb);
      }
    }
  };
  auto storeB = [&](int buf) {
#pragma unroll
    for (int l = 0; l < LB; ++l) {
      int f = tid + l * NT;
      if (!TB) {
        int j = f / (BK / 4), p = (f % (BK / 4)) * 4;
        Bs[buf][p + 0][j] = rb[l].x;
        Bs[buf][p + 1][j] = rb[l].y;
        Bs[buf][p + 2][j] = rb[l].z;
        Bs[buf][p + 3][j] = rb[l].w;
      } else {
        int p = f / (BN / 4), j = (f % (BN / 4)) * 4;
        *reinterpret_cast<float4 *>(&Bs[buf][p][j]) = rb[l];
      }
    }
  };

  float acc[TM][TN] = {};
  loadA(kBegin);
  loadB(kBegin);
  storeA(0);
  storeB(0);
  __syncthreads();
  int buf = 0;
  for (int kt = kBegin; kt < kBegin + kLen; kt += BK) {
    bool more = kt + BK < kBegin + kLen;
    if (more) {
      loadA(kt + BK);
      loadB(kt + BK);
    }
#pragma unroll
    for (int p = 0; p < BK; ++p)
      outerProductFma(acc, &As[buf][p][tx * TM], &Bs[buf][p][ty * TN]);
    if (more) {
      storeA(buf ^ 1);
      storeB(buf ^ 1);
    }
    __syncthreads();
    buf ^= 1;
  }

  auto finish = [&](int i, int j, float v) {
    float *c = C + (m0 + i) + size_t(n0 + j) * ldc;
    *c = beta == 0.0f ? alpha * v : alpha * v + beta * *c;
  };
  if (split == 1) {
#pragma unroll
    for (int j = 0; j < TN; ++j)
#pragma unroll
      for (int i = 0; i < TM; ++i)
        finish(tx * TM + i, ty * TN + j, acc[i][j]);
    return;
  }
  // The partial tile, column-major, in this block's shared memory.
#pragma unroll
  for (int j = 0; j < TN; ++j)
#pragma unroll
    for (int i = 0; i < TM; ++i)
      smem[(ty * TN + j) * BM + tx * TM + i] = acc[i][j];
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  // Rank r sums elements [r E/S, (r+1) E/S) of the S partial tiles, in rank
  // order.
  const int rank = cluster.block_rank();
  const int per = BM * BN / split;
  for (int e = rank * per + tid; e < (rank + 1) * per; e += NT) {
    float v = 0.0f;
    for (int s = 0; s < split; ++s)
      v += cluster.map_shared_rank(smem, s)[e];
    finish(e % BM, e / BM, v);
  }
  cluster.sync();
}

struct Shape {
  const char *name;
  int m, n, k;
  bool ta, tb;
};

struct Config {
  std::string name;
  int bm, bn, threads;
  // Launches the kernel for (ta, tb); null when not instantiated.
  std::function<void(const Shape &, const float *, const float *, float *,
                     float, int, cudaStream_t)>
      launch;
};

template <int BM, int BN, int BK, int TM, int TN>
static Config makeConfig() {
  Config c;
  c.name = std::to_string(BM) + "x" + std::to_string(BN) + "/" +
           std::to_string(TM) + "x" + std::to_string(TN) + " bk" +
           std::to_string(BK);
  c.bm = BM;
  c.bn = BN;
  c.threads = (BM / TM) * (BN / TN);
  c.launch = [](const Shape &g, const float *a, const float *b, float *cc,
                float beta, int split, cudaStream_t s) {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(g.m / BM, g.n / BN, split);
    config.blockDim = dim3((BM / TM) * (BN / TN));
    config.stream = s;
    cudaLaunchAttribute attribute;
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = 1;
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = split;
    config.attrs = &attribute;
    config.numAttrs = 1;
    int lda = g.ta ? g.k : g.m, ldb = g.tb ? g.n : g.k;
    float one = 1.0f;
    if (!g.ta && !g.tb)
      CHECK(cudaLaunchKernelEx(&config, sgemm<BM, BN, BK, TM, TN, false, false>,
                               a, b, cc, g.m, g.n, g.k, lda, ldb, g.m, one,
                               beta, split));
    else if (g.ta && !g.tb)
      CHECK(cudaLaunchKernelEx(&config, sgemm<BM, BN, BK, TM, TN, true, false>,
                               a, b, cc, g.m, g.n, g.k, lda, ldb, g.m, one,
                               beta, split));
    else if (!g.ta && g.tb)
      CHECK(cudaLaunchKernelEx(&config, sgemm<BM, BN, BK, TM, TN, false, true>,
                               a, b, cc, g.m, g.n, g.k, lda, ldb, g.m, one,
                               beta, split));
    else
      std::exit(2);
  };
  return c;
}

// Timed replays per graph (the median is reported).
constexpr int kReplays = 11;

int main() {
  BlasStream bs;
  cudaStream_t s = bs.stream;
  cublasHandle_t blas = bs.blas;

  const size_t big = size_t(16) << 20;
  float *p = patternBuffer(big), *q = patternBuffer(big, 12345), *r, *ref;
  CHECK(cudaMalloc(&r, big * 4));
  CHECK(cudaMalloc(&ref, big * 4));

  const Shape shapes[] = {
      {"fwd h B64", 2048, 64, 512, false, false},
      {"dh B64", 512, 64, 2048, true, false},
      {"logits B64", 128, 64, 512, false, false},
      {"dh-logits B64", 512, 64, 128, true, false},
      {"proj16 B64", 2048, 1024, 128, false, false},
      {"dW chunk16 B64", 2048, 512, 1024, false, true},
      {"fwd h B128", 4096, 128, 1024, false, false},
      {"dh B128", 1024, 128, 4096, true, false},
      {"logits B128", 128, 128, 1024, false, false},
      {"dh-logits B128", 1024, 128, 128, true, false},
  };
  std::vector<Config> configs = {
      makeConfig<64, 64, 16, 4, 4>(),  makeConfig<64, 32, 16, 4, 4>(),
      makeConfig<32, 64, 16, 4, 4>(),  makeConfig<128, 64, 16, 8, 4>(),
      makeConfig<64, 64, 16, 8, 4>(),  makeConfig<32, 32, 16, 4, 4>(),
      makeConfig<128, 32, 16, 8, 4>(), makeConfig<128, 64, 8, 8, 8>(),
      makeConfig<64, 64, 16, 8, 8>(),  makeConfig<64, 128, 16, 4, 8>(),
  };
  const int reps = 40;
  const float one = 1.0f;
  std::vector<float> got(big), want(big);
  for (const Shape &g : shapes) {
    int lda = g.ta ? g.k : g.m, ldb = g.tb ? g.n : g.k;
    auto blasCall = [&](float *c, float beta) {
      CHECK_BLAS(cublasGemmEx(blas, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k,
                              &one, p, CUDA_R_32F, lda, q, CUDA_R_32F, ldb,
                              &beta, c, CUDA_R_32F, g.m, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    };
    double blasUs = timeGraph(s, [&] {
      for (int i = 0; i < reps; ++i)
        blasCall(r, 1.0f);
    }, kReplays) * 1000.0 / reps;
    blasCall(ref, 0.0f);
    // The stream is non-blocking: cudaMemcpy on the legacy stream would not
    // wait for the product (the reference of the slowest shape was read
    // before cuBLAS had written it).
    CHECK(cudaStreamSynchronize(s));
    size_t outN = size_t(g.m) * g.n;
    CHECK(cudaMemcpy(want.data(), ref, outN * 4, cudaMemcpyDeviceToHost));
    double scale = 0;
    for (size_t i = 0; i < outN; ++i)
      scale = std::max(scale, double(std::fabs(want[i])));
    std::printf("%-16s m=%d n=%d k=%d %s%s: cublas %.2f us\n", g.name, g.m,
                g.n, g.k, g.ta ? "T" : "N", g.tb ? "T" : "N", blasUs);
    double bestUs = 1e30;
    std::string best;
    for (const Config &c : configs) {
      if (g.m % c.bm || g.n % c.bn)
        continue;
      for (int split : {1, 2, 4, 8}) {
        int blocks = (g.m / c.bm) * (g.n / c.bn) * split;
        if (g.k % (split * 16) || blocks > 132 * 8 || blocks < 16)
          continue;
        c.launch(g, p, q, r, 0.0f, split, s);
        CHECK(cudaStreamSynchronize(s));
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpy(got.data(), r, outN * 4, cudaMemcpyDeviceToHost));
        double err = 0;
        for (size_t i = 0; i < outN; ++i)
          err = std::max(err, double(std::fabs(got[i] - want[i])));
        double us = timeGraph(s, [&] {
          for (int i = 0; i < reps; ++i)
            c.launch(g, p, q, r, 1.0f, split, s);
        }, kReplays) * 1000.0 / reps;
        std::printf("  %-18s split %d: %4d blocks %6.2f us (%.2fx) err %.1e\n",
                    c.name.c_str(), split, blocks, us, blasUs / us,
                    err / scale);
        if (err / scale < 1e-5 && us < bestUs) {
          bestUs = us;
          best = c.name + " split " + std::to_string(split);
        }
      }
    }
    std::printf("  best: %s %.2f us, %.2fx cublas\n", best.c_str(), bestUs,
                blasUs / bestUs);
  }
  std::printf("done\n");
}
