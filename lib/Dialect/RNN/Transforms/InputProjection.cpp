//===- InputProjection.cpp - one product for the inputs of many steps -----===//
//
// See InputProjection.h.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/InputProjection.h"

#include "RowStacking.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace bptt::rnn;


std::optional<InputProjection>
bptt::rnn::findInputProjection(func::FuncOp forward, unsigned numStates) {
  if (forward.isExternal())
    return std::nullopt;
  Block &body = forward.front();
  if (body.getNumArguments() <= numStates)
    return std::nullopt;
  Value x = body.getArgument(numStates);
  std::optional<int64_t> rows = leadingRows(x);
  if (!rows)
    return std::nullopt;

  // Ops that read no state, directly or through their regions, and have no
  // side effects: the part of the step that does not depend on the
  // recurrence. Among them, those that read x.
  llvm::DenseSet<Value> dependsOnState(body.getArguments().begin(),
                                       body.getArguments().begin() + numStates);
  llvm::DenseSet<Value> readsX{x};
  llvm::DenseSet<Operation *> independent;
  for (Operation &op : body.without_terminator()) {
    SmallVector<Value> reads = readValues(&op);
    bool dependent = !isMemoryEffectFree(&op) ||
                     llvm::any_of(reads, [&](Value v) {
                       return dependsOnState.contains(v);
                     });
    if (dependent) {
      dependsOnState.insert(op.result_begin(), op.result_end());
      continue;
    }
    independent.insert(&op);
    if (llvm::any_of(reads, [&](Value v) { return readsX.contains(v); }))
      readsX.insert(op.result_begin(), op.result_end());
  }

  // The computed values of the input part that the rest of the step reads.
  InputProjection p;
  p.forward = forward;
  p.numStates = numStates;
  p.rows = *rows;
  p.projected = usedOutside(body, independent,
                            [&](Value v) { return readsX.contains(v); });
  if (p.projected.empty())
    return std::nullopt;

  // The ops they need.
  llvm::DenseSet<Operation *> needed;
  SmallVector<Value> work(p.projected);
  while (!work.empty()) {
    Value v = work.pop_back_val();
    Operation *def = v.getDefiningOp();
    if (!def || !needed.insert(def).second)
      continue;
    for (Value read : readValues(def))
      work.push_back(read);
  }
  bool hasProduct = false;
  for (Operation &op : body.without_terminator()) {
    if (!needed.contains(&op))
      continue;
    p.ops.push_back(&op);
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
      hasProduct |= linalg::isaContractionOpInterface(linalgOp);
  }
  if (!hasProduct)
    return std::nullopt;

  // Which values get stacked: x and what follows from it (RowStacking.h).
  // Every stacked value is a static tensor whose leading dimension is x's
  // rows, made by an op that keeps rows independent. Parameters are never
  // stacked.
  p.rowed.insert(x);
  propagateRows(p.ops, p.rowed);
  for (Value v : p.rowed)
    if (isa<BlockArgument>(v) && v != x)
      return std::nullopt;
  for (Operation *op : p.ops)
    if (touchesRows(op, p.rowed) && !stacksByRows(op, p.rowed, p.rows))
      return std::nullopt;
  for (Value v : p.projected)
    if (!p.rowed.contains(v))
      return std::nullopt;
  p.bytesPerStep = tensorBytes(p.projected);
  return p;
}

std::optional<int64_t> bptt::rnn::inputProjectionBytes(CellOp cell) {
  auto ref = cell->getAttrOfType<FlatSymbolRefAttr>("rnn.forward");
  if (!ref)
    return std::nullopt;
  auto forward = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(cell, ref);
  if (!forward)
    return std::nullopt;
  std::optional<InputProjection> split =
      findInputProjection(forward, cell.getNumStates());
  if (!split)
    return std::nullopt;
  return split->bytesPerStep;
}

func::FuncOp bptt::rnn::buildProjectedForward(const InputProjection &p) {
  func::FuncOp forward = p.forward; // op handles: const ones cannot be used
  OpBuilder b(forward);
  b.setInsertionPointAfter(forward);
  IRMapping map;
  auto fn = cast<func::FuncOp>(b.clone(*forward, map));
  fn.setSymName((forward.getSymName() + "_projected").str());
  SmallVector<Value> projected;
  for (Value v : p.projected)
    projected.push_back(map.lookup(v));
  valuesAsArguments(fn, projected);
  return fn;
}

func::FuncOp bptt::rnn::buildBatchedInput(const InputProjection &p,
                                          int64_t chunk) {
  func::FuncOp forward = p.forward;
  Block &body = forward.front();
  SmallVector<Value> shared(body.getArguments().drop_front(p.numStates + 1));
  return buildStackedFunction(
      forward, (forward.getSymName() + "_input_" + Twine(chunk)).str(),
      {body.getArgument(p.numStates)}, shared, p.ops, p.rowed, p.rows, chunk,
      p.projected);
}
