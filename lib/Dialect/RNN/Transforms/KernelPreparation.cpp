//===- KernelPreparation.cpp - fewer, fused kernels per step --------------===//
//
// On the GPU every linalg op and every copy is a kernel launch, and a step of
// a small cell is a few microseconds of work: the launches are the cost. So
// before bufferization the step functions are fused (elementwise chains
// become one op, adjoints assembled slice by slice are written in place),
// and after it the results are written straight into the out-parameters
// that rnn-remat passes (slots, cursors, gradient buffers) instead of being
// copied there at the end.
//
//===----------------------------------------------------------------------===//

#include "KernelPreparation.h"
#include "SliceBoxes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Transforms/RegionUtils.h"

#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace bptt::rnn;

namespace {

/// A fill whose result only feeds a chain of insert_slice ops that together
/// overwrite all of it computes nothing that is read: its destination will
/// do. (rnn-differentiate assembles the adjoint of a tensor used through
/// slices this way, starting from zeros.)
void elideOverwrittenFills(Operation *root) {
  SmallVector<linalg::FillOp> fills;
  root->walk([&](linalg::FillOp fill) {
    if (fill.hasPureTensorSemantics())
      fills.push_back(fill);
  });
  for (linalg::FillOp fill : fills) {
    auto type = dyn_cast<RankedTensorType>(fill.getResultTypes()[0]);
    if (!type || !type.hasStaticShape())
      continue;
    SmallVector<SliceBox> boxes;
    Value cur = fill.getResult(0);
    while (cur.hasOneUse()) {
      auto insert = dyn_cast<tensor::InsertSliceOp>(*cur.getUsers().begin());
      if (!insert || insert.getDest() != cur)
        break;
      std::optional<SliceBox> box = staticBox(insert);
      if (!box || box->offsets.size() != size_t(type.getRank()))
        break;
      boxes.push_back(*box);
      cur = insert.getResult();
    }
    if (!coverExactly(boxes, type.getNumElements()))
      continue;
    fill.getResult(0).replaceAllUsesWith(fill.getDpsInits()[0]);
    fill.erase();
  }
}

/// Whether every use of `v` can take a buffer of the same shape with another
/// (fully dynamic) layout instead.
bool canRetarget(Value v) {
  for (Operation *user : v.getUsers()) {
    if (isa<linalg::LinalgOp, memref::CopyOp, memref::LoadOp,
            memref::StoreOp>(user))
      continue;
    if (auto view = dyn_cast<memref::SubViewOp>(user)) {
      if (view.getSource() == v && canRetarget(view.getResult()))
        continue;
      return false;
    }
    if (auto cast = dyn_cast<memref::CastOp>(user)) {
      // Only casts that forget the layout, as bufferization emits for
      // function boundaries: a cast to a static layout would assert one.
      auto to = dyn_cast<MemRefType>(cast.getType());
      if (to && !to.getLayout().isIdentity() &&
          cast.getSource().getType() != cast.getType()) {
        auto layout = dyn_cast<StridedLayoutAttr>(to.getLayout());
        if (layout && ShapedType::isDynamic(layout.getOffset()) &&
            llvm::all_of(layout.getStrides(), ShapedType::isDynamic))
          continue;
      }
      return false;
    }
    return false;
  }
  return true;
}

/// Replaces `from` by `to` in the uses that canRetarget accepted.
void retarget(OpBuilder &b, Value from, Value to) {
  // Each user once: an op may use `from` twice (as an input and an output
  // of a linalg op), and replacing its uses moves them to `to`'s list.
  llvm::SetVector<Operation *> users(from.getUsers().begin(),
                                     from.getUsers().end());
  for (Operation *user : users) {
    if (auto view = dyn_cast<memref::SubViewOp>(user)) {
      b.setInsertionPoint(view);
      auto resultType = memref::SubViewOp::inferRankReducedResultType(
          view.getType().getShape(), cast<MemRefType>(to.getType()),
          view.getMixedOffsets(), view.getMixedSizes(),
          view.getMixedStrides());
      Value fresh = memref::SubViewOp::create(
          b, view.getLoc(), cast<MemRefType>(resultType), to,
          view.getMixedOffsets(), view.getMixedSizes(),
          view.getMixedStrides());
      retarget(b, view.getResult(), fresh);
      view.erase();
      continue;
    }
    if (auto castOp = dyn_cast<memref::CastOp>(user)) {
      if (castOp.getType() == to.getType()) {
        castOp.getResult().replaceAllUsesWith(to);
        castOp.erase();
      } else {
        castOp.getSourceMutable().assign(to);
      }
      continue;
    }
    user->replaceUsesOfWith(from, to);
  }
}

/// One tensor.empty per use: CSE merges them, and a shared one cannot become
/// the slice of each destination it is inserted into.
void splitEmptyTensors(Operation *root) {
  SmallVector<tensor::EmptyOp> empties;
  root->walk([&](tensor::EmptyOp e) { empties.push_back(e); });
  OpBuilder b(root->getContext());
  for (tensor::EmptyOp e : empties) {
    for (OpOperand &use :
         llvm::make_early_inc_range(llvm::drop_begin(e->getUses()))) {
      b.setInsertionPoint(use.getOwner());
      use.set(b.clone(*e)->getResult(0));
    }
  }
}

/// `V + Q` of a value V and a product Q = C·D + J used only there is one
/// accumulation: C·D + (V + J). A step whose input projection
/// V = x·W_ih + b_ih was computed beforehand (InputProjection.h) adds b_hh
/// to V straight into the gates and accumulates h·W_hh there: one kernel
/// and one library call instead of two and one, and on the GPU the sum
/// V + J is the product's bias epilogue. Of two products, `P + Q`, the
/// later one is Q and the earlier one (an LSTM's or GRU's x·W_ih + b_ih)
/// stays V, so the one-step kernel computes the gates exactly as a
/// projected step does: each product's bias is its own seed, which on the
/// GPU both library calls add in their epilogues (no seed kernel of
/// b_ih + b_hh, measured at 2.5 us of a 48 us step at B = 128, H = 1024).
struct AccumulateSumOfProducts : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp add,
                                PatternRewriter &rewriter) const override {
    if (!add.hasPureTensorSemantics() || add.getNumDpsInputs() != 2 ||
        add.getNumDpsInits() != 1 ||
        add.getNumParallelLoops() != add.getNumLoops() ||
        !llvm::all_of(add.getIndexingMapsArray(),
                      [](AffineMap m) { return m.isIdentity(); }))
      return failure();
    Block &body = add.getRegion().front();
    auto yield = cast<linalg::YieldOp>(body.getTerminator());
    auto sum = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
    if (!sum || &body.front() != sum.getOperation() ||
        !((sum.getLhs() == body.getArgument(0) &&
           sum.getRhs() == body.getArgument(1)) ||
          (sum.getLhs() == body.getArgument(1) &&
           sum.getRhs() == body.getArgument(0))))
      return failure();
    Type type = add.getResult(0).getType();
    // Q: the input that is a single-use product, the later one of two.
    linalg::LinalgOp q;
    for (Value in : add.getDpsInputs()) {
      auto p = in.getDefiningOp<linalg::LinalgOp>();
      if (p && in.hasOneUse() && linalg::isaContractionOpInterface(p) &&
          p->getNumResults() == 1 && p.getNumDpsInits() == 1 &&
          in.getType() == type &&
          (!q || (p->getBlock() == q->getBlock() && q->isBeforeInBlock(p))))
        q = p;
    }
    if (!q)
      return failure();
    rewriter.setInsertionPoint(add);
    // V + J, then Q's product onto it. Into the sum's own destination, or,
    // where V is the earlier product, into V's: P, V + J and Q then
    // accumulate in one buffer, as the projected step does in the gates.
    // (Then the sum reads its destination, V, so that elementwise fusion
    // keeps it; with one input it is no sum this pattern matches again.)
    Value v = add.getDpsInputs()[add.getDpsInputs()[0] == q->getResult(0)];
    Value j = q.getDpsInits()[0];
    Operation *seeded;
    if (auto p = v.getDefiningOp<linalg::LinalgOp>();
        p && v.hasOneUse() && linalg::isaContractionOpInterface(p)) {
      AffineMap identity = rewriter.getMultiDimIdentityMap(add.getNumLoops());
      seeded = linalg::GenericOp::create(
          rewriter, add.getLoc(), TypeRange{type}, ValueRange{j}, ValueRange{v},
          ArrayRef<AffineMap>{identity, identity}, add.getIteratorTypesArray(),
          [](OpBuilder &b, Location loc, ValueRange args) {
            linalg::YieldOp::create(
                b, loc,
                arith::AddFOp::create(b, loc, args[1], args[0]).getResult());
          });
    } else {
      IRMapping seed;
      seed.map(q->getResult(0), j);
      seeded = rewriter.clone(*add, seed);
    }
    Operation *product = rewriter.clone(*q);
    cast<linalg::LinalgOp>(product).getDpsInitsMutable()[0].assign(
        seeded->getResult(0));
    rewriter.replaceOp(add, product->getResult(0));
    rewriter.eraseOp(q);
    return success();
  }
};

/// Broadcasts as generic ops, so that elementwise fusion sees them.
void generalizeBroadcasts(Operation *root) {
  SmallVector<linalg::BroadcastOp> broadcasts;
  root->walk([&](linalg::BroadcastOp b) {
    if (b.hasPureTensorSemantics())
      broadcasts.push_back(b);
  });
  IRRewriter rewriter(root->getContext());
  for (linalg::BroadcastOp b : broadcasts) {
    rewriter.setInsertionPoint(b);
    (void)linalg::generalizeNamedOp(rewriter, b);
  }
}

/// Sums of products become accumulations (before elementwise fusion).
struct AccumulateProducts
    : PassWrapper<AccumulateProducts, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(AccumulateProducts)
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<AccumulateSumOfProducts>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    generalizeBroadcasts(getOperation());
  }
};

/// Whether every user of `producer` other than `consumer` comes after
/// `consumer` in its block: a fused op put in the consumer's place may then
/// take over the producer's results.
static bool usersFollow(Operation *producer, Operation *consumer) {
  return llvm::all_of(producer->getUsers(), [&](Operation *user) {
    return user == consumer || (user->getBlock() == consumer->getBlock() &&
                                consumer->isBeforeInBlock(user));
  });
}

/// Elementwise fusion where the producer has other uses too (an LSTM's c',
/// a new state that h' = o * tanh(c') reads): the fused op also yields the
/// producer's results and takes over all their uses, so the chain is one
/// kernel and nothing is computed twice. (Upstream's pattern fuses such a
/// producer but keeps it for its other uses, computing it twice.)
/// Reductions are left alone: a reduction that also yielded an elementwise
/// result would no longer be one warp-cooperative kernel on the GPU.
struct FuseSharedProducer : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  static bool allParallel(linalg::GenericOp g) {
    return g.getNumLoops() == g.getNumParallelLoops();
  }
  LogicalResult matchAndRewrite(linalg::GenericOp consumer,
                                PatternRewriter &rewriter) const override {
    if (!allParallel(consumer))
      return failure();
    for (OpOperand &operand : consumer->getOpOperands()) {
      auto producer = operand.get().getDefiningOp<linalg::GenericOp>();
      if (!producer || !allParallel(producer) ||
          !linalg::areElementwiseOpsFusable(&operand))
        continue;
      // The fused op takes the consumer's place, so the producer's other
      // users must come after it.
      if (!usersFollow(producer, consumer))
        continue;
      FailureOr<linalg::ElementwiseOpFusionResult> fused =
          linalg::fuseElementwiseOps(rewriter, &operand);
      if (failed(fused))
        continue;
      // Uses inside the fused op are its other operands that still read
      // the producer (a consumer of two of its results): the next
      // application fuses those, and then the producer goes.
      for (auto [from, to] : fused->replacements)
        rewriter.replaceAllUsesExcept(from, to, fused->fusedOp);
      rewriter.eraseOp(consumer);
      if (producer->use_empty())
        rewriter.eraseOp(producer);
      return success();
    }
    return failure();
  }
};

/// An elementwise op that reads its init (`outs(%p)`, the body using the
/// current value) where %p is computed by another elementwise op of the same
/// loops: the init becomes an input and the op writes a fresh tensor, so
/// that elementwise fusion, which fuses through inputs only, can fuse the
/// producer. (Adjoints are accumulated this way: dlogits += softmax part
/// onto the target part.) Only where the fusion will follow: the producer's
/// other users come after the op, and the op reads the producer through
/// this init only.
struct InitIntoInput : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp consumer,
                                PatternRewriter &rewriter) const override {
    if (!FuseSharedProducer::allParallel(consumer) ||
        !consumer.hasPureTensorSemantics())
      return failure();
    for (OpOperand &init : consumer.getDpsInitsMutable()) {
      auto producer = init.get().getDefiningOp<linalg::GenericOp>();
      auto type = dyn_cast<RankedTensorType>(init.get().getType());
      BlockArgument current = consumer.getMatchingBlockArgument(&init);
      if (!producer || !type || !type.hasStaticShape() || current.use_empty() ||
          !FuseSharedProducer::allParallel(producer) ||
          producer.getNumLoops() != consumer.getNumLoops() ||
          !consumer.getMatchingIndexingMap(&init).isPermutation() ||
          !producer.getIndexingMapMatchingResult(
                       cast<OpResult>(init.get())).isPermutation())
        continue;
      if (!usersFollow(producer, consumer))
        continue;
      if (llvm::any_of(consumer->getOpOperands(), [&](OpOperand &other) {
            return &other != &init && other.get().getDefiningOp() == producer;
          }))
        continue;
      // The same op with the init read as one more input.
      SmallVector<Value> inputs(consumer.getDpsInputs());
      inputs.push_back(init.get());
      SmallVector<Value> inits(consumer.getDpsInits());
      unsigned initIndex = init.getOperandNumber() - consumer.getNumDpsInputs();
      inits[initIndex] = tensor::EmptyOp::create(
          rewriter, consumer.getLoc(), type.getShape(), type.getElementType());
      SmallVector<AffineMap> maps;
      for (OpOperand *in : consumer.getDpsInputOperands())
        maps.push_back(consumer.getMatchingIndexingMap(in));
      maps.push_back(consumer.getMatchingIndexingMap(&init));
      for (OpOperand &out : consumer.getDpsInitsMutable())
        maps.push_back(consumer.getMatchingIndexingMap(&out));
      auto rewritten = linalg::GenericOp::create(
          rewriter, consumer.getLoc(), consumer.getResultTypes(), inputs,
          inits, maps, consumer.getIteratorTypesArray());
      Region &region = rewritten.getRegion();
      rewriter.inlineRegionBefore(consumer.getRegion(), region, region.end());
      Block &moved = region.front();
      BlockArgument read = moved.insertArgument(
          consumer.getNumDpsInputs(), type.getElementType(), current.getLoc());
      rewriter.replaceAllUsesWith(current, read);
      rewriter.replaceOp(consumer, rewritten->getResults());
      return success();
    }
    return failure();
  }
};

struct FuseSharedProducers
    : PassWrapper<FuseSharedProducers, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(FuseSharedProducers)
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseSharedProducer, InitIntoInput>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

/// Whether `v` is available at `point`, hoisting the pure, region-free ops
/// that define it (and, up to `depth` levels, their operands) above `point`
/// when they are in its block below it.
static bool availableAt(Value v, Operation *point, unsigned depth = 3) {
  Operation *def = v.getDefiningOp();
  Block *block = point->getBlock();
  if (!def) {
    // A block argument: of the point's block or an enclosing one.
    Block *owner = cast<BlockArgument>(v).getOwner();
    for (Operation *p = point; p; p = p->getParentOp())
      if (p->getBlock() == owner)
        return true;
    return false;
  }
  if (def->getBlock() != block) {
    // Defined in an enclosing block, before the op that holds the point.
    Operation *holder = def->getBlock()->findAncestorOpInBlock(*point);
    return holder && def->isBeforeInBlock(holder);
  }
  if (def->isBeforeInBlock(point))
    return true;
  if (depth == 0 || !isMemoryEffectFree(def) || def->getNumRegions() != 0)
    return false;
  for (Value operand : def->getOperands())
    if (!availableAt(operand, point, depth - 1))
      return false;
  def->moveBefore(point);
  return true;
}

static bool isStaticReduction(linalg::GenericOp g) {
  return g.hasPureTensorSemantics() && g.getNumReductionLoops() > 0 &&
         !llvm::any_of(g.getStaticLoopRanges(), ShapedType::isDynamic);
}

/// Whether `later` depends on `earlier` through the ops of their block.
static bool dependsOn(Operation *later, Operation *earlier) {
  SmallVector<Operation *> pending{later};
  DenseSet<Operation *> seen;
  while (!pending.empty()) {
    Operation *op = pending.pop_back_val();
    if (!seen.insert(op).second)
      continue;
    SetVector<Value> used;
    getUsedValuesDefinedAbove(op->getRegions(), used);
    used.insert(op->operand_begin(), op->operand_end());
    for (Value v : used) {
      Operation *def = v.getDefiningOp();
      if (!def || def->getBlock() != earlier->getBlock())
        continue;
      if (def == earlier)
        return true;
      if (earlier->isBeforeInBlock(def))
        pending.push_back(def);
    }
  }
  return false;
}

/// One reduction computing both `first`'s and `second`'s outputs, at
/// `point` (one of them).
static linalg::GenericOp mergeReductions(linalg::GenericOp first,
                                         linalg::GenericOp second,
                                         Operation *point) {
  OpBuilder b(point);
  // Inputs: the first's, then those of the second that the first does not
  // read through the same map (two bias gradients sum the same tensor).
  SmallVector<Value> inputs(first.getDpsInputs()), inits(first.getDpsInits());
  SmallVector<AffineMap> maps;
  for (OpOperand *in : first.getDpsInputOperands())
    maps.push_back(first.getMatchingIndexingMap(in));
  SmallVector<unsigned> secondInput;
  for (OpOperand *in : second.getDpsInputOperands()) {
    AffineMap map = second.getMatchingIndexingMap(in);
    unsigned at = 0;
    while (at < inputs.size() &&
           !(inputs[at] == in->get() && maps[at] == map))
      ++at;
    if (at == inputs.size()) {
      inputs.push_back(in->get());
      maps.push_back(map);
    }
    secondInput.push_back(at);
  }
  llvm::append_range(inits, second.getDpsInits());
  for (linalg::GenericOp g : {first, second})
    for (OpOperand &out : g.getDpsInitsMutable())
      maps.push_back(g.getMatchingIndexingMap(&out));
  SmallVector<Type> types(first->getResultTypes());
  llvm::append_range(types, second->getResultTypes());
  auto merged = linalg::GenericOp::create(
      b, first.getLoc(), types, inputs, inits, maps,
      first.getIteratorTypesArray());
  Block *body = b.createBlock(&merged.getRegion());
  for (Value v : inputs)
    body->addArgument(getElementTypeOrSelf(v.getType()), v.getLoc());
  for (Value v : inits)
    body->addArgument(getElementTypeOrSelf(v.getType()), v.getLoc());
  SmallVector<unsigned> firstInput =
      llvm::to_vector(llvm::seq<unsigned>(0, first.getNumDpsInputs()));
  unsigned outs = inputs.size();
  SmallVector<Value> yields;
  auto cloneBody = [&](linalg::GenericOp g, ArrayRef<unsigned> inputAt,
                       unsigned outAt) {
    Block &old = g.getRegion().front();
    IRMapping m;
    for (unsigned i = 0; i < g.getNumDpsInputs(); ++i)
      m.map(old.getArgument(i), body->getArgument(inputAt[i]));
    for (unsigned i = 0; i < g.getNumDpsInits(); ++i)
      m.map(old.getArgument(g.getNumDpsInputs() + i),
            body->getArgument(outAt + i));
    for (Operation &op : old.without_terminator())
      b.clone(op, m);
    for (Value y : old.getTerminator()->getOperands())
      yields.push_back(m.lookupOrDefault(y));
  };
  cloneBody(first, firstInput, outs);
  cloneBody(second, secondInput, outs + first.getNumDpsInits());
  linalg::YieldOp::create(b, first.getLoc(), yields);
  return merged;
}

/// Sibling reductions: two reductions over the same loops, neither reading
/// the other's result, become one op with the outputs of both (a softmax
/// row's maximum and the target's logit; an LSTM's two bias gradients, the
/// same sums), which the GPU pipeline reduces in one warp-cooperative kernel
/// (WarpReductions.cpp) instead of two.
struct MergeSiblingReductions
    : PassWrapper<MergeSiblingReductions, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(MergeSiblingReductions)
  void runOnOperation() override {
    bool merged = true;
    while (merged) {
      merged = false;
      getOperation().walk([&](Block *block) {
        if (merged)
          return;
        SmallVector<linalg::GenericOp> reductions;
        for (auto g : block->getOps<linalg::GenericOp>())
          if (isStaticReduction(g))
            reductions.push_back(g);
        for (unsigned i = 0; i < reductions.size() && !merged; ++i)
          for (unsigned j = i + 1; j < reductions.size() && !merged; ++j)
            merged = tryMerge(reductions[i], reductions[j]);
      });
    }
  }

  static bool tryMerge(linalg::GenericOp first, linalg::GenericOp second) {
    if (first.getStaticLoopRanges() != second.getStaticLoopRanges() ||
        first.getIteratorTypesArray() != second.getIteratorTypesArray() ||
        dependsOn(second, first))
      return false;
    // At the second op, if the first's results are used only after it;
    // else at the first, if the second's operands can be made available
    // there.
    // (The second does not use the first: dependsOn.)
    Operation *point = nullptr;
    if (usersFollow(first, second)) {
      point = second;
    } else {
      SetVector<Value> used;
      getUsedValuesDefinedAbove(second->getRegions(), used);
      used.insert(second->operand_begin(), second->operand_end());
      if (!llvm::all_of(used,
                        [&](Value v) { return availableAt(v, first); }))
        return false;
      point = first;
    }
    linalg::GenericOp merged = mergeReductions(first, second, point);
    unsigned n = first->getNumResults();
    first->replaceAllUsesWith(merged->getResults().take_front(n));
    second->replaceAllUsesWith(merged->getResults().drop_front(n));
    first->erase();
    second->erase();
    return true;
  }
};

/// The pre-bufferization steps that are not upstream passes.
struct PrepareSlices
    : PassWrapper<PrepareSlices, OperationPass<func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(PrepareSlices)
  void runOnOperation() override {
    elideOverwrittenFills(getOperation());
    splitEmptyTensors(getOperation());
  }
};

} // namespace

void bptt::rnn::addKernelFusionPasses(OpPassManager &pm) {
  // A rank-0 operand (a scalar the step computed on the host side, like the
  // loss adjoint scaled by 1/B, stored into a one-element tensor) is read
  // in the body instead; canonicalization then folds the store and the read
  // away, and the scalar reaches the kernel as an argument, with no
  // one-thread kernel to fill the tensor.
  pm.addNestedPass<func::FuncOp>(createLinalgInlineScalarOperandsPass());
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<AccumulateProducts>());
  pm.addNestedPass<func::FuncOp>(createLinalgElementwiseOpFusionPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<FuseSharedProducers>());
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<MergeSiblingReductions>());
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(std::make_unique<PrepareSlices>());
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
}

/// The copy into `out` if that is `out`'s only use (how bufferization hands
/// a result to its out-parameter), else null.
static memref::CopyOp onlyCopyInto(BlockArgument out) {
  if (!out.hasOneUse())
    return nullptr;
  auto copy = dyn_cast<memref::CopyOp>(*out.getUsers().begin());
  return copy && copy.getTarget() == out ? copy : nullptr;
}

/// `v` below any memref.cast.
static Value throughCasts(Value v) {
  while (auto castOp = v.getDefiningOp<memref::CastOp>())
    v = castOp.getSource();
  return v;
}

void bptt::rnn::writeResultsInPlace(func::FuncOp fn,
                                    ArrayRef<unsigned> outParams) {
  if (fn.isExternal())
    return;
  OpBuilder b(fn.getContext());
  for (unsigned index : outParams) {
    BlockArgument out = fn.getArgument(index);
    memref::CopyOp copy = onlyCopyInto(out);
    if (!copy)
      continue;
    // A buffer copied into two out-parameters goes to the first; the second
    // copy then reads that out-parameter, no allocation any more.
    auto alloc = throughCasts(copy.getSource()).getDefiningOp<memref::AllocOp>();
    if (!alloc || alloc->getParentOp() != fn.getOperation() ||
        cast<MemRefType>(out.getType()).getShape() !=
            alloc.getType().getShape() ||
        !canRetarget(alloc.getResult()))
      continue;
    copy.erase();
    retarget(b, alloc.getResult(), out);
    alloc.erase();
  }
}

void bptt::rnn::dropSelfCopies(
    func::FuncOp fn, ArrayRef<std::pair<unsigned, unsigned>> inOut) {
  if (fn.isExternal())
    return;
  for (auto [in, out] : inOut)
    if (memref::CopyOp copy = onlyCopyInto(fn.getArgument(out)))
      if (throughCasts(copy.getSource()) == fn.getArgument(in))
        copy.erase();
}

/// The memref `v` views, through subviews and casts.
static Value viewedBuffer(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto view = dyn_cast<memref::SubViewOp>(def))
      v = view.getSource();
    else if (auto castOp = dyn_cast<memref::CastOp>(def))
      v = castOp.getSource();
    else
      break;
  }
  return v;
}

/// Whether every use of `arg` reads it: an input of a linalg op, or the
/// source of a copy.
static bool onlyRead(BlockArgument arg) {
  return llvm::all_of(arg.getUses(), [](OpOperand &use) {
    Operation *user = use.getOwner();
    if (auto copy = dyn_cast<memref::CopyOp>(user))
      return use.get() == copy.getSource() && use.get() != copy.getTarget();
    auto linalgOp = dyn_cast<linalg::LinalgOp>(user);
    return linalgOp && linalgOp.isDpsInput(&use);
  });
}

void bptt::rnn::foldCopiesIntoElementwise(func::FuncOp fn) {
  if (fn.isExternal())
    return;
  Block &body = fn.getBody().front();
  SmallVector<memref::CopyOp> copies(body.getOps<memref::CopyOp>());
  for (memref::CopyOp copy : copies) {
    auto in = dyn_cast<BlockArgument>(copy.getSource());
    auto out = dyn_cast<BlockArgument>(copy.getTarget());
    auto type = dyn_cast<MemRefType>(copy.getSource().getType());
    if (!in || !out || in.getOwner() != &body || out.getOwner() != &body ||
        !out.hasOneUse() || !onlyRead(in) || !type || !type.hasStaticShape())
      continue;
    // The last elementwise op over exactly the copy's shape before it, else
    // the first after it: the copy may move, nothing else touching either
    // buffer.
    linalg::GenericOp host;
    for (auto g : body.getOps<linalg::GenericOp>()) {
      if (!g.hasPureBufferSemantics() ||
          g.getNumLoops() != g.getNumParallelLoops() ||
          g.getStaticLoopRanges() != SmallVector<int64_t>(type.getShape()))
        continue;
      if (!host || g->isBeforeInBlock(copy))
        host = g;
      if (!g->isBeforeInBlock(copy))
        break;
    }
    if (!host)
      continue;
    OpBuilder b(host);
    SmallVector<Value> inputs(host.getDpsInputs()), inits(host.getDpsInits());
    SmallVector<AffineMap> maps;
    for (OpOperand *input : host.getDpsInputOperands())
      maps.push_back(host.getMatchingIndexingMap(input));
    AffineMap identity = b.getMultiDimIdentityMap(type.getRank());
    // An input the op already reads the same way (c_{t-1}, which c' reads)
    // passes through from there.
    std::optional<unsigned> reused;
    for (OpOperand *input : host.getDpsInputOperands())
      if (input->get() == in && host.getMatchingIndexingMap(input) == identity)
        reused = input->getOperandNumber();
    if (!reused) {
      inputs.push_back(in);
      maps.push_back(identity);
    }
    for (OpOperand &init : host.getDpsInitsMutable())
      maps.push_back(host.getMatchingIndexingMap(&init));
    inits.push_back(out);
    maps.push_back(identity);
    auto folded = linalg::GenericOp::create(b, host.getLoc(), TypeRange(),
                                            inputs, inits, maps,
                                            host.getIteratorTypesArray());
    Region &region = folded.getRegion();
    region.takeBody(host.getRegion());
    Block &inner = region.front();
    Type element = type.getElementType();
    BlockArgument value =
        reused ? inner.getArgument(*reused)
               : inner.insertArgument(host.getNumDpsInputs(), element,
                                      copy.getLoc());
    inner.addArgument(element, copy.getLoc());
    Operation *yield = inner.getTerminator();
    SmallVector<Value> yielded(yield->getOperands());
    yielded.push_back(value);
    yield->setOperands(yielded);
    host.erase();
    copy.erase();
  }
}

void bptt::rnn::writeSlicesInPlace(func::FuncOp fn,
                                   ArrayRef<unsigned> freshArguments) {
  if (fn.isExternal())
    return;
  // A larger buffer the function allocates, or an out-parameter that
  // aliases no argument.
  auto isFresh = [&](Value v, memref::CopyOp copy) {
    if (auto alloc = v.getDefiningOp<memref::AllocOp>())
      return alloc->getBlock() == copy->getBlock();
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner() == &fn.getBody().front() &&
           llvm::is_contained(freshArguments, arg.getArgNumber());
  };
  SmallVector<memref::CopyOp> copies;
  for (Operation &op : fn.getBody().front())
    if (auto copy = dyn_cast<memref::CopyOp>(&op))
      copies.push_back(copy);
  for (memref::CopyOp copy : copies) {
    auto tmp = copy.getSource().getDefiningOp<memref::AllocOp>();
    auto slice = copy.getTarget().getDefiningOp<memref::SubViewOp>();
    if (!tmp || !slice || tmp->getBlock() != copy->getBlock())
      continue;
    Value whole = slice.getSource();
    std::optional<SliceBox> box = staticBox(slice);
    if (!isFresh(whole, copy) || !box)
      continue;
    // The writer: the one op besides the copy that uses the buffer, as an
    // output it overwrites without reading.
    linalg::LinalgOp writer;
    bool simple = true;
    for (OpOperand &use : tmp->getUses()) {
      if (use.getOwner() == copy.getOperation())
        continue;
      auto op = dyn_cast<linalg::LinalgOp>(use.getOwner());
      if (writer || !op || !op.hasPureBufferSemantics() ||
          !op.isDpsInit(&use) || op.payloadUsesValueFromOperand(&use))
        simple = false;
      writer = op;
    }
    Operation *wholeDef = whole.getDefiningOp();
    if (!simple || !writer || writer->getBlock() != copy->getBlock() ||
        !writer->isBeforeInBlock(copy) ||
        (wholeDef && !wholeDef->isBeforeInBlock(writer)))
      continue;
    // The writer's other accesses to the larger buffer miss the slice.
    bool disjoint = llvm::all_of(writer->getOperands(), [&](Value v) {
      if (v == tmp.getResult() || viewedBuffer(v) != whole)
        return true;
      auto other = v.getDefiningOp<memref::SubViewOp>();
      std::optional<SliceBox> otherBox =
          other && other.getSource() == whole
              ? staticBox(other)
              : std::nullopt;
      return otherBox && otherBox->disjointFrom(*box);
    });
    // Nothing between the writer and the copy touches the larger buffer
    // (views only name a region).
    bool untouched = true;
    for (Operation *op = writer->getNextNode(); op != copy.getOperation();
         op = op->getNextNode())
      op->walk([&](Operation *inner) {
        if (isa<memref::SubViewOp, memref::CastOp>(inner))
          return;
        for (Value v : inner->getOperands())
          if (isa<MemRefType>(v.getType()) &&
              viewedBuffer(v) == whole)
            untouched = false;
      });
    if (!disjoint || !untouched)
      continue;
    if (!slice->isBeforeInBlock(writer))
      slice->moveBefore(writer);
    writer->replaceUsesOfWith(tmp.getResult(), slice.getResult());
    copy.erase();
    tmp.erase();
  }
}
