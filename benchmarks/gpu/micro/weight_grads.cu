// What a backward step's parameter-gradient products cost when they run one
// after another (today: dW_hh += h^T dgates, dW_ih += x^T dgates,
// dW_out += h'^T dlogits, each a cuBLAS call with K = B), against the same
// three in one grouped call (cublasSgemmGroupedBatched, one launch for all
// shapes), on three forked streams (graph branches that may share the
// SMs), and as one generated kernel over all three products' output tiles
// (several tile shapes, with one shared-memory stage or two pipelined
// ones; bptt's small-product kernel, lib/Conversion/SmallProducts.cpp, is
// the "piped 64x64, 8x4, BK 16, C first" one). The step's recurrent product
// dh = dgates W_hh^T, which the next step
// waits for, is timed alone and with the three beside it. Each variant is a
// CUDA graph of 32 steps (as the programs run); times are per step.
//
//   nvcc -O3 -arch=sm_90 -std=c++17 weight_grads.cu -lcublas -o weight_grads
//   ./weight_grads
#include "common.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

namespace {

constexpr int kSteps = 32;

// Row-major C[M x N] += A^T B with A [K x M] and B [K x N] (a weight
// gradient over K batch rows), as cuBLAS's column-major
// C^T = B^T A: op(B) = N with ld N, op(A) = T with ld M.
struct Product {
  const float *a, *b;
  float *c;
  int m, n, k;
};

void gemmAtB(cublasHandle_t h, const Product &p) {
  const float one = 1.0f;
  CHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, p.n, p.m, p.k, &one,
                         p.b, p.n, p.a, p.m, &one, p.c, p.n));
}

// Row-major dh [B x H] = dgates [B x 4H] W_hh^T with W_hh [H x 4H]: as
// cuBLAS's column-major dh^T (H x B) = op_T(W_hh seen as 4H x H) times
// dgates seen as 4H x B.
void gemmDh(cublasHandle_t h, const float *dgates, const float *w, float *dh,
            int B, int H) {
  const float one = 1.0f, zero = 0.0f;
  CHECK_BLAS(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, H, B, 4 * H, &one, w,
                         4 * H, dgates, 4 * H, &zero, dh, H));
}


// The three products as one generated kernel: a flat grid of TM x TN output
// tiles over all three (the blocks of product i follow those of i - 1),
// each block staging BK rows of its A and B tiles in shared memory and each
// thread summing an RM x RN register tile over k in order, then adding it
// to C (what bptt's kernel would do; M, N multiples of the tile, K of BK).
struct FusedTable {
  Product p[3];
  int tilesN[3];
  int first[4]; // first block of each product, and the total
};

// The three products' tiles of TM x TN, numbered product after product.
template <int TM, int TN>
FusedTable tableOf(const std::array<Product, 3> &ps) {
  FusedTable t;
  t.first[0] = 0;
  for (int i = 0; i < 3; ++i) {
    t.p[i] = ps[i];
    t.tilesN[i] = ps[i].n / TN;
    t.first[i + 1] = t.first[i] + (ps[i].m / TM) * t.tilesN[i];
  }
  return t;
}

// The product and the TM x TN output tile of this block (blocks of product
// i follow those of i - 1).
template <int TM, int TN> struct BlockTile {
  Product p;
  int m0, n0;
  __device__ explicit BlockTile(const FusedTable &t) {
    int tile = blockIdx.x;
    int which = tile >= t.first[2] ? 2 : tile >= t.first[1] ? 1 : 0;
    p = t.p[which];
    int local = tile - t.first[which];
    m0 = (local / t.tilesN[which]) * TM;
    n0 = (local % t.tilesN[which]) * TN;
  }
};

template <int TM, int TN, int RM, int RN, int BK>
__global__ void __launch_bounds__((TM / RM) * (TN / RN))
    fusedAtB(FusedTable t) {
  constexpr int kThreads = (TM / RM) * (TN / RN);
  __shared__ __align__(16) float As[BK][TM];
  __shared__ __align__(16) float Bs[BK][TN];
  const BlockTile<TM, TN> bt(t);
  const Product &p = bt.p;
  const int m0 = bt.m0, n0 = bt.n0;
  int tid = threadIdx.x;
  int tx = tid % (TN / RN), ty = tid / (TN / RN);
  float acc[RM][RN] = {};
  for (int k0 = 0; k0 < p.k; k0 += BK) {
    for (int i = tid; i < BK * TM / 4; i += kThreads) {
      int k = i / (TM / 4), c = i % (TM / 4);
      reinterpret_cast<float4 *>(&As[k][0])[c] =
          *reinterpret_cast<const float4 *>(p.a + size_t(k0 + k) * p.m + m0 + 4 * c);
    }
    for (int i = tid; i < BK * TN / 4; i += kThreads) {
      int k = i / (TN / 4), c = i % (TN / 4);
      reinterpret_cast<float4 *>(&Bs[k][0])[c] =
          *reinterpret_cast<const float4 *>(p.b + size_t(k0 + k) * p.n + n0 + 4 * c);
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < BK; ++k)
      outerProductFma(acc, &As[k][ty * RM], &Bs[k][tx * RN]);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int j = 0; j < RN; j += 4) {
      float4 *c = reinterpret_cast<float4 *>(
          p.c + size_t(m0 + ty * RM + i) * p.n + n0 + tx * RN + j);
      float4 v = *c;
      v.x += acc[i][j];
      v.y += acc[i][j + 1];
      v.z += acc[i][j + 2];
      v.w += acc[i][j + 3];
      *c = v;
    }
}

template <int TM, int TN, int RM, int RN, int BK>
void launchFused(cudaStream_t s, const std::array<Product, 3> &ps) {
  FusedTable t = tableOf<TM, TN>(ps);
  fusedAtB<TM, TN, RM, RN, BK>
      <<<t.first[3], (TM / RM) * (TN / RN), 0, s>>>(t);
  CHECK(cudaGetLastError());
}

// The same products, pipelined: A and B tiles in two shared-memory buffers
// (the next BK rows are read from global memory into registers while the
// current ones are multiplied, then stored into the other buffer: one
// barrier a stage), and each thread's RM x RN tile split into 4 x 4
// quadrants TM / (RM / 4) rows and TN / (RN / 4) columns apart, so that a
// warp's 16-byte shared-memory reads hit distinct banks. Each element still
// sums its k in order, then adds the sum to C (bit for bit the plain
// kernel's results).
template <int TM, int TN, int RM, int RN, int BK, bool PrefetchC>
__global__ void __launch_bounds__((TM / RM) * (TN / RN))
    pipedAtB(FusedTable t) {
  constexpr int kThreads = (TM / RM) * (TN / RN);
  constexpr int kRowGroups = RM / 4, kColGroups = RN / 4;
  constexpr int kRowStride = TM / kRowGroups, kColStride = TN / kColGroups;
  constexpr int kLoadsA = BK * TM / 4 / kThreads, kLoadsB = BK * TN / 4 / kThreads;
  static_assert(kLoadsA * kThreads * 4 == BK * TM, "A tile split unevenly");
  static_assert(kLoadsB * kThreads * 4 == BK * TN, "B tile split unevenly");
  __shared__ __align__(16) float As[2][BK][TM];
  __shared__ __align__(16) float Bs[2][BK][TN];
  const BlockTile<TM, TN> bt(t);
  const Product &p = bt.p;
  const int m0 = bt.m0, n0 = bt.n0;
  int tid = threadIdx.x;
  int tx = tid % (TN / RN), ty = tid / (TN / RN);
  float4 ra[kLoadsA], rb[kLoadsB];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int l = 0; l < kLoadsA; ++l) {
      int i = tid + l * kThreads, k = i / (TM / 4), c = i % (TM / 4);
      ra[l] = *reinterpret_cast<const float4 *>(p.a + size_t(k0 + k) * p.m +
                                                m0 + 4 * c);
    }
#pragma unroll
    for (int l = 0; l < kLoadsB; ++l) {
      int i = tid + l * kThreads, k = i / (TN / 4), c = i % (TN / 4);
      rb[l] = *reinterpret_cast<const float4 *>(p.b + size_t(k0 + k) * p.n +
                                                n0 + 4 * c);
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int l = 0; l < kLoadsA; ++l) {
      int i = tid + l * kThreads, k = i / (TM / 4), c = i % (TM / 4);
      reinterpret_cast<float4 *>(&As[buf][k][0])[c] = ra[l];
    }
#pragma unroll
    for (int l = 0; l < kLoadsB; ++l) {
      int i = tid + l * kThreads, k = i / (TN / 4), c = i % (TN / 4);
      reinterpret_cast<float4 *>(&Bs[buf][k][0])[c] = rb[l];
    }
  };
  float acc[RM][RN] = {};
  // With PrefetchC, C's old values are read before the k loop, so that
  // their latency overlaps the arithmetic (at the cost of RM x RN
  // registers).
  float4 old[RM][kColGroups];
  auto cAt = [&](int i, int g) {
    int row = m0 + (i / 4) * kRowStride + ty * 4 + i % 4;
    return reinterpret_cast<float4 *>(p.c + size_t(row) * p.n + n0 +
                                      g * kColStride + tx * 4);
  };
  if (PrefetchC) {
#pragma unroll
    for (int i = 0; i < RM; ++i)
#pragma unroll
      for (int g = 0; g < kColGroups; ++g)
        old[i][g] = *cAt(i, g);
  }
  fetch(0);
  stash(0);
  __syncthreads();
  int stages = p.k / BK;
  for (int s = 0; s < stages; ++s) {
    int buf = s & 1;
    if (s + 1 < stages)
      fetch((s + 1) * BK);
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[RM], b[RN];
#pragma unroll
      for (int g = 0; g < kRowGroups; ++g)
        *reinterpret_cast<float4 *>(&a[4 * g]) = *reinterpret_cast<const float4 *>(
            &As[buf][k][g * kRowStride + ty * 4]);
#pragma unroll
      for (int g = 0; g < kColGroups; ++g)
        *reinterpret_cast<float4 *>(&b[4 * g]) = *reinterpret_cast<const float4 *>(
            &Bs[buf][k][g * kColStride + tx * 4]);
#pragma unroll
      for (int i = 0; i < RM; ++i)
#pragma unroll
        for (int j = 0; j < RN; ++j)
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (s + 1 < stages)
      stash(buf ^ 1);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < RM; ++i)
#pragma unroll
    for (int g = 0; g < kColGroups; ++g) {
      float4 *c = cAt(i, g);
      float4 v = PrefetchC ? old[i][g] : *c;
      v.x += acc[i][4 * g];
      v.y += acc[i][4 * g + 1];
      v.z += acc[i][4 * g + 2];
      v.w += acc[i][4 * g + 3];
      *c = v;
    }
}

template <int TM, int TN, int RM, int RN, int BK, bool PrefetchC = false>
void launchPiped(cudaStream_t s, const std::array<Product, 3> &ps) {
  FusedTable t = tableOf<TM, TN>(ps);
  pipedAtB<TM, TN, RM, RN, BK, PrefetchC>
      <<<t.first[3], (TM / RM) * (TN / RN), 0, s>>>(t);
  CHECK(cudaGetLastError());
}

struct Grouped {
  cublasOperation_t ta[3], tb[3];
  int m[3], n[3], k[3], lda[3], ldb[3], ldc[3], size[3];
  float alpha[3], beta[3];
  const float **A, **B;
  float **C;
  explicit Grouped(const Product (&p)[3]) {
    const float *ha[3], *hb[3];
    float *hc[3];
    for (int i = 0; i < 3; ++i) {
      ta[i] = CUBLAS_OP_N;
      tb[i] = CUBLAS_OP_T;
      m[i] = p[i].n;
      n[i] = p[i].m;
      k[i] = p[i].k;
      lda[i] = p[i].n;
      ldb[i] = p[i].m;
      ldc[i] = p[i].n;
      size[i] = 1;
      alpha[i] = beta[i] = 1.0f;
      ha[i] = p[i].b; // column-major A operand: the row-major B
      hb[i] = p[i].a;
      hc[i] = p[i].c;
    }
    CHECK(cudaMalloc(&A, sizeof(ha)));
    CHECK(cudaMalloc(&B, sizeof(hb)));
    CHECK(cudaMalloc(&C, sizeof(hc)));
    CHECK(cudaMemcpy(A, ha, sizeof(ha), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(B, hb, sizeof(hb), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(C, hc, sizeof(hc), cudaMemcpyHostToDevice));
  }
  void run(cublasHandle_t h) const {
    CHECK_BLAS(cublasSgemmGroupedBatched(h, ta, tb, m, n, k, alpha, A, lda, B,
                                         ldb, beta, C, ldc, 3, size));
  }
};

std::vector<float> fetch(const float *device, size_t n) {
  std::vector<float> host(n);
  CHECK(cudaMemcpy(host.data(), device, n * 4, cudaMemcpyDeviceToHost));
  return host;
}

void runConfig(int B, int H, int V) {
  BlasStream main, side[3];
  float *h = patternBuffer(size_t(B) * H, 1), *x = patternBuffer(size_t(B) * V, 2),
        *hp = patternBuffer(size_t(B) * H, 3),
        *dgates = patternBuffer(size_t(B) * 4 * H, 4),
        *dlogits = patternBuffer(size_t(B) * V, 5),
        *whh = patternBuffer(size_t(H) * 4 * H, 6);
  float *dh;
  CHECK(cudaMalloc(&dh, size_t(B) * H * 4));
  size_t sizes[3] = {size_t(H) * 4 * H, size_t(V) * 4 * H, size_t(H) * V};
  float *dw[2][3];
  for (int set = 0; set < 2; ++set)
    for (int i = 0; i < 3; ++i) {
      CHECK(cudaMalloc(&dw[set][i], sizes[i] * 4));
      CHECK(cudaMemset(dw[set][i], 0, sizes[i] * 4));
    }
  auto products = [&](int set) {
    return std::array<Product, 3>{
        Product{h, dgates, dw[set][0], H, 4 * H, B},
        Product{x, dgates, dw[set][1], V, 4 * H, B},
        Product{hp, dlogits, dw[set][2], H, V, B}};
  };
  std::array<Product, 3> seq = products(0), grp = products(1);
  Product grpArr[3] = {grp[0], grp[1], grp[2]};
  Grouped grouped(grpArr);

  // Correctness: the same accumulations both ways.
  for (int i = 0; i < 3; ++i)
    gemmAtB(main.blas, seq[i]);
  grouped.run(main.blas);
  CHECK(cudaStreamSynchronize(main.stream));
  double err = 0;
  for (int i = 0; i < 3; ++i)
    err = std::max(err, double(maxRelErr(fetch(dw[1][i], sizes[i]),
                                         fetch(dw[0][i], sizes[i]))));

  cudaEvent_t fork, join[3];
  CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  for (auto &e : join)
    CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  auto forked = [&](bool withDh) {
    CHECK(cudaEventRecord(fork, main.stream));
    for (int i = 0; i < 3; ++i) {
      CHECK(cudaStreamWaitEvent(side[i].stream, fork));
      gemmAtB(side[i].blas, seq[i]);
      CHECK(cudaEventRecord(join[i], side[i].stream));
    }
    if (withDh)
      gemmDh(main.blas, dgates, whh, dh, B, H);
    for (auto &e : join)
      CHECK(cudaStreamWaitEvent(main.stream, e));
  };

  struct Variant {
    std::string name;
    std::function<void()> step;
  };
  std::vector<Variant> variants = {
      {"dh alone", [&] { gemmDh(main.blas, dgates, whh, dh, B, H); }},
      {"3 weight products, one after another",
       [&] { for (auto &p : seq) gemmAtB(main.blas, p); }},
      {"3 weight products, one grouped call", [&] { grouped.run(main.blas); }},
      {"3 weight products, forked streams", [&] { forked(false); }},
      {"dh + 3, one after another",
       [&] {
         gemmDh(main.blas, dgates, whh, dh, B, H);
         for (auto &p : seq) gemmAtB(main.blas, p);
       }},
      {"dh + 3 grouped",
       [&] {
         gemmDh(main.blas, dgates, whh, dh, B, H);
         grouped.run(main.blas);
       }},
      {"dh beside the 3 on forked streams", [&] { forked(true); }},
  };
  std::printf("B = %d, H = %d, V = %d (grouped vs one after another: max "
              "relative difference %.2e)\n",
              B, H, V, err);
  // The generated kernels against cuBLAS, one accumulation each from zero.
  using Launch = void (*)(cudaStream_t, const std::array<Product, 3> &);
  struct Fused {
    const char *name;
    Launch launch;
  };
  Fused fused[] = {
      {"64x64 tiles, 4x4 a thread, BK 32", launchFused<64, 64, 4, 4, 32>},
      {"64x64 tiles, 8x4 a thread, BK 32", launchFused<64, 64, 8, 4, 32>},
      {"64x64 tiles, 8x8 a thread, BK 32", launchFused<64, 64, 8, 8, 32>},
      {"32x64 tiles, 4x4 a thread, BK 32", launchFused<32, 64, 4, 4, 32>},
      {"64x64 tiles, 4x4 a thread, BK 16", launchFused<64, 64, 4, 4, 16>},
      {"128x64 tiles, 8x4 a thread, BK 16", launchFused<128, 64, 8, 4, 16>},
      {"piped 64x64, 8x4, BK 32", launchPiped<64, 64, 8, 4, 32>},
      {"piped 64x64, 8x4, BK 16", launchPiped<64, 64, 8, 4, 16>},
      {"piped 64x64, 8x4, BK 8", launchPiped<64, 64, 8, 4, 8>},
      {"piped 64x64, 8x4, BK 16, C first", launchPiped<64, 64, 8, 4, 16, true>},
      {"piped 64x64, 8x4, BK 8, C first", launchPiped<64, 64, 8, 4, 8, true>},
      {"piped 32x64, 4x4, BK 16", launchPiped<32, 64, 4, 4, 16>},
      {"piped 64x32, 8x4, BK 16", launchPiped<64, 32, 8, 4, 16>},
      {"piped 64x64, 4x4, BK 16", launchPiped<64, 64, 4, 4, 16>},
      {"piped 64x64, 8x8, BK 16", launchPiped<64, 64, 8, 8, 16>},
      {"piped 128x64, 8x8, BK 16", launchPiped<128, 64, 8, 8, 16>},
      {"piped 128x64, 8x4, BK 16", launchPiped<128, 64, 8, 4, 16>},
      {"piped 128x128, 8x8, BK 8", launchPiped<128, 128, 8, 8, 8>},
      {"piped 128x128, 8x8, BK 16", launchPiped<128, 128, 8, 8, 16>},
      {"piped 64x128, 8x8, BK 16", launchPiped<64, 128, 8, 8, 16>},
  };
  for (const Fused &f : fused) {
    for (int set = 0; set < 2; ++set)
      for (int i = 0; i < 3; ++i)
        CHECK(cudaMemset(dw[set][i], 0, sizes[i] * 4));
    for (int i = 0; i < 3; ++i)
      gemmAtB(main.blas, seq[i]);
    f.launch(main.stream, grp);
    CHECK(cudaStreamSynchronize(main.stream));
    double ferr = 0;
    for (int i = 0; i < 3; ++i)
      ferr = std::max(ferr, double(maxRelErr(fetch(dw[1][i], sizes[i]),
                                             fetch(dw[0][i], sizes[i]))));
    double ms = timeGraph(
        main.stream,
        [&] { for (int s = 0; s < kSteps; ++s) f.launch(main.stream, grp); },
        20);
    double msDh = timeGraph(
        main.stream,
        [&] {
          for (int s = 0; s < kSteps; ++s) {
            gemmDh(main.blas, dgates, whh, dh, B, H);
            f.launch(main.stream, grp);
          }
        },
        20);
    std::printf("  3 in one kernel, %-34s %7.2f us/step (dh + it: %7.2f; "
                "max rel. diff. to cuBLAS %.2e)\n",
                f.name, ms * 1e3 / kSteps, msDh * 1e3 / kSteps, ferr);
  }
  for (auto &v : variants) {
    double ms = timeGraph(
        main.stream, [&] { for (int s = 0; s < kSteps; ++s) v.step(); }, 20);
    std::printf("  %-40s %7.2f us/step\n", v.name.c_str(), ms * 1e3 / kSteps);
  }
}

} // namespace

int main() {
  runConfig(64, 512, 128);
  runConfig(128, 1024, 128);
  return 0;
}
