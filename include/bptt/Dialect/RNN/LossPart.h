//===- LossPart.h - the loss part of many backward steps at once -*- C++ -*-===//
//
// Used by rnn-remat (its `loss-chunk` option) and by the drivers, which
// count the loss buffers in the working set.
//
// A backward step begins with its loss part: the output layer, softmax and
// cross-entropy recomputed from h' (docs/differentiation.md) and their
// adjoint down to dL/dh'. None of it reads the incoming state gradient or
// the parameter-gradient accumulators, so for c consecutive steps of a
// backward run, whose internal states are all in slots, it can run once, on
// the c steps' values stacked row-wise: one large output product and one
// softmax kernel instead of c of each, off the recurrence's critical path.
// This splits a cell's tensor-level backward function into
//
//   @b_loss_<c>(x_1..c, params, h'_1..c, saved_1..c, d loss) -> E_1..c
//                                         the loss part, batched; and
//   @b(..., E) -> ...                     the rest of the step, which reads
//                                         its rows E_t (the values of the
//                                         loss part that it uses) instead.
//
// A product that accumulates onto the incoming state gradient (an output
// layer's dlogits·W_out^T onto dL/dh') is first split into a product and a
// sum, so that the product belongs to the loss part. Stacking is exact under
// the conditions of RowStacking.h; an op that is not (the batch mean of the
// loss, a reduction over rows) and everything after it stay in the rest,
// which reads the stacked values they need. Cells whose loss part has no
// matrix product keep the one-function backward step.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_DIALECT_RNN_LOSSPART_H
#define BPTT_DIALECT_RNN_LOSSPART_H

#include "bptt/Dialect/RNN/BackwardArgs.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace bptt::rnn {

/// The loss part of a backward function with rnn-differentiate's signature
/// (x, params..., new states..., saved..., d new states..., d loss,
/// d params so far...).
struct LossPart {
  mlir::func::FuncOp backward;
  BackwardArgs args;
  /// The per-step arguments it reads, as argument indices of `backward`: x
  /// (0), new states and saved values, in order.
  llvm::SmallVector<unsigned> stepArgs;
  /// Its computed values that the rest of the step reads.
  llvm::SmallVector<mlir::Value> exported;
  /// The ops that compute them, in program order.
  llvm::SmallVector<mlir::Operation *> ops;
  /// Values stacked c-fold in the batched function (RowStacking.h).
  llvm::DenseSet<mlir::Value> rowed;
  /// Rows of one step (x_t's leading dimension).
  int64_t rows = 0;
  /// Bytes of one step's exported values.
  int64_t bytesPerStep = 0;
  /// Bytes of one step's values of the per-step arguments it reads other
  /// than x: what the batched function reads gathered out of the slots; of
  /// them, the new states'.
  int64_t gatheredBytesPerStep = 0, gatheredStateBytesPerStep = 0;
};

/// Erases what no result of `backward` uses, then splits every matrix
/// product whose inputs do not depend on the incoming state gradients or the
/// parameter-gradient accumulators but whose accumulator is (computed from)
/// an incoming state gradient into a product into zeros and a sum: the
/// product then belongs to the loss part. (The sum rounds differently from the
/// accumulation, so every step of a program must use the split function.)
void splitLossAccumulations(mlir::func::FuncOp backward, BackwardArgs args);

/// The loss part of `backward` (after splitLossAccumulations), or nullopt
/// when it holds no matrix product or nothing of it can be stacked.
std::optional<LossPart> findLossPart(mlir::func::FuncOp backward,
                                     BackwardArgs args);

/// What one step of the loss part of a cell differentiated by
/// rnn-differentiate (its `rnn.backward` function) reads and writes.
struct LossPartSize {
  /// Bytes of its exported values (the loss buffers' rows).
  int64_t exportedBytes = 0;
  /// Bytes of the slot values it reads (the gather buffers' rows), and of
  /// those that are new states.
  int64_t gatheredBytes = 0, gatheredStateBytes = 0;
  /// The per-step arguments it reads (LossPart::stepArgs).
  llvm::SmallVector<unsigned> stepArgs;
};

/// One step's loss part of `cell`, or nullopt when it cannot be split off;
/// without `inputGradient`, for the backward step that does not compute dx.
std::optional<LossPartSize> lossPartSize(CellOp cell, bool inputGradient);

/// lossPartSize's exported bytes.
std::optional<int64_t> lossPartBytes(CellOp cell, bool inputGradient);

/// `backward` itself becomes the rest of the step: the exported values are
/// new arguments after its last one, and what only they needed is erased.
void makeLossRest(const LossPart &p);

/// @<backward>_loss_<chunk>, inserted after `backward` (call before
/// makeLossRest): the loss part of `chunk` steps, from the per-step
/// arguments it reads stacked row-wise (chunk x rows leading rows), the
/// parameters and d loss, to the exported values stacked the same way.
mlir::func::FuncOp buildBatchedLoss(const LossPart &p, int64_t chunk);

} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_LOSSPART_H
