//===- GradientChunk.cpp - parameter gradients over chunks of steps -------===//
//
// See GradientChunk.h.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/GradientChunk.h"

#include "RowStacking.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace bptt::rnn;

namespace {

/// `v` below linalg ops that only copy: a generic of identity maps and
/// parallel loops yielding one of its inputs (the adjoint of a value with
/// two uses, handed to both).
Value throughCopies(Value v) {
  while (auto generic = v.getDefiningOp<linalg::GenericOp>()) {
    if (!generic.hasPureTensorSemantics() ||
        generic.getNumLoops() != generic.getNumParallelLoops() ||
        !llvm::all_of(generic.getIndexingMapsArray(),
                      [](AffineMap m) { return m.isIdentity(); }))
      break;
    unsigned result = cast<OpResult>(v).getResultNumber();
    auto yielded = dyn_cast<BlockArgument>(
        generic.getBody()->getTerminator()->getOperand(result));
    if (!yielded || yielded.getArgNumber() >= generic.getNumDpsInputs())
      break;
    v = generic.getDpsInputs()[yielded.getArgNumber()];
  }
  return v;
}

/// Whether `op` adds to its one init `init` a reduction over a loop that is
/// the leading dimension (of `rows`) of every input and appears nowhere
/// else: `out + f(ins)`, so that c steps' inputs stacked by rows give the
/// sum of their contributions.
bool isRowAccumulation(linalg::LinalgOp op, Value init, int64_t rows) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInits() != 1 ||
      op.getDpsInits()[0] != init || op->getNumResults() != 1 ||
      op.getNumDpsInputs() == 0)
    return false;
  auto initType = dyn_cast<RankedTensorType>(init.getType());
  if (!initType || !initType.hasStaticShape() ||
      !isa<FloatType>(initType.getElementType()))
    return false;
  if (readsLoopIndex(op))
    return false;
  std::optional<unsigned> rowLoop;
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto t = dyn_cast<RankedTensorType>(input->get().getType());
    if (!t || t.getRank() < 1 || !t.hasStaticShape() || t.getDimSize(0) != rows)
      return false;
    AffineMap map = op.getMatchingIndexingMap(input);
    auto dim = dyn_cast<AffineDimExpr>(map.getResult(0));
    if (!dim || (rowLoop && *rowLoop != dim.getPosition()))
      return false;
    rowLoop = dim.getPosition();
  }
  if (op.getIteratorTypesArray()[*rowLoop] != utils::IteratorType::reduction)
    return false;
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    for (unsigned i = op.isDpsInput(&operand) ? 1 : 0; i < map.getNumResults();
         ++i)
      if (map.getResult(i).isFunctionOfDim(*rowLoop))
        return false;
  }
  // The body yields out + (something that does not read out).
  Block &body = op->getRegion(0).front();
  BlockArgument out = body.getArgument(op.getNumDpsInputs());
  Operation *yield = body.getTerminator();
  if (yield->getNumOperands() != 1 || !out.hasOneUse())
    return false;
  auto sum = yield->getOperand(0).getDefiningOp<arith::AddFOp>();
  return sum && sum->getBlock() == &body &&
         (sum.getLhs() == out || sum.getRhs() == out);
}

/// The ops that make `v` a view of x (`x` itself: none), each a slice that
/// keeps the rows whole, or nullopt when `v` is not one.
std::optional<SmallVector<Operation *>> viewOfX(Value v, Value x,
                                                int64_t rows) {
  SmallVector<Operation *> views;
  llvm::DenseSet<Value> rowed{x};
  while (v != x) {
    auto slice = v.getDefiningOp<tensor::ExtractSliceOp>();
    if (!slice)
      return std::nullopt;
    rowed.insert(slice.getResult());
    if (!stacksByRows(slice, rowed, rows))
      return std::nullopt;
    views.push_back(slice);
    v = slice.getSource();
  }
  std::reverse(views.begin(), views.end());
  return views;
}

} // namespace

std::optional<GradientPart> bptt::rnn::findGradientPart(func::FuncOp backward,
                                                        BackwardArgs a) {
  if (backward.isExternal() || a.numParams == 0)
    return std::nullopt;
  Block &body = backward.front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() < a.numStates + a.numParams + 1)
    return std::nullopt;
  if (body.getNumArguments() < a.afterAccumulators())
    return std::nullopt;
  Value x = body.getArgument(0);
  std::optional<int64_t> rows = leadingRows(x);
  if (!rows)
    return std::nullopt;

  GradientPart p;
  p.backward = backward;
  p.args = a;
  p.numDx = ret.getNumOperands() - a.numStates - a.numParams - 1;
  p.rows = *rows;

  // Each parameter's chain, from its accumulator to its returned gradient.
  llvm::DenseSet<Operation *> deferred;
  for (unsigned q = 0; q < a.numParams; ++q) {
    Value v = body.getArgument(a.accumulator(q));
    SmallVector<Operation *> chain;
    bool complete = false;
    while (v.hasOneUse()) {
      OpOperand &use = *v.use_begin();
      if (use.getOwner() == ret) {
        complete = use.getOperandNumber() == a.gradientResult(q, p.numDx);
        break;
      }
      auto op = dyn_cast<linalg::LinalgOp>(use.getOwner());
      if (!op || !isRowAccumulation(op, v, p.rows))
        break;
      chain.push_back(op);
      v = op->getResult(0);
    }
    if (!complete || chain.empty())
      continue;
    // Inputs are this step's values: computed in the body or per-step
    // arguments, never the parameters, gradients or d loss.
    bool stepInputs = llvm::all_of(chain, [&](Operation *op) {
      return llvm::all_of(
          cast<linalg::LinalgOp>(op).getDpsInputs(), [&](Value in) {
            auto arg = dyn_cast<BlockArgument>(throughCopies(in));
            return !arg || (arg.getOwner() == &body &&
                            a.isStep(arg.getArgNumber()));
          });
    });
    if (!stepInputs)
      continue;
    p.params.push_back(q);
    deferred.insert(chain.begin(), chain.end());
  }
  if (p.params.empty())
    return std::nullopt;

  // What the deferred ops read: views of x, rebuilt from the stacked inputs,
  // or values the step exports.
  p.rowed.insert(x);
  llvm::DenseSet<Operation *> xViews;
  llvm::SetVector<Value> exported;
  for (Operation &op : body.without_terminator()) {
    if (!deferred.contains(&op))
      continue;
    for (Value in : cast<linalg::LinalgOp>(op).getDpsInputs()) {
      Value source = throughCopies(in);
      if (std::optional<SmallVector<Operation *>> views =
              viewOfX(source, x, p.rows)) {
        p.readsX = true;
        for (Operation *view : *views) {
          xViews.insert(view);
          p.rowed.insert(view->getResult(0));
        }
        continue;
      }
      exported.insert(source);
      p.rowed.insert(source);
    }
  }
  for (Operation &op : body.without_terminator())
    if (deferred.contains(&op) || xViews.contains(&op))
      p.ops.push_back(&op);
  p.exported.assign(exported.begin(), exported.end());
  p.bytesPerStep = tensorBytes(p.exported);
  return p;
}

std::optional<int64_t> bptt::rnn::gradientPartBytes(CellOp cell,
                                                    bool inputGradient) {
  return partBytesPerStep(cell, inputGradient, [](BackwardCopy &copy) {
    return findGradientPart(copy.backward, copy.args);
  });
}

int64_t bptt::rnn::defaultGradientChunk(int64_t requested,
                                        int64_t bytesPerStep, int64_t steps,
                                        int64_t internalBytes) {
  // Below 4 steps a chunk saves little (the products gain K = 2·B at most)
  // while its buffers still take budget from the schedule: at T = 100 a
  // chunk of 2 cost the 5% budget 44% more forward steps.
  constexpr int64_t kSmallestWorthwhile = 4;
  int64_t chunk = std::min(requested, steps);
  while (chunk >= kSmallestWorthwhile &&
         chunk * bytesPerStep > steps * internalBytes / 64)
    chunk /= 2;
  return chunk >= kSmallestWorthwhile ? chunk : 0;
}

func::FuncOp bptt::rnn::buildGradientChunk(const GradientPart &p,
                                           int64_t chunk) {
  func::FuncOp backward = p.backward;
  Block &body = backward.front();
  const BackwardArgs &a = p.args;
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Value x = body.getArgument(0);

  SmallVector<Type> inputTypes, resultTypes;
  if (p.readsX)
    inputTypes.push_back(stacked(x.getType(), chunk));
  for (Value v : p.exported)
    inputTypes.push_back(stacked(v.getType(), chunk));
  for (unsigned q : p.params) {
    inputTypes.push_back(body.getArgument(a.accumulator(q)).getType());
    resultTypes.push_back(ret.getOperand(a.gradientResult(q, p.numDx)).getType());
  }
  OpBuilder b(backward);
  b.setInsertionPointAfter(backward);
  Location loc = backward.getLoc();
  auto fn = func::FuncOp::create(
      b, loc, (backward.getSymName() + "_grads_" + Twine(chunk)).str(),
      FunctionType::get(backward.getContext(), inputTypes, resultTypes));
  fn.setPrivate();
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  IRMapping map;
  unsigned next = 0;
  if (p.readsX)
    map.map(x, entry->getArgument(next++));
  for (Value v : p.exported)
    map.map(v, entry->getArgument(next++));
  for (unsigned q : p.params)
    map.map(body.getArgument(a.accumulator(q)), entry->getArgument(next++));
  // The deferred ops read their inputs through copies, which stay behind.
  for (Operation *op : p.ops) {
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
      for (Value in : linalgOp.getDpsInputs())
        if (!map.contains(in) && map.contains(throughCopies(in)))
          map.map(in, map.lookup(throughCopies(in)));
    cloneStacked(b, op, p.rowed, p.rows, chunk, map);
  }
  SmallVector<Value> returned;
  for (unsigned q : p.params)
    returned.push_back(map.lookup(ret.getOperand(a.gradientResult(q, p.numDx))));
  func::ReturnOp::create(b, loc, returned);
  return fn;
}

void bptt::rnn::makeGradientRest(const GradientPart &p) {
  func::FuncOp backward = p.backward;
  Block &body = backward.front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  const BackwardArgs &a = p.args;
  for (unsigned q : p.params)
    ret->setOperand(a.gradientResult(q, p.numDx), body.getArgument(a.accumulator(q)));
  SmallVector<Value> results(ret.getOperands());
  results.insert(results.end() - 1, p.exported.begin(), p.exported.end());
  ret->setOperands(results);
  backward.setFunctionType(FunctionType::get(backward.getContext(),
                                             backward.getArgumentTypes(),
                                             ret.getOperandTypes()));
  eraseDeadOps(backward);
}
