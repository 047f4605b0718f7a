//===- GradientChunk.h - parameter gradients over chunks of steps -*- C++ -*-===//
//
// Used by rnn-remat (its `grad-chunk` option) and by the drivers, which
// choose the chunk and count its buffers in the working set.
//
// A backward step accumulates its parameter gradients: dW += h^T·dgates,
// db += Σ_rows dgates and the like. Each such accumulation contracts over
// the batch rows of per-step values, so c steps' contributions are one
// contraction over their c·B rows stacked: one product with K = c·B instead
// of c products with K = B, off the recurrence's critical path (cuDNN's
// weight gradients are one product over all steps). This splits a cell's
// tensor-level backward function into
//
//   @b_grads_<c>(x_1..c, E_1..c, dW...) -> dW...   the accumulations of c
//                                                  steps, on rows stacked;
//   @b(...) -> (..., dW (unchanged), E, loss)     the rest of the step, which
//                                                  returns the operands E_t
//                                                  of its accumulations.
//
// The chunks are fixed blocks of steps, [k·c + 1, k·c + c] (the one holding
// T may be shorter), whatever the schedule: a backward step writes its
// operands into its block of chunk buffers, and the step that completes a
// block (backward steps run T..1, so k·c + 1) runs the chunk's function.
// Every strategy and budget thus computes the same sums, bit for bit; the
// sums differ from step-by-step accumulation in rounding only (a
// reassociation), so the chunk must be the same for all programs compared
// bitwise, which is why the drivers choose it from the cell and T alone.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_DIALECT_RNN_GRADIENTCHUNK_H
#define BPTT_DIALECT_RNN_GRADIENTCHUNK_H

#include "bptt/Dialect/RNN/BackwardArgs.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace bptt::rnn {

/// The deferrable parameter-gradient accumulations of a backward function
/// with rnn-differentiate's arguments (x, params..., new states..., saved...,
/// d new states..., d loss, d params so far..., [more per-step values]) and
/// results (d states..., [dx], d params..., loss).
struct GradientPart {
  mlir::func::FuncOp backward;
  BackwardArgs args;
  /// Results of dx: 1, or 0 when the caller dropped it.
  unsigned numDx = 0;
  /// Parameters whose whole accumulation chain is deferred, in order.
  llvm::SmallVector<unsigned> params;
  /// The deferred accumulations and the views of x they read, in program
  /// order.
  llvm::SmallVector<mlir::Operation *> ops;
  /// Per-step values the accumulations read (rows leading), which the step
  /// hands out; views of x are taken from the stacked inputs instead.
  llvm::SmallVector<mlir::Value> exported;
  /// Whether the accumulations read x (then the chunk function's first
  /// argument is the chunk's x stacked).
  bool readsX = false;
  /// Values with rows leading: x, its views, the exported values.
  llvm::DenseSet<mlir::Value> rowed;
  /// Rows of one step (x_t's leading dimension).
  int64_t rows = 0;
  /// Bytes of one step's exported values.
  int64_t bytesPerStep = 0;
};

/// The accumulations of `backward` that can run over chunks of steps:
/// chains of linalg ops from a parameter's accumulator to its returned
/// gradient, each adding (`out + f(in)`) a reduction over one loop that is
/// the leading (row) dimension of every input and nothing else, on inputs
/// that are per-step values. Nullopt when there are none.
std::optional<GradientPart> findGradientPart(mlir::func::FuncOp backward,
                                             BackwardArgs args);

/// Bytes of one step's exported values for a cell differentiated by
/// rnn-differentiate (without `inputGradient`, for the backward step that
/// does not compute dx), or nullopt when nothing can be deferred.
std::optional<int64_t> gradientPartBytes(CellOp cell, bool inputGradient);

/// The chunk the drivers use by default: `requested` (a power of two),
/// halved while the chunk buffers (`chunk` x `bytesPerStep`) would take more
/// than 1/64 of store-all's slots (`steps` x `internalBytes`), so that the
/// smallest feasible budget rises by at most that; below 4, 0 (every step
/// accumulates its own). It depends on the cell and T only, so that every
/// strategy and budget of a request sums the same chunks.
int64_t defaultGradientChunk(int64_t requested, int64_t bytesPerStep,
                             int64_t steps, int64_t internalBytes);

/// @<backward>_grads_<chunk>, inserted after `backward` (call before
/// makeGradientRest): (x stacked if readsX, the exported values stacked,
/// the accumulators of `params`) -> the accumulators with `chunk` steps'
/// contributions added.
mlir::func::FuncOp buildGradientChunk(const GradientPart &p, int64_t chunk);

/// `backward` itself becomes the rest of the step: the deferred parameters'
/// gradients are returned as their accumulators came in, and the exported
/// values are new results before the loss.
void makeGradientRest(const GradientPart &p);

} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_GRADIENTCHUNK_H
