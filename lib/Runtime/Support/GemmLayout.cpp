//===- GemmLayout.cpp - strided matrix views as BLAS operands -------------===//

#include "bptt/Runtime/GemmLayout.h"

#include <algorithm>

using namespace bptt::runtime;

namespace {

std::string describe(const MatrixView &v, const char *name) {
  return std::string("operand ") + name + " (" + std::to_string(v.rows) +
         "x" + std::to_string(v.cols) + ", strides [" +
         std::to_string(v.rowStride) + ", " + std::to_string(v.colStride) +
         "])";
}

} // namespace

bool bptt::runtime::classifyView(const MatrixView &v, const char *name,
                                 BlasMatrix &out, std::string &error) {
  if (v.rows < 0 || v.cols < 0) {
    error = describe(v, name) + " has a negative size";
    return false;
  }
  // Row-major reading: stored column-major matrix is the transpose
  // (cols x rows), consecutive view rows `rowStride` apart.
  bool rowContiguous = v.colStride == 1 || v.cols <= 1;
  int64_t rowLd = v.rows <= 1 ? std::max<int64_t>(1, v.cols) : v.rowStride;
  bool rowOk = rowContiguous && rowLd >= std::max<int64_t>(1, v.cols);
  // Column-major reading: stored matrix is the view (rows x cols),
  // consecutive view columns `colStride` apart.
  bool colContiguous = v.rowStride == 1 || v.rows <= 1;
  int64_t colLd = v.cols <= 1 ? std::max<int64_t>(1, v.rows) : v.colStride;
  bool colOk = colContiguous && colLd >= std::max<int64_t>(1, v.rows);

  if (rowOk) {
    out = {/*transposed=*/true, rowLd};
    return true;
  }
  if (colOk) {
    out = {/*transposed=*/false, colLd};
    return true;
  }
  if (!rowContiguous && !colContiguous) {
    error = describe(v, name) +
            " is contiguous along neither dimension: a matrix product needs "
            "stride 1 along the rows or the columns";
    return false;
  }
  // Contiguous along a dimension, but the other stride lets lines overlap
  // (or is zero or negative).
  if (rowContiguous)
    error = describe(v, name) + " is row-major with row stride " +
            std::to_string(v.rowStride) +
            ", but a row-major matrix needs a row stride >= its " +
            std::to_string(v.cols) + " columns";
  else
    error = describe(v, name) + " is column-major with column stride " +
            std::to_string(v.colStride) +
            ", but a column-major matrix needs a column stride >= its " +
            std::to_string(v.rows) + " rows";
  return false;
}

bool bptt::runtime::planGemm(const MatrixView &a, const MatrixView &b,
                             const MatrixView &c, GemmCall &out,
                             std::string &error) {
  for (auto [view, name] : {std::pair{&a, "A"}, {&b, "B"}, {&c, "C"}})
    if (view->rows < 0 || view->cols < 0) {
      error = describe(*view, name) + " has a negative size";
      return false;
    }
  if (a.rows != c.rows || b.cols != c.cols || a.cols != b.rows) {
    auto dims = [](const MatrixView &v) {
      return std::to_string(v.rows) + "x" + std::to_string(v.cols);
    };
    error = "shapes do not agree for C += A * B: A is " + dims(a) +
            ", B is " + dims(b) + ", C is " + dims(c) +
            " (A must be MxK, B KxN, C MxN)";
    return false;
  }
  GemmCall call;
  int64_t m = c.rows, n = c.cols, k = a.cols;
  if (m == 0 || n == 0 || k == 0) {
    call.empty = true;
    call.m = m;
    call.n = n;
    call.k = k;
    out = call;
    return true;
  }
  BlasMatrix la, lb, lc;
  if (!classifyView(a, "A", la, error) || !classifyView(b, "B", lb, error) ||
      !classifyView(c, "C", lc, error))
    return false;

  call.ldc = lc.ld;
  if (!lc.transposed) {
    // C is stored as itself (column-major M x N): C = A * B.
    // X = A must be read as A (M x K): stored A -> N, stored A^T -> T.
    call.swapOperands = false;
    call.m = m;
    call.n = n;
    call.k = k;
    call.opX = la.transposed ? BlasOp::T : BlasOp::N;
    call.ldx = la.ld;
    call.opY = lb.transposed ? BlasOp::T : BlasOp::N;
    call.ldy = lb.ld;
  } else {
    // C is stored as C^T (column-major N x M): C^T = B^T * A^T.
    // X = B must be read as B^T (N x K): stored B^T -> N, stored B -> T.
    call.swapOperands = true;
    call.m = n;
    call.n = m;
    call.k = k;
    call.opX = lb.transposed ? BlasOp::N : BlasOp::T;
    call.ldx = lb.ld;
    call.opY = la.transposed ? BlasOp::N : BlasOp::T;
    call.ldy = la.ld;
  }
  out = call;
  return true;
}

void bptt::runtime::referenceGemm(const GemmCall &call, const float *a,
                                  const float *b, float *c) {
  if (call.empty)
    return;
  const float *x = call.swapOperands ? b : a;
  const float *y = call.swapOperands ? a : b;
  auto opX = [&](int64_t i, int64_t p) {
    return call.opX == BlasOp::N ? x[i + p * call.ldx] : x[p + i * call.ldx];
  };
  auto opY = [&](int64_t p, int64_t j) {
    return call.opY == BlasOp::N ? y[p + j * call.ldy] : y[j + p * call.ldy];
  };
  for (int64_t j = 0; j < call.n; ++j)
    for (int64_t i = 0; i < call.m; ++i) {
      double sum = 0;
      for (int64_t p = 0; p < call.k; ++p)
        sum += static_cast<double>(opX(i, p)) * opY(p, j);
      c[i + j * call.ldc] += static_cast<float>(sum);
    }
}
