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

/// One op of a row chain, and the fills of its outputs as `initialFills`
/// above (empty, or one per output, each null or a fill).
struct RowChainLink {
  mlir::linalg::GenericOp op;
  llvm::SmallVector<mlir::linalg::FillOp> fills;
};

/// Lowers a reduction and the ops after it that read its results row by row
/// as one kernel. `chain` starts with a reduction as lowerToWarpReduction
/// takes it; each later link is a reduction over the same iterations (split
/// among the same threads) or an elementwise op over them. A link may read
/// an earlier reduction's output only where that output was filled (its
/// final value is then in every thread of the group: the xor tree leaves
/// the total in all of them) and only at the output's own position; it may
/// not otherwise touch an earlier link's outputs. The softmax of a loss is
/// such a chain: the row maximum, the sum of exponentials after it, and the
/// gradient of the logits that reads both: one kernel, not three. Every
/// link computes what it computed alone, in the same order, so the results
/// are the same bit for bit.
///
/// The kernel replaces the last link; the caller guarantees that the ops
/// between the links touch none of the chain's memory (so the earlier links
/// may move down to it), and that distinct memrefs of the chain that may
/// alias do not (only viewRoot identity is checked here). Fails, leaving
/// the IR as it is, for anything else. A chain of one is
/// lowerToWarpReduction.
mlir::LogicalResult lowerRowChain(mlir::RewriterBase &rewriter,
                                  llvm::ArrayRef<RowChainLink> chain);

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_WARPREDUCTIONS_H
