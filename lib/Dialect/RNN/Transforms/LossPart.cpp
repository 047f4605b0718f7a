//===- LossPart.cpp - the loss part of many backward steps at once --------===//
//
// See LossPart.h.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/LossPart.h"

#include "RowStacking.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace bptt::rnn;

namespace {

/// The values of `fn`'s body that depend on the incoming state gradients or
/// (unless `statesOnly`) the parameter-gradient accumulators, or on side
/// effects.
llvm::DenseSet<Value> dependentValues(func::FuncOp fn, const BackwardArgs &a,
                                      bool statesOnly = false) {
  Block &body = fn.front();
  llvm::DenseSet<Value> dependent;
  for (BlockArgument arg : body.getArguments())
    if (statesOnly ? a.isStateGradient(arg.getArgNumber())
                   : a.isGradient(arg.getArgNumber()))
      dependent.insert(arg);
  for (Operation &op : body.without_terminator()) {
    bool isDependent = !isMemoryEffectFree(&op) ||
                       llvm::any_of(readValues(&op), [&](Value v) {
                         return dependent.contains(v);
                       });
    if (isDependent)
      dependent.insert(op.result_begin(), op.result_end());
  }
  return dependent;
}

} // namespace

void bptt::rnn::splitLossAccumulations(func::FuncOp backward,
                                       BackwardArgs a) {
  if (backward.isExternal())
    return;
  // What no result needs any more (dx, when the caller dropped it) must not
  // count as read by the rest of the step.
  eraseDeadOps(backward);
  // Products onto the state gradients only: an accumulator's product
  // (dW += h^T·dA) stays an accumulation.
  llvm::DenseSet<Value> dependent = dependentValues(backward, a);
  llvm::DenseSet<Value> onStates =
      dependentValues(backward, a, /*statesOnly=*/true);
  SmallVector<linalg::LinalgOp> products;
  for (Operation &op : backward.front().without_terminator()) {
    auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
    if (!linalgOp || !linalg::isaContractionOpInterface(linalgOp) ||
        !linalgOp.hasPureTensorSemantics() || linalgOp.getNumDpsInits() != 1)
      continue;
    Value init = linalgOp.getDpsInits()[0];
    auto type = dyn_cast<RankedTensorType>(init.getType());
    if (!type || !type.hasStaticShape() || !isa<FloatType>(type.getElementType()))
      continue;
    bool inputsIndependent =
        llvm::none_of(linalgOp.getDpsInputs(),
                      [&](Value v) { return dependent.contains(v); });
    if (inputsIndependent && onStates.contains(init))
      products.push_back(linalgOp);
  }
  for (linalg::LinalgOp product : products) {
    Operation *op = product.getOperation();
    OpBuilder b(op);
    Location loc = op->getLoc();
    Value init = product.getDpsInits()[0];
    auto type = cast<RankedTensorType>(init.getType());
    Value zero = arith::ConstantOp::create(
        b, loc, cast<TypedAttr>(b.getZeroAttr(type.getElementType())));
    Value empty = tensor::EmptyOp::create(b, loc, type.getShape(),
                                          type.getElementType());
    Value zeros =
        linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty})
            .getResult(0);
    IRMapping map;
    map.map(init, zeros);
    Operation *alone = b.clone(*op, map);
    // init + product, elementwise.
    AffineMap identity = b.getMultiDimIdentityMap(type.getRank());
    SmallVector<utils::IteratorType> parallel(type.getRank(),
                                              utils::IteratorType::parallel);
    Value out = tensor::EmptyOp::create(b, loc, type.getShape(),
                                        type.getElementType());
    auto sum = linalg::GenericOp::create(
        b, loc, TypeRange{type}, ValueRange{init, alone->getResult(0)},
        ValueRange{out},
        SmallVector<AffineMap>{identity, identity, identity}, parallel,
        [](OpBuilder &nb, Location l, ValueRange args) {
          linalg::YieldOp::create(
              nb, l, ValueRange{arith::AddFOp::create(nb, l, args[0], args[1])});
        });
    op->getResult(0).replaceAllUsesWith(sum.getResult(0));
    op->erase();
  }
}

std::optional<LossPart> bptt::rnn::findLossPart(func::FuncOp backward,
                                                BackwardArgs a) {
  if (backward.isExternal() ||
      backward.getNumArguments() < a.afterAccumulators())
    return std::nullopt;
  Block &body = backward.front();
  std::optional<int64_t> rows = leadingRows(body.getArgument(0));
  if (!rows)
    return std::nullopt;
  LossPart p;
  p.backward = backward;
  p.args = a;
  p.rows = *rows;

  // Per-step arguments of one step's shape stack by rows; others (a saved
  // scalar) cannot be read by the part.
  llvm::DenseSet<Value> unstackable = dependentValues(backward, a);
  for (BlockArgument arg : body.getArguments()) {
    if (!a.isStep(arg.getArgNumber()))
      continue;
    auto t = dyn_cast<RankedTensorType>(arg.getType());
    if (t && t.getRank() >= 1 && t.hasStaticShape() && t.getDimSize(0) == p.rows)
      p.rowed.insert(arg);
    else
      unstackable.insert(arg);
  }

  // The stackable ops: independent of the gradients, and each keeping rows
  // independent where it touches them. An op that does not (a reduction
  // over the rows: the batch mean of the loss) leaves the part, and so does
  // everything that reads it; to a fixpoint.
  SmallVector<Operation *> part;
  for (Operation &op : body.without_terminator())
    if (llvm::none_of(readValues(&op),
                      [&](Value v) { return unstackable.contains(v); }) &&
        !llvm::any_of(op.getResults(),
                      [&](Value v) { return unstackable.contains(v); }))
      part.push_back(&op);
  llvm::DenseSet<Value> stepArgs = p.rowed;
  for (bool changed = true; changed;) {
    changed = false;
    p.rowed = stepArgs;
    propagateRows(part, p.rowed);
    llvm::DenseSet<Operation *> leaving;
    for (Operation *op : part)
      if (touchesRows(op, p.rowed) && !stacksByRows(op, p.rowed, p.rows))
        leaving.insert(op);
    // What reads a value that left leaves too.
    llvm::DenseSet<Value> gone;
    SmallVector<Operation *> kept;
    for (Operation *op : part) {
      bool leaves = leaving.contains(op) ||
                    llvm::any_of(readValues(op),
                                 [&](Value v) { return gone.contains(v); });
      if (leaves) {
        gone.insert(op->result_begin(), op->result_end());
        changed = true;
        continue;
      }
      kept.push_back(op);
    }
    part = std::move(kept);
  }
  llvm::DenseSet<Operation *> inPart(part.begin(), part.end());

  // Exported: stacked results of linalg ops of the part that something
  // outside it reads. (Views of x and shared values are recomputed there.)
  p.exported = usedOutside(body, inPart,
                           [&](Value v) { return p.rowed.contains(v); });
  if (p.exported.empty())
    return std::nullopt;

  // The ops they need, and the per-step arguments those read.
  llvm::DenseSet<Operation *> needed;
  llvm::DenseSet<unsigned> readArgs;
  SmallVector<Value> work(p.exported);
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      if (arg.getOwner() == &body)
        readArgs.insert(arg.getArgNumber());
      continue;
    }
    Operation *def = v.getDefiningOp();
    if (!def || !needed.insert(def).second)
      continue;
    llvm::append_range(work, readValues(def));
  }
  bool hasProduct = false;
  for (Operation *op : part) {
    if (!needed.contains(op))
      continue;
    p.ops.push_back(op);
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
      hasProduct |= linalg::isaContractionOpInterface(linalgOp);
  }
  if (!hasProduct)
    return std::nullopt;
  for (unsigned i = 0; i < body.getNumArguments(); ++i)
    if (a.isStep(i) && readArgs.contains(i))
      p.stepArgs.push_back(i);
  p.bytesPerStep = tensorBytes(p.exported);
  SmallVector<Value> gathered, states;
  for (unsigned i : p.stepArgs) {
    if (i == 0 || !isa<RankedTensorType>(body.getArgument(i).getType()))
      continue;
    gathered.push_back(body.getArgument(i));
    if (i < a.firstSaved())
      states.push_back(body.getArgument(i));
  }
  p.gatheredBytesPerStep = tensorBytes(gathered);
  p.gatheredStateBytesPerStep = tensorBytes(states);
  return p;
}

std::optional<LossPartSize> bptt::rnn::lossPartSize(CellOp cell,
                                                    bool inputGradient) {
  std::optional<BackwardCopy> copy = BackwardCopy::of(cell, inputGradient);
  if (!copy)
    return std::nullopt;
  splitLossAccumulations(copy->backward, copy->args);
  std::optional<LossPart> part = findLossPart(copy->backward, copy->args);
  if (!part)
    return std::nullopt;
  return LossPartSize{part->bytesPerStep, part->gatheredBytesPerStep,
                      part->gatheredStateBytesPerStep, part->stepArgs};
}

std::optional<int64_t> bptt::rnn::lossPartBytes(CellOp cell,
                                                bool inputGradient) {
  if (std::optional<LossPartSize> size = lossPartSize(cell, inputGradient))
    return size->exportedBytes;
  return std::nullopt;
}

void bptt::rnn::makeLossRest(const LossPart &p) {
  valuesAsArguments(p.backward, p.exported);
}

func::FuncOp bptt::rnn::buildBatchedLoss(const LossPart &p, int64_t chunk) {
  func::FuncOp backward = p.backward;
  Block &body = backward.front();
  const BackwardArgs &a = p.args;
  // The per-step arguments it reads, stacked by rows (the caller gathers the
  // slots' values into contiguous buffers); the parameters and d loss.
  SmallVector<Value> stepValues, shared;
  for (unsigned i : p.stepArgs)
    stepValues.push_back(body.getArgument(i));
  for (unsigned q = 0; q < a.numParams; ++q)
    shared.push_back(body.getArgument(1 + q));
  shared.push_back(body.getArgument(a.dLoss()));
  return buildStackedFunction(
      backward, (backward.getSymName() + "_loss_" + Twine(chunk)).str(),
      stepValues, shared, p.ops, p.rowed, p.rows, chunk, p.exported);
}
