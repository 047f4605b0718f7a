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

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
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

LogicalResult
bptt::lowerToWarpReduction(RewriterBase &rewriter, linalg::GenericOp op,
                           ArrayRef<linalg::FillOp> initialFills) {
  unsigned numInits = op.getNumDpsInits();
  if (!op.hasPureBufferSemantics() || numInits == 0 ||
      op.getNumDpsInputs() == 0 ||
      (!initialFills.empty() && initialFills.size() != numInits))
    return failure();
  SmallVector<Combiner> combiners;
  for (unsigned k = 0; k < numInits; ++k) {
    Type element = cast<MemRefType>(op.getDpsInits()[k].getType())
                       .getElementType();
    // Shuffles move 32-bit values.
    if (!element.isF32() && !element.isInteger(32))
      return failure();
    std::optional<Combiner> combiner = matchCombiner(op, k);
    if (!combiner)
      return failure();
    combiners.push_back(*combiner);
  }

  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return failure();
  SmallVector<unsigned> parallelDims, reducedDims;
  for (auto [d, type] : llvm::enumerate(op.getIteratorTypesArray()))
    (type == utils::IteratorType::reduction ? reducedDims : parallelDims)
        .push_back(d);
  if (reducedDims.empty())
    return failure();
  for (OpOperand &init : op.getDpsInitsMutable()) {
    AffineMap outMap = op.getMatchingIndexingMap(&init);
    if (llvm::any_of(reducedDims,
                     [&](unsigned d) { return outMap.isFunctionOfDim(d); }))
      return failure();
  }
  int64_t numOutputs = 1, numReduced = 1;
  for (unsigned d : parallelDims)
    numOutputs *= ranges[d];
  for (unsigned d : reducedDims)
    numReduced *= ranges[d];
  if (numOutputs == 0 || numReduced == 0)
    return failure();

  // When the reduced iterations run along the first input's fastest
  // dimension, the threads of a group read neighbouring elements, and each
  // may take few of them; otherwise the group's reads are scattered, and
  // fewer threads per output keep more outputs per warp.
  bool reducedInner = false;
  AffineMap firstMap = op.getMatchingIndexingMap(op.getDpsInputOperand(0));
  if (firstMap.getNumResults() > 0)
    if (auto d = dyn_cast<AffineDimExpr>(firstMap.getResults().back()))
      reducedInner = llvm::is_contained(reducedDims, d.getPosition());
  int64_t perThread = reducedInner ? 4 : 8;
  int64_t lanes = std::min<int64_t>(
      kWarp, llvm::PowerOf2Ceil(llvm::divideCeil(numReduced, perThread)));
  if (lanes < 2)
    return failure();
  // Whole warps, so that every shuffle has all its threads.
  int64_t outputsPerBlock = std::max<int64_t>(
      kWarp / lanes,
      std::min<int64_t>(kMaxBlock / lanes, llvm::PowerOf2Ceil(numOutputs)));
  int64_t threads = lanes * outputsPerBlock;
  int64_t blocks = llvm::divideCeil(numOutputs, outputsPerBlock);

  Location loc = op.getLoc();
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  auto index = [&](OpBuilder &b, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto launch = gpu::LaunchOp::create(
      rewriter, loc, index(rewriter, blocks), index(rewriter, 1),
      index(rewriter, 1), index(rewriter, threads), index(rewriter, 1),
      index(rewriter, 1));
  // One output position: one thread, in one block, writes everything, last
  // (bptt-gpu-host-islands may append a one-thread kernel's work there).
  if (numOutputs == 1)
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
  SmallVector<Value> neutrals;
  for (const Combiner &c : combiners)
    neutrals.push_back(arith::ConstantOp::create(
        b, loc, *arith::getNeutralElement(c.op)));
  SmallVector<Value> ivs(ranges.size());
  delinearize(b, loc, readOutput, parallelDims, ranges, ivs);

  // Each thread's partial results over its share of the reduced iterations,
  // lane, lane + lanes, ..., in that order. The iterations are unrolled in
  // groups of up to kUnroll, so that a group's loads are all in flight at
  // once: a loop with one load per trip waits a memory latency per element,
  // the whole time of a small kernel (a bias gradient's 8 rows per thread,
  // a softmax row's 4). An iteration past the end (when `lanes` does not
  // divide the reduced iterations, or the last group is short) reads the
  // thread's first element and leaves the partial results as they were.
  Block &body = op.getRegion().front();
  auto isCombiner = [&](Operation *inner) {
    return llvm::any_of(combiners,
                        [&](const Combiner &c) { return c.op == inner; });
  };
  int64_t perLane = llvm::divideCeil(numReduced, lanes);
  int64_t unroll = std::min(perLane, kUnroll);
  int64_t groups = llvm::divideCeil(perLane, unroll);
  bool guarded = numReduced % lanes != 0 || perLane % unroll != 0;
  auto iteration = [&](OpBuilder &nb, Location l, Value r, bool mayBePast,
                       ValueRange partial) -> SmallVector<Value> {
    Value valid;
    if (mayBePast) {
      valid = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ult, r,
                                    index(nb, numReduced));
      r = arith::SelectOp::create(nb, l, valid, r, lane);
    }
    SmallVector<Value> at(ivs);
    delinearize(nb, l, r, reducedDims, ranges, at);
    IRMapping m;
    for (OpOperand *input : op.getDpsInputOperands()) {
      Value v = input->get();
      if (isa<MemRefType>(v.getType()))
        v = memref::LoadOp::create(
            nb, l, v, indicesAt(nb, l, op.getMatchingIndexingMap(input), at));
      m.map(body.getArgument(input->getOperandNumber()), v);
    }
    for (Operation &inner : body.without_terminator()) {
      if (isCombiner(&inner))
        continue;
      if (auto idx = dyn_cast<linalg::IndexOp>(&inner)) {
        m.map(idx.getResult(), at[idx.getDim()]);
        continue;
      }
      nb.clone(inner, m);
    }
    SmallVector<Value> next;
    for (auto [c, running] : llvm::zip(combiners, partial)) {
      Value combined =
          combine(nb, c, running, m.lookupOrDefault(c.contribution));
      next.push_back(valid ? arith::SelectOp::create(nb, l, valid, combined,
                                                     running)
                                 .getResult()
                           : combined);
    }
    return next;
  };
  // The iterations of one group, from the reduced iteration `first` on.
  // With one group, iteration i of every thread is in range when (i + 1)
  // lanes fit in the reduced iterations.
  auto group = [&](OpBuilder &nb, Location l, Value first,
                   ValueRange partial) -> SmallVector<Value> {
    SmallVector<Value> running(partial);
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
  SmallVector<Value> totals;
  if (groups == 1) {
    totals = group(b, loc, lane, neutrals);
  } else {
    auto loop = scf::ForOp::create(
        b, loc, index(b, 0), index(b, groups * unroll * lanes),
        index(b, unroll * lanes), neutrals,
        [&](OpBuilder &nb, Location l, Value start, ValueRange partial) {
          Value first = arith::AddIOp::create(nb, l, start, lane);
          scf::YieldOp::create(nb, l, group(nb, l, first, partial));
        });
    totals.assign(loop.getResults().begin(), loop.getResults().end());
  }

  // Each output's tree in the group: lanes / 2, ..., 1 apart.
  Value width = arith::ConstantIntOp::create(b, loc, b.getI32Type(), kWarp);
  for (int64_t offset = lanes / 2; offset >= 1; offset /= 2) {
    Value distance =
        arith::ConstantIntOp::create(b, loc, b.getI32Type(), offset);
    for (unsigned k = 0; k < numInits; ++k) {
      auto shuffle = gpu::ShuffleOp::create(b, loc, totals[k], distance,
                                            width, gpu::ShuffleMode::XOR);
      totals[k] = combine(b, combiners[k], totals[k],
                          shuffle.getShuffleResult());
    }
  }

  // The group's first thread folds each total into its output, or into the
  // value the output was just filled with.
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lane,
                                      index(b, 0));
  Value writes = arith::AndIOp::create(b, loc, first, inRange);
  scf::IfOp::create(b, loc, writes, [&](OpBuilder &nb, Location l) {
    SmallVector<Value> at(ivs);
    for (unsigned d : reducedDims)
      at[d] = arith::ConstantIndexOp::create(nb, l, 0);
    for (auto [k, c] : llvm::enumerate(combiners)) {
      OpOperand *init = op.getDpsInitOperand(k);
      linalg::FillOp fill = initialFills.empty() ? nullptr : initialFills[k];
      SmallVector<Value> indices =
          indicesAt(nb, l, op.getMatchingIndexingMap(init), at);
      Value old = fill ? fill.getInputs()[0]
                       : memref::LoadOp::create(nb, l, init->get(), indices);
      memref::StoreOp::create(nb, l, combine(nb, c, old, totals[k]),
                              init->get(), indices);
    }
    scf::YieldOp::create(nb, l);
  });
  gpu::TerminatorOp::create(b, loc);
  rewriter.eraseOp(op);
  for (linalg::FillOp fill : initialFills)
    if (fill)
      rewriter.eraseOp(fill);
  return success();
}
