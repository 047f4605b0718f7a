//===- SmallProducts.h - short-contraction products as one kernel -*- C++ -*-===//
//
// Internal to lib/Conversion (the GPU pipeline).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_CONVERSION_SMALLPRODUCTS_H
#define BPTT_LIB_CONVERSION_SMALLPRODUCTS_H

#include "GPUProgram.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"

namespace bptt {

/// The longest contraction a small product may have. A backward step's
/// parameter gradients contract over its B batch rows; measured on an H100
/// (benchmarks/gpu/micro/weight_grads.cu), the LSTM's three of them take
/// 7.7 us in one generated kernel against 15.8 us as three cuBLAS calls at
/// B = 64 (H = 512, V = 128), and 35.2 against 41.4 at B = 128 (H = 1024),
/// with C in L2 (in a program: 8.4 and 40.0 us, docs/gpu.md).
/// Over chunks of steps (K = c·B, docs/remat.md) cuBLAS is faster.
inline constexpr int64_t kSmallProductMaxK = 128;

/// Whether `op`, a matrix product on device buffers as the library-call
/// pass takes it, is a small product: f32, static sizes,
/// C[m, n] += sum_k A[k, m] B[k, n] (both inputs indexed with the
/// contraction first, as a weight gradient reads a step's rows), M and N
/// multiples of 64, K a multiple of 16 and at most kSmallProductMaxK, no
/// operand viewing the memory of another, and C not just filled (a fresh
/// product keeps cuBLAS, which need not read C).
bool isSmallProduct(mlir::linalg::LinalgOp op, MemoryProvenance &provenance);

/// Groups of small products that can run in one kernel: in program order,
/// each group's products in one block, touching none of each other's
/// outputs, and none of them conflicting with the ops between it and the
/// group's last product (so all may move down to it).
llvm::SmallVector<llvm::SmallVector<mlir::linalg::LinalgOp>>
smallProductGroups(llvm::ArrayRef<mlir::linalg::LinalgOp> products,
                   MemoryProvenance &provenance);

/// Replaces a group (smallProductGroups) by, at its last product,
///
///   scf.if (every operand row-major, rows 16-byte aligned) {
///     one gpu.launch: 64 x 64 tiles of every product's C, one block each
///   } else {
///     the products as they were (for the library-call pass)
///   }
///
/// Each block stages 16 rows of its A and B tiles at a time in one of two
/// shared-memory buffers, reading the next rows while it multiplies the
/// current ones; each of its 128 threads sums an 8 x 4 register tile over k
/// in order with fused multiply-adds and then adds it to C, which is what
/// cuBLAS's SIMT kernels compute for these shapes (the micro-benchmark's
/// results are equal bit for bit).
void lowerSmallProducts(mlir::RewriterBase &rewriter,
                        llvm::ArrayRef<mlir::linalg::LinalgOp> group);

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_SMALLPRODUCTS_H
