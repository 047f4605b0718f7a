//===- InputProjection.h - one product for the inputs of many steps -*- C++ -*-===//
//
// Used by rnn-remat (its `input-chunk` option) and by the drivers, which
// count the projection buffer in the working set.
//
// Part of a cell's forward step reads only the step's input x_t and the
// parameters: an LSTM's x_t·W_ih + b_ih, a GRU's three input gates. It does not depend on the recurrence, so for c consecutive
// steps it can run once, on the c inputs stacked row-wise, as one large
// product instead of c small ones. This splits a cell's tensor-level forward
// function into
//
//   @f_input_<c>(x_1..c, params) -> P_1..c     the input part, batched; and
//   @f_projected(states, x, params, P) -> ...  the rest of the step, which
//                                              reads P_t instead.
//
// Batching by stacking rows is exact only when every row of the input part's
// results depends on the same row of x_t alone: each op of the input part
// must treat the leading dimension as an independent parallel loop (a
// matrix product's rows, an elementwise op, a broadcast along it, a slice
// that keeps it whole), and none may reduce over it or read its index. Cells
// whose input part is anything else keep the one-step function; so do cells
// whose input part has no matrix product, where nothing is gained.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_DIALECT_RNN_INPUTPROJECTION_H
#define BPTT_DIALECT_RNN_INPUTPROJECTION_H

#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace bptt::rnn {

/// The input part of a forward function `(states..., x, params...) -> ...`.
struct InputProjection {
  mlir::func::FuncOp forward;
  unsigned numStates = 0;
  /// Values of the input part that the rest of the step reads and that are
  /// computed (not views of x): what @f_projected receives.
  llvm::SmallVector<mlir::Value> projected;
  /// The ops that compute them, in program order.
  llvm::SmallVector<mlir::Operation *> ops;
  /// Values whose leading dimension is the row dimension of x_t, stacked
  /// c-fold in the batched function.
  llvm::DenseSet<mlir::Value> rowed;
  /// Rows of x_t (its leading dimension).
  int64_t rows = 0;
  /// Bytes of one step's projected values.
  int64_t bytesPerStep = 0;
};

/// The input part of `forward`, or nullopt when it cannot be batched or
/// holds no matrix product.
std::optional<InputProjection> findInputProjection(mlir::func::FuncOp forward,
                                                   unsigned numStates);

/// Bytes of one step's projected values for a cell differentiated by
/// rnn-differentiate (its `rnn.forward` function), or nullopt when its input
/// part cannot be split off.
std::optional<int64_t> inputProjectionBytes(CellOp cell);

/// @<forward>_projected, inserted after `forward`: the forward function with
/// the projected values as extra arguments after the parameters.
mlir::func::FuncOp buildProjectedForward(const InputProjection &p);

/// @<forward>_input_<chunk>, inserted after `forward`: the input part for
/// `chunk` steps, from their inputs stacked row-wise (chunk x rows leading
/// rows) to their projected values stacked the same way.
mlir::func::FuncOp buildBatchedInput(const InputProjection &p, int64_t chunk);

} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_INPUTPROJECTION_H
