//===- MatmulCheck.cpp - the runtime's matrix products against the host ---===//
//
// bptt-matmul-check: runs the runtime's two product entry points,
// bpttMatmulF32 and bpttMatmulBiasF32, on operand layouts the compiler
// emits (row-major, transposed and strided views, a separate addend, the
// result as its own addend, no addend) and compares every result with a
// double-precision product on the host. It runs on the mock driver of the
// lit tests and on a GPU, where it checks cuBLASLt's bias epilogue itself;
// --large adds the LSTM benchmark's step shapes.
//
//   bptt-matmul-check [--large] [--tf32]
//   bptt-matmul-check --misuse column-major|misaligned-bias|short-bias
//
// --misuse makes one call that the runtime must refuse (it aborts with a
// message); the lit tests check the message.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/CudaRuntime.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void usage(const std::string &message) {
  std::fprintf(stderr,
               "bptt-matmul-check: error: %s\n"
               "usage: bptt-matmul-check [--large] [--tf32] | --misuse "
               "column-major|misaligned-bias|short-bias\n",
               message.c_str());
  std::exit(2);
}

/// A host matrix of rows x cols stored with the given strides in a buffer of
/// `elements` floats, and its device copy.
struct Matrix {
  int64_t rows, cols, rowStride, colStride, offset;
  std::vector<float> host;
  float *device = nullptr;

  Matrix(int64_t rows, int64_t cols, int64_t rowStride, int64_t colStride,
         int64_t offset, uint32_t seed)
      : rows(rows), cols(cols), rowStride(rowStride), colStride(colStride),
        offset(offset) {
    int64_t last = offset + (rows - 1) * rowStride + (cols - 1) * colStride;
    host.resize(size_t(last + 1));
    // Deterministic values in [-1, 1), different per matrix.
    uint32_t state = seed * 2654435761u + 12345u;
    for (float &v : host) {
      state = state * 1664525u + 1013904223u;
      v = float(int32_t(state >> 8) % 2048) / 1024.0f;
    }
    device = static_cast<float *>(bpttDeviceAlloc(host.size() * 4));
    mgpuMemcpy(device, host.data(), host.size() * 4, mgpuStreamCreate());
  }
  Matrix(const Matrix &) = delete;
  Matrix &operator=(const Matrix &) = delete;
  ~Matrix() { bpttDeviceFree(device); }
  float at(int64_t i, int64_t j) const {
    return host[size_t(offset + i * rowStride + j * colStride)];
  }
  BpttMemRef2DF32 view() const {
    BpttMemRef2DF32 v;
    v.allocated = device;
    v.aligned = device;
    v.offset = offset;
    v.sizes[0] = rows;
    v.sizes[1] = cols;
    v.strides[0] = rowStride;
    v.strides[1] = colStride;
    return v;
  }
  void download() {
    void *s = mgpuStreamCreate();
    mgpuMemcpy(host.data(), device, host.size() * 4, s);
    mgpuStreamSynchronize(s);
  }
};

Matrix rowMajor(int64_t rows, int64_t cols, uint32_t seed, int64_t pad = 0,
                int64_t offset = 0) {
  return Matrix(rows, cols, cols + pad, 1, offset, seed);
}

/// A bias vector of n elements starting `offset` floats into its buffer.
struct Vector {
  Matrix storage;
  int64_t offset;
  Vector(int64_t n, uint32_t seed, int64_t offset = 0)
      : storage(1, n + offset, n + offset, 1, 0, seed), offset(offset) {}
  float at(int64_t j) const { return storage.host[size_t(offset + j)]; }
  BpttMemRef1DF32 view() const {
    BpttMemRef1DF32 v;
    v.allocated = storage.device;
    v.aligned = storage.device;
    v.offset = offset;
    v.sizes[0] = storage.cols - offset;
    v.strides[0] = 1;
    return v;
  }
};

int failures = 0;

/// Compares `c` (downloaded) with A·B + addend + bias, where the addend is
/// `sBefore` (C's or S's values before the call) unless null.
void expect(const char *name, Matrix &c, const Matrix &a, const Matrix &b,
            const std::vector<double> *sBefore, const Vector *bias,
            bool tf32) {
  c.download();
  double worst = 0;
  for (int64_t i = 0; i < c.rows; ++i)
    for (int64_t j = 0; j < c.cols; ++j) {
      double want = 0, scale = 0;
      for (int64_t p = 0; p < a.cols; ++p) {
        want += double(a.at(i, p)) * double(b.at(p, j));
        scale += std::fabs(double(a.at(i, p)) * double(b.at(p, j)));
      }
      if (sBefore) {
        want += (*sBefore)[size_t(i * c.cols + j)];
        scale += std::fabs((*sBefore)[size_t(i * c.cols + j)]);
      }
      if (bias) {
        want += double(bias->at(j));
        scale += std::fabs(double(bias->at(j)));
      }
      double error = std::fabs(double(c.at(i, j)) - want) / (scale + 1e-30);
      worst = std::max(worst, error);
    }
  // fp32 accumulation over K terms; tf32 rounds the inputs to 10 bits.
  double tolerance = tf32 ? 2e-3 : 1e-5;
  bool ok = worst <= tolerance;
  failures += !ok;
  std::printf("%-44s %lldx%lldx%lld  max error %.2e  %s\n", name,
              (long long)c.rows, (long long)c.cols, (long long)a.cols, worst,
              ok ? "ok" : "MISMATCH");
}

std::vector<double> values(const Matrix &m) {
  std::vector<double> v(size_t(m.rows * m.cols));
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j)
      v[size_t(i * m.cols + j)] = m.at(i, j);
  return v;
}

/// The checks for one shape: M x N results, K inner.
void checkShape(int64_t M, int64_t N, int64_t K, int32_t mode, uint32_t seed) {
  bool tf32 = mode & 1;
  Matrix a = rowMajor(M, K, seed + 1), b = rowMajor(K, N, seed + 2);
  // A^T stored: A is viewed through swapped strides (the backward's h^T).
  Matrix aT(M, K, 1, M, 0, seed + 3);
  Vector bias(N, seed + 4);
  {
    Matrix c = rowMajor(M, N, seed + 5);
    std::vector<double> before = values(c);
    BpttMemRef2DF32 av = a.view(), bv = b.view(), cv = c.view();
    _mlir_ciface_bpttMatmulF32(&av, &bv, &cv, mode);
    expect("bpttMatmulF32 C += A B", c, a, b, &before, nullptr, tf32);
  }
  {
    Matrix c = rowMajor(M, N, seed + 6);
    BpttMemRef2DF32 av = a.view(), bv = b.view(), cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &cv, &biasv, &cv, mode | 2);
    expect("bpttMatmulBiasF32 C = A B + bias", c, a, b, nullptr, &bias,
           tf32);
  }
  {
    // A separate addend with its own leading dimension, and a result that
    // is a strided window (rows further apart than its columns).
    Matrix s = rowMajor(M, N, seed + 7, /*pad=*/3, /*offset=*/5);
    Matrix c = rowMajor(M, N, seed + 8, /*pad=*/8);
    std::vector<double> sBefore = values(s);
    BpttMemRef2DF32 av = a.view(), bv = b.view(), sv = s.view(),
                    cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &sv, &biasv, &cv, mode);
    expect("bpttMatmulBiasF32 C = A B + S + bias", c, a, b, &sBefore, &bias,
           tf32);
  }
  {
    Matrix c = rowMajor(M, N, seed + 9);
    std::vector<double> before = values(c);
    BpttMemRef2DF32 av = aT.view(), bv = b.view(), cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &cv, &biasv, &cv, mode);
    expect("bpttMatmulBiasF32 C += A^T-view B + bias", c, aT, b, &before,
           &bias, tf32);
  }
}

void misuse(const std::string &what) {
  Matrix a = rowMajor(4, 3, 1), b = rowMajor(3, 5, 2);
  BpttMemRef2DF32 av = a.view(), bv = b.view();
  if (what == "column-major") {
    Matrix c(4, 5, 1, 4, 0, 3);
    Vector bias(5, 4);
    BpttMemRef2DF32 cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &cv, &biasv, &cv, 2);
  } else if (what == "misaligned-bias") {
    Matrix c = rowMajor(4, 5, 3);
    Vector bias(5, 4, /*offset=*/1);
    BpttMemRef2DF32 cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &cv, &biasv, &cv, 2);
  } else if (what == "short-bias") {
    Matrix c = rowMajor(4, 5, 3);
    Vector bias(4, 4);
    BpttMemRef2DF32 cv = c.view();
    BpttMemRef1DF32 biasv = bias.view();
    _mlir_ciface_bpttMatmulBiasF32(&av, &bv, &cv, &biasv, &cv, 2);
  } else {
    usage("--misuse expects column-major, misaligned-bias or short-bias, "
          "got '" + what + "'");
  }
  mgpuStreamSynchronize(mgpuStreamCreate());
  std::printf("the runtime accepted the misuse '%s'\n", what.c_str());
}

} // namespace

int main(int argc, char **argv) {
  bool large = false, tf32 = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--large")
      large = true;
    else if (arg == "--tf32")
      tf32 = true;
    else if (arg == "--misuse" && i + 1 < argc)
      misuse(argv[++i]);
    else if (arg == "--misuse")
      usage("--misuse expects a value");
    else
      usage("unknown option '" + arg + "'");
  }
  int32_t mode = tf32 ? 1 : 0;
  // Odd sizes: nothing lines up with a tile.
  checkShape(5, 6, 7, mode, 10);
  checkShape(1, 9, 4, mode, 20);
  checkShape(33, 17, 12, mode, 30);
  if (large) {
    // The LSTM benchmark's forward products: h·W_hh + (x·W_ih + b_ih) +
    // b_hh at B = 64, H = 512 and B = 128, H = 1024, and the logits.
    checkShape(64, 2048, 512, mode, 40);
    checkShape(128, 4096, 1024, mode, 50);
    checkShape(64, 128, 512, mode, 60);
  }
  std::printf("%s\n", failures ? "FAILED" : "all products match");
  return failures ? 1 : 0;
}
