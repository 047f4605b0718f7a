// What an LSTM forward step without a projection buffer (a recomputing step
// under a tight budget) costs in each arrangement of its two products, in
// CUDA graphs of runs of forward steps (h_t feeds step t+1):
//
//   serial   what bptt runs: x.W_ih + b_ih into the gates, then h.W_hh + b_hh
//            accumulated onto them (cuBLASLt's bias epilogue, split-k as
//            tuned), then the cell kernel;
//   fork     the two products into separate buffers on two streams (the
//            projection forked off, joined before the cell), the cell adding
//            them;
//   fork-pri the same with the recurrent product's stream at high priority
//            (graph instantiated with per-node priorities);
//   splitS   the recurrent product as S partial products over slices of K
//            (one strided-batched cuBLASLt call into a scratch of S partials,
//            no reduction kernel), the cell summing the partials, the
//            projection and b_hh; `+fork`: the projection forked off;
//   rec only the recurrent product and the cell alone (no projection): the
//            floor of what overlapping could reach (a different recurrence,
//            so its err is not a check).
//
// Each cuBLASLt call takes the fastest of the heuristic's first 8 candidates,
// timed alone in a graph, as the runtime's tuning does. The h after the run
// is checked against `serial`.
//
//   nvcc -O3 -arch=sm_90 -std=c++17 forward_overlap.cu -lcublasLt -lcublas -o forward_overlap
//   ./forward_overlap
#include <cublasLt.h>

#include "common.h"

#include <string>

namespace {

cublasLtHandle_t lt;
void *sideWorkspace;

// One cuBLASLt product D = op(A)·op(B) [+ beta·C] [+ bias over rows of the
// column-major m x n result], optionally batched over `batch` strided slices.
struct LtProduct {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize = 0;
  float beta = 0;
  LtProduct(cublasOperation_t ta, int m, int n, int k, int lda, int ldb,
            const float *bias, float beta, int batch = 1,
            long long strideA = 0, long long strideB = 0)
      : beta(beta) {
    CHECK_BLAS(
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t tb = CUBLAS_OP_N;
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(
        desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (bias) {
      cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      CHECK_BLAS(cublasLtMatmulDescSetAttribute(
          desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      CHECK_BLAS(cublasLtMatmulDescSetAttribute(
          desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    int rowsA = ta == CUBLAS_OP_N ? m : k, colsA = ta == CUBLAS_OP_N ? k : m;
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, rowsA, colsA, lda));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, k, n, ldb));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, m));
    if (batch > 1) {
      long long strideC = (long long)m * n;
      for (auto [l, stride] : {std::pair{la, strideA}, std::pair{lb, strideB},
                               std::pair{lc, strideC}}) {
        CHECK_BLAS(cublasLtMatrixLayoutSetAttribute(
            l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
        CHECK_BLAS(cublasLtMatrixLayoutSetAttribute(
            l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
            sizeof(stride)));
      }
    }
  }
  cublasStatus_t call(const float *A, const float *B, const float *C,
                      float *D, void *workspace, cudaStream_t s,
                      const cublasLtMatmulAlgo_t &a, size_t ws) const {
    const float one = 1.0f;
    return cublasLtMatmul(lt, desc, &one, A, la, B, lb, &beta, C, lc, D, lc,
                          &a, workspace, ws, s);
  }
  // Times the heuristic's first 8 candidates (20 calls in a graph each) and
  // keeps the fastest.
  void tune(const float *A, const float *B, const float *C, float *D,
            BlasStream &bs) {
    cublasLtMatmulPreference_t pref;
    CHECK_BLAS(cublasLtMatmulPreferenceCreate(&pref));
    size_t wsMax = BlasStream::kWorkspaceBytes;
    CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsMax,
        sizeof(wsMax)));
    cublasLtMatmulHeuristicResult_t heur[8];
    int found = 0;
    CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref,
                                              8, heur, &found));
    double best = 1e30;
    for (int i = 0; i < found; ++i) {
      if (call(A, B, C, D, bs.workspace, bs.stream, heur[i].algo,
               heur[i].workspaceSize) != CUBLAS_STATUS_SUCCESS ||
          cudaStreamSynchronize(bs.stream) != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      double us = timeGraph(bs.stream, [&] {
        for (int r = 0; r < 20; ++r)
          call(A, B, C, D, bs.workspace, bs.stream, heur[i].algo,
               heur[i].workspaceSize);
      }, 10) * 1e3 / 20;
      if (us < best) {
        best = us;
        algo = heur[i].algo;
        workspaceSize = heur[i].workspaceSize;
      }
    }
    if (best == 1e30) {
      std::fprintf(stderr, "no cuBLASLt candidate ran\n");
      std::exit(1);
    }
  }
  void run(const float *A, const float *B, const float *C, float *D,
           void *workspace, cudaStream_t s) const {
    CHECK_BLAS(call(A, B, C, D, workspace, s, algo, workspaceSize));
  }
};

__device__ __forceinline__ float sigmoid(float v) {
  return 1.0f / (1.0f + expf(-v));
}

// The LSTM cell over row-major B x 4H gates (i, f, g, o blocks): the gates
// are g0 (+ g1) (+ the `parts` partials of `partStride` floats each, plus
// `bias` over the columns).
__global__ void cell(const float *g0, const float *g1, const float *partials,
                     int parts, long long partStride, const float *bias,
                     const float *c, float *hOut, float *cOut, int B, int H) {
  int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
  if (j >= H)
    return;
  float gate[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    long long at = (long long)b * 4 * H + q * H + j;
    float v = 0;
    for (int p = 0; p < parts; ++p)
      v += partials[p * partStride + at];
    if (parts)
      v += bias[q * H + j];
    v += g0[at];
    if (g1)
      v += g1[at];
    gate[q] = v;
  }
  float cNew = sigmoid(gate[1]) * c[b * H + j] +
               sigmoid(gate[0]) * tanhf(gate[2]);
  cOut[b * H + j] = cNew;
  hOut[b * H + j] = sigmoid(gate[3]) * tanhf(cNew);
}

void shape(int B, int H, int V, int steps) {
  BlasStream bs;
  int G = 4 * H;
  // Row-major x_t (B x V), W_ih (V x 4H) and W_hh (H x 4H) are, seen
  // column-major, x_t^T, W_ih^T and W_hh^T: each product is computed as
  // its transpose, (4H x B) = W^T·x^T, with no operand transposed.
  float *x = patternBuffer(size_t(steps) * B * V, 1);
  float *Wih = patternBuffer(size_t(V) * G, 2), *Whh = patternBuffer(size_t(H) * G, 3);
  float *bih = patternBuffer(G, 4), *bhh = patternBuffer(G, 5);
  float *h0 = patternBuffer(size_t(B) * H, 6), *c0 = patternBuffer(size_t(B) * H, 7);
  float *h[2], *c[2], *gates, *proj, *partials;
  for (int i = 0; i < 2; ++i) {
    CHECK(cudaMalloc(&h[i], size_t(B) * H * 4));
    CHECK(cudaMalloc(&c[i], size_t(B) * H * 4));
  }
  CHECK(cudaMalloc(&gates, size_t(B) * G * 4));
  CHECK(cudaMalloc(&proj, size_t(B) * G * 4));
  CHECK(cudaMalloc(&partials, size_t(8) * B * G * 4));
  {
    // W_hh's pattern in [-0.5, 0.5) scaled by 1/H keeps the gates O(1).
    std::vector<float> w(size_t(H) * G);
    CHECK(cudaMemcpy(w.data(), Whh, w.size() * 4, cudaMemcpyDeviceToHost));
    for (float &v : w)
      v *= 4.0f / H;
    CHECK(cudaMemcpy(Whh, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
  }
  cudaStream_t side, hiMain, loSide;
  CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  int loPri, hiPri;
  CHECK(cudaDeviceGetStreamPriorityRange(&loPri, &hiPri));
  CHECK(cudaStreamCreateWithPriority(&hiMain, cudaStreamNonBlocking, hiPri));
  CHECK(cudaStreamCreateWithPriority(&loSide, cudaStreamNonBlocking, loPri));
  cudaEvent_t forkEv, joinEv;
  CHECK(cudaEventCreateWithFlags(&forkEv, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&joinEv, cudaEventDisableTiming));

  // The products, column-major: proj(4H x B) = W_ih^T-view (4H x V, ld 4H)
  // · x^T (V x B, ld V); rec(4H x B) = W_hh view (4H x H) · h^T (H x B).
  LtProduct projBias(CUBLAS_OP_N, G, B, V, G, V, bih, 0.0f);
  LtProduct recAccum(CUBLAS_OP_N, G, B, H, G, H, bhh, 1.0f);
  LtProduct recBias(CUBLAS_OP_N, G, B, H, G, H, bhh, 0.0f);
  projBias.tune(Wih, x, nullptr, gates, bs);
  recAccum.tune(Whh, h0, gates, gates, bs);
  recBias.tune(Whh, h0, nullptr, proj, bs);
  std::vector<LtProduct> splits;
  const int splitCounts[] = {2, 4, 8};
  for (int S : splitCounts) {
    splits.emplace_back(CUBLAS_OP_N, G, B, H / S, G, H, nullptr, 0.0f, S,
                        (long long)(H / S) * G, (long long)(H / S));
    splits.back().tune(Whh, h0, nullptr, partials, bs);
  }

  dim3 cellGrid((H + 255) / 256, B), cellBlock(256);
  auto fork = [&](cudaStream_t from, cudaStream_t to) {
    CHECK(cudaEventRecord(forkEv, from));
    CHECK(cudaStreamWaitEvent(to, forkEv));
  };
  auto join = [&](cudaStream_t from, cudaStream_t to) {
    CHECK(cudaEventRecord(joinEv, from));
    CHECK(cudaStreamWaitEvent(to, joinEv));
  };
  // A run of `steps` forward steps from (h0, c0); returns the final h.
  enum Kind { Serial, Fork, ForkPri, Split, SplitFork, RecOnly };
  auto runSteps = [&](Kind kind, cudaStream_t s, int splitIndex) -> float * {
    const float *hIn = h0, *cIn = c0;
    for (int t = 0; t < steps; ++t) {
      float *hOut = h[t % 2], *cOut = c[t % 2];
      const float *xt = x + size_t(t) * B * V;
      const float *g1 = nullptr, *parts = nullptr;
      int nParts = 0;
      switch (kind) {
      case Serial:
        projBias.run(Wih, xt, nullptr, gates, bs.workspace, s);
        recAccum.run(Whh, hIn, gates, gates, bs.workspace, s);
        break;
      case Fork:
      case ForkPri: {
        cudaStream_t sideStream = kind == Fork ? side : loSide;
        fork(s, sideStream);
        projBias.run(Wih, xt, nullptr, proj, sideWorkspace, sideStream);
        recBias.run(Whh, hIn, nullptr, gates, bs.workspace, s);
        join(sideStream, s);
        g1 = proj;
        break;
      }
      case Split:
      case SplitFork: {
        const LtProduct &sp = splits[splitIndex];
        int S = splitCounts[splitIndex];
        if (kind == SplitFork) {
          fork(s, side);
          projBias.run(Wih, xt, nullptr, gates, sideWorkspace, side);
        } else {
          projBias.run(Wih, xt, nullptr, gates, bs.workspace, s);
        }
        sp.run(Whh, hIn, nullptr, partials, bs.workspace, s);
        if (kind == SplitFork)
          join(side, s);
        parts = partials;
        nParts = S;
        break;
      }
      case RecOnly:
        recBias.run(Whh, hIn, nullptr, gates, bs.workspace, s);
        break;
      }
      cell<<<cellGrid, cellBlock, 0, s>>>(gates, g1, parts, nParts,
                                          (long long)B * G, bhh, cIn, hOut,
                                          cOut, B, H);
      CHECK(cudaGetLastError());
      hIn = hOut;
      cIn = cOut;
    }
    return h[(steps - 1) % 2];
  };
  auto result = [&](Kind kind, cudaStream_t s, int splitIndex) {
    float *out = runSteps(kind, s, splitIndex);
    CHECK(cudaStreamSynchronize(s));
    std::vector<float> host(size_t(B) * H);
    CHECK(cudaMemcpy(host.data(), out, host.size() * 4,
                     cudaMemcpyDeviceToHost));
    return host;
  };
  auto timed = [&](Kind kind, cudaStream_t s, int splitIndex,
                   unsigned flags) {
    return timeGraph(s, [&] { runSteps(kind, s, splitIndex); }, 20, flags) *
           1e3 / steps;
  };

  std::vector<float> want = result(Serial, bs.stream, 0);
  std::printf("B=%d H=%d V=%d, runs of %d steps, us per step (err: max |h - "
              "h_serial| / max |h_serial| after the run):\n",
              B, H, V, steps);
  double serial = timed(Serial, bs.stream, 0, 0);
  std::printf("  serial     %7.2f\n", serial);
  auto report = [&](const char *name, Kind kind, cudaStream_t s, int split,
                    unsigned flags) {
    std::vector<float> got = result(kind, s, split);
    double us = timed(kind, s, split, flags);
    std::printf("  %-10s %7.2f  (%.3fx serial, err %.1e)\n", name, us,
                serial / us, maxRelErr(got, want));
  };
  report("fork", Fork, bs.stream, 0, 0);
  report("fork-pri", ForkPri, hiMain, 0,
         cudaGraphInstantiateFlagUseNodePriority);
  for (int i = 0; i < 3; ++i) {
    std::string name = "split" + std::to_string(splitCounts[i]);
    report(name.c_str(), Split, bs.stream, i, 0);
    report((name + "+fork").c_str(), SplitFork, bs.stream, i, 0);
  }
  report("rec only", RecOnly, bs.stream, 0, 0);
}

} // namespace

int main() {
  CHECK_BLAS(cublasLtCreate(&lt));
  CHECK(cudaMalloc(&sideWorkspace, BlasStream::kWorkspaceBytes));
  for (int steps : {4, 16}) {
    shape(128, 1024, 128, steps);
    shape(64, 512, 128, steps);
  }
  return 0;
}
