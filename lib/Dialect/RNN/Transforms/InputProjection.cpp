//===- InputProjection.cpp - one product for the inputs of many steps -----===//
//
// See InputProjection.h.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/InputProjection.h"

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

namespace {

/// `t` with its leading dimension multiplied by `factor`.
RankedTensorType stacked(Type t, int64_t factor) {
  auto tensor = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] *= factor;
  return RankedTensorType::get(shape, tensor.getElementType(),
                               tensor.getEncoding());
}

/// Values that `op` reads: its operands and what its regions capture.
SmallVector<Value> readValues(Operation *op) {
  SmallVector<Value> values(op->getOperands());
  if (op->getNumRegions()) {
    llvm::SetVector<Value> captured;
    for (Region &r : op->getRegions())
      getUsedValuesDefinedAbove(r, captured);
    values.append(captured.begin(), captured.end());
  }
  return values;
}

/// Whether a linalg op on row-stacked operands computes every row from the
/// same row of its stacked operands alone: one parallel loop is the leading
/// dimension of every stacked operand and appears nowhere else, and the body
/// does not read loop indices.
bool rowsIndependent(linalg::LinalgOp op,
                     const llvm::DenseSet<Value> &rowed) {
  if (!op.hasPureTensorSemantics())
    return false;
  bool readsIndex = false;
  op->walk([&](linalg::IndexOp) { readsIndex = true; });
  if (readsIndex)
    return false;
  std::optional<unsigned> rowLoop;
  for (OpOperand &operand : op->getOpOperands()) {
    if (!rowed.contains(operand.get()))
      continue;
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (map.getNumResults() == 0)
      return false;
    auto dim = dyn_cast<AffineDimExpr>(map.getResult(0));
    if (!dim || (rowLoop && *rowLoop != dim.getPosition()))
      return false;
    rowLoop = dim.getPosition();
  }
  if (!rowLoop ||
      op.getIteratorTypesArray()[*rowLoop] != utils::IteratorType::parallel)
    return false;
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    bool isRowed = rowed.contains(operand.get());
    for (unsigned i = 0; i < map.getNumResults(); ++i) {
      if (isRowed && i == 0)
        continue;
      if (map.getResult(i).isFunctionOfDim(*rowLoop))
        return false;
    }
  }
  return true;
}

} // namespace

std::optional<InputProjection>
bptt::rnn::findInputProjection(func::FuncOp forward, unsigned numStates) {
  if (forward.isExternal())
    return std::nullopt;
  Block &body = forward.front();
  if (body.getNumArguments() <= numStates)
    return std::nullopt;
  Value x = body.getArgument(numStates);
  auto xType = dyn_cast<RankedTensorType>(x.getType());
  if (!xType || xType.getRank() < 1 || !xType.hasStaticShape())
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
  p.rows = xType.getDimSize(0);
  for (Operation &op : body.without_terminator()) {
    if (!independent.contains(&op) || !isa<linalg::LinalgOp>(op))
      continue;
    for (Value r : op.getResults()) {
      if (!readsX.contains(r))
        continue;
      bool usedByStep = llvm::any_of(r.getUsers(), [&](Operation *user) {
        Operation *top = body.findAncestorOpInBlock(*user);
        return !top || !independent.contains(top);
      });
      if (usedByStep)
        p.projected.push_back(r);
    }
  }
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

  // Which values get stacked: x, everything a linalg op computes from a
  // stacked operand, the destinations of such ops (and what produced them),
  // and slices of stacked values; to a fixpoint.
  p.rowed.insert(x);
  auto mark = [&](Value v) { return p.rowed.insert(v).second; };
  for (bool changed = true; changed;) {
    changed = false;
    for (Operation *op : llvm::reverse(p.ops)) {
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        bool any = llvm::any_of(op->getOperands(),
                                [&](Value v) { return p.rowed.contains(v); }) ||
                   llvm::any_of(op->getResults(),
                                [&](Value v) { return p.rowed.contains(v); });
        if (!any)
          continue;
        for (Value init : linalgOp.getDpsInits())
          changed |= mark(init);
        for (Value r : op->getResults())
          changed |= mark(r);
      } else if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
        if (p.rowed.contains(slice.getSource()))
          changed |= mark(slice.getResult());
        else if (p.rowed.contains(slice.getResult()))
          changed |= mark(slice.getSource());
      }
    }
  }

  // Every stacked value: a static tensor whose leading dimension is x's
  // rows, made by an op that keeps rows independent. Parameters are never
  // stacked.
  for (Value v : p.rowed) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t || t.getRank() < 1 || !t.hasStaticShape() ||
        t.getDimSize(0) != p.rows)
      return std::nullopt;
    if (isa<BlockArgument>(v) && v != x)
      return std::nullopt;
  }
  for (Operation *op : p.ops) {
    bool touchesRows =
        llvm::any_of(op->getOperands(),
                     [&](Value v) { return p.rowed.contains(v); }) ||
        llvm::any_of(op->getResults(),
                     [&](Value v) { return p.rowed.contains(v); });
    if (!touchesRows)
      continue;
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
      if (!rowsIndependent(linalgOp, p.rowed))
        return std::nullopt;
    } else if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
      if (slice.getSourceType().getRank() != slice.getType().getRank())
        return std::nullopt;
      std::optional<int64_t> offset =
          getConstantIntValue(slice.getMixedOffsets()[0]);
      std::optional<int64_t> size =
          getConstantIntValue(slice.getMixedSizes()[0]);
      std::optional<int64_t> stride =
          getConstantIntValue(slice.getMixedStrides()[0]);
      if (offset != 0 || size != p.rows || stride != 1)
        return std::nullopt;
    } else if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
      auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
      if (!dense || !dense.isSplat())
        return std::nullopt;
    } else if (!isa<tensor::EmptyOp>(op)) {
      return std::nullopt;
    }
  }
  for (Value v : p.projected) {
    if (!p.rowed.contains(v))
      return std::nullopt;
    auto t = cast<RankedTensorType>(v.getType());
    p.bytesPerStep += t.getNumElements() *
                      llvm::divideCeil(t.getElementTypeBitWidth(), 8);
  }
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
  for (Value v : p.projected) {
    unsigned index = fn.getNumArguments();
    if (failed(fn.insertArgument(index, v.getType(), DictionaryAttr(),
                                 v.getLoc())))
      llvm_unreachable("appending an argument cannot fail");
    map.lookup(v).replaceAllUsesWith(fn.getArgument(index));
  }
  // What only the projected values needed is dead now.
  SmallVector<Operation *> ops;
  for (Operation &op : fn.front().without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (isOpTriviallyDead(op))
      op->erase();
  return fn;
}

func::FuncOp bptt::rnn::buildBatchedInput(const InputProjection &p,
                                          int64_t chunk) {
  func::FuncOp forward = p.forward;
  MLIRContext *ctx = forward.getContext();
  Block &body = forward.front();
  unsigned firstParam = p.numStates + 1;
  SmallVector<Type> inputs{stacked(body.getArgument(p.numStates).getType(),
                                   chunk)};
  for (BlockArgument a : body.getArguments().drop_front(firstParam))
    inputs.push_back(a.getType());
  SmallVector<Type> results;
  for (Value v : p.projected)
    results.push_back(stacked(v.getType(), chunk));

  OpBuilder b(forward);
  b.setInsertionPointAfter(forward);
  Location loc = forward.getLoc();
  auto fn = func::FuncOp::create(
      b, loc, (forward.getSymName() + "_input_" + Twine(chunk)).str(),
      FunctionType::get(ctx, inputs, results));
  fn.setPrivate();
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  IRMapping map;
  map.map(body.getArgument(p.numStates), entry->getArgument(0));
  for (auto [from, to] : llvm::zip(body.getArguments().drop_front(firstParam),
                                   entry->getArguments().drop_front()))
    map.map(from, to);
  for (Operation *op : p.ops) {
    bool stackedResult = op->getNumResults() == 1 &&
                         p.rowed.contains(op->getResult(0));
    if (auto empty = dyn_cast<tensor::EmptyOp>(op); empty && stackedResult) {
      auto type = stacked(empty.getType(), chunk);
      map.map(empty.getResult(),
              tensor::EmptyOp::create(b, op->getLoc(), type.getShape(),
                                      type.getElementType()));
      continue;
    }
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op);
        slice && stackedResult) {
      SmallVector<OpFoldResult> sizes = slice.getMixedSizes();
      sizes[0] = b.getIndexAttr(p.rows * chunk);
      map.map(slice.getResult(),
              tensor::ExtractSliceOp::create(
                  b, op->getLoc(), stacked(slice.getType(), chunk),
                  map.lookup(slice.getSource()), slice.getMixedOffsets(), sizes,
                  slice.getMixedStrides()));
      continue;
    }
    if (auto constant = dyn_cast<arith::ConstantOp>(op);
        constant && stackedResult) {
      auto dense = cast<DenseElementsAttr>(constant.getValue());
      map.map(constant.getResult(),
              arith::ConstantOp::create(
                  b, op->getLoc(),
                  dense.resizeSplat(cast<ShapedType>(
                      stacked(constant.getType(), chunk)))));
      continue;
    }
    Operation *copy = b.clone(*op, map);
    for (auto [from, to] : llvm::zip(op->getResults(), copy->getResults()))
      if (p.rowed.contains(from))
        to.setType(stacked(from.getType(), chunk));
  }
  SmallVector<Value> returned;
  for (Value v : p.projected)
    returned.push_back(map.lookup(v));
  func::ReturnOp::create(b, loc, returned);
  return fn;
}
