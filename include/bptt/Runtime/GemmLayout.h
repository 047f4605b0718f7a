//===- GemmLayout.h - strided matrix views as BLAS operands ------*- C++ -*-===//
//
// The pure part of _mlir_ciface_bpttMatmulF32: how C += A * B on strided 2-D
// views (element (i, j) at offset + i * strides[0] + j * strides[1]) becomes
// one column-major BLAS GEMM call (cuBLAS). No CUDA here, so it is unit
// tested on any machine.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_RUNTIME_GEMMLAYOUT_H
#define BPTT_RUNTIME_GEMMLAYOUT_H

#include <cstdint>
#include <string>

namespace bptt::runtime {

/// A 2-D strided view of rows x cols elements.
struct MatrixView {
  int64_t rows = 0, cols = 0;
  int64_t rowStride = 0, colStride = 0; // strides[0], strides[1]
};

/// A view seen as a column-major BLAS matrix: the matrix stored at the
/// view's first element with leading dimension `ld` is the view itself
/// (`transposed` false: rows x cols, contiguous down a column) or its
/// transpose (`transposed` true: cols x rows; the view is row-major).
struct BlasMatrix {
  bool transposed = false;
  int64_t ld = 1;
};

/// Classifies `view` (called `name` in diagnostics). A view is usable when it
/// is contiguous along one dimension (stride 1, or size 1 where the stride
/// does not matter) and its leading dimension keeps the other dimension's
/// lines apart (ld >= the stored matrix's row count, and >= 1). Row-major is
/// preferred when both readings are valid (vectors, 1x1). Negative, zero
/// (broadcast) and overlapping strides are rejected with a message.
bool classifyView(const MatrixView &view, const char *name, BlasMatrix &out,
                  std::string &error);

enum class BlasOp { N, T };

/// One column-major GEMM: C' = op(X) * op(Y) + C' with m x n result, k the
/// inner size. X is view A and Y view B unless `swapOperands`, where X is B
/// and Y is A (that computes C^T = B^T A^T when C is row-major).
struct GemmCall {
  bool empty = false; // M, N or K is 0: no call at all
  bool swapOperands = false;
  BlasOp opX = BlasOp::N, opY = BlasOp::N;
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 1, ldy = 1, ldc = 1;
};

/// Plans C += A * B (M = C.rows, N = C.cols, K = A.cols). Checks that the
/// shapes agree (A is M x K, B is K x N) and that every operand is usable
/// (see classifyView); sizes must be >= 0. With M, N or K = 0 the call is
/// `empty` and the strides are not looked at.
bool planGemm(const MatrixView &a, const MatrixView &b, const MatrixView &c,
              GemmCall &out, std::string &error);

/// Reference semantics of a planned call for tests: performs it on host
/// arrays (column-major BLAS semantics over the raw storage), so a test can
/// compare against the naive definition of C += A * B on the views.
void referenceGemm(const GemmCall &call, const float *a, const float *b,
                   float *c);

} // namespace bptt::runtime

#endif // BPTT_RUNTIME_GEMMLAYOUT_H
