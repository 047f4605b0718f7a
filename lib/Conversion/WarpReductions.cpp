//===- WarpReductions.cpp - reductions as warp-cooperative kernels --------===//
//
// The GPU pipeline otherwise lowers a reduction to one thread per output
// that loops over the reduced iterations: a bias gradient sums 64 batch rows
// in one thread, a softmax row 128 logits, so the kernel's time is that many
// dependent loads (14-21 us on an H100 where an elementwise kernel takes 4).
// Here `lanes` threads of one warp share each output: thread j of the group
// takes the reduced iterations j, j + lanes, ..., unrolled so that their
// loads are in flight together, and the group combines its partial results
// with xor shuffles. No shared memory and no barrier: the
// groups are aligned within warps, and every thread of a warp reaches the
// shuffles (threads past the last output carry the neutral element).
//
//===----------------------------------------------------------------------===//

#include "WarpReductions.h"

#include "GPUProgram.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;

namespace {

constexpr int64_t kWarp = 32;
constexpr int64_t kMaxBlock = 256;
/// Reduced iterations a thread has in flight at once (see the loads below).
constexpr int64_t kUnroll = 8;

/// The op of a reduction's region that combines the output's running value
/// (`out`, the output's block argument) with a contribution computed from
/// the inputs (`contribution`).
struct Combiner {
  Operation *op;
  BlockArgument out;
  Value contribution;
};

/// The combiner of output `k`.
std::optional<Combiner> matchCombiner(linalg::GenericOp op, unsigned k) {
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != op.getNumDpsInits())
    return std::nullopt;
  Operation *combiner = yield.getOperand(k).getDefiningOp();
  if (!combiner || combiner->getBlock() != &body ||
      combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      !combiner->getResult(0).hasOneUse())
    return std::nullopt;
  BlockArgument out = body.getArgument(op.getNumDpsInputs() + k);
  if (!out.hasOneUse() || out.getUses().begin()->getOwner() != combiner)
    return std::nullopt;
  // Only operations with a neutral element are associative and commutative
  // enough to be regrouped (sums, products, max, min).
  if (!arith::getNeutralElement(combiner))
    return std::nullopt;
  for (Operation &inner : body.without_terminator())
    if (!isMemoryEffectFree(&inner) || inner.getNumRegions() != 0)
      return std::nullopt;
  Value contribution = combiner->getOperand(0) == out ? combiner->getOperand(1)
                                                      : combiner->getOperand(0);
  return Combiner{combiner, out, contribution};
}

/// Splits `linear` into the induction variables of `dims` (the last one
/// fastest), writing them into `ivs`.
void delinearize(OpBuilder &b, Location loc, Value linear,
                 ArrayRef<unsigned> dims, ArrayRef<int64_t> ranges,
                 MutableArrayRef<Value> ivs) {
  for (unsigned d : llvm::reverse(dims)) {
    Value size = arith::ConstantIndexOp::create(b, loc, ranges[d]);
    ivs[d] = arith::RemUIOp::create(b, loc, linear, size);
    linear = arith::DivUIOp::create(b, loc, linear, size);
  }
}

/// The indices of `map` at the iteration `ivs`.
SmallVector<Value> indicesAt(OpBuilder &b, Location loc, AffineMap map,
                             ArrayRef<Value> ivs) {
  SmallVector<Value> indices;
  for (AffineExpr e : map.getResults()) {
    if (auto dim = dyn_cast<AffineDimExpr>(e)) {
      indices.push_back(ivs[dim.getPosition()]);
      continue;
    }
    indices.push_back(affine::AffineApplyOp::create(
        b, loc, AffineMap::get(map.getNumDims(), 0, e), ivs));
  }
  return indices;
}

/// combiner(running, contribution), as the region computes it.
Value combine(OpBuilder &b, const Combiner &c, Value running,
              Value contribution) {
  IRMapping m;
  m.map(c.out, running);
  m.map(c.contribution, contribution);
  return b.clone(*c.op, m)->getResult(0);
}

} // namespace

namespace {

/// How a reduction's iterations are split among threads: `lanes` threads of
/// one warp share each output (a position of the parallel dimensions) and
/// take the reduced iterations lane, lane + lanes, ...
struct Shape {
  SmallVector<int64_t> ranges;
  SmallVector<unsigned> parallelDims, reducedDims;
  int64_t numOutputs = 1, numReduced = 1, lanes = 0;

  bool operator==(const Shape &o) const {
    return ranges == o.ranges && parallelDims == o.parallelDims &&
           reducedDims == o.reducedDims && lanes == o.lanes;
  }
};

/// The shape of reduction `op` (buffers, static sizes, outputs that do not
/// depend on the reduced dimensions), or nullopt.
std::optional<Shape> reductionShape(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() == 0 ||
      op.getNumDpsInputs() == 0)
    return std::nullopt;
  Shape shape;
  shape.ranges = op.getStaticLoopRanges();
  if (llvm::any_of(shape.ranges, ShapedType::isDynamic))
    return std::nullopt;
  for (auto [d, type] : llvm::enumerate(op.getIteratorTypesArray()))
    (type == utils::IteratorType::reduction ? shape.reducedDims
                                            : shape.parallelDims)
        .push_back(d);
  if (shape.reducedDims.empty())
    return std::nullopt;
  for (OpOperand &init : op.getDpsInitsMutable()) {
    AffineMap outMap = op.getMatchingIndexingMap(&init);
    if (llvm::any_of(shape.reducedDims,
                     [&](unsigned d) { return outMap.isFunctionOfDim(d); }))
      return std::nullopt;
  }
  for (unsigned d : shape.parallelDims)
    shape.numOutputs *= shape.ranges[d];
  for (unsigned d : shape.reducedDims)
    shape.numReduced *= shape.ranges[d];
  if (shape.numOutputs == 0 || shape.numReduced == 0)
    return std::nullopt;

  // When the reduced iterations run along the first input's fastest
  // dimension, the threads of a group read neighbouring elements, and each
  // may take few of them; otherwise the group's reads are scattered, and
  // fewer threads per output keep more outputs per warp.
  bool reducedInner = false;
  AffineMap firstMap = op.getMatchingIndexingMap(op.getDpsInputOperand(0));
  if (firstMap.getNumResults() > 0)
    if (auto d = dyn_cast<AffineDimExpr>(firstMap.getResults().back()))
      reducedInner = llvm::is_contained(shape.reducedDims, d.getPosition());
  int64_t perThread = reducedInner ? 4 : 8;
  shape.lanes = std::min<int64_t>(
      kWarp, llvm::PowerOf2Ceil(llvm::divideCeil(shape.numReduced, perThread)));
  if (shape.lanes < 2)
    return std::nullopt;
  return shape;
}

/// The combiners of every output of reduction `op`, or nullopt.
std::optional<SmallVector<Combiner>> combinersOf(linalg::GenericOp op) {
  SmallVector<Combiner> combiners;
  for (unsigned k = 0; k < op.getNumDpsInits(); ++k) {
    Type element = cast<MemRefType>(op.getDpsInits()[k].getType())
                       .getElementType();
    // Shuffles move 32-bit values.
    if (!element.isF32() && !element.isInteger(32))
      return std::nullopt;
    std::optional<Combiner> combiner = matchCombiner(op, k);
    if (!combiner)
      return std::nullopt;
    combiners.push_back(*combiner);
  }
  return combiners;
}

/// Whether `op` is elementwise over exactly the iterations of `shape`, each
/// output element written by one iteration.
bool elementwiseOver(linalg::GenericOp op, const Shape &shape) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() == 0 ||
      op.getNumLoops() != shape.ranges.size() ||
      op.getStaticLoopRanges() != ArrayRef<int64_t>(shape.ranges) ||
      op.getNumReductionLoops() != 0)
    return false;
  for (OpOperand &init : op.getDpsInitsMutable())
    if (!op.getMatchingIndexingMap(&init).isPermutation())
      return false;
  Block &body = op.getRegion().front();
  for (Operation &inner : body.without_terminator())
    if (!isMemoryEffectFree(&inner) || inner.getNumRegions() != 0)
      return false;
  return true;
}

/// The link of a chain that reads output `k` of an earlier reduction: the
/// same memref, at the reduction's output position.
struct Forward {
  Value buffer;
  AffineMap map;
};

} // namespace

LogicalResult bptt::lowerToWarpReduction(RewriterBase &rewriter,
                                         linalg::GenericOp op,
                                         ArrayRef<linalg::FillOp> initialFills) {
  return lowerRowChain(rewriter, {RowChainLink{op, llvm::to_vector(initialFills)}});
}

LogicalResult bptt::lowerRowChain(RewriterBase &rewriter,
                                  ArrayRef<RowChainLink> chain) {
  if (chain.empty())
    return failure();
  linalg::GenericOp lead = chain.front().op;
  std::optional<Shape> shape = reductionShape(lead);
  if (!shape)
    return failure();
  const SmallVector<int64_t> &ranges = shape->ranges;
  ArrayRef<unsigned> parallelDims = shape->parallelDims;
  ArrayRef<unsigned> reducedDims = shape->reducedDims;
  int64_t numOutputs = shape->numOutputs, numReduced = shape->numReduced,
          lanes = shape->lanes;

  // Every link: a reduction of the lead's shape or an elementwise op over
  // its iterations. A link reads an earlier reduction's output only where
  // that output was filled first (so every thread knows its value without
  // reading memory) and only at the output's own position.
  SmallVector<std::optional<SmallVector<Combiner>>> combiners;
  SmallVector<Forward> forwarded;
  for (auto [i, link] : llvm::enumerate(chain)) {
    linalg::GenericOp op = link.op;
    if (!link.fills.empty() &&
        link.fills.size() != size_t(op.getNumDpsInits()))
      return failure();
    bool isReduction = op.getNumReductionLoops() != 0;
    if (isReduction) {
      std::optional<Shape> own = reductionShape(op);
      combiners.push_back(combinersOf(op));
      if (!own || !(*own == *shape) || !combiners.back())
        return failure();
    } else {
      combiners.push_back(std::nullopt);
      if (i == 0 || !elementwiseOver(op, *shape))
        return failure();
    }
    for (OpOperand &operand : op->getOpOperands()) {
      if (!isa<MemRefType>(operand.get().getType()))
        continue;
      bool isForwarded = llvm::any_of(forwarded, [&](const Forward &f) {
        return f.buffer == operand.get() &&
               f.map == op.getMatchingIndexingMap(&operand);
      });
      if (isForwarded && !op.isDpsInit(&operand))
        continue;
      // Anything else of an earlier link's outputs goes through memory,
      // which another thread may not have written yet.
      for (const RowChainLink &earlier : chain.take_front(i))
        for (Value out : linalg::GenericOp(earlier.op).getDpsInits())
          if (viewRoot(out) == viewRoot(operand.get()))
            return failure();
    }
    // Nor may it write what an earlier link reads: in one kernel a row's
    // later link may run before another row's earlier one.
    for (Value out : op.getDpsInits())
      for (const RowChainLink &earlier : chain.take_front(i))
        for (Value in : linalg::GenericOp(earlier.op).getDpsInputs())
          if (isa<MemRefType>(in.getType()) && viewRoot(in) == viewRoot(out))
            return failure();
    if (isReduction)
      for (auto [k, init] : llvm::enumerate(op.getDpsInitsMutable()))
        if (!link.fills.empty() && link.fills[k])
          forwarded.push_back({init.get(), op.getMatchingIndexingMap(&init)});
  }

  // Whole warps, so that every shuffle has all its threads.
  int64_t outputsPerBlock = std::max<int64_t>(
      kWarp / lanes,
      std::min<int64_t>(kMaxBlock / lanes, llvm::PowerOf2Ceil(numOutputs)));
  int64_t threads = lanes * outputsPerBlock;
  int64_t blocks = llvm::divideCeil(numOutputs, outputsPerBlock);

  Location loc = lead.getLoc();
  OpBuilder::InsertionGuard guard(rewriter);
  // After the last link: what the later links read is defined by then, and
  // what the chain skipped over touches none of its memory (the caller).
  rewriter.setInsertionPoint(chain.back().op);
  auto index = [&](OpBuilder &b, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto launch = gpu::LaunchOp::create(
      rewriter, loc, index(rewriter, blocks), index(rewriter, 1),
      index(rewriter, 1), index(rewriter, threads), index(rewriter, 1),
      index(rewriter, 1));
  // One output position: one thread, in one block, writes everything, last
  // (bptt-gpu-host-islands may append a one-thread kernel's work there).
  if (numOutputs == 1 && chain.size() == 1)
    launch->setAttr(kOneWriterAttr, rewriter.getUnitAttr());
  Block &kernel = launch.getBody().front();
  rewriter.setInsertionPointToEnd(&kernel);
  OpBuilder &b = rewriter;

  Value lanesValue = index(b, lanes);
  Value tid = launch.getThreadIds().x;
  Value lane = arith::RemUIOp::create(b, loc, tid, lanesValue);
  Value output = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                            index(b, outputsPerBlock)),
      arith::DivUIOp::create(b, loc, tid, lanesValue));
  Value inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                        output, index(b, numOutputs));
  // Threads past the last output read output 0's elements, so that every
  // thread runs the same straight-line loads; their totals stay in their own
  // group and are never written.
  Value readOutput =
      arith::SelectOp::create(b, loc, inRange, output, index(b, 0));
  SmallVector<Value> ivs(ranges.size());
  delinearize(b, loc, readOutput, parallelDims, ranges, ivs);

  // The value of each forwarded output once its reduction is done, the same
  // in every thread of the group (an xor tree leaves the total in all).
  DenseMap<Value, Value> finals;

  // Each thread's share of the reduced iterations: lane, lane + lanes, ...,
  // in that order. The iterations are unrolled in groups of up to kUnroll,
  // so that a group's loads are all in flight at once: a loop with one load
  // per trip waits a memory latency per element, the whole time of a small
  // kernel (a bias gradient's 8 rows per thread, a softmax row's 4). An
  // iteration past the end (when `lanes` does not divide the reduced
  // iterations, or the last group is short) reads the thread's first
  // element; `valid` says it is past the end.
  int64_t perLane = llvm::divideCeil(numReduced, lanes);
  int64_t unroll = std::min(perLane, kUnroll);
  int64_t groups = llvm::divideCeil(perLane, unroll);
  bool guarded = numReduced % lanes != 0 || perLane % unroll != 0;
  // Runs `visit(builder, loc, at, valid, carried)` for each of the thread's
  // iterations (at: the iteration's induction variables; valid: null, or
  // whether the iteration is in range), threading `carried` through.
  using Visit = function_ref<SmallVector<Value>(OpBuilder &, Location,
                                                ArrayRef<Value>, Value,
                                                ValueRange)>;
  auto forEachIteration = [&](OpBuilder &ob, ValueRange initial,
                              Visit visit) -> SmallVector<Value> {
    auto iteration = [&](OpBuilder &nb, Location l, Value r, bool mayBePast,
                         ValueRange carried) {
      Value valid;
      if (mayBePast) {
        valid = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, r,
                                      index(nb, numReduced));
        r = arith::SelectOp::create(nb, l, valid, r, lane);
      }
      SmallVector<Value> at(ivs);
      delinearize(nb, l, r, reducedDims, ranges, at);
      return visit(nb, l, at, valid, carried);
    };
    // The iterations of one group, from the reduced iteration `first` on.
    // With one group, iteration i of every thread is in range when (i + 1)
    // lanes fit in the reduced iterations.
    auto group = [&](OpBuilder &nb, Location l, Value first,
                     ValueRange carried) -> SmallVector<Value> {
      SmallVector<Value> running(carried);
      for (int64_t i = 0; i < unroll; ++i) {
        Value r = i == 0 ? first
                         : arith::AddIOp::create(nb, l, first,
                                                 index(nb, i * lanes))
                               .getResult();
        bool mayBePast =
            guarded && (groups > 1 || (i + 1) * lanes > numReduced);
        running = iteration(nb, l, r, mayBePast, running);
      }
      return running;
    };
    if (groups == 1)
      return group(ob, loc, lane, initial);
    auto loop = scf::ForOp::create(
        ob, loc, index(ob, 0), index(ob, groups * unroll * lanes),
        index(ob, unroll * lanes), initial,
        [&](OpBuilder &nb, Location l, Value start, ValueRange carried) {
          Value first = arith::AddIOp::create(nb, l, start, lane);
          scf::YieldOp::create(nb, l, group(nb, l, first, carried));
        });
    return SmallVector<Value>(loop.getResults());
  };
  // Maps the region's arguments for the inputs of `op` at iteration `at`:
  // a forwarded output's final value, or a load.
  auto mapInputs = [&](OpBuilder &nb, Location l, linalg::GenericOp op,
                       ArrayRef<Value> at, IRMapping &m) {
    Block &body = op.getRegion().front();
    for (OpOperand *input : op.getDpsInputOperands()) {
      Value v = input->get();
      if (Value f = finals.lookup(v);
          f && llvm::any_of(forwarded, [&](const Forward &fw) {
            return fw.buffer == v &&
                   fw.map == op.getMatchingIndexingMap(input);
          }))
        v = f;
      else if (isa<MemRefType>(v.getType()))
        v = memref::LoadOp::create(
            nb, l, v, indicesAt(nb, l, op.getMatchingIndexingMap(input), at));
      m.map(body.getArgument(input->getOperandNumber()), v);
    }
  };

  for (auto [i, link] : llvm::enumerate(chain)) {
    linalg::GenericOp op = link.op;
    Block &body = op.getRegion().front();
    auto cloneBody = [&](OpBuilder &nb, ArrayRef<Value> at, IRMapping &m,
                         function_ref<bool(Operation *)> skip) {
      for (Operation &inner : body.without_terminator()) {
        if (skip(&inner))
          continue;
        if (auto idx = dyn_cast<linalg::IndexOp>(&inner)) {
          m.map(idx.getResult(), at[idx.getDim()]);
          continue;
        }
        nb.clone(inner, m);
      }
    };

    if (!combiners[i]) {
      // Elementwise: each thread computes and stores its iterations' outputs
      // (threads past the last output and iterations past the end store
      // nothing).
      forEachIteration(
          b, ValueRange{},
          [&](OpBuilder &nb, Location l, ArrayRef<Value> at, Value valid,
              ValueRange) -> SmallVector<Value> {
            IRMapping m;
            mapInputs(nb, l, op, at, m);
            for (OpOperand &init : op.getDpsInitsMutable()) {
              BlockArgument arg = body.getArgument(init.getOperandNumber());
              if (!arg.use_empty())
                m.map(arg, memref::LoadOp::create(
                               nb, l, init.get(),
                               indicesAt(nb, l,
                                         op.getMatchingIndexingMap(&init),
                                         at)));
            }
            cloneBody(nb, at, m, [](Operation *) { return false; });
            auto yield = cast<linalg::YieldOp>(body.getTerminator());
            Value writes =
                valid ? arith::AndIOp::create(nb, l, valid, inRange).getResult()
                      : inRange;
            scf::IfOp::create(nb, l, writes, [&](OpBuilder &wb, Location wl) {
              for (OpOperand &init : op.getDpsInitsMutable())
                memref::StoreOp::create(
                    wb, wl,
                    m.lookupOrDefault(yield.getOperand(
                        init.getOperandNumber() - op.getNumDpsInputs())),
                    init.get(),
                    indicesAt(wb, wl, op.getMatchingIndexingMap(&init), at));
              scf::YieldOp::create(wb, wl);
            });
            return {};
          });
      continue;
    }

    ArrayRef<Combiner> cs = *combiners[i];
    auto isCombiner = [&](Operation *inner) {
      return llvm::any_of(cs, [&](const Combiner &c) { return c.op == inner; });
    };
    SmallVector<Value> neutrals;
    for (const Combiner &c : cs)
      neutrals.push_back(
          arith::ConstantOp::create(b, loc, *arith::getNeutralElement(c.op)));
    // Each thread's partial results over its share of the iterations.
    SmallVector<Value> totals = forEachIteration(
        b, neutrals,
        [&](OpBuilder &nb, Location l, ArrayRef<Value> at, Value valid,
            ValueRange partial) -> SmallVector<Value> {
          IRMapping m;
          mapInputs(nb, l, op, at, m);
          cloneBody(nb, at, m, isCombiner);
          SmallVector<Value> next;
          for (auto [c, running] : llvm::zip(cs, partial)) {
            Value combined =
                combine(nb, c, running, m.lookupOrDefault(c.contribution));
            next.push_back(valid ? arith::SelectOp::create(nb, l, valid,
                                                           combined, running)
                                       .getResult()
                                 : combined);
          }
          return next;
        });

    // Each output's tree in the group: lanes / 2, ..., 1 apart.
    Value width = arith::ConstantIntOp::create(b, loc, b.getI32Type(), kWarp);
    for (int64_t offset = lanes / 2; offset >= 1; offset /= 2) {
      Value distance =
          arith::ConstantIntOp::create(b, loc, b.getI32Type(), offset);
      for (auto [k, c] : llvm::enumerate(cs)) {
        auto shuffle = gpu::ShuffleOp::create(b, loc, totals[k], distance,
                                              width, gpu::ShuffleMode::XOR);
        totals[k] = combine(b, c, totals[k], shuffle.getShuffleResult());
      }
    }

    // A filled output's final value, which later links read without memory.
    SmallVector<Value> results(cs.size());
    for (auto [k, c] : llvm::enumerate(cs))
      if (chain.size() > 1 && !link.fills.empty() && link.fills[k]) {
        linalg::FillOp fill = link.fills[k];
        results[k] = combine(b, c, fill.getInputs()[0], totals[k]);
        finals[op.getDpsInits()[k]] = results[k];
      }

    // The group's first thread folds each total into its output, or into the
    // value the output was just filled with.
    Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                        lane, index(b, 0));
    Value writes = arith::AndIOp::create(b, loc, first, inRange);
    scf::IfOp::create(b, loc, writes, [&](OpBuilder &nb, Location l) {
      SmallVector<Value> at(ivs);
      for (unsigned d : reducedDims)
        at[d] = arith::ConstantIndexOp::create(nb, l, 0);
      for (auto [k, c] : llvm::enumerate(cs)) {
        OpOperand *init = op.getDpsInitOperand(k);
        SmallVector<Value> indices =
            indicesAt(nb, l, op.getMatchingIndexingMap(init), at);
        linalg::FillOp fill =
            link.fills.empty() ? nullptr : linalg::FillOp(link.fills[k]);
        Value result = results[k];
        if (!result)
          result = combine(
              nb, c,
              fill ? fill.getInputs()[0]
                   : memref::LoadOp::create(nb, l, init->get(), indices)
                         .getResult(),
              totals[k]);
        memref::StoreOp::create(nb, l, result, init->get(), indices);
      }
      scf::YieldOp::create(nb, l);
    });
  }
  gpu::TerminatorOp::create(b, loc);
  llvm::SetVector<Operation *> absorbed;
  for (const RowChainLink &link : chain) {
    rewriter.eraseOp(link.op);
    for (linalg::FillOp fill : link.fills)
      if (fill)
        absorbed.insert(fill);
  }
  for (Operation *fill : absorbed)
    rewriter.eraseOp(fill);
  return success();
}
