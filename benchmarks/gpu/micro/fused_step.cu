// Whether one kernel per LSTM forward step (the recurrent product h·W_hh and
// the cell together), or one persistent kernel per forward run (W_hh's
// columns kept in shared memory, a grid barrier between steps), beats what
// bptt's programs run today: a cuBLAS product plus an elementwise cell
// kernel. Decides whether bptt-lower-to-gpu should generate such kernels
// (docs/gpu.md, "Where the time goes"; results in
// benchmarks/results/gpu/fused-step-*.txt).
//
// Each block owns U hidden units: the 4U gate columns {q·H + u} that the
// cell of those units reads, for all M batch rows, so the cell runs in the
// same block as the product that feeds it. Its threads split K into KS
// groups; a thread accumulates a TM x TN tile of its group's partial sums,
// reading h transposed (rows contiguous) and W's columns from shared memory.
//
//   nvcc -O3 -arch=sm_90 fused_step.cu -lcublas -o fused_step
//   ./fused_step
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "common.h"

#include <cmath>
#include <cstdio>
#include <vector>

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + __expf(-x));
}

// The cell of bptt's LSTM (gates i, f, g, o in column blocks of H).
__device__ __forceinline__ void cell(float gi, float gf, float gg, float go,
                                     float c, float &cOut, float &hOut) {
  float i = 1.0f / (1.0f + expf(-gi)), f = 1.0f / (1.0f + expf(-gf));
  float g = tanhf(gg), o = 1.0f / (1.0f + expf(-go));
  cOut = f * c + i * g;
  hOut = o * tanhf(cOut);
}

// Baseline cell kernel: G already holds h·W_hh; adds S + bias, runs the cell.
__global__ void cellKernel(float *G, const float *S, const float *bias,
                           const float *c, float *cOut, float *hOut, int M,
                           int H) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= M * H)
    return;
  int m = idx / H, u = idx % H;
  float g[4];
  for (int q = 0; q < 4; ++q) {
    int col = q * H + u;
    g[q] = G[m * 4 * H + col] + S[m * 4 * H + col] + bias[col];
    G[m * 4 * H + col] = g[q];
  }
  cell(g[0], g[1], g[2], g[3], c[idx], cOut[idx], hOut[idx]);
}

template <int M, int K, int U, int KS, int TM, int TN, int KT>
struct Config {
  static constexpr int NC = 4 * U;                 // columns of a block
  static constexpr int groupThreads = kThreads / KS;
  static constexpr int rowGroups = M / TM, colGroups = NC / TN;
  static_assert(rowGroups * colGroups == groupThreads, "thread tiling");
  static constexpr int KG = KT / KS;               // k of a group per tile
  static constexpr int hStride = M + 4;            // padded, float4-aligned
  static constexpr int wFloats = K * NC;
  static constexpr int hFloats = KT * hStride;
  static constexpr int redFloats = KS * M * NC;
  static constexpr int smemFloats =
      wFloats + (hFloats > redFloats ? hFloats : redFloats);
  static constexpr int hLoads = M * KT / 4 / kThreads; // float4 per thread
  static_assert(hLoads >= 1 && (M * KT / 4) % kThreads == 0, "h tile");
};

// One step for the block's units: acc = h·W (columns of the block), then
// S + bias, the cell, G/h/c out. Ws already holds the block's W columns.
template <class C, int M, int K, int U, int KS, int TM, int TN, int KT>
__device__ __forceinline__ void
stepBody(float *smem, const float *__restrict__ hIn, const float *cIn,
         const float *S, const float *bias, float *G, float *hOut,
         float *cOut, int H, int m0, int cb) {
  hIn += size_t(m0) * K, cIn += size_t(m0) * H, hOut += size_t(m0) * H;
  cOut += size_t(m0) * H, S += size_t(m0) * 4 * H, G += size_t(m0) * 4 * H;
  float *Ws = smem;
  float *hT = smem + C::wFloats;
  const int tid = threadIdx.x;
  const int grp = tid / C::groupThreads, r = tid % C::groupThreads;
  const int rg = r % C::rowGroups, cg = r / C::rowGroups;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0.f;

  float4 pre[C::hLoads];
  auto loadTile = [&](int k0) {
#pragma unroll
    for (int l = 0; l < C::hLoads; ++l) {
      int f = tid + l * kThreads; // float4 index in the M x KT tile
      int m = f / (KT / 4), k4 = f % (KT / 4);
      pre[l] = *reinterpret_cast<const float4 *>(hIn + m * K + k0 + 4 * k4);
    }
  };
  auto storeTile = [&]() {
#pragma unroll
    for (int l = 0; l < C::hLoads; ++l) {
      int f = tid + l * kThreads;
      int m = f / (KT / 4), k4 = f % (KT / 4);
      hT[(4 * k4 + 0) * C::hStride + m] = pre[l].x;
      hT[(4 * k4 + 1) * C::hStride + m] = pre[l].y;
      hT[(4 * k4 + 2) * C::hStride + m] = pre[l].z;
      hT[(4 * k4 + 3) * C::hStride + m] = pre[l].w;
    }
  };
  loadTile(0);
  storeTile();
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += KT) {
    if (k0 + KT < K)
      loadTile(k0 + KT);
#pragma unroll 4
    for (int kk = 0; kk < C::KG; ++kk) {
      int k = grp * C::KG + kk;
      outerProductFma(acc, hT + k * C::hStride + rg * TM,
                      Ws + (k0 + k) * C::NC + cg * TN);
    }
    __syncthreads();
    if (k0 + KT < K) {
      storeTile();
      __syncthreads();
    }
  }
  // Partial sums of the KS groups, then the epilogue per (row, unit).
  float *red = hT;
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      red[(grp * M + rg * TM + i) * C::NC + cg * TN + j] = acc[i][j];
  __syncthreads();
  const int u0 = cb * U;
  for (int e = tid; e < M * U; e += kThreads) {
    int m = e / U, u = e % U;
    float g[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      float s = 0.f;
#pragma unroll
      for (int p = 0; p < KS; ++p)
        s += red[(p * M + m) * C::NC + q * U + u];
      int col = q * H + u0 + u;
      g[q] = s + S[m * 4 * H + col] + bias[col];
      G[m * 4 * H + col] = g[q];
    }
    cell(g[0], g[1], g[2], g[3], cIn[m * H + u0 + u], cOut[m * H + u0 + u],
         hOut[m * H + u0 + u]);
  }
  __syncthreads();
}

template <class C, int M, int K, int U>
__device__ __forceinline__ void loadW(float *Ws, const float *W, int H,
                                      int cb) {
  // W is K x 4H row-major; the block's column n = q·U + u is q·H + u0 + u.
  const int u0 = cb * U;
  for (int f = threadIdx.x; f < K * C::NC; f += kThreads) {
    int k = f / C::NC, n = f % C::NC;
    int q = n / U, u = n % U;
    Ws[f] = W[k * 4 * H + q * H + u0 + u];
  }
  __syncthreads();
}

template <int M, int K, int U, int KS, int TM, int TN, int KT>
__global__ void __launch_bounds__(kThreads)
    fusedStep(const float *W, const float *bias, const float *S,
              const float *hIn, const float *cIn, float *G, float *hOut,
              float *cOut) {
  using C = Config<M, K, U, KS, TM, TN, KT>;
  extern __shared__ __align__(16) float smem[];
  constexpr int H = K;
  loadW<C, M, K, U>(smem, W, H, blockIdx.x);
  stepBody<C, M, K, U, KS, TM, TN, KT>(smem, hIn, cIn, S, bias, G, hOut,
                                       cOut, H, 0, blockIdx.x);
}

// A grid barrier for co-resident blocks: a counter that grows by gridDim.x
// per barrier (zeroed before the launch).
__device__ __forceinline__ void gridBarrier(unsigned *counter,
                                            unsigned target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    while (atomicAdd(counter, 0u) < target) {
    }
    __threadfence();
  }
  __syncthreads();
}

// Blocks of MB rows: block x = column block x % (H / U), rows (x / (H / U))·MB.
template <int M, int K, int U, int KS, int TM, int TN, int KT, int MB>
__global__ void __launch_bounds__(kThreads)
    persistentRun(const float *W, const float *bias, const float *S,
                  float *h0, float *h1, float *c0, float *c1, float *G,
                  int steps, unsigned *counter) {
  using C = Config<MB, K, U, KS, TM, TN, KT>;
  extern __shared__ __align__(16) float smem[];
  constexpr int H = K;
  const int cb = blockIdx.x % (H / U), m0 = (blockIdx.x / (H / U)) * MB;
  loadW<C, MB, K, U>(smem, W, H, cb);
  for (int t = 0; t < steps; ++t) {
    float *hi = (t & 1) ? h1 : h0, *ho = (t & 1) ? h0 : h1;
    float *ci = (t & 1) ? c1 : c0, *co = (t & 1) ? c0 : c1;
    stepBody<C, MB, K, U, KS, TM, TN, KT>(smem, hi, ci,
                                          S + size_t(t) * M * 4 * H, bias,
                                          G + size_t(t) * M * 4 * H, ho, co, H,
                                          m0, cb);
    if (t + 1 < steps)
      gridBarrier(counter, (t + 1) * gridDim.x);
  }
}

// MB: rows per block of the persistent kernel (M / MB row blocks); the
// per-step kernel always takes all M rows.
template <int M, int K, int U, int KS, int TM, int TN, int KT, int MB = M,
          int PU = U, int PKS = KS, int PTM = TM, int PTN = TN, int PKT = KT>
static void run(const char *name, BlasStream &bs) {
  using C = Config<M, K, U, KS, TM, TN, KT>;
  using P = Config<MB, K, PU, PKS, PTM, PTN, PKT>;
  constexpr int H = K, N = 4 * H, maxSteps = 64;
  const size_t smemBytes = C::smemFloats * sizeof(float);
  const size_t pSmemBytes = P::smemFloats * sizeof(float);
  auto fused = fusedStep<M, K, U, KS, TM, TN, KT>;
  auto persistent = persistentRun<M, K, PU, PKS, PTM, PTN, PKT, MB>;
  CHECK(cudaFuncSetAttribute(fused, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             int(smemBytes)));
  CHECK(cudaFuncSetAttribute(persistent,
                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                             int(pSmemBytes)));
  int blocks = H / U, pBlocks = (H / PU) * (M / MB), perSm = 0, sms = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, persistent,
                                                      kThreads, pSmemBytes));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::printf("%s: M=%d H=%d U=%d KS=%d TM=%d TN=%d KT=%d: %d blocks, %zu B "
              "smem; persistent: %d rows x %d units a block, KS=%d TM=%d TN=%d KT=%d, "
              "%d blocks, %zu B smem, %d per SM, %d SMs\n",
              name, M, H, U, KS, TM, TN, KT, blocks, smemBytes, MB, PU, PKS, PTM,
              PTN, PKT, pBlocks, pSmemBytes, perSm, sms);
  if (perSm * sms < pBlocks) {
    std::printf("  blocks do not fit at once: skipped\n");
    return;
  }

  std::vector<float> hW(size_t(K) * N), hb(N), hS(size_t(maxSteps) * M * N),
      hh(size_t(M) * H), hc(size_t(M) * H);
  unsigned seed = 1;
  auto rnd = [&] {
    seed = seed * 1664525u + 1013904223u;
    return (seed >> 8) * (1.0f / 16777216.0f) - 0.5f;
  };
  for (float &v : hW) v = rnd() * 0.1f;
  for (float &v : hb) v = rnd();
  for (float &v : hS) v = rnd();
  for (float &v : hh) v = rnd();
  for (float &v : hc) v = rnd();
  float *W, *b, *S, *G, *h[2], *c[2];
  unsigned *counter;
  CHECK(cudaMalloc(&W, hW.size() * 4));
  CHECK(cudaMalloc(&b, hb.size() * 4));
  CHECK(cudaMalloc(&S, hS.size() * 4));
  CHECK(cudaMalloc(&G, hS.size() * 4));
  for (int i = 0; i < 2; ++i) {
    CHECK(cudaMalloc(&h[i], hh.size() * 4));
    CHECK(cudaMalloc(&c[i], hc.size() * 4));
  }
  CHECK(cudaMalloc(&counter, 4));
  CHECK(cudaMemcpy(W, hW.data(), hW.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b, hb.data(), hb.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(S, hS.data(), hS.size() * 4, cudaMemcpyHostToDevice));
  auto reset = [&] {
    CHECK(cudaMemcpy(h[0], hh.data(), hh.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(c[0], hc.data(), hc.size() * 4, cudaMemcpyHostToDevice));
  };
  auto fetchH = [&](int steps) {
    std::vector<float> out(hh.size());
    CHECK(cudaMemcpy(out.data(), h[steps & 1], out.size() * 4,
                     cudaMemcpyDeviceToHost));
    return out;
  };
  const float one = 1.f, zero = 0.f;
  // Baseline: G_t = h·W (cuBLAS, column-major view: G^T = W^T h^T), then
  // the cell kernel adds S_t + bias.
  auto baseline = [&](int steps) {
    for (int t = 0; t < steps; ++t) {
      float *Gt = G + size_t(t) * M * N;
      CHECK_BLAS(cublasGemmEx(bs.blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one,
                              W, CUDA_R_32F, N, h[t & 1], CUDA_R_32F, K, &zero,
                              Gt, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
      cellKernel<<<(M * H + 255) / 256, 256, 0, bs.stream>>>(
          Gt, S + size_t(t) * M * N, b, c[t & 1], c[(t + 1) & 1],
          h[(t + 1) & 1], M, H);
    }
  };
  auto perStep = [&](int steps) {
    for (int t = 0; t < steps; ++t)
      fused<<<blocks, kThreads, smemBytes, bs.stream>>>(
          W, b, S + size_t(t) * M * N, h[t & 1], c[t & 1],
          G + size_t(t) * M * N, h[(t + 1) & 1], c[(t + 1) & 1]);
  };
  auto persistentLaunch = [&](int steps) {
    CHECK(cudaMemsetAsync(counter, 0, 4, bs.stream));
    persistent<<<pBlocks, kThreads, pSmemBytes, bs.stream>>>(
        W, b, S, h[0], h[1], c[0], c[1], G, steps, counter);
  };

  for (int steps : {1, 4, 16, 64}) {
    reset();
    baseline(steps);
    CHECK(cudaStreamSynchronize(bs.stream));
    std::vector<float> ref = fetchH(steps);
    reset();
    perStep(steps);
    CHECK(cudaStreamSynchronize(bs.stream));
    float errStep = maxRelErr(fetchH(steps), ref);
    reset();
    persistentLaunch(steps);
    CHECK(cudaStreamSynchronize(bs.stream));
    float errRun = maxRelErr(fetchH(steps), ref);
    double tb = timeGraph(bs.stream, [&] { baseline(steps); }, 50) * 1e3 / steps;
    double tf = timeGraph(bs.stream, [&] { perStep(steps); }, 50) * 1e3 / steps;
    double tp =
        timeGraph(bs.stream, [&] { persistentLaunch(steps); }, 50) * 1e3 /
        steps;
    std::printf("  run of %2d steps, us per step: cublas+cell %6.2f | fused "
                "step %6.2f (%.2fx, err %.1e) | persistent %6.2f (%.2fx, err "
                "%.1e)\n",
                steps, tb, tf, tb / tf, errStep, tp, tb / tp, errRun);
  }
  for (float *p : {W, b, S, G, h[0], h[1], c[0], c[1]})
    CHECK(cudaFree(p));
  CHECK(cudaFree(counter));
}

int main() {
  BlasStream bs;
  // B = 64, H = 512: 128 blocks of 4 units (16 columns).
  run<64, 512, 4, 4, 4, 4, 64>("B64 a", bs);
  run<64, 512, 4, 8, 8, 4, 64>("B64 d", bs);
  // Persistent kernels over row blocks (16 rows x 16 units, 32 rows x 8
  // units): each block reads a part of h per step.
  run<64, 512, 4, 4, 4, 4, 64, 16, 16, 4, 4, 4, 512>("B64 e", bs);
  run<64, 512, 4, 4, 4, 4, 64, 16, 16, 4, 4, 4, 128>("B64 f", bs);
  run<64, 512, 4, 4, 4, 4, 64, 32, 8, 4, 4, 4, 128>("B64 g", bs);
  // B = 128, H = 1024: 128 blocks of 8 units (32 columns).
  run<128, 1024, 8, 4, 8, 8, 64>("B128 c", bs);
  std::printf("done\n");
  return 0;
}
