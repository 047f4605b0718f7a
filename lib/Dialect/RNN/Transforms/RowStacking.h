//===- RowStacking.h - run one step's ops for many steps at once -*- C++ -*-===//
//
// Internal to the rnn transforms. Part of a step that does not depend on the
// recurrence (the input projection of a forward step, InputProjection.h; the
// loss part of a backward step, LossPart.h) can run once for c steps, on
// their operands stacked row-wise: c x rows leading rows instead of rows.
// That is exact when every row of the part's results depends on the same
// row of its stacked operands alone: each op treats the leading dimension
// as an independent parallel loop (a matrix product's rows, an elementwise
// op, a broadcast along it, a slice that keeps it whole), and none reduces
// over it or reads its index. Each row is then computed by the same
// operations as in the one-step function, whatever c is.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_DIALECT_RNN_TRANSFORMS_ROWSTACKING_H
#define BPTT_LIB_DIALECT_RNN_TRANSFORMS_ROWSTACKING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

#include "bptt/Dialect/RNN/BackwardArgs.h"

namespace bptt::rnn {

/// `t` with its leading dimension multiplied by `factor`.
mlir::RankedTensorType stacked(mlir::Type t, int64_t factor);

/// Values that `op` reads: its operands and what its regions capture.
llvm::SmallVector<mlir::Value> readValues(mlir::Operation *op);

/// Adds to `rowed` (the stacked values, seeded with the stacked operands of
/// the part) everything that `ops` (in program order) compute from a stacked
/// value, the destinations of such linalg ops (and what produced them), and
/// slices of stacked values and their sources; to a fixpoint.
void propagateRows(llvm::ArrayRef<mlir::Operation *> ops,
                   llvm::DenseSet<mlir::Value> &rowed);

/// Whether `op`, which reads or yields a stacked value, computes every row
/// of its stacked results from the same rows of its stacked operands alone,
/// and every stacked value it touches is a static tensor with `rows` leading
/// rows: a row-independent linalg op, a slice that keeps the rows whole, a
/// splat constant, an empty tensor.
bool stacksByRows(mlir::Operation *op, const llvm::DenseSet<mlir::Value> &rowed,
                  int64_t rows);

/// Whether `op` reads or yields a stacked value.
bool touchesRows(mlir::Operation *op, const llvm::DenseSet<mlir::Value> &rowed);

/// Results of the linalg ops of `body` in `part` that `keep` accepts and
/// that something outside `part` uses, in program order: what a split-off
/// part hands to the rest of its function.
llvm::SmallVector<mlir::Value>
usedOutside(mlir::Block &body, const llvm::DenseSet<mlir::Operation *> &part,
            llvm::function_ref<bool(mlir::Value)> keep);

/// Clones `ops` (in program order, each satisfying stacksByRows or touching
/// no stacked value) at `b`'s insertion point for `chunk` steps: stacked
/// values get `chunk` x `rows` leading rows. `map` holds the stacked and
/// shared operands on entry and every cloned result on exit.
void cloneStacked(mlir::OpBuilder &b, llvm::ArrayRef<mlir::Operation *> ops,
                  const llvm::DenseSet<mlir::Value> &rowed, int64_t rows,
                  int64_t chunk, mlir::IRMapping &map);

/// @<name>, private, inserted after `after`: the part `ops` (of `after`'s
/// body) for `chunk` steps. Its arguments are the values `stackedArgs`
/// (block arguments of `after`) stacked `chunk`-fold, then `sharedArgs` as
/// they are; it returns `results` stacked.
mlir::func::FuncOp buildStackedFunction(
    mlir::func::FuncOp after, llvm::StringRef name,
    llvm::ArrayRef<mlir::Value> stackedArgs,
    llvm::ArrayRef<mlir::Value> sharedArgs,
    llvm::ArrayRef<mlir::Operation *> ops,
    const llvm::DenseSet<mlir::Value> &rowed, int64_t rows, int64_t chunk,
    llvm::ArrayRef<mlir::Value> results);

/// `fn` reads `values` (of its body) from new arguments after its last one,
/// in order, and what only they needed is erased: the rest of a function
/// whose part computing them was split off.
void valuesAsArguments(mlir::func::FuncOp fn,
                       llvm::ArrayRef<mlir::Value> values);

/// Erases the ops of `fn`'s body whose results nothing uses.
void eraseDeadOps(mlir::func::FuncOp fn);

/// The leading dimension of `v`, a static tensor of rank >= 1 (x_t's rows),
/// or nullopt.
std::optional<int64_t> leadingRows(mlir::Value v);

/// Whether the body of `op` reads a loop index (linalg.index).
bool readsLoopIndex(mlir::linalg::LinalgOp op);

/// Bytes of `values` (static tensors).
int64_t tensorBytes(llvm::ArrayRef<mlir::Value> values);

/// A copy of a differentiated cell's tensor-level backward function in a
/// module of its own, to analyse what a program's backward step would be:
/// without `inputGradient` it does not return dx, and what only dx needed
/// is erased.
struct BackwardCopy {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp backward;
  BackwardArgs args;
  /// Nullopt when `cell` has no (defined) forward and backward functions.
  static std::optional<BackwardCopy> of(mlir::Operation *cell,
                                        bool inputGradient);
};

/// One step's bytes of the part that `find` (BackwardCopy & -> optional part
/// with a `bytesPerStep`) splits off a copy of `cell`'s backward function:
/// what the drivers count in the working set. Nullopt when the cell has no
/// backward function or `find` finds no part.
template <typename Find>
std::optional<int64_t> partBytesPerStep(mlir::Operation *cell,
                                        bool inputGradient, Find find) {
  std::optional<BackwardCopy> copy = BackwardCopy::of(cell, inputGradient);
  if (!copy)
    return std::nullopt;
  auto part = find(*copy);
  if (!part)
    return std::nullopt;
  return part->bytesPerStep;
}

} // namespace bptt::rnn

#endif // BPTT_LIB_DIALECT_RNN_TRANSFORMS_ROWSTACKING_H
