//===- LinearRnnProgram.cpp - a hand-written GPU program for the ABI ------===//
//
// bptt-linear-rnn.so: a program that obeys docs/gpu-abi.md without the
// compiler, to check the runtime and bptt-gpu-run end to end (on a GPU, or
// on the mock driver of the lit tests). It runs store-all BPTT of the linear
// recurrence
//     h_t = h_{t-1} W + x_t,     L = c * sum_{t=1..T} sum_{b,j} h_t[b][j],
// with c = 1 / (B H), through the runtime only: pool allocations (one per
// stored state), device-to-device copies, memsets, matrix products on
// transposed and vector views, a PTX kernel loaded by mgpuModuleLoadJIT from
// a global constructor (as MLIR's gpu-to-llvm does), events, stream
// synchronisation and side regions (bpttSideBegin/End/Join). The gradients are
//     g_T = c 1,  g_t = c 1 + g_{t+1} W^T,  dx_t = g_t,
//     dW = sum_t h_{t-1}^T g_t,  dh_0 = g_1 W^T.
// The planned peak in the manifest is the exact sum of the program's pool
// allocations at its peak, so a runner's measured activation peak must equal
// it. Sizes: T, B, H from BPTT_LINEAR_RNN_T, _B, _H (default 16, 4, 8);
// BPTT_LINEAR_RNN_TF32=1 selects tf32 products; BPTT_LINEAR_RNN_GROW=1 makes
// every call allocate 64 MiB more than the previous one (to check that the
// pool refuses to grow during a capture); BPTT_LINEAR_RNN_BAD_MANIFEST=1
// appends a malformed line to the manifest.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/CudaRuntime.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

[[noreturn]] void fail(const std::string &message) {
  std::fprintf(stderr, "bptt-linear-rnn: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

int64_t envSize(const char *name, int64_t fallback) {
  const char *text = std::getenv(name);
  if (!text || !*text)
    return fallback;
  char *end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (*end || v < 1 || v > (int64_t(1) << 24))
    fail(std::string(name) + "='" + text + "' is not a size in [1, 2^24]");
  return v;
}

struct Config {
  int64_t T, B, H;
  bool tf32, grow;
  uint64_t plannedPeak;
  std::string manifest;

  Config() {
    T = envSize("BPTT_LINEAR_RNN_T", 16);
    B = envSize("BPTT_LINEAR_RNN_B", 4);
    H = envSize("BPTT_LINEAR_RNN_H", 8);
    tf32 = envSize("BPTT_LINEAR_RNN_TF32", 2) == 1;
    grow = envSize("BPTT_LINEAR_RNN_GROW", 2) == 1;
    uint64_t state = uint64_t(B * H) * 4;
    // ones + the loss row + T + 1 stored states + two gradient buffers.
    plannedPeak = uint64_t(onesCount()) * 4 + uint64_t(H) * 4 +
                  uint64_t(T + 1) * state + 2 * state;
    auto dims = [](std::initializer_list<int64_t> d) {
      std::string s;
      for (int64_t x : d)
        s += (s.empty() ? "" : "x") + std::to_string(x);
      return s;
    };
    std::string bh = dims({B, H}), tbh = dims({T, B, H}), hh = dims({H, H});
    manifest = "bptt-program 1\n"
               "# hand-written: tools/bptt-gpu-run/LinearRnnProgram.cpp\n"
               "entry linear_rnn_bptt\n"
               "cell linear\n"
               "steps " + std::to_string(T) + "\n"
               "strategy store-all\n"
               "budget 0\n"
               "planned_peak " + std::to_string(plannedPeak) + "\n"
               "forward_steps " + std::to_string(T) + "\n"
               "precision " + (tf32 ? "tf32" : "f32") + "\n"
               "chip compute_75\n"
               "arg h0 state f32 " + bh + "\n"
               "arg xs input f32 " + tbh + "\n"
               "arg w param f32 " + hh + "\n"
               "arg dh0 dstate f32 " + bh + "\n"
               "arg dxs dinput f32 " + tbh + "\n"
               "arg dw dparam f32 " + hh + "\n"
               "arg loss loss f32 scalar\n"
               "arg stats stats i64 2\n";
    // To check the runner's report of a malformed manifest.
    if (envSize("BPTT_LINEAR_RNN_BAD_MANIFEST", 2) == 1)
      manifest += "arg oops state\n";
  }
  int64_t onesCount() const { return B > H ? B : H; }
};

const Config &config() {
  static const Config c;
  return c;
}

// x[i] *= factor for i < n (PTX ISA 7.0, any GPU from sm_75 on).
const char kPtx[] = R"(.version 7.0
.target sm_75
.address_size 64
.visible .entry bptt_scale(
    .param .u64 bptt_scale_x,
    .param .u64 bptt_scale_n,
    .param .f32 bptt_scale_factor)
{
    .reg .pred %p<2>;
    .reg .b32 %r<4>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [bptt_scale_x];
    ld.param.u64 %rd2, [bptt_scale_n];
    ld.param.f32 %f1, [bptt_scale_factor];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mul.wide.u32 %rd3, %r1, %r2;
    cvt.u64.u32 %rd4, %r3;
    add.s64 %rd3, %rd3, %rd4;
    setp.ge.u64 %p1, %rd3, %rd2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd5, %rd1;
    shl.b64 %rd6, %rd3, 2;
    add.s64 %rd7, %rd5, %rd6;
    ld.global.f32 %f2, [%rd7];
    mul.rn.f32 %f3, %f2, %f1;
    st.global.f32 [%rd7], %f3;
DONE:
    ret;
}
)";

/// Loaded at dlopen, unloaded at dlclose, as gpu-to-llvm's global
/// constructors and destructors do.
struct KernelModule {
  void *module = nullptr;
  KernelModule() {
    module = mgpuModuleLoadJIT(const_cast<char *>(kPtx), 3);
  }
  ~KernelModule() { mgpuModuleUnload(module); }
} gKernels;

template <int R> struct Desc {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[R];
  int64_t strides[R];
};
struct Desc0 {
  float *allocated;
  float *aligned;
  int64_t offset;
};
struct StatsDesc {
  int64_t *allocated;
  int64_t *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
};

BpttMemRef2DF32 view(float *base, int64_t rows, int64_t cols,
                     int64_t rowStride, int64_t colStride) {
  BpttMemRef2DF32 v;
  v.allocated = base;
  v.aligned = base;
  v.offset = 0;
  v.sizes[0] = rows;
  v.sizes[1] = cols;
  v.strides[0] = rowStride;
  v.strides[1] = colStride;
  return v;
}

float *offsetBy(float *base, int64_t elements) {
  // Device addresses: integer arithmetic, never dereferenced here.
  return reinterpret_cast<float *>(reinterpret_cast<uintptr_t>(base) +
                                   uintptr_t(elements) * sizeof(float));
}

/// C += A·B, or C = A·B when `overwrite` (mode bit 2, as the compiler emits
/// for a product into a fresh accumulator).
void matmul(BpttMemRef2DF32 a, BpttMemRef2DF32 b, BpttMemRef2DF32 c,
            bool overwrite = false) {
  _mlir_ciface_bpttMatmulF32(&a, &b, &c,
                             (config().tf32 ? 1 : 0) | (overwrite ? 2 : 0));
}

unsigned floatBits(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

void expectShape(const char *name, const int64_t *sizes,
                 std::initializer_list<int64_t> want) {
  int i = 0;
  for (int64_t w : want)
    if (sizes[i++] != w)
      fail(std::string("argument ") + name +
           " does not have the manifest's shape");
}

} // namespace

EXPORT const char *bptt_program_manifest(void) {
  return config().manifest.c_str();
}

EXPORT void bptt_program_entry(void **d) {
  const Config &cfg = config();
  const int64_t T = cfg.T, B = cfg.B, H = cfg.H, BH = B * H;
  auto *h0 = static_cast<Desc<2> *>(d[0]);
  auto *xs = static_cast<Desc<3> *>(d[1]);
  auto *w = static_cast<Desc<2> *>(d[2]);
  auto *dh0 = static_cast<Desc<2> *>(d[3]);
  auto *dxs = static_cast<Desc<3> *>(d[4]);
  auto *dw = static_cast<Desc<2> *>(d[5]);
  auto *loss = static_cast<Desc0 *>(d[6]);
  auto *stats = static_cast<StatsDesc *>(d[7]);
  expectShape("h0", h0->sizes, {B, H});
  expectShape("xs", xs->sizes, {T, B, H});
  expectShape("w", w->sizes, {H, H});
  expectShape("dxs", dxs->sizes, {T, B, H});
  expectShape("stats", stats->sizes, {2});

  void *s = mgpuStreamCreate();
  const uint64_t stateBytes = uint64_t(BH) * 4;
  const float c = 1.0f / float(BH);
  float *W = w->aligned;
  // W^T: the H x H view with swapped strides.
  BpttMemRef2DF32 wT = view(W, H, H, 1, H);

  if (cfg.grow) {
    static int calls = 0;
    ++calls;
    void *extra = mgpuMemAlloc(uint64_t(calls) * (64u << 20), s, false);
    mgpuMemFree(extra, s);
  }

  // Forward, storing every state.
  float *ones = static_cast<float *>(
      mgpuMemAlloc(uint64_t(cfg.onesCount()) * 4, s, false));
  mgpuMemset32(ones, floatBits(1.0f), size_t(cfg.onesCount()), s);
  float *row = static_cast<float *>(mgpuMemAlloc(uint64_t(H) * 4, s, false));
  mgpuMemset32(loss->aligned, 0, 1, s);
  std::vector<float *> states(size_t(T + 1));
  states[0] = static_cast<float *>(mgpuMemAlloc(stateBytes, s, false));
  mgpuMemcpy(states[0], h0->aligned, stateBytes, s);
  for (int64_t t = 1; t <= T; ++t) {
    states[t] = static_cast<float *>(mgpuMemAlloc(stateBytes, s, false));
    mgpuMemcpy(states[t], offsetBy(xs->aligned, (t - 1) * BH), stateBytes, s);
    matmul(view(states[t - 1], B, H, H, 1), view(W, H, H, H, 1),
           view(states[t], B, H, H, 1));
    // loss += ones(1 x B) h_t ones(H x 1), the column of ones as an H x 1
    // view with a zero stride along its unit dimension.
    matmul(view(ones, 1, B, B, 1), view(states[t], B, H, H, 1),
           view(row, 1, H, H, 1), /*overwrite=*/true);
    matmul(view(row, 1, H, H, 1), view(ones, H, 1, 1, 0),
           view(loss->aligned, 1, 1, 1, 1));
  }
  // loss *= c, by the PTX kernel.
  void *scale = mgpuModuleGetFunction(gKernels.module, "bptt_scale");
  float *lossPtr = loss->aligned;
  uint64_t one = 1;
  float factor = c;
  void *params[] = {&lossPtr, &one, &factor};
  mgpuLaunchKernel(scale, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr, 3);
  void *event = mgpuEventCreate();
  mgpuEventRecord(event, s);
  mgpuStreamWaitEvent(s, event);

  // Backward.
  float *g = static_cast<float *>(mgpuMemAlloc(stateBytes, s, false));
  float *gNext = static_cast<float *>(mgpuMemAlloc(stateBytes, s, false));
  mgpuMemset32(dw->aligned, 0, size_t(H * H), s);
  for (int64_t t = T; t >= 1; --t) {
    mgpuMemset32(g, floatBits(c), size_t(BH), s);
    if (t < T)
      matmul(view(gNext, B, H, H, 1), wT, view(g, B, H, H, 1));
    // What nothing later in the step reads runs on the side stream, as the
    // compiler puts a step's weight-gradient products there.
    bpttSideBegin();
    mgpuMemcpy(offsetBy(dxs->aligned, (t - 1) * BH), g, stateBytes, s);
    // dW += h_{t-1}^T g_t: h_{t-1}^T is an H x B view with swapped strides.
    matmul(view(states[t - 1], H, B, 1, H), view(g, B, H, H, 1),
           view(dw->aligned, H, H, H, 1));
    bpttSideEnd();
    // Joined before g is overwritten and h_{t-1} freed (next iteration).
    bpttSideJoin();
    mgpuMemFree(states[t], s);
    std::swap(g, gNext);
  }
  matmul(view(gNext, B, H, H, 1), wT, view(dh0->aligned, B, H, H, 1),
         /*overwrite=*/true);
  mgpuMemFree(states[0], s);
  mgpuMemFree(g, s);
  mgpuMemFree(gNext, s);
  mgpuMemFree(row, s);
  mgpuMemFree(ones, s);
  mgpuEventSynchronize(event);
  mgpuEventDestroy(event);

  stats->aligned[0] = T;
  stats->aligned[1] = int64_t(cfg.plannedPeak);
  mgpuStreamSynchronize(s);
  mgpuStreamDestroy(s);
}
