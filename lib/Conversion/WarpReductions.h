//===- WarpReductions.h - reductions as warp-cooperative kernels -*- C++ -*-===//
//
// Internal to lib/Conversion (the GPU pipeline).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_CONVERSION_WARPREDUCTIONS_H
#define BPTT_LIB_CONVERSION_WARPREDUCTIONS_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"

namespace bptt {

/// Replaces a reduction `op` (buffers, static sizes, outputs of a 32-bit
/// type, each combined by one commutative operation with a neutral element:
/// a sum, product, max or min) by a gpu.launch in which several threads of
/// one warp reduce each output position: each strides through the reduced
/// iterations, then the threads combine their partial results with shuffles.
/// Several outputs (sibling reductions over the same iterations merged into
/// one op, KernelPreparation) are reduced side by side in the same threads.
/// Fails, leaving `op` as it is, for anything else or when one thread per
/// output would do as well (few reduced iterations).
///
/// The reduction order changes (partial results, then a tree), so results
/// may differ from a sequential sum in the last bits; the order is fixed, so
/// repeated runs agree bit for bit.
///
/// `initialFills`, one per output (or empty), hold for each output either
/// null or a linalg.fill that writes the output's whole initial value and
/// that nothing reads before `op`: the kernel then stores combine(fill
/// value, total) without reading the output, and the fill is erased with
/// `op`.
/// The unit attribute of a reduction's gpu.launch in which a single thread
/// writes the results, in the scf.if that ends the kernel body.
inline constexpr char kOneWriterAttr[] = "bptt.one_writer";

mlir::LogicalResult
lowerToWarpReduction(mlir::RewriterBase &rewriter, mlir::linalg::GenericOp op,
                     llvm::ArrayRef<mlir::linalg::FillOp> initialFills = {});

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_WARPREDUCTIONS_H
