//===- SmallProducts.cpp - short-contraction products as one kernel -------===//
//
// A backward step accumulates its parameter gradients with products that
// contract over the step's batch rows: dW_hh += h^T·dgates, dW_ih +=
// x^T·dgates, dW_out += h'^T·dlogits, K = B. cuBLAS runs each as its own
// launch, latency-bound at these sizes (3.9-7.4 us each at B = 64 on an
// H100, for 4-64 M multiply-adds). Here the products of a step that are
// independent become one kernel over all their output tiles, which keeps
// the GPU busy with the three at once.
//
//===----------------------------------------------------------------------===//

#include "SmallProducts.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;

namespace {

/// A block's output tile (kTile x kTile), the rows of A and B it stages at
/// a time (in two buffers: one multiplied while the next is filled), and
/// each thread's register tile (kRows x kCols, four columns: one 16-byte
/// vector). Two 16-row buffers, with C read first, measured faster than one
/// 32-row stage (benchmarks/gpu/micro/weight_grads.cu: 35.2 against 40.9 us
/// at B = 128, 7.7 against 9.6 at B = 64, H100) in the same 16 KiB of
/// shared memory.
constexpr int64_t kTile = 64;
constexpr int64_t kStage = 16;
constexpr int64_t kBuffers = 2;
constexpr int64_t kRows = 8;
constexpr int64_t kCols = 4;
constexpr int64_t kThreadCols = kTile / kCols;             // 16
constexpr int64_t kThreads = (kTile / kRows) * kThreadCols; // 128
/// Inner iterations emitted per loop trip, so that the loads of several k
/// are in flight together.
constexpr int64_t kUnroll = 8;
constexpr int64_t kVectorBytes = 16;

/// A small product's operands in its orientation: A is K x M, B is K x N,
/// C is M x N (each stored with the second index contiguous, which the
/// kernel's guard checks at run time).
struct Operands {
  Value a, b, c;
  int64_t m, n, k;
};

std::optional<Operands> operandsOf(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> dims =
      linalg::inferContractionDims(op);
  if (failed(dims) || !dims->batch.empty() || dims->m.size() != 1 ||
      dims->n.size() != 1 || dims->k.size() != 1)
    return std::nullopt;
  unsigned m = dims->m[0], n = dims->n[0], k = dims->k[0];
  auto indexedBy = [&](OpOperand &operand, unsigned first, unsigned second) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (map.getNumResults() != 2)
      return false;
    auto d0 = dyn_cast<AffineDimExpr>(map.getResult(0));
    auto d1 = dyn_cast<AffineDimExpr>(map.getResult(1));
    return d0 && d1 && d0.getPosition() == first && d1.getPosition() == second;
  };
  OpOperand &a = *op.getDpsInputOperand(0), &b = *op.getDpsInputOperand(1),
            &c = *op.getDpsInitOperand(0);
  if (!indexedBy(a, k, m) || !indexedBy(b, k, n) || !indexedBy(c, m, n))
    return std::nullopt;
  // The body multiplies and adds, in f32 (the contraction interface allows
  // other combinations).
  Block &body = op->getRegion(0).front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
  if (!add || body.getOperations().size() != 3)
    return std::nullopt;
  Value acc = body.getArgument(2);
  Value product = add.getLhs() == acc ? add.getRhs() : add.getLhs();
  auto mul = product.getDefiningOp<arith::MulFOp>();
  if (!mul || (add.getLhs() != acc && add.getRhs() != acc) ||
      mul.getLhs() != body.getArgument(0) ||
      mul.getRhs() != body.getArgument(1))
    return std::nullopt;
  Operands ops{a.get(), b.get(), c.get(), 0, 0, 0};
  for (Value v : {ops.a, ops.b, ops.c}) {
    auto t = dyn_cast<MemRefType>(v.getType());
    if (!t || t.getRank() != 2 || !t.hasStaticShape() ||
        !t.getElementType().isF32())
      return std::nullopt;
  }
  ArrayRef<int64_t> aShape = cast<MemRefType>(ops.a.getType()).getShape();
  ArrayRef<int64_t> bShape = cast<MemRefType>(ops.b.getType()).getShape();
  ops.k = aShape[0];
  ops.m = aShape[1];
  ops.n = bShape[1];
  return ops;
}

/// The fill just before `op` that writes its accumulator, if any.
bool accumulatorJustFilled(linalg::LinalgOp op) {
  auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
  return fill && fill.getDpsInits()[0] == op.getDpsInitOperand(0)->get();
}

Value index(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// Whether memref `v` (described by `meta`) is stored the way the kernel
/// reads it: unit stride along its second index, rows a multiple of four
/// elements apart, and its first element 16-byte aligned (so every row's
/// tiles are whole vectors).
Value vectorLayout(OpBuilder &b, Location loc, Value v,
                   memref::ExtractStridedMetadataOp meta) {
  Value row = getValueOrCreateConstantIndexOp(
      b, loc, meta.getConstifiedMixedStrides()[0]);
  Value rowRem = arith::RemUIOp::create(b, loc, row, index(b, loc, kCols));
  Value rowsOk = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                       rowRem, index(b, loc, 0));
  Value ok = arith::AndIOp::create(
      b, loc, bptt::hasUnitInnerStride(b, loc, meta), rowsOk);
  return arith::AndIOp::create(
      b, loc, ok, bptt::startsAligned(b, loc, v, meta, kVectorBytes));
}

/// `v` (described by `meta`) as memref<RxCxf32, strided<[?, 1], offset:
/// ?>>, which the guard has checked, so that vector loads of it lower to
/// 16-byte accesses. (A reinterpret_cast of its metadata: a memref.cast to
/// the static stride would fold into the loads.)
Value asUnitInnerStride(OpBuilder &b, Location loc, Value v,
                        memref::ExtractStridedMetadataOp meta) {
  auto t = cast<MemRefType>(v.getType());
  SmallVector<OpFoldResult> sizes;
  for (int64_t d : t.getShape())
    sizes.push_back(b.getIndexAttr(d));
  return memref::ReinterpretCastOp::create(
      b, loc, MemRefType::get(t.getShape(), t.getElementType(),
                              StridedLayoutAttr::get(b.getContext(),
                                                     ShapedType::kDynamic,
                                                     {ShapedType::kDynamic, 1})),
      meta.getBaseBuffer(), meta.getConstifiedMixedOffset(), sizes,
      ArrayRef<OpFoldResult>{meta.getConstifiedMixedStrides()[0],
                             b.getIndexAttr(1)});
}

/// One block's tile of one product: sums the thread's kRows x kCols tile
/// over k in order, then adds it to C's values read before the sum. The A
/// and B rows of k come through `aStage` and `bStage` (kBuffers x kStage x
/// kTile each), kStage rows at a time: while the block multiplies one
/// buffer, each thread has already read its part of the next rows from
/// global memory into registers, and stores them into the other buffer
/// after the multiplication, so a stage costs one barrier and its loads
/// overlap the arithmetic.
void emitTile(OpBuilder &b, Location loc, const Operands &p, Value a, Value bm,
              Value c, Value local, Value aStage, Value bStage, Value tx,
              Value ty) {
  Value tilesN = index(b, loc, p.n / kTile);
  Value tileSize = index(b, loc, kTile);
  Value m0 = arith::MulIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, local, tilesN), tileSize);
  Value n0 = arith::MulIOp::create(
      b, loc, arith::RemUIOp::create(b, loc, local, tilesN), tileSize);
  auto f32 = b.getF32Type();
  auto vec = VectorType::get({kCols}, f32);
  auto align = llvm::MaybeAlign(kVectorBytes);
  auto load = [&](OpBuilder &bb, Value memref, ValueRange at) {
    return vector::LoadOp::create(bb, loc, vec, memref, at,
                                  /*nontemporal=*/false, align)
        .getResult();
  };
  auto store = [&](OpBuilder &bb, Value v, Value memref, ValueRange at) {
    vector::StoreOp::create(bb, loc, v, memref, at, /*nontemporal=*/false,
                            align);
  };
  auto add = [&](OpBuilder &bb, Value x, Value y) {
    return arith::AddIOp::create(bb, loc, x, y).getResult();
  };
  Value colInStage = arith::MulIOp::create(b, loc, tx, index(b, loc, kCols));
  Value rowOfThread = arith::MulIOp::create(b, loc, ty, index(b, loc, kRows));
  Value aCol = add(b, m0, colInStage), bCol = add(b, n0, colInStage);
  // Thread (tx, ty) moves the vector at column 4·tx of rows ty, ty + 8, ...
  // of a stage: each warp reads two whole 256-byte rows.
  constexpr int64_t kRowStep = kThreads / kThreadCols;
  auto fetch = [&](OpBuilder &bb, Value k0) {
    SmallVector<Value> parts;
    for (int64_t r = 0; r < kStage; r += kRowStep) {
      Value from = add(bb, k0, add(bb, ty, index(bb, loc, r)));
      parts.push_back(load(bb, a, {from, aCol}));
      parts.push_back(load(bb, bm, {from, bCol}));
    }
    return parts;
  };
  auto stash = [&](OpBuilder &bb, ValueRange parts, Value buffer) {
    for (int64_t r = 0, i = 0; r < kStage; r += kRowStep, i += 2) {
      Value row = add(bb, ty, index(bb, loc, r));
      store(bb, parts[i], aStage, {buffer, row, colInStage});
      store(bb, parts[i + 1], bStage, {buffer, row, colInStage});
    }
  };
  Value zero = arith::ConstantOp::create(
      b, loc, vec, DenseElementsAttr::get(vec, b.getF32FloatAttr(0.0f)));
  SmallVector<Value> inits(kRows, zero);

  // C's old values are read first, so that their latency (C is as large
  // as the weights, and in a program other work evicts it from L2 between
  // steps) overlaps the multiply-adds instead of following them.
  Value firstRow = add(b, m0, rowOfThread);
  SmallVector<Value> rows, old;
  for (int64_t i = 0; i < kRows; ++i) {
    rows.push_back(add(b, firstRow, index(b, loc, i)));
    old.push_back(load(b, c, {rows.back(), bCol}));
  }

  stash(b, fetch(b, index(b, loc, 0)), index(b, loc, 0));
  gpu::BarrierOp::create(b, loc);
  Value lastStage = index(b, loc, p.k - kStage);
  auto outer = scf::ForOp::create(
      b, loc, index(b, loc, 0), index(b, loc, p.k), index(b, loc, kStage),
      inits,
      [&](OpBuilder &ob, Location, Value k0, ValueRange accs) {
        Value buffer = arith::RemUIOp::create(
            ob, loc, arith::DivUIOp::create(ob, loc, k0, index(ob, loc, kStage)),
            index(ob, loc, kBuffers));
        Value other = arith::SubIOp::create(ob, loc, index(ob, loc, 1), buffer);
        // The next stage's rows; the last trip reads its own again (into
        // the buffer nobody reads any more) rather than branch.
        SmallVector<Value> next = fetch(
            ob, arith::MinUIOp::create(ob, loc, add(ob, k0, index(ob, loc, kStage)),
                                       lastStage));
        auto inner = scf::ForOp::create(
            ob, loc, index(ob, loc, 0), index(ob, loc, kStage),
            index(ob, loc, kUnroll), accs,
            [&](OpBuilder &ib, Location, Value kk, ValueRange in) {
              SmallVector<Value> acc(in);
              for (int64_t u = 0; u < kUnroll; ++u) {
                Value k = add(ib, kk, index(ib, loc, u));
                SmallVector<Value> aParts;
                for (int64_t q = 0; q < kRows; q += kCols)
                  aParts.push_back(load(
                      ib, aStage,
                      {buffer, k, add(ib, rowOfThread, index(ib, loc, q))}));
                Value bRow = load(ib, bStage, {buffer, k, colInStage});
                for (int64_t i = 0; i < kRows; ++i) {
                  Value ai = vector::ExtractOp::create(
                      ib, loc, aParts[i / kCols], ArrayRef<int64_t>{i % kCols});
                  Value splat = vector::BroadcastOp::create(ib, loc, vec, ai);
                  acc[i] = vector::FMAOp::create(ib, loc, splat, bRow, acc[i]);
                }
              }
              scf::YieldOp::create(ib, loc, acc);
            });
        // The other buffer was last read before the previous trip's
        // barrier; this trip's barrier orders the stores before the next
        // trip's reads and this trip's reads before the next trip's stores.
        stash(ob, next, other);
        gpu::BarrierOp::create(ob, loc);
        scf::YieldOp::create(ob, loc, inner.getResults());
      });

  for (int64_t i = 0; i < kRows; ++i)
    store(b, arith::AddFOp::create(b, loc, old[i], outer.getResult(i)), c,
          {rows[i], bCol});
}

} // namespace

bool bptt::isSmallProduct(linalg::LinalgOp op, MemoryProvenance &provenance) {
  std::optional<Operands> p = operandsOf(op);
  if (!p || p->m % kTile != 0 || p->n % kTile != 0 || p->k % kStage != 0 ||
      p->k < kStage || p->k > kSmallProductMaxK || p->m == 0 || p->n == 0)
    return false;
  if (accumulatorJustFilled(op))
    return false;
  // Other blocks write C while this one reads A and B.
  return !provenance.mayOverlap({p->a, p->b}, {p->c});
}

SmallVector<SmallVector<linalg::LinalgOp>>
bptt::smallProductGroups(ArrayRef<linalg::LinalgOp> products,
                         MemoryProvenance &provenance) {
  SmallVector<SmallVector<linalg::LinalgOp>> groups;
  llvm::DenseSet<Operation *> candidates, taken;
  for (linalg::LinalgOp op : products)
    candidates.insert(op);
  for (linalg::LinalgOp first : products) {
    if (taken.contains(first))
      continue;
    SmallVector<linalg::LinalgOp> group{first};
    SmallVector<MemoryAccess> accesses{memoryAccess(first)};
    taken.insert(first);
    for (Operation *next = first->getNextNode(); next;
         next = next->getNextNode()) {
      MemoryAccess access = memoryAccess(next);
      bool conflicts = llvm::any_of(accesses, [&](const MemoryAccess &m) {
        return provenance.mayConflict(m, access);
      });
      if (candidates.contains(next) && !taken.contains(next) && !conflicts) {
        group.push_back(cast<linalg::LinalgOp>(next));
        accesses.push_back(std::move(access));
        taken.insert(next);
        continue;
      }
      // The group's products move down past `next` to the last of them.
      if (conflicts)
        break;
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

void bptt::lowerSmallProducts(RewriterBase &rewriter,
                              ArrayRef<linalg::LinalgOp> group) {
  assert(!group.empty() && "a group has a product");
  Operation *last = group.back();
  Location loc = last->getLoc();
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(last);
  OpBuilder &b = rewriter;

  // Each operand's metadata, read once for the guard and the views.
  SmallVector<Operands> operands;
  SmallVector<std::array<memref::ExtractStridedMetadataOp, 3>> metas;
  Value ok;
  for (linalg::LinalgOp op : group) {
    const Operands &p = operands.emplace_back(*operandsOf(op));
    auto &meta = metas.emplace_back();
    for (auto [i, v] : llvm::enumerate(std::array<Value, 3>{p.a, p.b, p.c})) {
      meta[i] = memref::ExtractStridedMetadataOp::create(b, loc, v);
      Value layout = vectorLayout(b, loc, v, meta[i]);
      ok = ok ? arith::AndIOp::create(b, loc, ok, layout).getResult() : layout;
    }
  }
  auto branch = scf::IfOp::create(b, loc, ok, /*withElseRegion=*/true);
  // Else: the products as they were, in their order.
  for (linalg::LinalgOp op : group)
    op->moveBefore(branch.elseBlock()->getTerminator());

  b.setInsertionPointToStart(branch.thenBlock());
  SmallVector<std::array<Value, 3>> views;
  SmallVector<int64_t> firstBlock{0};
  for (auto [p, meta] : llvm::zip(operands, metas)) {
    views.push_back({asUnitInnerStride(b, loc, p.a, meta[0]),
                     asUnitInnerStride(b, loc, p.b, meta[1]),
                     asUnitInnerStride(b, loc, p.c, meta[2])});
    firstBlock.push_back(firstBlock.back() +
                         (p.m / kTile) * (p.n / kTile));
  }
  MLIRContext *ctx = b.getContext();
  auto workgroup = gpu::AddressSpaceAttr::get(
      ctx, gpu::GPUDialect::getWorkgroupAddressSpace());
  auto stageType = MemRefType::get({kBuffers, kStage, kTile}, b.getF32Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value one = index(b, loc, 1);
  auto launch = gpu::LaunchOp::create(
      b, loc, index(b, loc, firstBlock.back()), one, one,
      index(b, loc, kThreads), one, one, /*dynamicSharedMemorySize=*/Value(),
      /*asyncTokenType=*/Type(), /*asyncDependencies=*/ValueRange(),
      TypeRange{stageType, stageType});
  Block &kernel = launch.getBody().front();
  b.setInsertionPointToEnd(&kernel);
  Value aStage = launch.getWorkgroupAttributions()[0];
  Value bStage = launch.getWorkgroupAttributions()[1];
  Value block = launch.getBlockIds().x;
  Value tid = launch.getThreadIds().x;
  Value tx = arith::RemUIOp::create(b, loc, tid, index(b, loc, kThreadCols));
  Value ty = arith::DivUIOp::create(b, loc, tid, index(b, loc, kThreadCols));
  // The product this block works on: the number of products whose blocks
  // start at or before it, minus one.
  Value which = index(b, loc, 0);
  for (size_t i = 1; i < operands.size(); ++i) {
    Value past = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                                       block, index(b, loc, firstBlock[i]));
    which = arith::AddIOp::create(
        b, loc, which,
        arith::IndexCastUIOp::create(b, loc, b.getIndexType(), past));
  }
  SmallVector<int64_t> cases;
  for (size_t i = 1; i < operands.size(); ++i)
    cases.push_back(i);
  auto dispatch = scf::IndexSwitchOp::create(b, loc, TypeRange{}, which,
                                             cases, cases.size());
  auto emitCase = [&](Region &region, size_t i) {
    Block *body = b.createBlock(&region);
    b.setInsertionPointToEnd(body);
    Value local =
        arith::SubIOp::create(b, loc, block, index(b, loc, firstBlock[i]));
    emitTile(b, loc, operands[i], views[i][0], views[i][1], views[i][2],
             local, aStage, bStage, tx, ty);
    scf::YieldOp::create(b, loc);
  };
  emitCase(dispatch.getDefaultRegion(), 0);
  for (size_t i = 1; i < operands.size(); ++i)
    emitCase(dispatch.getCaseRegions()[i - 1], i);
  b.setInsertionPointAfter(dispatch);
  gpu::TerminatorOp::create(b, loc);
}
