//===- RowStacking.cpp - run one step's ops for many steps at once --------===//
//
// See RowStacking.h.
//
//===----------------------------------------------------------------------===//

#include "RowStacking.h"

#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;

RankedTensorType bptt::rnn::stacked(Type t, int64_t factor) {
  auto tensor = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] *= factor;
  return RankedTensorType::get(shape, tensor.getElementType(),
                               tensor.getEncoding());
}

SmallVector<Value> bptt::rnn::readValues(Operation *op) {
  SmallVector<Value> values(op->getOperands());
  if (op->getNumRegions()) {
    llvm::SetVector<Value> captured;
    for (Region &r : op->getRegions())
      getUsedValuesDefinedAbove(r, captured);
    values.append(captured.begin(), captured.end());
  }
  return values;
}

void bptt::rnn::propagateRows(ArrayRef<Operation *> ops,
                              llvm::DenseSet<Value> &rowed) {
  auto mark = [&](Value v) { return rowed.insert(v).second; };
  for (bool changed = true; changed;) {
    changed = false;
    for (Operation *op : llvm::reverse(ops)) {
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        if (!touchesRows(op, rowed))
          continue;
        for (Value init : linalgOp.getDpsInits())
          changed |= mark(init);
        for (Value r : op->getResults())
          changed |= mark(r);
      } else if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
        if (rowed.contains(slice.getSource()))
          changed |= mark(slice.getResult());
        else if (rowed.contains(slice.getResult()))
          changed |= mark(slice.getSource());
      }
    }
  }
}

bool bptt::rnn::touchesRows(Operation *op, const llvm::DenseSet<Value> &rowed) {
  return llvm::any_of(op->getOperands(),
                      [&](Value v) { return rowed.contains(v); }) ||
         llvm::any_of(op->getResults(),
                      [&](Value v) { return rowed.contains(v); });
}

namespace {
/// Whether a linalg op on row-stacked operands computes every row from the
/// same row of its stacked operands alone: one parallel loop is the leading
/// dimension of every stacked operand and appears nowhere else, and the body
/// does not read loop indices.
bool rowsIndependent(linalg::LinalgOp op,
                     const llvm::DenseSet<Value> &rowed) {
  if (!op.hasPureTensorSemantics() || bptt::rnn::readsLoopIndex(op))
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

bool bptt::rnn::stacksByRows(Operation *op, const llvm::DenseSet<Value> &rowed,
                             int64_t rows) {
  SmallVector<Value> touched(op->getOperands());
  llvm::append_range(touched, op->getResults());
  for (Value v : touched) {
    if (!rowed.contains(v))
      continue;
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (!t || t.getRank() < 1 || !t.hasStaticShape() || t.getDimSize(0) != rows)
      return false;
  }
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return rowsIndependent(linalgOp, rowed);
  if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
    if (slice.getSourceType().getRank() != slice.getType().getRank())
      return false;
    std::optional<int64_t> offset =
        getConstantIntValue(slice.getMixedOffsets()[0]);
    std::optional<int64_t> size = getConstantIntValue(slice.getMixedSizes()[0]);
    std::optional<int64_t> stride =
        getConstantIntValue(slice.getMixedStrides()[0]);
    return offset == 0 && size == rows && stride == 1;
  }
  if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
    return dense && dense.isSplat();
  }
  return isa<tensor::EmptyOp>(op);
}

SmallVector<Value>
bptt::rnn::usedOutside(Block &body, const llvm::DenseSet<Operation *> &part,
                       function_ref<bool(Value)> keep) {
  SmallVector<Value> values;
  for (Operation &op : body.without_terminator()) {
    if (!part.contains(&op) || !isa<linalg::LinalgOp>(op))
      continue;
    for (Value r : op.getResults()) {
      if (!keep(r))
        continue;
      bool used = llvm::any_of(r.getUsers(), [&](Operation *user) {
        Operation *top = body.findAncestorOpInBlock(*user);
        return !top || !part.contains(top);
      });
      if (used)
        values.push_back(r);
    }
  }
  return values;
}

void bptt::rnn::cloneStacked(OpBuilder &b, ArrayRef<Operation *> ops,
                             const llvm::DenseSet<Value> &rowed, int64_t rows,
                             int64_t chunk, IRMapping &map) {
  for (Operation *op : ops) {
    bool stackedResult =
        op->getNumResults() == 1 && rowed.contains(op->getResult(0));
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
      sizes[0] = b.getIndexAttr(rows * chunk);
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
      if (rowed.contains(from))
        to.setType(stacked(from.getType(), chunk));
  }
}

func::FuncOp bptt::rnn::buildStackedFunction(
    func::FuncOp after, StringRef name, ArrayRef<Value> stackedArgs,
    ArrayRef<Value> sharedArgs, ArrayRef<Operation *> ops,
    const llvm::DenseSet<Value> &rowed, int64_t rows, int64_t chunk,
    ArrayRef<Value> results) {
  SmallVector<Type> inputTypes, resultTypes;
  for (Value v : stackedArgs)
    inputTypes.push_back(stacked(v.getType(), chunk));
  for (Value v : sharedArgs)
    inputTypes.push_back(v.getType());
  for (Value v : results)
    resultTypes.push_back(stacked(v.getType(), chunk));
  OpBuilder b(after);
  b.setInsertionPointAfter(after);
  Location loc = after.getLoc();
  auto fn = func::FuncOp::create(
      b, loc, name, FunctionType::get(after.getContext(), inputTypes,
                                      resultTypes));
  fn.setPrivate();
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  IRMapping map;
  unsigned next = 0;
  for (Value v : stackedArgs)
    map.map(v, entry->getArgument(next++));
  for (Value v : sharedArgs)
    map.map(v, entry->getArgument(next++));
  cloneStacked(b, ops, rowed, rows, chunk, map);
  SmallVector<Value> returned;
  for (Value v : results)
    returned.push_back(map.lookup(v));
  func::ReturnOp::create(b, loc, returned);
  return fn;
}

void bptt::rnn::valuesAsArguments(func::FuncOp fn, ArrayRef<Value> values) {
  for (Value v : values) {
    unsigned index = fn.getNumArguments();
    if (failed(fn.insertArgument(index, v.getType(), DictionaryAttr(),
                                 v.getLoc())))
      llvm_unreachable("appending an argument cannot fail");
    v.replaceAllUsesWith(fn.getArgument(index));
  }
  eraseDeadOps(fn);
}

void bptt::rnn::eraseDeadOps(func::FuncOp fn) {
  SmallVector<Operation *> ops;
  for (Operation &op : fn.front().without_terminator())
    ops.push_back(&op);
  for (Operation *op : llvm::reverse(ops))
    if (isOpTriviallyDead(op))
      op->erase();
}

std::optional<int64_t> bptt::rnn::leadingRows(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() < 1 || !t.hasStaticShape())
    return std::nullopt;
  return t.getDimSize(0);
}

bool bptt::rnn::readsLoopIndex(linalg::LinalgOp op) {
  bool reads = false;
  op->walk([&](linalg::IndexOp) { reads = true; });
  return reads;
}

int64_t bptt::rnn::tensorBytes(ArrayRef<Value> values) {
  int64_t bytes = 0;
  for (Value v : values) {
    auto t = cast<RankedTensorType>(v.getType());
    bytes += t.getNumElements() * llvm::divideCeil(t.getElementTypeBitWidth(), 8);
  }
  return bytes;
}

std::optional<bptt::rnn::BackwardCopy>
bptt::rnn::BackwardCopy::of(Operation *cellOp, bool inputGradient) {
  auto cell = dyn_cast<CellOp>(cellOp);
  if (!cell)
    return std::nullopt;
  auto ref = cell->getAttrOfType<FlatSymbolRefAttr>("rnn.backward");
  auto fwdRef = cell->getAttrOfType<FlatSymbolRefAttr>("rnn.forward");
  if (!ref || !fwdRef)
    return std::nullopt;
  auto backward = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(cell, ref);
  auto forward =
      SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(cell, fwdRef);
  if (!backward || !forward || backward.isExternal())
    return std::nullopt;
  BackwardCopy c;
  c.args.numParams = cell.getNumParams();
  c.args.numStates = cell.getNumStates();
  // What the forward function returns after the new states and the loss.
  c.args.numSaved = forward.getNumResults() - c.args.numStates - 1;
  c.module = ModuleOp::create(cell.getLoc());
  OpBuilder b = OpBuilder::atBlockEnd(c.module->getBody());
  c.backward = cast<func::FuncOp>(b.clone(*backward));
  if (!inputGradient) {
    // dx is the result after the state gradients.
    Operation *ret = c.backward.front().getTerminator();
    ret->eraseOperand(c.args.numStates);
    c.backward.setFunctionType(FunctionType::get(
        cell.getContext(), c.backward.getArgumentTypes(),
        ret->getOperandTypes()));
  }
  eraseDeadOps(c.backward);
  return c;
}
