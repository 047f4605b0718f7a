//===- Differentiate.cpp - the rnn-differentiate pass ---------------------===//
//
// Reverse-mode differentiation of a cell body at the tensor level. For a cell
// @c it generates
//
//   @c_forward(states..., x, params...) -> (new states..., loss, saved...)
//   @c_backward(x, params..., new states..., saved...,
//               d new states..., d loss, d params accumulated so far...)
//       -> (d states..., d x, d params..., loss)
//
// The internal state s_t of the planner is (new states, saved): everything
// the backward step needs besides x_t and the parameters, which the caller
// holds for the whole sequence anyway. What is saved is decided while the
// backward function is built: each adjoint rule asks for the forward values
// it reads, and such a value is
//   - an argument of the backward function when it is x, a parameter or a
//     new state;
//   - recomputed in the backward function when it depends only on x, the
//     parameters and constants through ops other than matrix products
//     (broadcast biases, masks);
//   - recomputed there too when it is part of the loss part: it depends only
//     on the new states, x, the parameters and constants (matrix products
//     included) and feeds no new state (an output layer and its softmax).
//     The backward step also returns the step's loss, so a schedule takes
//     the loss from its backward steps, which run once per step, and its
//     forward steps, which run once or more, compute the step proper only;
//   - otherwise saved: returned by @c_forward and passed to @c_backward.
// Elementwise linalg.generic bodies are recomputed inside their adjoint, so
// a generic saves its tensor operands, never its scalar intermediates: an
// LSTM saves its gate pre-activations and its previous h and c.
//
// Where every new state follows from x, the parameters and the saved
// values without a matrix product (an LSTM's c' and h' from its gates and c),
// it also generates
//
//   @c_states(x, params..., saved...) -> new states
//
// (rnn.states, with rnn.saved_bytes): a schedule may then keep the saved
// values alone and recompute the new states where it needs them
// (rnn-remat's internal-state option).
//
// Parameter gradients are accumulated in place: the backward function takes
// the running sums and returns them updated (matrix products accumulate into
// them directly), so a BPTT loop needs no separate addition per step.
//
//===----------------------------------------------------------------------===//

#include "ScalarDerivatives.h"
#include "SliceBoxes.h"

#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <functional>
#include <memory>

namespace bptt::rnn {
#define GEN_PASS_DEF_RNNDIFFERENTIATE
#include "bptt/Dialect/RNN/Passes.h.inc"
} // namespace bptt::rnn

using namespace mlir;
using namespace bptt;
using namespace bptt::rnn;

static constexpr StringLiteral kSupportedTensorOps =
    "linalg.matmul, linalg.batch_matmul, linalg.generic (elementwise, or a "
    "reduction that accumulates with addf, maximumf, maxnumf, minimumf or "
    "minnumf), linalg.fill, linalg.broadcast, linalg.transpose, tensor.empty, "
    "tensor.extract_slice, tensor.insert_slice, tensor.concat, tensor.extract, "
    "tensor.collapse_shape, tensor.expand_shape, arith.constant, "
    "rnn.stop_gradient";

static bool isFloatLike(Type t) {
  if (auto shaped = dyn_cast<ShapedType>(t))
    t = shaped.getElementType();
  return isa<FloatType>(t);
}

/// Values used inside `op`'s regions but defined outside them.
static SetVector<Value> capturedValues(Operation *op) {
  SetVector<Value> captured;
  getUsedValuesDefinedAbove(op->getRegions(), captured);
  return captured;
}

/// How a reduction generic folds each output: `acc = combine(acc, expr)`.
enum class Combiner { None, Add, Max, Min };

struct OutputFold {
  Combiner combiner = Combiner::None;
  Operation *combineOp = nullptr;
  Value expr;
};

static bool isMatmulLike(Operation *op) {
  return isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op);
}

static SmallVector<unsigned> dimsOf(AffineMap map) {
  SmallVector<unsigned> dims;
  for (AffineExpr e : map.getResults())
    dims.push_back(cast<AffineDimExpr>(e).getPosition());
  return dims;
}

namespace {

/// Differentiates one cell; see the file comment.
class CellDifferentiator {
public:
  CellDifferentiator(CellOp cell)
      : cell(cell), body(cell.getBody().front()),
        yield(cast<YieldOp>(body.getTerminator())), builder(cell) {}

  /// Generates @<cell>_forward and @<cell>_backward after the cell and
  /// records them, and the internal state's size, on the cell.
  LogicalResult run(SymbolTable &symbols);

private:
  // Analyses.
  void computeActivity();
  LogicalResult checkSupported();
  LogicalResult checkGeneric(linalg::GenericOp g);
  InFlightDiagnostic unsupported(Operation *op);

  // The backward function.
  Value primal(Value v);
  Value adjoint(Value v) const { return adjoints.lookup(v); }
  void accumulate(Value v, Value contribution);
  /// Where every slice of a value is saved, saves the value instead.
  void mergeSavedSlices();
  Value add(Value a, Value b);
  Value zeros(Type type);
  void reduceInto(Value target, Value full, AffineMap map);
  LogicalResult differentiate(Operation *op);
  void differentiateMatmul(linalg::LinalgOp op);
  void differentiateGeneric(linalg::GenericOp g);
  /// @<cell>_states(x, params..., saved...) -> new states, when every new
  /// state follows from x, the parameters and the saved values without a
  /// matrix product (for an LSTM, c' and h' from the gates and c); else
  /// null.
  func::FuncOp buildStatesFunction(StringRef name);

  bool isActive(Value v) const { return active.contains(v); }
  Location loc() { return cell.getLoc(); }

  CellOp cell;
  Block &body;
  YieldOp yield;
  OpBuilder builder;

  DenseSet<Value> active;
  /// Values the backward function can recompute from x, the parameters and
  /// constants without a matrix product.
  DenseSet<Value> recomputable;
  DenseMap<Operation *, SmallVector<OutputFold>> folds;

  // Backward-function construction state.
  func::FuncOp backward;
  Block *entry = nullptr;
  /// Where recomputed forward values go: ahead of every adjoint op, which is
  /// built in a separate block and appended at the end.
  OpBuilder recompute{cell};
  Block adjointBlock;
  IRMapping primals;
  SmallVector<Value> saved;
  unsigned savedArgsStart = 0;
  DenseMap<Value, Value> adjoints;
};

} // namespace

//===----------------------------------------------------------------------===//
// Analyses
//===----------------------------------------------------------------------===//

void CellDifferentiator::computeActivity() {
  unsigned numStates = cell.getNumStates();
  for (BlockArgument arg : body.getArguments())
    if (isFloatLike(arg.getType()))
      active.insert(arg);
  // The ops the new states depend on (the step proper); the rest only feeds
  // the loss.
  DenseSet<Operation *> feedsState;
  SmallVector<Value> pending(yield.getOperands().take_front(numStates));
  while (!pending.empty()) {
    Operation *def = pending.pop_back_val().getDefiningOp();
    if (!def || def->getBlock() != &body || !feedsState.insert(def).second)
      continue;
    llvm::append_range(pending, def->getOperands());
    llvm::append_range(pending, capturedValues(def));
  }
  // Recomputable: x, parameters, and what only they and constants feed
  // (without a matrix product); and the loss part: what only the new states,
  // x, parameters and constants feed and feeds no new state (products
  // included). The backward step recomputes the loss part from the new
  // states it is given, so a forward step runs the step proper only.
  DenseSet<Value> newStates(yield.getOperands().begin(),
                            yield.getOperands().begin() + numStates);
  DenseSet<Value> lossPart;
  for (BlockArgument arg : body.getArguments().drop_front(numStates))
    recomputable.insert(arg);
  for (Operation &op : body.without_terminator()) {
    SetVector<Value> inputs = capturedValues(&op);
    inputs.insert(op.operand_begin(), op.operand_end());
    // rnn.stop_gradient: its result is a constant to the derivative.
    bool anyActive = !isa<StopGradientOp>(op) &&
                     llvm::any_of(inputs, [&](Value v) { return isActive(v); });
    for (Value r : op.getResults())
      if (anyActive && isFloatLike(r.getType()))
        active.insert(r);
    if (!llvm::all_of(inputs, [&](Value v) {
          return recomputable.contains(v) || newStates.contains(v);
        }))
      continue;
    bool afterStep = llvm::any_of(inputs, [&](Value v) {
      return newStates.contains(v) || lossPart.contains(v);
    });
    if (afterStep && feedsState.contains(&op))
      continue;
    if (!afterStep && isMatmulLike(&op))
      continue;
    for (Value r : op.getResults()) {
      recomputable.insert(r);
      if (afterStep)
        lossPart.insert(r);
    }
  }
}

InFlightDiagnostic CellDifferentiator::unsupported(Operation *op) {
  InFlightDiagnostic diag = op->emitOpError()
                            << "in cell @" << cell.getSymName()
                            << " is not supported by rnn-differentiate";
  diag.attachNote(cell.getLoc()) << "cell @" << cell.getSymName() << " is here";
  return diag;
}

LogicalResult CellDifferentiator::checkGeneric(linalg::GenericOp g) {
  for (AffineMap map : g.getIndexingMapsArray())
    if (!map.isProjectedPermutation())
      return unsupported(g) << ": every indexing map must be a projected "
                               "permutation of the loop dimensions, got "
                            << AffineMapAttr::get(map);
  for (Value c : capturedValues(g))
    if (isActive(c))
      return unsupported(g)
             << ": its body uses a differentiable value defined outside it; "
                "pass that value as an input operand instead";
  Block &block = g.getRegion().front();
  for (Operation &op : block.without_terminator())
    if (classifyScalarOp(&op) == ScalarOpClass::Unsupported)
      return unsupported(&op) << " inside a linalg.generic body; supported "
                                 "scalar ops: "
                              << supportedScalarOps();

  SmallVector<OutputFold> outputFolds(g.getNumDpsInits());
  bool reduction = g.getNumReductionLoops() > 0;
  auto yieldOp = cast<linalg::YieldOp>(block.getTerminator());
  for (auto [j, init] : llvm::enumerate(g.getDpsInits())) {
    if (!reduction)
      continue;
    BlockArgument acc = block.getArgument(g.getNumDpsInputs() + j);
    Value y = yieldOp.getOperand(j);
    Operation *def = y.getDefiningOp();
    Combiner combiner =
        !def ? Combiner::None
             : TypeSwitch<Operation *, Combiner>(def)
                   .Case<arith::AddFOp>([](auto) { return Combiner::Add; })
                   .Case<arith::MaximumFOp, arith::MaxNumFOp>(
                       [](auto) { return Combiner::Max; })
                   .Case<arith::MinimumFOp, arith::MinNumFOp>(
                       [](auto) { return Combiner::Min; })
                   .Default([](auto) { return Combiner::None; });
    bool wellFormed = combiner != Combiner::None &&
                      def->getBlock() == &block && acc.hasOneUse() &&
                      y.hasOneUse() &&
                      (def->getOperand(0) == acc) != (def->getOperand(1) == acc);
    if (!wellFormed)
      return unsupported(g)
             << ": a reduction must accumulate each output as `acc = "
                "combine(acc, expr)` with combine one of arith.addf, "
                "maximumf, maxnumf, minimumf, minnumf, and use acc nowhere "
                "else";
    if (combiner != Combiner::Add && isActive(init))
      return unsupported(g) << ": a max/min reduction must start from a "
                               "constant (linalg.fill of a constant)";
    Value expr = def->getOperand(0) == acc ? def->getOperand(1)
                                           : def->getOperand(0);
    outputFolds[j] = {combiner, def, expr};
  }
  folds[g] = std::move(outputFolds);
  return success();
}

LogicalResult CellDifferentiator::checkSupported() {
  for (Operation &op : body.without_terminator()) {
    for (Type t : op.getResultTypes())
      if (auto shaped = dyn_cast<ShapedType>(t); shaped && !shaped.hasStaticShape())
        return unsupported(&op) << ": result type " << t
                                << " must have a static shape";
    LogicalResult ok =
        TypeSwitch<Operation *, LogicalResult>(&op)
            .Case<linalg::MatmulOp, linalg::BatchMatmulOp>([&](auto mm)
                                                               -> LogicalResult {
              for (AffineMap map : mm.getIndexingMapsArray())
                if (!map.isProjectedPermutation() ||
                    map.getNumResults() + 1 != map.getNumDims())
                  return unsupported(mm)
                         << ": operands may be transposed but not broadcast";
              return success();
            })
            .Case<linalg::GenericOp>(
                [&](linalg::GenericOp g) { return checkGeneric(g); })
            .Case<tensor::ExtractSliceOp, tensor::InsertSliceOp>(
                [&](auto s) -> LogicalResult {
              if (ShapedType::isDynamicShape(s.getStaticOffsets()) ||
                  ShapedType::isDynamicShape(s.getStaticSizes()) ||
                  ShapedType::isDynamicShape(s.getStaticStrides()))
                return unsupported(s) << ": offsets, sizes and strides must "
                                         "be constants";
              return success();
            })
            .Case<linalg::FillOp, linalg::BroadcastOp, linalg::TransposeOp,
                  tensor::EmptyOp, tensor::ConcatOp, tensor::ExtractOp,
                  tensor::CollapseShapeOp, tensor::ExpandShapeOp,
                  arith::ConstantOp, StopGradientOp>(
                [](auto) { return success(); })
            .Default([&](Operation *other) -> LogicalResult {
              bool scalar = llvm::none_of(other->getOperandTypes(),
                                          [](Type t) { return isa<ShapedType>(t); });
              if (scalar && other->getNumRegions() == 0 &&
                  classifyScalarOp(other) != ScalarOpClass::Unsupported)
                return success();
              return unsupported(other)
                     << "; supported ops: " << kSupportedTensorOps
                     << ", and on scalars " << supportedScalarOps();
            });
    if (failed(ok))
      return failure();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Building the backward function
//===----------------------------------------------------------------------===//

/// The slices that cover `source` exactly, disjoint, if its every use is
/// one (an LSTM's gates, cut into the four gates' pre-activations); else
/// nothing.
static SmallVector<tensor::ExtractSliceOp> coveringSlices(Value source) {
  auto type = dyn_cast<RankedTensorType>(source.getType());
  if (isa<BlockArgument>(source) || !type || !type.hasStaticShape())
    return {};
  SmallVector<tensor::ExtractSliceOp> slices;
  SmallVector<SliceBox> boxes;
  for (Operation *user : source.getUsers()) {
    auto slice = dyn_cast<tensor::ExtractSliceOp>(user);
    if (!slice || slice.getType().getRank() != type.getRank())
      return {};
    std::optional<SliceBox> box = staticBox(slice);
    if (!box)
      return {};
    boxes.push_back(*box);
    slices.push_back(slice);
  }
  if (!coverExactly(boxes, type.getNumElements()))
    return {};
  return slices;
}

Value CellDifferentiator::primal(Value v) {
  if (Value mapped = primals.lookupOrNull(v))
    return mapped;
  Operation *def = v.getDefiningOp();
  // The generated functions hold the identity's operand itself.
  if (auto stop = dyn_cast_or_null<StopGradientOp>(def)) {
    Value input = primal(stop.getInput());
    primals.map(v, input);
    return input;
  }
  if (def && recomputable.contains(v)) {
    IRMapping mapping;
    for (Value operand : def->getOperands())
      mapping.map(operand, primal(operand));
    for (Value c : capturedValues(def))
      mapping.map(c, primal(c));
    Operation *copy = recompute.clone(*def, mapping);
    for (auto [r, c] : llvm::zip(def->getResults(), copy->getResults()))
      primals.map(r, c);
    return primals.lookup(v);
  }
  // Saved: one more argument of the backward function, in the internal-state
  // group.
  BlockArgument arg = entry->insertArgument(savedArgsStart + saved.size(),
                                            v.getType(), v.getLoc());
  saved.push_back(v);
  primals.map(v, arg);
  return arg;
}

/// Whether `acc` (an adjoint being assembled slice by slice) is still zero
/// in `slice`'s region: a chain of insert_slice ops, none of which overlaps
/// the region, over a fill with zero.
static bool isUnwrittenRegion(Value acc, tensor::ExtractSliceOp slice) {
  std::optional<SliceBox> box = staticBox(slice);
  if (!box)
    return false;
  while (auto insert = acc.getDefiningOp<tensor::InsertSliceOp>()) {
    std::optional<SliceBox> written = staticBox(insert);
    if (!written || written->offsets.size() != box->offsets.size() ||
        !written->disjointFrom(*box))
      return false;
    acc = insert.getDest();
  }
  auto fill = acc.getDefiningOp<linalg::FillOp>();
  return fill && matchPattern(fill.getInputs()[0], m_AnyZeroFloat());
}

/// When the backward step needs every slice of a value that its slices
/// cover (an LSTM's four gate pre-activations, slices of its gates), it
/// takes the value once and slices it itself: the same bytes, but the
/// forward step computes the value straight into its slot instead of
/// copying each slice out of it.
void CellDifferentiator::mergeSavedSlices() {
  DenseMap<Value, unsigned> position;
  for (auto [i, v] : llvm::enumerate(saved))
    position[v] = i;
  SmallVector<unsigned> dropped;
  OpBuilder b = OpBuilder::atBlockBegin(entry);
  for (unsigned i = 0; i < saved.size(); ++i) {
    auto slice = saved[i].getDefiningOp<tensor::ExtractSliceOp>();
    if (!slice)
      continue;
    Value source = slice.getSource();
    SmallVector<tensor::ExtractSliceOp> slices = coveringSlices(source);
    if (slices.empty() || position.contains(source) ||
        !llvm::all_of(slices, [&](tensor::ExtractSliceOp s) {
          return position.contains(s.getResult());
        }))
      continue;
    BlockArgument whole = entry->insertArgument(
        savedArgsStart + saved.size(), source.getType(), source.getLoc());
    position[source] = saved.size();
    saved.push_back(source);
    for (tensor::ExtractSliceOp s : slices) {
      IRMapping mapping;
      mapping.map(source, whole);
      Value view = b.clone(*s, mapping)->getResult(0);
      unsigned at = position[s.getResult()];
      entry->getArgument(savedArgsStart + at).replaceAllUsesWith(view);
      dropped.push_back(at);
    }
  }
  llvm::sort(dropped, std::greater<unsigned>());
  for (unsigned at : dropped) {
    entry->eraseArgument(savedArgsStart + at);
    saved.erase(saved.begin() + at);
  }
}

Value CellDifferentiator::zeros(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  Value empty = tensor::EmptyOp::create(builder, loc(), tensor.getShape(),
                                        tensor.getElementType());
  Value zero = arith::ConstantOp::create(
      builder, loc(), builder.getFloatAttr(tensor.getElementType(), 0.0));
  return linalg::FillOp::create(builder, loc(), zero, empty).getResult(0);
}

/// a + b, elementwise for tensors.
Value CellDifferentiator::add(Value a, Value b) {
  auto tensor = dyn_cast<RankedTensorType>(a.getType());
  if (!tensor)
    return arith::AddFOp::create(builder, loc(), a, b);
  AffineMap id = builder.getMultiDimIdentityMap(tensor.getRank());
  Value init = tensor::EmptyOp::create(builder, loc(), tensor.getShape(),
                                       tensor.getElementType());
  SmallVector<utils::IteratorType> iters(tensor.getRank(),
                                         utils::IteratorType::parallel);
  return linalg::GenericOp::create(
             builder, loc(), tensor, ValueRange{a, b}, init,
             ArrayRef<AffineMap>{id, id, id}, iters,
             [](OpBuilder &nb, Location l, ValueRange args) {
               linalg::YieldOp::create(
                   nb, l, arith::AddFOp::create(nb, l, args[0], args[1])
                              .getResult());
             })
      .getResult(0);
}

void CellDifferentiator::accumulate(Value v, Value contribution) {
  if (!isActive(v) || !contribution)
    return;
  Value &slot = adjoints[v];
  slot = slot ? add(slot, contribution) : contribution;
}

/// Sums `full` (a tensor over a loop space) over the loop dimensions that
/// `map` drops, into the adjoint of `target`, whose indices are `map`.
void CellDifferentiator::reduceInto(Value target, Value full, AffineMap map) {
  if (!isActive(target))
    return;
  auto fullType = cast<RankedTensorType>(full.getType());
  auto targetTensor = dyn_cast<RankedTensorType>(target.getType());
  RankedTensorType resultType =
      targetTensor ? targetTensor
                   : RankedTensorType::get({}, fullType.getElementType());
  Value existing = targetTensor ? adjoint(target) : Value();
  Value init = existing ? existing : zeros(resultType);
  SmallVector<utils::IteratorType> iters(map.getNumDims(),
                                         utils::IteratorType::reduction);
  for (unsigned d : dimsOf(map))
    iters[d] = utils::IteratorType::parallel;
  Value sum =
      linalg::GenericOp::create(
          builder, loc(), resultType, full, init,
          ArrayRef<AffineMap>{builder.getMultiDimIdentityMap(map.getNumDims()),
                              map},
          iters,
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(
                nb, l,
                arith::AddFOp::create(nb, l, args[1], args[0]).getResult());
          })
          .getResult(0);
  if (targetTensor) {
    adjoints[target] = sum;
    return;
  }
  accumulate(target, tensor::ExtractOp::create(builder, loc(), sum, {}));
}

/// C = A·B (+ C0), with any transposition of the operands: the adjoint of
/// each input is again a product of the same op kind, accumulated into the
/// input's running adjoint. Its loop dimensions are relabelled so that the
/// input being differentiated is the output (batch dims first, then the
/// input's two dims in order, then the contracted one).
void CellDifferentiator::differentiateMatmul(linalg::LinalgOp op) {
  Value dC = adjoint(op->getResult(0));
  if (!dC)
    return;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  Value inputs[2] = {op.getDpsInputs()[0], op.getDpsInputs()[1]};
  unsigned numDims = maps[2].getNumDims();
  for (unsigned x = 0; x < 2; ++x) {
    Value X = inputs[x];
    if (!isActive(X))
      continue;
    Value Y = inputs[1 - x];
    SmallVector<unsigned> xd = dimsOf(maps[x]), yd = dimsOf(maps[1 - x]),
                          cd = dimsOf(maps[2]);
    auto in = [](ArrayRef<unsigned> dims, unsigned d) {
      return llvm::is_contained(dims, d);
    };
    SmallVector<int64_t> label(numDims, -1);
    unsigned next = 0;
    for (unsigned d : xd)
      if (in(yd, d) && in(cd, d))
        label[d] = next++;
    SmallVector<unsigned> own;
    for (unsigned d : xd)
      if (label[d] < 0) {
        label[d] = next++;
        own.push_back(d);
      }
    for (unsigned d = 0; d < numDims; ++d)
      if (label[d] < 0)
        label[d] = next++;
    auto relabel = [&](AffineMap m) {
      SmallVector<AffineExpr> results;
      for (unsigned d : dimsOf(m))
        results.push_back(builder.getAffineDimExpr(label[d]));
      return AffineMap::get(numDims, 0, results, builder.getContext());
    };
    // The operand holding the first of X's own dims plays the left-hand side.
    bool dCIsLhs = in(cd, own.front());
    Value y = primal(Y);
    Value lhs = dCIsLhs ? dC : y, rhs = dCIsLhs ? y : dC;
    AffineMap lhsMap = relabel(dCIsLhs ? maps[2] : maps[1 - x]);
    AffineMap rhsMap = relabel(dCIsLhs ? maps[1 - x] : maps[2]);
    AffineMap outMap = relabel(maps[x]);
    Value init = adjoint(X) ? adjoint(X) : zeros(X.getType());
    NamedAttribute mapsAttr(
        builder.getStringAttr("indexing_maps"),
        builder.getAffineMapArrayAttr({lhsMap, rhsMap, outMap}));
    Operation *product;
    if (isa<linalg::MatmulOp>(op))
      product = linalg::MatmulOp::create(builder, loc(), TypeRange{X.getType()},
                                         ValueRange{lhs, rhs}, ValueRange{init},
                                         {mapsAttr});
    else
      product = linalg::BatchMatmulOp::create(
          builder, loc(), TypeRange{X.getType()}, ValueRange{lhs, rhs},
          ValueRange{init}, {mapsAttr});
    adjoints[X] = product->getResult(0);
  }
  // The accumulator the product started from (a bias, say) gets dC as is.
  accumulate(op.getDpsInits()[0], dC);
}

/// The adjoint of a linalg.generic is one all-parallel generic over the same
/// loops. Its body runs the scalar rules backwards; the scalars they read are
/// materialised on demand: a value the forward body yields is read from the
/// forward result (for an RNN cell that is often a new state, which the
/// backward step has anyway: tanh' reads tanh's output), a body argument is
/// read from the forward operand, and anything else is recomputed from those.
/// So a generic saves only what its rules read. Each differentiable operand
/// gets one output: indexed like the operand when its map covers every loop
/// (accumulating into the operand's running adjoint), otherwise over the
/// whole loop space and then summed over the dimensions the operand lacks.
void CellDifferentiator::differentiateGeneric(linalg::GenericOp g) {
  unsigned numInputs = g.getNumDpsInputs(), numInits = g.getNumDpsInits();
  SmallVector<Value> dOut;
  for (Value r : g.getResults())
    dOut.push_back(adjoint(r));
  if (llvm::none_of(dOut, [](Value d) { return bool(d); }))
    return;

  Block &fwd = g.getRegion().front();
  auto fwdYield = cast<linalg::YieldOp>(fwd.getTerminator());
  SmallVector<AffineMap> maps = g.getIndexingMapsArray();
  bool reduction = g.getNumReductionLoops() > 0;
  SmallVector<int64_t> loopRanges = g.getStaticLoopRanges();
  unsigned numLoops = loopRanges.size();
  ArrayRef<OutputFold> outputFolds = folds[g];
  DenseSet<Operation *> combiners;
  for (const OutputFold &f : outputFolds)
    if (f.combineOp)
      combiners.insert(f.combineOp);
  auto forwardOperand = [&](unsigned argNo) {
    return argNo < numInputs ? g.getDpsInputs()[argNo]
                             : g.getDpsInits()[argNo - numInputs];
  };
  // Forward body arguments that read their operand (a reduction's
  // accumulator does not).
  unsigned numReadArgs = reduction ? numInputs : numInputs + numInits;

  // Which forward scalars carry a derivative.
  DenseSet<Value> act;
  for (unsigned a = 0; a < numReadArgs; ++a)
    if (isActive(forwardOperand(a)))
      act.insert(fwd.getArgument(a));
  for (Operation &op : fwd.without_terminator())
    if (llvm::any_of(op.getOperands(), [&](Value v) { return act.contains(v); }))
      for (Value r : op.getResults())
        if (isFloatLike(r.getType()))
          act.insert(r);

  // The adjoint body is built in a detached block whose input arguments are
  // added as the rules ask for tensors; the generic is created around it.
  auto body = std::make_unique<Block>();
  OpBuilder nb(g.getContext());
  nb.setInsertionPointToEnd(body.get());
  Location l = g.getLoc();
  SmallVector<Value> agInputs;
  SmallVector<AffineMap> agMaps;
  auto readTensor = [&](Value tensor, AffineMap map) -> Value {
    for (auto [i, in] : llvm::enumerate(agInputs))
      if (in == tensor && agMaps[i] == map)
        return body->getArgument(i);
    agInputs.push_back(tensor);
    agMaps.push_back(map);
    return body->addArgument(getElementTypeOrSelf(tensor.getType()), l);
  };
  DenseMap<Value, unsigned> yieldedAt;
  if (!reduction)
    for (auto [j, v] : llvm::enumerate(fwdYield.getOperands()))
      yieldedAt.try_emplace(v, j);
  IRMapping m;
  std::function<Value(Value)> materialize = [&](Value v) -> Value {
    if (Value done = m.lookupOrNull(v))
      return done;
    Value result;
    if (auto it = yieldedAt.find(v); it != yieldedAt.end()) {
      result = readTensor(primal(g.getResult(it->second)),
                          maps[numInputs + it->second]);
    } else if (auto arg = dyn_cast<BlockArgument>(v);
               arg && arg.getOwner() == &fwd) {
      result = readTensor(primal(forwardOperand(arg.getArgNumber())),
                          maps[arg.getArgNumber()]);
    } else if (v.getParentBlock() != &fwd) {
      result = primal(v); // a constant captured from the cell body
    } else {
      Operation *def = v.getDefiningOp();
      IRMapping operands;
      for (Value operand : def->getOperands())
        operands.map(operand, materialize(operand));
      Operation *copy = nb.clone(*def, operands);
      for (auto [r, c] : llvm::zip(def->getResults(), copy->getResults()))
        m.map(r, c);
      return m.lookup(v);
    }
    m.map(v, result);
    return result;
  };

  DenseMap<Value, Value> sadj; // adjoints of forward scalars
  auto seed = [&](Value v, Value d) {
    if (!act.contains(v))
      return;
    Value &s = sadj[v];
    s = s ? arith::AddFOp::create(nb, l, s, d).getResult() : d;
  };
  for (unsigned j = 0; j < numInits; ++j) {
    if (!dOut[j])
      continue;
    Value d = readTensor(dOut[j], maps[numInputs + j]);
    if (!reduction) {
      seed(fwdYield.getOperand(j), d);
      continue;
    }
    if (outputFolds[j].combiner != Combiner::Add) {
      // Only the element that won the max/min receives the adjoint.
      Value won = arith::CmpFOp::create(
          nb, l, arith::CmpFPredicate::OEQ, materialize(outputFolds[j].expr),
          readTensor(primal(g.getResult(j)), maps[numInputs + j]));
      Value zero =
          arith::ConstantOp::create(nb, l, nb.getFloatAttr(d.getType(), 0.0));
      d = arith::SelectOp::create(nb, l, won, d, zero);
    }
    seed(outputFolds[j].expr, d);
  }
  for (Operation &op : llvm::reverse(fwd.without_terminator())) {
    if (combiners.contains(&op) || op.getNumResults() != 1 ||
        classifyScalarOp(&op) != ScalarOpClass::Differentiable)
      continue;
    Value d = sadj.lookup(op.getResult(0));
    if (!d)
      continue;
    SmallVector<Value> grads = scalarAdjoints(
        nb, l, &op, [&](unsigned i) { return materialize(op.getOperand(i)); },
        [&] { return materialize(op.getResult(0)); }, d,
        [&](unsigned i) { return act.contains(op.getOperand(i)); });
    for (auto [operand, grad] : llvm::zip(op.getOperands(), grads))
      if (grad)
        seed(operand, grad);
  }

  // One output per differentiable (operand value, indexing map).
  struct Group {
    Value value;
    AffineMap map;
    SmallVector<unsigned> args;
    bool fullSpace, inPlace;
  };
  SmallVector<Group> groups;
  for (unsigned a = 0; a < numReadArgs; ++a) {
    Value v = forwardOperand(a);
    if (!sadj.lookup(fwd.getArgument(a)))
      continue;
    auto it = llvm::find_if(groups, [&](const Group &grp) {
      return grp.value == v && grp.map == maps[a];
    });
    if (it != groups.end()) {
      it->args.push_back(a);
      continue;
    }
    bool fullSpace =
        !maps[a].isPermutation() || !isa<RankedTensorType>(v.getType());
    bool firstOfValue = llvm::none_of(
        groups, [&](const Group &grp) { return grp.value == v; });
    groups.push_back({v, maps[a], {a}, fullSpace,
                      !fullSpace && firstOfValue && bool(adjoint(v))});
  }
  if (!groups.empty()) {
    SmallVector<Value> agInits, yields;
    SmallVector<Type> agTypes;
    for (Group &grp : groups) {
      Type elem = getElementTypeOrSelf(grp.value.getType());
      Value init =
          grp.inPlace
              ? adjoint(grp.value)
              : tensor::EmptyOp::create(
                    builder, loc(),
                    grp.fullSpace ? ArrayRef<int64_t>(loopRanges)
                                  : cast<RankedTensorType>(grp.value.getType())
                                        .getShape(),
                    elem)
                    .getResult();
      agInits.push_back(init);
      agTypes.push_back(init.getType());
      agMaps.push_back(grp.fullSpace ? builder.getMultiDimIdentityMap(numLoops)
                                     : grp.map);
      Value contribution;
      for (unsigned a : grp.args) {
        Value s = sadj.lookup(fwd.getArgument(a));
        if (s)
          contribution =
              contribution
                  ? arith::AddFOp::create(nb, l, contribution, s).getResult()
                  : s;
      }
      BlockArgument out = body->addArgument(elem, l);
      if (grp.inPlace)
        contribution = arith::AddFOp::create(nb, l, out, contribution);
      yields.push_back(contribution);
    }
    linalg::YieldOp::create(nb, l, yields);
    SmallVector<utils::IteratorType> iters(numLoops,
                                           utils::IteratorType::parallel);
    auto ag = linalg::GenericOp::create(builder, loc(), agTypes, agInputs,
                                        agInits, agMaps, iters);
    ag.getRegion().push_back(body.release());
    for (auto [grp, res] : llvm::zip(groups, ag.getResults())) {
      if (grp.inPlace)
        adjoints[grp.value] = res;
      else if (!grp.fullSpace)
        accumulate(grp.value, res);
      else
        reduceInto(grp.value, res, grp.map);
    }
  }
  // A sum reduction adds its initial value once: it gets the adjoint as is.
  if (reduction)
    for (unsigned j = 0; j < numInits; ++j)
      if (dOut[j] && outputFolds[j].combiner == Combiner::Add)
        accumulate(g.getDpsInits()[j], dOut[j]);
}

LogicalResult CellDifferentiator::differentiate(Operation *op) {
  if (llvm::none_of(op->getResults(), [&](Value r) { return adjoint(r); }))
    return success();
  Location l = op->getLoc();
  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case<linalg::MatmulOp, linalg::BatchMatmulOp>([&](auto mm) {
        differentiateMatmul(cast<linalg::LinalgOp>(mm.getOperation()));
        return success();
      })
      .Case<linalg::GenericOp>([&](linalg::GenericOp g) {
        differentiateGeneric(g);
        return success();
      })
      .Case<linalg::FillOp>([&](linalg::FillOp fill) {
        Value d = adjoint(fill.getResult(0));
        unsigned rank = cast<RankedTensorType>(d.getType()).getRank();
        reduceInto(fill.value(), d,
                   AffineMap::get(rank, 0, {}, builder.getContext()));
        return success();
      })
      .Case<linalg::BroadcastOp>([&](linalg::BroadcastOp bc) {
        Value d = adjoint(bc->getResult(0));
        unsigned rank = cast<RankedTensorType>(d.getType()).getRank();
        SmallVector<AffineExpr> kept;
        for (unsigned i = 0; i < rank; ++i)
          if (!llvm::is_contained(bc.getDimensions(), int64_t(i)))
            kept.push_back(builder.getAffineDimExpr(i));
        reduceInto(bc.getInput(), d,
                   AffineMap::get(rank, 0, kept, builder.getContext()));
        return success();
      })
      .Case<linalg::TransposeOp>([&](linalg::TransposeOp tr) {
        Value d = adjoint(tr->getResult(0));
        ArrayRef<int64_t> perm = tr.getPermutation();
        SmallVector<int64_t> inverse(perm.size());
        for (auto [i, p] : llvm::enumerate(perm))
          inverse[p] = i;
        auto inType = cast<RankedTensorType>(tr.getInput().getType());
        Value init = tensor::EmptyOp::create(builder, l, inType.getShape(),
                                             inType.getElementType());
        accumulate(tr.getInput(),
                   linalg::TransposeOp::create(builder, l, d, init, inverse)
                       ->getResult(0));
        return success();
      })
      .Case<tensor::ExtractSliceOp>([&](tensor::ExtractSliceOp s) {
        Value source = s.getSource();
        if (!isActive(source))
          return success();
        Value d = adjoint(s.getResult());
        Value acc = adjoint(source);
        // Adding a region that no earlier contribution wrote would add zeros.
        if (!acc)
          acc = zeros(source.getType());
        else if (!isUnwrittenRegion(acc, s))
          d = add(tensor::ExtractSliceOp::create(
                      builder, l, s.getType(), acc, s.getMixedOffsets(),
                      s.getMixedSizes(), s.getMixedStrides()),
                  d);
        adjoints[source] = tensor::InsertSliceOp::create(
            builder, l, d, acc, s.getMixedOffsets(), s.getMixedSizes(),
            s.getMixedStrides());
        return success();
      })
      .Case<tensor::InsertSliceOp>([&](tensor::InsertSliceOp s) {
        Value d = adjoint(s.getResult());
        if (isActive(s.getSource()))
          accumulate(s.getSource(),
                     tensor::ExtractSliceOp::create(
                         builder, l, s.getSourceType(), d, s.getMixedOffsets(),
                         s.getMixedSizes(), s.getMixedStrides()));
        if (isActive(s.getDest()))
          accumulate(s.getDest(),
                     tensor::InsertSliceOp::create(
                         builder, l, zeros(s.getSourceType()), d,
                         s.getMixedOffsets(), s.getMixedSizes(),
                         s.getMixedStrides()));
        return success();
      })
      .Case<tensor::ConcatOp>([&](tensor::ConcatOp c) {
        Value d = adjoint(c.getResult());
        int64_t offset = 0;
        unsigned rank = c.getResultType().getRank();
        for (Value in : c.getInputs()) {
          auto inType = cast<RankedTensorType>(in.getType());
          SmallVector<OpFoldResult> offsets(rank, builder.getIndexAttr(0)),
              sizes, strides(rank, builder.getIndexAttr(1));
          offsets[c.getDim()] = builder.getIndexAttr(offset);
          for (int64_t s : inType.getShape())
            sizes.push_back(builder.getIndexAttr(s));
          if (isActive(in))
            accumulate(in, tensor::ExtractSliceOp::create(
                               builder, l, inType, d, offsets, sizes, strides));
          offset += inType.getDimSize(c.getDim());
        }
        return success();
      })
      .Case<tensor::ExtractOp>([&](tensor::ExtractOp e) {
        Value t = e.getTensor();
        if (!isActive(t))
          return success();
        SmallVector<Value> indices;
        for (Value i : e.getIndices())
          indices.push_back(primal(i));
        Value d = adjoint(e.getResult());
        Value acc = adjoint(t);
        if (acc)
          d = arith::AddFOp::create(
              builder, l, tensor::ExtractOp::create(builder, l, acc, indices),
              d);
        else
          acc = zeros(t.getType());
        adjoints[t] = tensor::InsertOp::create(builder, l, d, acc, indices);
        return success();
      })
      .Case<tensor::CollapseShapeOp>([&](tensor::CollapseShapeOp c) {
        accumulate(c.getSrc(), tensor::ExpandShapeOp::create(
                                   builder, l, c.getSrcType(),
                                   adjoint(c.getResult()),
                                   c.getReassociationIndices()));
        return success();
      })
      .Case<tensor::ExpandShapeOp>([&](tensor::ExpandShapeOp e) {
        accumulate(e.getSrc(), tensor::CollapseShapeOp::create(
                                   builder, l, e.getSrcType(),
                                   adjoint(e.getResult()),
                                   e.getReassociationIndices()));
        return success();
      })
      .Default([&](Operation *scalarOp) -> LogicalResult {
        if (classifyScalarOp(scalarOp) != ScalarOpClass::Differentiable)
          return success();
        SmallVector<Value> grads = scalarAdjoints(
            builder, l, scalarOp,
            [&](unsigned i) { return primal(scalarOp->getOperand(i)); },
            [&] { return primal(scalarOp->getResult(0)); },
            adjoint(scalarOp->getResult(0)),
            [&](unsigned i) { return isActive(scalarOp->getOperand(i)); });
        for (auto [operand, grad] : llvm::zip(scalarOp->getOperands(), grads))
          accumulate(operand, grad);
        return success();
      });
}

func::FuncOp CellDifferentiator::buildStatesFunction(StringRef name) {
  unsigned numStates = cell.getNumStates();
  MLIRContext *ctx = cell.getContext();
  SmallVector<Type> argTypes{cell.getInputType()};
  llvm::append_range(argTypes, cell.getParamTypes());
  for (Value v : saved)
    argTypes.push_back(v.getType());
  auto fn = func::FuncOp::create(cell.getLoc(), name,
                                 FunctionType::get(ctx, argTypes, {}));
  fn.setPrivate();
  Block *fnEntry = fn.addEntryBlock();
  OpBuilder fb = OpBuilder::atBlockEnd(fnEntry);
  IRMapping mapping;
  mapping.map(body.getArgument(numStates), fnEntry->getArgument(0));
  for (unsigned p = 0; p < cell.getNumParams(); ++p)
    mapping.map(body.getArgument(numStates + 1 + p),
                fnEntry->getArgument(1 + p));
  for (auto [i, v] : llvm::enumerate(saved))
    mapping.map(v, fnEntry->getArgument(1 + cell.getNumParams() + i));
  // Clones what a value needs, in the body's order (each op after its
  // operands); fails on a matrix product or a state that is not saved.
  std::function<bool(Value)> derive = [&](Value v) -> bool {
    if (mapping.contains(v))
      return true;
    Operation *def = v.getDefiningOp();
    if (!def || def->getBlock() != &body || isMatmulLike(def))
      return false;
    SetVector<Value> inputs = capturedValues(def);
    inputs.insert(def->operand_begin(), def->operand_end());
    for (Value in : inputs)
      if (!derive(in))
        return false;
    fb.clone(*def, mapping);
    return true;
  };
  SmallVector<Value> results;
  for (Value v : yield.getOperands().take_front(numStates)) {
    if (!derive(v)) {
      fn.erase();
      return nullptr;
    }
    results.push_back(mapping.lookup(v));
  }
  func::ReturnOp::create(fb, cell.getLoc(), results);
  fn.setFunctionType(
      FunctionType::get(ctx, argTypes, TypeRange(ValueRange(results))));
  return fn;
}

LogicalResult CellDifferentiator::run(SymbolTable &symbols) {
  StringRef name = cell.getSymName();
  std::string forwardName = (name + "_forward").str();
  std::string backwardName = (name + "_backward").str();
  std::string statesName = (name + "_states").str();
  for (StringRef n : {StringRef(forwardName), StringRef(backwardName),
                      StringRef(statesName)})
    if (symbols.lookup(n))
      return cell.emitError() << "rnn-differentiate cannot create @" << n
                              << " for cell @" << name
                              << ": a symbol of that name already exists";

  computeActivity();
  if (failed(checkSupported()))
    return failure();

  unsigned numStates = cell.getNumStates();
  unsigned numParams = cell.getNumParams();
  MLIRContext *ctx = cell.getContext();
  Type lossType = cell.getLossType();

  // The backward function's arguments, saved values aside (those are
  // inserted as the adjoint rules ask for them).
  SmallVector<Type> argTypes;
  argTypes.push_back(cell.getInputType());
  llvm::append_range(argTypes, cell.getParamTypes());
  llvm::append_range(argTypes, cell.getStateTypes()); // new states
  llvm::append_range(argTypes, cell.getStateTypes()); // their adjoints
  argTypes.push_back(lossType);
  llvm::append_range(argTypes, cell.getParamTypes()); // accumulated adjoints
  backward = func::FuncOp::create(
      cell.getLoc(), backwardName, FunctionType::get(ctx, argTypes, {}));
  backward.setPrivate();
  entry = backward.addEntryBlock();
  savedArgsStart = 1 + numParams + numStates;
  recompute.setInsertionPointToStart(entry);
  builder.setInsertionPointToStart(&adjointBlock);

  auto arg = [&](unsigned i) { return entry->getArgument(i); };
  primals.map(body.getArgument(numStates), arg(0));
  for (unsigned p = 0; p < numParams; ++p)
    primals.map(body.getArgument(numStates + 1 + p), arg(1 + p));
  for (unsigned s = 0; s < numStates; ++s)
    if (!primals.contains(yield.getOperand(s)))
      primals.map(yield.getOperand(s), arg(1 + numParams + s));
  // The adjoint-argument positions below shift as saved values are inserted,
  // so they are read relative to the end.
  unsigned fromEnd = numStates + 1 + numParams;
  auto tailArg = [&](unsigned i) {
    return entry->getArgument(entry->getNumArguments() - fromEnd + i);
  };
  for (unsigned p = 0; p < numParams; ++p) {
    Value param = body.getArgument(numStates + 1 + p);
    if (isActive(param))
      adjoints[param] = tailArg(numStates + 1 + p);
  }
  for (unsigned s = 0; s < numStates; ++s)
    accumulate(yield.getOperand(s), tailArg(s));
  accumulate(yield.getOperand(numStates), tailArg(numStates));

  for (Operation &op : llvm::reverse(body.without_terminator()))
    if (failed(differentiate(&op)))
      return failure();

  SmallVector<Value> results;
  for (unsigned s = 0; s < numStates; ++s) {
    Value d = adjoint(body.getArgument(s));
    results.push_back(d ? d : zeros(body.getArgument(s).getType()));
  }
  Value x = body.getArgument(numStates);
  Value dx = adjoint(x);
  results.push_back(dx ? dx : zeros(x.getType()));
  for (unsigned p = 0; p < numParams; ++p) {
    Value d = adjoint(body.getArgument(numStates + 1 + p));
    results.push_back(d ? d : tailArg(numStates + 1 + p));
  }
  // The step's loss, last: recomputed with the loss part (or saved, if the
  // loss reads anything but the new states, x and the parameters).
  results.push_back(primal(yield.getOperand(numStates)));
  func::ReturnOp::create(builder, cell.getLoc(), results);
  entry->getOperations().splice(entry->end(), adjointBlock.getOperations());
  mergeSavedSlices();
  backward.setFunctionType(FunctionType::get(
      ctx, entry->getArgumentTypes(), TypeRange(ValueRange(results))));

  // The forward function: the cell body, also returning the saved values.
  SmallVector<Type> forwardResults(cell.getResultTypes());
  for (Value v : saved)
    forwardResults.push_back(v.getType());
  auto forward = func::FuncOp::create(
      cell.getLoc(), forwardName,
      FunctionType::get(ctx, cell.getArgumentTypes(), forwardResults));
  forward.setPrivate();
  Block *forwardEntry = forward.addEntryBlock();
  IRMapping mapping;
  mapping.map(body.getArguments(), forwardEntry->getArguments());
  OpBuilder fb = OpBuilder::atBlockEnd(forwardEntry);
  cell.cloneBodyInto(fb, mapping);
  SmallVector<Value> returned;
  for (Value v : yield.getOperands())
    returned.push_back(mapping.lookup(v));
  for (Value v : saved)
    returned.push_back(mapping.lookup(v));
  func::ReturnOp::create(fb, cell.getLoc(), returned);

  symbols.insert(forward, std::next(Block::iterator(cell)));
  symbols.insert(backward, std::next(Block::iterator(forward)));

  int64_t savedBytes = 0;
  // Saved values are static tensors (checkSupported) or float scalars.
  for (Value v : saved)
    savedBytes += *storageBytes(v.getType());
  auto i64 = [&](int64_t v) {
    return IntegerAttr::get(IntegerType::get(ctx, 64), v);
  };
  cell->setAttr("rnn.forward", FlatSymbolRefAttr::get(forward));
  cell->setAttr("rnn.backward", FlatSymbolRefAttr::get(backward));
  cell->setAttr("rnn.internal_state_bytes",
                i64(cell.getStateBytes() + savedBytes));
  // Where the new states follow from the saved values (and x and the
  // parameters) without a matrix product, a schedule may keep the saved
  // values alone and recompute the new states when it needs them.
  if (func::FuncOp states = buildStatesFunction(statesName)) {
    symbols.insert(states, std::next(Block::iterator(backward)));
    cell->setAttr("rnn.states", FlatSymbolRefAttr::get(states));
    cell->setAttr("rnn.saved_bytes", i64(savedBytes));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {
struct RNNDifferentiatePass
    : public bptt::rnn::impl::RNNDifferentiateBase<RNNDifferentiatePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SetVector<CellOp> targets;
    module.walk([&](BPTTOp bptt) {
      if (auto cell = symbols.lookup<CellOp>(bptt.getCell()))
        targets.insert(cell);
    });
    for (const std::string &name : cells) {
      auto cell = symbols.lookup<CellOp>(name);
      if (!cell) {
        module.emitError() << "rnn-differentiate: no rnn.cell named @" << name
                           << " (option 'cells')";
        return signalPassFailure();
      }
      targets.insert(cell);
    }
    bool failedAny = false;
    for (CellOp cell : targets) {
      if (cell->hasAttr("rnn.backward"))
        continue; // already differentiated
      CellDifferentiator differentiator(cell);
      if (failed(differentiator.run(symbols)))
        failedAny = true;
      else
        ++numDifferentiated;
    }
    if (failedAny)
      signalPassFailure();
  }
};
} // namespace
