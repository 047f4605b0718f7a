// What a forward step's input projection costs when it is computed for one
// step at a time (`--input-chunk 1`: no projection buffer in the working
// set): gates = x_t W_ih + b_ih + b_hh, then gates += h W_hh. Today the
// seed b_ih + b_hh is a fill kernel and both products are cuBLAS calls that
// accumulate onto it. Against it: cuBLAS with beta = 0 (what a call that
// adds the seed in its epilogue would cost at best), and generated-style
// kernels (lib/Conversion/SmallProducts.cpp's structure: a flat grid of
// TM x TN output tiles, BK rows of k staged in one of two shared-memory
// buffers while the next are read, an RM x RN register tile a thread) that
// read x_t row-major (staged transposed) and add the seed in their epilogue.
// Each variant runs as a CUDA graph of 32 steps, alone and followed by the
// step's recurrent product h W_hh (beta = 1), as the programs run.
//
//   nvcc -O3 -arch=sm_90 -std=c++17 input_projection.cu -lcublas -o input_projection
//   ./input_projection
#include "common.h"

#include <functional>
#include <string>

namespace {

constexpr int kSteps = 32;

// Row-major gates [M x N] = x [M x K] (rows ldx apart) W [K x N] + b1 + b2.
struct Projection {
  const float *x, *w, *b1, *b2;
  float *c;
  int m, n, k, ldx;
};

template <int TM, int TN, int RM, int RN, int BK>
__global__ void __launch_bounds__((TM / RM) * (TN / RN))
    projectionKernel(Projection p) {
  constexpr int kThreads = (TM / RM) * (TN / RN);
  constexpr int kA = TM * BK / 4 / kThreads; // float4 of x a thread stages
  constexpr int kB = BK * TN / 4 / kThreads; // float4 of W
  static_assert(kA >= 1 && kB >= 1 && TM * BK / 4 % kThreads == 0 &&
                    BK * TN / 4 % kThreads == 0,
                "every thread stages whole vectors");
  __shared__ __align__(16) float as[2][BK][TM];
  __shared__ __align__(16) float bs[2][BK][TN];
  const int tid = threadIdx.x;
  const int tx = tid % (TN / RN), ty = tid / (TN / RN);
  const int tilesN = p.n / TN;
  const int m0 = (blockIdx.x / tilesN) * TM, n0 = (blockIdx.x % tilesN) * TN;
  float4 ra[kA], rb[kB];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < kA; ++i) {
      int e = tid + i * kThreads, m = e / (BK / 4), kq = e % (BK / 4);
      ra[i] = *reinterpret_cast<const float4 *>(p.x + size_t(m0 + m) * p.ldx +
                                                k0 + 4 * kq);
    }
#pragma unroll
    for (int i = 0; i < kB; ++i) {
      int e = tid + i * kThreads, k = e / (TN / 4), nq = e % (TN / 4);
      rb[i] = *reinterpret_cast<const float4 *>(p.w + size_t(k0 + k) * p.n +
                                                n0 + 4 * nq);
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kA; ++i) {
      int e = tid + i * kThreads, m = e / (BK / 4), kq = e % (BK / 4);
      as[buf][4 * kq + 0][m] = ra[i].x;
      as[buf][4 * kq + 1][m] = ra[i].y;
      as[buf][4 * kq + 2][m] = ra[i].z;
      as[buf][4 * kq + 3][m] = ra[i].w;
    }
#pragma unroll
    for (int i = 0; i < kB; ++i) {
      int e = tid + i * kThreads, k = e / (TN / 4), nq = e % (TN / 4);
      *reinterpret_cast<float4 *>(&bs[buf][k][4 * nq]) = rb[i];
    }
  };
  float acc[RM][RN] = {};
  fetch(0);
  stash(0);
  __syncthreads();
  for (int k0 = 0, buf = 0; k0 < p.k; k0 += BK, buf ^= 1) {
    fetch(min(k0 + BK, p.k - BK));
#pragma unroll
    for (int k = 0; k < BK; ++k)
      outerProductFma<RM, RN>(acc, &as[buf][k][ty * RM], &bs[buf][k][tx * RN]);
    stash(buf ^ 1);
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < RN; j += 4) {
    int n = n0 + tx * RN + j;
    float4 s1 = *reinterpret_cast<const float4 *>(p.b1 + n);
    float4 s2 = *reinterpret_cast<const float4 *>(p.b2 + n);
    float4 seed = make_float4(s1.x + s2.x, s1.y + s2.y, s1.z + s2.z,
                              s1.w + s2.w);
#pragma unroll
    for (int i = 0; i < RM; ++i) {
      float4 out = make_float4(seed.x + acc[i][j], seed.y + acc[i][j + 1],
                               seed.z + acc[i][j + 2], seed.w + acc[i][j + 3]);
      *reinterpret_cast<float4 *>(p.c + size_t(m0 + ty * RM + i) * p.n + n) =
          out;
    }
  }
}

template <int TM, int TN, int RM, int RN, int BK>
void launchProjection(cudaStream_t s, const Projection &p) {
  projectionKernel<TM, TN, RM, RN, BK>
      <<<(p.m / TM) * (p.n / TN), (TM / RM) * (TN / RN), 0, s>>>(p);
  CHECK(cudaGetLastError());
}

__global__ void seedKernel(const float *b1, const float *b2, float *c, int m,
                           int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < m * n)
    c[i] = b1[i % n] + b2[i % n];
}

// Row-major C [M x N] (+)= A [M x K] (rows lda apart) B [K x N], as cuBLAS's
// column-major C^T = B^T A^T.
void gemmNN(cublasHandle_t h, const float *a, int lda, const float *b,
            float *c, int m, int n, int k, float beta) {
  const float one = 1.0f;
  CHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, n, a,
                         lda, &beta, c, n));
}

std::vector<float> fetchHost(const float *device, size_t n) {
  std::vector<float> host(n);
  CHECK(cudaMemcpy(host.data(), device, n * 4, cudaMemcpyDeviceToHost));
  return host;
}

void runConfig(int rows, int B, int H, int V) {
  BlasStream s;
  const int N = 4 * H, ldx = 2 * V; // x_t is the first V of 2V columns
  float *xs = patternBuffer(size_t(rows) * ldx, 1),
        *wih = patternBuffer(size_t(V) * N, 2), *b1 = patternBuffer(N, 3),
        *b2 = patternBuffer(N, 4), *h = patternBuffer(size_t(B) * H, 5),
        *whh = patternBuffer(size_t(H) * N, 6);
  float *ref, *got, *gates;
  CHECK(cudaMalloc(&ref, size_t(rows) * N * 4));
  CHECK(cudaMalloc(&got, size_t(rows) * N * 4));
  CHECK(cudaMalloc(&gates, size_t(B) * N * 4));
  Projection p{xs, wih, b1, b2, got, rows, N, V, ldx};
  auto cublasSeeded = [&](float *c) {
    seedKernel<<<(rows * N + 255) / 256, 256, 0, s.stream>>>(b1, b2, c, rows,
                                                              N);
    CHECK(cudaGetLastError());
    gemmNN(s.blas, xs, ldx, wih, c, rows, N, V, 1.0f);
  };
  cublasSeeded(ref);
  CHECK(cudaStreamSynchronize(s.stream));
  std::vector<float> want = fetchHost(ref, size_t(rows) * N);
  // The step's recurrent product onto a B-row block of the projection.
  auto recurrent = [&](float *c) {
    gemmNN(s.blas, h, H, whh, c, B, N, H, 1.0f);
  };
  auto report = [&](const std::string &name, std::function<void()> proj,
                    double err) {
    double alone = timeGraph(
        s.stream, [&] { for (int i = 0; i < kSteps; ++i) proj(); }, 20);
    double step = timeGraph(
        s.stream,
        [&] {
          for (int i = 0; i < kSteps; ++i) {
            proj();
            recurrent(got);
          }
        },
        20);
    std::printf("  %-36s %7.2f us (with h W_hh after it: %7.2f us) err %.1e\n",
                name.c_str(), alone * 1e3 / kSteps, step * 1e3 / kSteps, err);
  };
  std::printf("rows %d (B = %d), K = V = %d, N = 4H = %d\n", rows, B, V, N);
  double recurrentAlone = timeGraph(
      s.stream, [&] { for (int i = 0; i < kSteps; ++i) recurrent(gates); }, 20);
  std::printf("  h W_hh alone (beta 1)                %7.2f us\n",
              recurrentAlone * 1e3 / kSteps);
  report("seed kernel + cuBLAS beta 1 (today)", [&] { cublasSeeded(got); }, 0);
  report("cuBLAS beta 0, no seed",
         [&] { gemmNN(s.blas, xs, ldx, wih, got, rows, N, V, 0.0f); }, -1);
  using Launch = void (*)(cudaStream_t, const Projection &);
  struct Kernel {
    const char *name;
    Launch launch;
  };
  Kernel kernels[] = {
      {"64x64, 8x4, BK 16", launchProjection<64, 64, 8, 4, 16>},
      {"64x64, 4x4, BK 16", launchProjection<64, 64, 4, 4, 16>},
      {"32x64, 4x4, BK 16", launchProjection<32, 64, 4, 4, 16>},
      {"32x64, 4x4, BK 32", launchProjection<32, 64, 4, 4, 32>},
      {"64x32, 8x4, BK 16", launchProjection<64, 32, 8, 4, 16>},
      {"32x32, 4x4, BK 16", launchProjection<32, 32, 4, 4, 16>},
      {"32x128, 4x4, BK 32", launchProjection<32, 128, 4, 4, 32>},
      {"16x64, 4x4, BK 16", launchProjection<16, 64, 4, 4, 16>},
      {"64x128, 8x4, BK 16", launchProjection<64, 128, 8, 4, 16>},
  };
  for (const Kernel &k : kernels) {
    CHECK(cudaMemset(got, 0, size_t(rows) * N * 4));
    k.launch(s.stream, p);
    CHECK(cudaStreamSynchronize(s.stream));
    double err = maxRelErr(fetchHost(got, size_t(rows) * N), want);
    report(k.name, [&] { k.launch(s.stream, p); }, err);
  }
}

} // namespace

int main() {
  runConfig(64, 64, 512, 128);
  runConfig(128, 64, 512, 128);
  runConfig(128, 128, 1024, 128);
  runConfig(256, 128, 1024, 128);
  return 0;
}
