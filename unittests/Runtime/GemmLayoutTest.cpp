//===- GemmLayoutTest.cpp - strided views -> cuBLAS operands --------------===//
//
// planGemm decides the transposes and leading dimensions of the one cuBLAS
// call behind _mlir_ciface_bpttMatmulF32. These tests run the planned call
// with column-major BLAS semantics on host arrays (referenceGemm) and require
// the result to be bitwise what the definition of C += A * B on the strided
// views gives, over every mix of row-major, column-major, padded, offset and
// size-1 layouts; and they check the messages for the views that cannot be
// BLAS operands.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/GemmLayout.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace bptt::runtime;

namespace {

/// A strided view placed inside its own storage array.
struct Operand {
  MatrixView view;
  int64_t offset = 0;
  std::vector<float> storage;

  float &at(int64_t i, int64_t j) {
    return storage[size_t(offset + i * view.rowStride + j * view.colStride)];
  }
};

/// Layout kinds: row-major or column-major, padded or not; for size-1
/// dimensions the irrelevant stride is set to `oddStride`.
Operand makeOperand(int64_t rows, int64_t cols, bool rowMajor, int64_t pad,
                    int64_t oddStride, int64_t offset, std::mt19937 &rng) {
  Operand o;
  o.view.rows = rows;
  o.view.cols = cols;
  if (rowMajor) {
    o.view.colStride = 1;
    o.view.rowStride = cols + pad;
  } else {
    o.view.rowStride = 1;
    o.view.colStride = rows + pad;
  }
  if (rows == 1)
    o.view.rowStride = oddStride;
  if (cols == 1)
    o.view.colStride = rows == 1 ? o.view.colStride : oddStride;
  // A size-1 dimension's stride never moves the index; the storage must
  // hold the largest index reached.
  o.offset = offset;
  int64_t last = offset;
  if (rows > 1)
    last += (rows - 1) * o.view.rowStride;
  if (cols > 1)
    last += (cols - 1) * o.view.colStride;
  o.storage.resize(size_t(last + 1 + 3));
  // Small integers keep every product and sum exact.
  std::uniform_int_distribution<int> value(-4, 4);
  for (float &x : o.storage)
    x = float(value(rng));
  return o;
}

const float *first(const Operand &o) { return o.storage.data() + o.offset; }

void naiveGemm(Operand &a, Operand &b, Operand &c) {
  for (int64_t i = 0; i < c.view.rows; ++i)
    for (int64_t j = 0; j < c.view.cols; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < a.view.cols; ++p)
        sum += double(a.at(i, p)) * b.at(p, j);
      c.at(i, j) += float(sum);
    }
}

TEST(GemmLayout, EveryLayoutMatchesTheDefinition) {
  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 2, 3, 5};
  const int64_t oddStrides[] = {0, 1, 7, -5, 1000};
  int checked = 0;
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes)
        for (int layoutMask = 0; layoutMask < 8; ++layoutMask)
          for (int padMask = 0; padMask < 8; padMask += 3)
            for (int64_t odd : oddStrides) {
              bool rowA = layoutMask & 1, rowB = layoutMask & 2,
                   rowC = layoutMask & 4;
              Operand a = makeOperand(m, k, rowA, (padMask & 1) * 2, odd, 1,
                                      rng);
              Operand b = makeOperand(k, n, rowB, (padMask & 2), odd, 0, rng);
              Operand c = makeOperand(m, n, rowC, (padMask & 4) / 2, odd, 2,
                                      rng);
              GemmCall call;
              std::string error;
              ASSERT_TRUE(planGemm(a.view, b.view, c.view, call, error))
                  << error;
              ASSERT_FALSE(call.empty);
              // cuBLAS's own requirements on the call.
              EXPECT_EQ(call.k, k);
              EXPECT_GE(call.ldc, std::max<int64_t>(1, call.m));
              EXPECT_GE(call.ldx, std::max<int64_t>(
                                      1, call.opX == BlasOp::N ? call.m
                                                               : call.k));
              EXPECT_GE(call.ldy, std::max<int64_t>(
                                      1, call.opY == BlasOp::N ? call.k
                                                               : call.n));
              Operand expected = c;
              naiveGemm(a, b, expected);
              referenceGemm(call, first(a), first(b),
                            c.storage.data() + c.offset);
              ASSERT_EQ(c.storage, expected.storage)
                  << "M=" << m << " N=" << n << " K=" << k
                  << " rowA=" << rowA << " rowB=" << rowB
                  << " rowC=" << rowC << " pad=" << padMask
                  << " odd stride=" << odd;
              ++checked;
            }
  EXPECT_EQ(checked, 4 * 4 * 4 * 8 * 3 * 5);
}

TEST(GemmLayout, TransposedViewsOfDenseMatrices) {
  // The adjoint of a matrix product uses transposed views: dW += X^T dY
  // with X row-major (B x I) seen as I x B, and dX += dY W^T with W
  // row-major (I x O) seen as O x I.
  std::mt19937 rng(7);
  for (auto [rows, cols, inner] :
       {std::tuple{4, 3, 5}, {1, 6, 2}, {6, 1, 3}, {3, 3, 1}}) {
    // A = X^T where X is a dense row-major inner x rows matrix.
    Operand a = makeOperand(inner, rows, /*rowMajor=*/true, 0, 0, 0, rng);
    std::swap(a.view.rows, a.view.cols);
    std::swap(a.view.rowStride, a.view.colStride);
    // B = W^T where W is a dense row-major cols x inner matrix.
    Operand b = makeOperand(cols, inner, /*rowMajor=*/true, 0, 0, 0, rng);
    std::swap(b.view.rows, b.view.cols);
    std::swap(b.view.rowStride, b.view.colStride);
    Operand c = makeOperand(rows, cols, /*rowMajor=*/true, 0, 0, 0, rng);
    GemmCall call;
    std::string error;
    ASSERT_TRUE(planGemm(a.view, b.view, c.view, call, error)) << error;
    Operand expected = c;
    naiveGemm(a, b, expected);
    referenceGemm(call, first(a), first(b), c.storage.data());
    EXPECT_EQ(c.storage, expected.storage);
  }
}

TEST(GemmLayout, DenseRowMajorIsTheClassicSwap) {
  // Row-major C = A * B is column-major C^T = B^T * A^T: no transposes,
  // operands swapped, leading dimensions N, K, N.
  MatrixView a{64, 512, 512, 1}, b{512, 2048, 2048, 1}, c{64, 2048, 2048, 1};
  GemmCall call;
  std::string error;
  ASSERT_TRUE(planGemm(a, b, c, call, error)) << error;
  EXPECT_TRUE(call.swapOperands);
  EXPECT_EQ(call.opX, BlasOp::N);
  EXPECT_EQ(call.opY, BlasOp::N);
  EXPECT_EQ(call.m, 2048);
  EXPECT_EQ(call.n, 64);
  EXPECT_EQ(call.k, 512);
  EXPECT_EQ(call.ldx, 2048);
  EXPECT_EQ(call.ldy, 512);
  EXPECT_EQ(call.ldc, 2048);

  // A transposed view of a row-major matrix becomes op T.
  MatrixView at{64, 512, 1, 64}; // the transpose of a 512x64 row-major
  ASSERT_TRUE(planGemm(at, b, c, call, error)) << error;
  EXPECT_EQ(call.opY, BlasOp::T);
  EXPECT_EQ(call.ldy, 64);

  // Column-major C keeps the operands in place.
  MatrixView ac{64, 512, 1, 64}, bc{512, 2048, 1, 512}, cc{64, 2048, 1, 64};
  ASSERT_TRUE(planGemm(ac, bc, cc, call, error)) << error;
  EXPECT_FALSE(call.swapOperands);
  EXPECT_EQ(call.opX, BlasOp::N);
  EXPECT_EQ(call.opY, BlasOp::N);
  EXPECT_EQ(call.m, 64);
  EXPECT_EQ(call.n, 2048);
  EXPECT_EQ(call.ldx, 64);
  EXPECT_EQ(call.ldy, 512);
  EXPECT_EQ(call.ldc, 64);
}

TEST(GemmLayout, SubmatrixViewsKeepTheParentLeadingDimension) {
  // Columns 4..7 of a row-major 8x16 matrix: row stride 16 > 4 columns.
  MatrixView c{8, 4, 16, 1}, a{8, 3, 3, 1}, b{3, 4, 4, 1};
  GemmCall call;
  std::string error;
  ASSERT_TRUE(planGemm(a, b, c, call, error)) << error;
  EXPECT_EQ(call.ldc, 16);
}

TEST(GemmLayout, EmptyProducts) {
  GemmCall call;
  std::string error;
  // K = 0: C is unchanged, whatever the strides.
  ASSERT_TRUE(planGemm({3, 0, 0, 0}, {0, 4, 0, 0}, {3, 4, 4, 1}, call, error));
  EXPECT_TRUE(call.empty);
  ASSERT_TRUE(planGemm({0, 2, 2, 1}, {2, 4, 4, 1}, {0, 4, 7, 7}, call, error));
  EXPECT_TRUE(call.empty);
  ASSERT_TRUE(planGemm({3, 2, 2, 1}, {2, 0, 0, 1}, {3, 0, 0, 1}, call, error));
  EXPECT_TRUE(call.empty);
  std::vector<float> c = {1, 2, 3};
  referenceGemm(call, nullptr, nullptr, c.data());
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3}));
}

TEST(GemmLayout, UnusableViewsAreExplained) {
  GemmCall call;
  std::string error;
  MatrixView ok{4, 4, 4, 1};

  // Contiguous along neither dimension (every other column).
  EXPECT_FALSE(planGemm({4, 4, 8, 2}, ok, ok, call, error));
  EXPECT_EQ(error, "operand A (4x4, strides [8, 2]) is contiguous along "
                   "neither dimension: a matrix product needs stride 1 along "
                   "the rows or the columns");

  // Rows that overlap.
  EXPECT_FALSE(planGemm(ok, {4, 4, 2, 1}, ok, call, error));
  EXPECT_EQ(error, "operand B (4x4, strides [2, 1]) is row-major with row "
                   "stride 2, but a row-major matrix needs a row stride >= "
                   "its 4 columns");

  // Columns that overlap.
  EXPECT_FALSE(planGemm(ok, ok, {4, 4, 1, 3}, call, error));
  EXPECT_EQ(error, "operand C (4x4, strides [1, 3]) is column-major with "
                   "column stride 3, but a column-major matrix needs a column "
                   "stride >= its 4 rows");

  // A broadcast (stride 0) along a dimension of size > 1.
  EXPECT_FALSE(planGemm({4, 4, 0, 1}, ok, ok, call, error));
  EXPECT_NE(error.find("row stride 0"), std::string::npos) << error;
  // Negative strides.
  EXPECT_FALSE(planGemm({4, 4, -4, 1}, ok, ok, call, error));
  EXPECT_NE(error.find("row stride -4"), std::string::npos) << error;

  // Shapes that do not agree.
  EXPECT_FALSE(planGemm({4, 3, 3, 1}, ok, ok, call, error));
  EXPECT_EQ(error, "shapes do not agree for C += A * B: A is 4x3, B is 4x4, "
                   "C is 4x4 (A must be MxK, B KxN, C MxN)");
  EXPECT_FALSE(planGemm({-1, 4, 4, 1}, ok, ok, call, error));
  EXPECT_EQ(error, "operand A (-1x4, strides [4, 1]) has a negative size");
}

TEST(GemmLayout, VectorsAcceptAnyStrideAlongTheirUnitDimension) {
  BlasMatrix layout;
  std::string error;
  // A column vector with a non-unit row stride is a row-major n x 1 matrix
  // whose "rows" are its elements: ld = the stride.
  ASSERT_TRUE(classifyView({5, 1, 3, 0}, "A", layout, error)) << error;
  EXPECT_TRUE(layout.transposed);
  EXPECT_EQ(layout.ld, 3);
  // A row vector with a non-unit column stride is column-major.
  ASSERT_TRUE(classifyView({1, 5, 0, 3}, "A", layout, error)) << error;
  EXPECT_FALSE(layout.transposed);
  EXPECT_EQ(layout.ld, 3);
  // A 1x1 view is fine with any strides.
  ASSERT_TRUE(classifyView({1, 1, -9, 0}, "A", layout, error)) << error;
  EXPECT_EQ(layout.ld, 1);
  // A column vector broadcast along its length is not.
  EXPECT_FALSE(classifyView({5, 1, 0, 1}, "A", layout, error));
}

} // namespace
