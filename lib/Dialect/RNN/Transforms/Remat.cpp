//===- Remat.cpp - the rnn-remat pass -------------------------------------===//
//
// Turns each rnn.bptt into an explicit, buffer-level program that runs the
// planner's schedule:
//
//   func.func @<caller>_bptt(h0..., xs, params...,            // inputs
//                            dh0..., dxs, dparams..., loss,   // outputs
//                            stats)                           // accounting
//
// It allocates the working set (two cursor buffers, two state-gradient
// buffers, one internal-state buffer: the planner's 4|h| + |s|) and one slot
// pool of the plan's pool bytes, and calls the cell's bufferized forward and
// backward kernels (rnn-differentiate's functions, bufferized with
// out-parameters so that they write straight into slots). Runs of forward
// steps, of kept steps and of backward steps from consecutive slots become
// scf.for loops, so the program grows linearly in T with a small constant.
//
// At run time it counts the forward steps it executes (stats[0]) and tracks
// the peak of working-set plus live slot bytes (stats[1]); the tests hold
// both to the plan.
//
//===----------------------------------------------------------------------===//

#include "KernelPreparation.h"
#include "PlanSupport.h"

#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace bptt::rnn {
#define GEN_PASS_DEF_RNNREMAT
#include "bptt/Dialect/RNN/Passes.h.inc"
} // namespace bptt::rnn

using namespace mlir;
using namespace bptt;
using namespace bptt::rnn;
using planner::Action;
using planner::ActionKind;

/// The memref a tensor (or scalar, as a 0-d memref) is stored in.
static MemRefType storageType(Type t) {
  if (auto tensor = dyn_cast<RankedTensorType>(t))
    return MemRefType::get(tensor.getShape(), tensor.getElementType());
  return MemRefType::get({}, t);
}

namespace {

/// A cell's forward and backward functions, bufferized: tensors are passed
/// as strided memrefs and results are written into out-parameters.
struct Kernels {
  func::FuncOp forward, backward;
  /// Types of the internal state's parts: the new states, then the saved
  /// values (what @c_forward returns after the loss).
  SmallVector<Type> stateTypes, savedTypes;
};

/// Bufferizes @c_forward and @c_backward into @c_forward_kernel and
/// @c_backward_kernel. Only the backward step's incoming state gradient and
/// parameter-gradient accumulators may be updated in place.
FailureOr<Kernels> bufferizeKernels(CellOp cell, SymbolTable &symbols) {
  auto fwd = symbols.lookup<func::FuncOp>(
      cell->getAttrOfType<FlatSymbolRefAttr>("rnn.forward").getValue());
  auto bwd = symbols.lookup<func::FuncOp>(
      cell->getAttrOfType<FlatSymbolRefAttr>("rnn.backward").getValue());
  if (!fwd || !bwd)
    return cell.emitError() << "rnn-remat: the forward or backward function "
                               "of cell @"
                            << cell.getSymName() << " is missing";
  Kernels k;
  unsigned numStates = cell.getNumStates(), numParams = cell.getNumParams();
  llvm::append_range(k.stateTypes, cell.getStateTypes());
  for (Type t : fwd.getResultTypes().drop_front(numStates + 1))
    k.savedTypes.push_back(t);

  MLIRContext *ctx = cell.getContext();
  OwningOpRef<ModuleOp> scratch(ModuleOp::create(cell.getLoc()));
  OpBuilder b = OpBuilder::atBlockEnd(scratch->getBody());
  auto f = cast<func::FuncOp>(b.clone(*fwd));
  auto g = cast<func::FuncOp>(b.clone(*bwd));
  f.setSymName((cell.getSymName() + "_forward_kernel").str());
  g.setSymName((cell.getSymName() + "_backward_kernel").str());
  auto readOnly = b.getNamedAttr("bufferization.writable", b.getBoolAttr(false));
  for (unsigned i = 0; i < f.getNumArguments(); ++i)
    if (isa<TensorType>(f.getArgumentTypes()[i]))
      f.setArgAttrs(i, {readOnly});
  // Backward arguments: x, params, new states, saved, d new states, d loss,
  // d params. The last two tensor groups may be written.
  unsigned numSaved = k.savedTypes.size();
  unsigned firstWritable = 1 + numParams + numStates + numSaved;
  for (unsigned i = 0; i < g.getNumArguments(); ++i) {
    bool writable = i >= firstWritable;
    if (isa<TensorType>(g.getArgumentTypes()[i]) && !writable)
      g.setArgAttrs(i, {readOnly});
  }

  PassManager pm(ctx);
  addKernelFusionPasses(pm);
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::FullyDynamicLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  if (failed(pm.run(*scratch)))
    return cell.emitError() << "rnn-remat: cannot bufferize the forward and "
                               "backward functions of cell @"
                            << cell.getSymName();
  // Out-parameters, as the schedule passes them (forwardBody and
  // backwardBody): the forward step's new states and saved values are fresh
  // slots or cursors, the backward step's state and input gradients are
  // buffers of their own, so their results can be computed in place; the
  // backward step's parameter gradients are the accumulators themselves.
  {
    f = scratch->lookupSymbol<func::FuncOp>(f.getSymName());
    g = scratch->lookupSymbol<func::FuncOp>(g.getSymName());
    SmallVector<unsigned> fwdOut;
    unsigned fwdFirst = f.getNumArguments() - k.stateTypes.size() -
                        llvm::count_if(k.savedTypes, [](Type t) {
                          return isa<TensorType>(t);
                        });
    for (unsigned i = fwdFirst; i < f.getNumArguments(); ++i)
      fwdOut.push_back(i);
    writeResultsInPlace(f, fwdOut);
    unsigned bwdFirst = g.getNumArguments() - numStates - 1 - numParams;
    SmallVector<unsigned> bwdOut;
    for (unsigned i = bwdFirst; i < bwdFirst + numStates + 1; ++i)
      bwdOut.push_back(i);
    writeResultsInPlace(g, bwdOut);
    SmallVector<std::pair<unsigned, unsigned>> accumulators;
    for (unsigned q = 0; q < numParams; ++q)
      accumulators.push_back(
          {firstWritable + numStates + 1 + q, bwdFirst + numStates + 1 + q});
    dropSelfCopies(g, accumulators);
    // Views of one region become one value, and copies onto themselves go.
    PassManager cleanup(ctx);
    cleanup.addNestedPass<func::FuncOp>(createCSEPass());
    cleanup.addNestedPass<func::FuncOp>(createCanonicalizerPass());
    if (failed(cleanup.run(*scratch)))
      return cell.emitError() << "rnn-remat: cannot simplify the kernels of "
                                 "cell @"
                              << cell.getSymName();
  }
  OpBuilder into(cell);
  into.setInsertionPointAfter(bwd);
  for (Operation &op : llvm::make_early_inc_range(*scratch->getBody())) {
    op.remove();
    into.insert(&op);
    if (auto fn = dyn_cast<func::FuncOp>(&op)) {
      symbols.insert(fn);
      if (fn.getSymName().ends_with("_forward_kernel"))
        k.forward = fn;
      else if (fn.getSymName().ends_with("_backward_kernel"))
        k.backward = fn;
    }
    into.setInsertionPointAfter(&op);
  }
  return k;
}

/// Emits the schedule of one rnn.bptt as the body of its entry function.
class ScheduleEmitter {
public:
  ScheduleEmitter(OpBuilder &b, Location loc, CellOp cell, Kernels k,
                  const BPTTPlan &p, func::FuncOp entry)
      : b(b), loc(loc), cell(cell), k(k), p(p), entry(entry) {
    Block &e = entry.front();
    unsigned numStates = cell.getNumStates(), numParams = cell.getNumParams();
    unsigned i = 0;
    for (unsigned s = 0; s < numStates; ++s)
      h0.push_back(e.getArgument(i++));
    xs = e.getArgument(i++);
    for (unsigned q = 0; q < numParams; ++q)
      params.push_back(e.getArgument(i++));
    for (unsigned s = 0; s < numStates; ++s)
      dh0.push_back(e.getArgument(i++));
    dxs = e.getArgument(i++);
    for (unsigned q = 0; q < numParams; ++q)
      dparams.push_back(e.getArgument(i++));
    loss = e.getArgument(i++);
    stats = e.getArgument(i++);
    int64_t offset = 0;
    for (Type t : k.stateTypes) {
      stateOffsets.push_back(offset);
      offset += *storageBytes(t);
    }
    hiddenBytes = offset;
    for (Type t : k.savedTypes) {
      savedOffsets.push_back(offset);
      offset += *storageBytes(t);
    }
    internalBytes = offset;
  }

  void emit();

private:
  /// Constants and static slot views are made once, in the entry block's
  /// prologue, so that the program stays small at large T (except while a
  /// step wrapper is being built, which makes its own).
  Value index(int64_t v) {
    if (!prologue)
      return arith::ConstantIndexOp::create(b, loc, v);
    Value &c = indexConstants[v];
    if (!c)
      c = arith::ConstantIndexOp::create(*prologue, loc, v);
    return c;
  }
  Value i64(int64_t v) {
    if (!prologue)
      return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
    Value &c = i64Constants[v];
    if (!c)
      c = arith::ConstantIntOp::create(*prologue, loc, prologue->getI64Type(), v);
    return c;
  }
  SmallVector<Value> slotStates(int64_t off) { return cachedViews(off, true); }
  SmallVector<Value> slotSaved(int64_t off) { return cachedViews(off, false); }
  SmallVector<Value> cachedViews(int64_t off, bool states) {
    auto &cache = states ? stateViewCache : savedViewCache;
    auto it = cache.find(off);
    if (it != cache.end())
      return it->second;
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(prologue->getInsertionBlock(),
                        prologue->getInsertionPoint());
    SmallVector<Value> v = states ? stateViews(index(off)) : savedViews(index(off));
    prologue->setInsertionPoint(b.getInsertionBlock(), b.getInsertionPoint());
    cache[off] = v;
    return v;
  }
  Value alloc(Type t) { return memref::AllocOp::create(b, loc, storageType(t)); }
  /// Views of the parts of a slot at `byteOffset` of the pool.
  SmallVector<Value> views(Value byteOffset, ArrayRef<Type> types,
                           ArrayRef<int64_t> offsets);
  SmallVector<Value> stateViews(Value off) {
    return views(off, k.stateTypes, stateOffsets);
  }
  SmallVector<Value> savedViews(Value off) {
    return views(off, k.savedTypes, savedOffsets);
  }
  /// x_t for a 1-based step index.
  Value inputAt(Value step, Value from);
  Value castTo(Value v, Type t) {
    return v.getType() == t ? v : memref::CastOp::create(b, loc, t, v);
  }
  void zero(Value buffer);
  void addToCounter(unsigned slot, Value amount);
  void slotAllocated(int64_t bytes);
  void slotFreed(int64_t bytes);

  /// One forward step from `in` into `outStates` and `outSaved`: a call of
  /// the forward wrapper, whose body (forwardBody) slices x_t, calls the
  /// kernel, adds the loss when `first` and counts the step.
  void forwardStep(Value step, ValueRange in, ValueRange outStates,
                   ValueRange outSaved, bool first);
  void forwardBody(Value step, Value first, ValueRange in, ValueRange outStates,
                   ValueRange outSaved);
  /// One backward step: reads dCur, writes dNext (a call of the backward
  /// wrapper, whose body is backwardBody).
  void backwardStep(Value step, ValueRange states, ValueRange saved,
                    ValueRange dCur, ValueRange dNext);
  void backwardBody(Value step, ValueRange states, ValueRange saved,
                    ValueRange dCur, ValueRange dNext);
  void buildWrappers();
  SmallVector<Value> otherCursor() {
    return cursor == SmallVector<Value>(curA) ? curB : curA;
  }

  // Action handlers; each returns how many actions it consumed.
  size_t emitForwardRun(ArrayRef<Action> actions);
  size_t emitKeepRun(ArrayRef<Action> actions);
  size_t emitBackwardRun(ArrayRef<Action> actions);

  OpBuilder &b;
  Location loc;
  CellOp cell;
  Kernels k;
  const BPTTPlan &p;

  SmallVector<Value> h0, params, dh0, dparams;
  Value xs, dxs, loss, stats;
  SmallVector<int64_t> stateOffsets, savedOffsets;
  int64_t hiddenBytes = 0, internalBytes = 0;

  Value pool, live;
  SmallVector<Value> curA, curB, dA, dB, workStates, workSaved;
  func::FuncOp entry;
  std::optional<OpBuilder> prologue;
  llvm::DenseMap<int64_t, Value> indexConstants, i64Constants;
  llvm::DenseMap<int64_t, SmallVector<Value>> stateViewCache, savedViewCache;
  func::FuncOp forwardWrapper, backwardWrapper;

  /// Compile-time state of the abstract machine. The cursor is not copied
  /// out of a slot it is restored from (or kept in); `cursorSlot` is that
  /// slot's offset (-1: a working buffer or h0), so that freeing the slot
  /// while the cursor is live first moves the cursor to a working buffer.
  SmallVector<Value> cursor;
  int64_t cursorSlot = -1;
  bool gradientInA = true;
  llvm::DenseSet<int64_t> executed;
  llvm::DenseMap<int64_t, int64_t> slotSize;
};

} // namespace

SmallVector<Value> ScheduleEmitter::views(Value byteOffset, ArrayRef<Type> types,
                                          ArrayRef<int64_t> offsets) {
  SmallVector<Value> result;
  for (auto [t, off] : llvm::zip(types, offsets)) {
    Value at = arith::AddIOp::create(b, loc, byteOffset, index(off));
    result.push_back(
        memref::ViewOp::create(b, loc, storageType(t), pool, at, ValueRange{}));
  }
  return result;
}

Value ScheduleEmitter::inputAt(Value step, Value from) {
  auto type = cast<MemRefType>(from.getType());
  Value t0 = arith::SubIOp::create(b, loc, step, index(1));
  unsigned rank = type.getRank();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes,
      strides(rank, b.getIndexAttr(1));
  offsets[0] = t0;
  sizes.push_back(b.getIndexAttr(1));
  for (int64_t s : type.getShape().drop_front())
    sizes.push_back(b.getIndexAttr(s));
  auto stepType = memref::SubViewOp::inferRankReducedResultType(
      type.getShape().drop_front(), type, offsets, sizes, strides);
  return memref::SubViewOp::create(b, loc, cast<MemRefType>(stepType), from,
                                   offsets, sizes, strides);
}

void ScheduleEmitter::zero(Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  Value z = arith::ConstantOp::create(
      b, loc, cast<TypedAttr>(b.getZeroAttr(type.getElementType())));
  linalg::FillOp::create(b, loc, ValueRange{z}, ValueRange{buffer});
}

void ScheduleEmitter::addToCounter(unsigned slot, Value amount) {
  Value i = index(slot);
  Value old = memref::LoadOp::create(b, loc, stats, i);
  memref::StoreOp::create(b, loc, arith::AddIOp::create(b, loc, old, amount),
                          stats, i);
}

void ScheduleEmitter::slotAllocated(int64_t bytes) {
  Value now = arith::AddIOp::create(b, loc, memref::LoadOp::create(b, loc, live),
                                    i64(bytes));
  memref::StoreOp::create(b, loc, now, live);
  Value i = index(1);
  Value peak = memref::LoadOp::create(b, loc, stats, i);
  memref::StoreOp::create(b, loc, arith::MaxSIOp::create(b, loc, peak, now),
                          stats, i);
}

void ScheduleEmitter::slotFreed(int64_t bytes) {
  Value now = arith::SubIOp::create(b, loc, memref::LoadOp::create(b, loc, live),
                                    i64(bytes));
  memref::StoreOp::create(b, loc, now, live);
}

void ScheduleEmitter::forwardBody(Value step, Value first, ValueRange in,
                                  ValueRange outStates, ValueRange outSaved) {
  FunctionType type = k.forward.getFunctionType();
  SmallVector<Value> args;
  unsigned a = 0;
  for (Value v : in)
    args.push_back(castTo(v, type.getInput(a++)));
  args.push_back(castTo(inputAt(step, xs), type.getInput(a++)));
  for (Value v : params)
    args.push_back(castTo(v, type.getInput(a++)));
  // Out-parameters: the memref-typed new states and saved values, in order.
  SmallVector<Value> scalarDestinations;
  for (Value v : outStates)
    args.push_back(castTo(v, type.getInput(a++)));
  for (auto [v, t] : llvm::zip(outSaved, k.savedTypes)) {
    if (isa<TensorType>(t))
      args.push_back(castTo(v, type.getInput(a++)));
    else
      scalarDestinations.push_back(v);
  }
  auto call = func::CallOp::create(b, loc, k.forward, args);
  // Results: the loss, then the scalar saved values.
  for (auto [dest, value] :
       llvm::zip(scalarDestinations, call.getResults().drop_front()))
    memref::StoreOp::create(b, loc, value, dest);
  Value stepLoss = call.getResult(0);
  scf::IfOp::create(b, loc, first, [&](OpBuilder &nb, Location l) {
    Value sum = arith::AddFOp::create(
        nb, l, memref::LoadOp::create(nb, l, loss), stepLoss);
    memref::StoreOp::create(nb, l, sum, loss);
    scf::YieldOp::create(nb, l);
  });
  addToCounter(0, i64(1));
}

void ScheduleEmitter::forwardStep(Value step, ValueRange in,
                                  ValueRange outStates, ValueRange outSaved,
                                  bool first) {
  SmallVector<Value> args{xs};
  llvm::append_range(args, params);
  args.push_back(loss);
  args.push_back(stats);
  args.push_back(step);
  args.push_back(arith::ConstantIntOp::create(b, loc, b.getI1Type(), first));
  llvm::append_range(args, in);
  llvm::append_range(args, outStates);
  llvm::append_range(args, outSaved);
  func::CallOp::create(b, loc, forwardWrapper, args);
}

void ScheduleEmitter::backwardStep(Value step, ValueRange states,
                                   ValueRange saved, ValueRange dCur,
                                   ValueRange dNext) {
  SmallVector<Value> args{xs};
  llvm::append_range(args, params);
  args.push_back(dxs);
  llvm::append_range(args, dparams);
  args.push_back(step);
  llvm::append_range(args, states);
  llvm::append_range(args, saved);
  llvm::append_range(args, dCur);
  llvm::append_range(args, dNext);
  func::CallOp::create(b, loc, backwardWrapper, args);
}

/// The two step wrappers, private functions next to the entry point: they
/// keep each step of the schedule one call, whatever the cell's arity.
void ScheduleEmitter::buildWrappers() {
  OpBuilder mb(entry);
  MLIRContext *ctx = entry.getContext();
  auto typesOf = [](ValueRange vs) {
    SmallVector<Type> t;
    for (Value v : vs)
      t.push_back(v.getType());
    return t;
  };
  SmallVector<Type> stateStorage, savedStorage;
  for (Type t : k.stateTypes)
    stateStorage.push_back(storageType(t));
  for (Type t : k.savedTypes)
    savedStorage.push_back(storageType(t));
  Type indexType = mb.getIndexType();

  // Swaps the entry's arguments for the wrapper's while its body is built.
  auto withArgs = [&](func::FuncOp fn, auto build) {
    auto savedXs = xs, savedLoss = loss, savedStats = stats, savedDxs = dxs;
    SmallVector<Value> savedParams = params, savedDparams = dparams;
    std::optional<OpBuilder> savedPrologue;
    std::swap(savedPrologue, prologue);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(fn.addEntryBlock());
    build(fn.front().getArguments());
    func::ReturnOp::create(b, loc);
    xs = savedXs, loss = savedLoss, stats = savedStats, dxs = savedDxs;
    params = savedParams, dparams = savedDparams;
    std::swap(savedPrologue, prologue);
  };

  SmallVector<Type> fwdTypes{xs.getType()};
  llvm::append_range(fwdTypes, typesOf(params));
  fwdTypes.push_back(loss.getType());
  fwdTypes.push_back(stats.getType());
  fwdTypes.push_back(indexType);
  fwdTypes.push_back(mb.getI1Type());
  llvm::append_range(fwdTypes, stateStorage);
  llvm::append_range(fwdTypes, stateStorage);
  llvm::append_range(fwdTypes, savedStorage);
  forwardWrapper = func::FuncOp::create(
      mb, loc, (entry.getSymName() + "_forward_step").str(),
      FunctionType::get(ctx, fwdTypes, {}));
  forwardWrapper.setPrivate();
  withArgs(forwardWrapper, [&](ValueRange a) {
    unsigned i = 0, n = params.size(), ns = stateStorage.size();
    xs = a[i++];
    for (unsigned q = 0; q < n; ++q)
      params[q] = a[i++];
    loss = a[i++];
    stats = a[i++];
    Value step = a[i++], first = a[i++];
    forwardBody(step, first, a.slice(i, ns), a.slice(i + ns, ns),
                a.drop_front(i + 2 * ns));
  });

  SmallVector<Type> bwdTypes{xs.getType()};
  llvm::append_range(bwdTypes, typesOf(params));
  bwdTypes.push_back(dxs.getType());
  llvm::append_range(bwdTypes, typesOf(dparams));
  bwdTypes.push_back(indexType);
  llvm::append_range(bwdTypes, stateStorage);
  llvm::append_range(bwdTypes, savedStorage);
  llvm::append_range(bwdTypes, stateStorage);
  llvm::append_range(bwdTypes, stateStorage);
  backwardWrapper = func::FuncOp::create(
      mb, loc, (entry.getSymName() + "_backward_step").str(),
      FunctionType::get(ctx, bwdTypes, {}));
  backwardWrapper.setPrivate();
  withArgs(backwardWrapper, [&](ValueRange a) {
    unsigned i = 0, n = params.size(), ns = stateStorage.size(),
             nv = savedStorage.size();
    xs = a[i++];
    for (unsigned q = 0; q < n; ++q)
      params[q] = a[i++];
    dxs = a[i++];
    for (unsigned q = 0; q < n; ++q)
      dparams[q] = a[i++];
    Value step = a[i++];
    backwardBody(step, a.slice(i, ns), a.slice(i + ns, nv),
                 a.slice(i + ns + nv, ns), a.slice(i + 2 * ns + nv, ns));
  });
}

void ScheduleEmitter::backwardBody(Value step, ValueRange states,
                                   ValueRange saved, ValueRange dCur,
                                   ValueRange dNext) {
  FunctionType type = k.backward.getFunctionType();
  SmallVector<Value> args;
  unsigned a = 0;
  Value x = inputAt(step, xs);
  args.push_back(castTo(x, type.getInput(a++)));
  for (Value v : params)
    args.push_back(castTo(v, type.getInput(a++)));
  for (Value v : states)
    args.push_back(castTo(v, type.getInput(a++)));
  for (auto [v, t] : llvm::zip(saved, k.savedTypes)) {
    Value arg = isa<TensorType>(t) ? v : memref::LoadOp::create(b, loc, v);
    args.push_back(castTo(arg, type.getInput(a++)));
  }
  for (Value v : dCur)
    args.push_back(castTo(v, type.getInput(a++)));
  Type lossType = type.getInput(a++);
  args.push_back(
      arith::ConstantOp::create(b, loc, b.getFloatAttr(lossType, 1.0)));
  for (Value v : dparams)
    args.push_back(castTo(v, type.getInput(a++)));
  // Out-parameters: d states, d x, d params (accumulated in place).
  for (Value v : dNext)
    args.push_back(castTo(v, type.getInput(a++)));
  args.push_back(castTo(inputAt(step, dxs), type.getInput(a++)));
  for (Value v : dparams)
    args.push_back(castTo(v, type.getInput(a++)));
  func::CallOp::create(b, loc, k.backward, args);
}

/// Forward steps a..b (consecutive): the first into the free cursor buffer,
/// the rest in a loop that alternates between the two cursor buffers (by the
/// parity of the iteration, so no buffer is loop-carried).
size_t ScheduleEmitter::emitForwardRun(ArrayRef<Action> actions) {
  int64_t first = actions[0].step;
  bool isFirst = !executed.contains(first);
  size_t n = 1;
  while (n < actions.size() && actions[n].kind == ActionKind::Forward &&
         actions[n].step == first + int64_t(n) &&
         !executed.contains(actions[n].step) == isFirst)
    ++n;
  for (size_t i = 0; i < n; ++i)
    executed.insert(first + i);
  SmallVector<Value> out = otherCursor();
  forwardStep(index(first), cursor, out, workSaved, isFirst);
  cursor = out;
  cursorSlot = -1;
  if (n == 1)
    return 1;
  // Iteration j (0-based) reads `in` and writes `other` when j is even.
  SmallVector<Value> in = cursor, other = otherCursor();
  scf::ForOp::create(
      b, loc, index(first + 1), index(first + n), index(1), ValueRange{},
      [&](OpBuilder &nb, Location, Value step, ValueRange) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value j = arith::SubIOp::create(b, loc, step, index(first + 1));
        Value even = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::eq,
            arith::RemUIOp::create(b, loc, j, index(2)), index(0));
        SmallVector<Value> from, to;
        for (auto [x, y] : llvm::zip(in, other)) {
          from.push_back(arith::SelectOp::create(b, loc, even, x, y));
          to.push_back(arith::SelectOp::create(b, loc, even, y, x));
        }
        forwardStep(step, from, to, workSaved, isFirst);
        scf::YieldOp::create(b, loc);
      });
  // n - 1 iterations: the last (n - 2) wrote `other` when n - 2 is even.
  cursor = (n - 2) % 2 == 0 ? other : in;
  return n;
}

/// Kept steps a..b into slots at offsets o, o + |s|, ...: the first from the
/// cursor, the rest in a loop, each from the previous slot.
size_t ScheduleEmitter::emitKeepRun(ArrayRef<Action> actions) {
  int64_t first = actions[0].step, base = actions[0].offset;
  bool isFirst = !executed.contains(first);
  size_t n = 1;
  while (n < actions.size() && actions[n].kind == ActionKind::ForwardKeep &&
         actions[n].step == first + int64_t(n) &&
         actions[n].offset == base + int64_t(n) * internalBytes &&
         !executed.contains(actions[n].step) == isFirst)
    ++n;
  for (size_t i = 0; i < n; ++i) {
    executed.insert(first + i);
    slotSize[base + int64_t(i) * internalBytes] = internalBytes;
  }
  Value off = index(base);
  forwardStep(index(first), cursor, stateViews(off), savedViews(off), isFirst);
  slotAllocated(internalBytes);
  if (n > 1) {
    scf::ForOp::create(
        b, loc, index(1), index(n), index(1), ValueRange{},
        [&](OpBuilder &nb, Location, Value i, ValueRange) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value stride = index(internalBytes);
          Value prev = arith::AddIOp::create(
              b, loc, index(base),
              arith::MulIOp::create(
                  b, loc, arith::SubIOp::create(b, loc, i, index(1)), stride));
          Value at = arith::AddIOp::create(b, loc, prev, stride);
          Value step = arith::AddIOp::create(b, loc, i, index(first));
          forwardStep(step, stateViews(prev), stateViews(at), savedViews(at),
                      isFirst);
          slotAllocated(internalBytes);
          scf::YieldOp::create(b, loc);
        });
  }
  cursorSlot = base + int64_t(n - 1) * internalBytes;
  cursor = slotStates(cursorSlot);
  return n;
}

/// Backward steps t, t-1, ... from internal slots at o, o - |s|, ..., each
/// followed by freeing its slot, as one loop that alternates between the two
/// state-gradient buffers by parity.
size_t ScheduleEmitter::emitBackwardRun(ArrayRef<Action> actions) {
  int64_t top = actions[0].step, base = actions[0].offset;
  auto isPair = [&](size_t i, int64_t step, int64_t offset) {
    return i + 1 < actions.size() && actions[i].kind == ActionKind::Backward &&
           actions[i].step == step && actions[i].offset == offset &&
           actions[i + 1].kind == ActionKind::Free &&
           actions[i + 1].offset == offset &&
           slotSize.lookup(offset) == internalBytes;
  };
  size_t pairs = 0;
  while (isPair(2 * pairs, top - int64_t(pairs),
                base - int64_t(pairs) * internalBytes))
    ++pairs;
  SmallVector<Value> dCur = gradientInA ? dA : dB, dNext = gradientInA ? dB : dA;
  if (pairs == 1) {
    backwardStep(index(top), slotStates(base), slotSaved(base),
                 dCur, dNext);
    slotFreed(internalBytes);
  } else {
    scf::ForOp::create(
        b, loc, index(0), index(pairs), index(1), ValueRange{},
        [&](OpBuilder &nb, Location, Value i, ValueRange) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value step = arith::SubIOp::create(b, loc, index(top), i);
          Value off = arith::SubIOp::create(
              b, loc, index(base),
              arith::MulIOp::create(b, loc, i, index(internalBytes)));
          Value even = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(b, loc, i, index(2)), index(0));
          SmallVector<Value> from, to;
          for (auto [x, y] : llvm::zip(dCur, dNext)) {
            from.push_back(arith::SelectOp::create(b, loc, even, x, y));
            to.push_back(arith::SelectOp::create(b, loc, even, y, x));
          }
          backwardStep(step, stateViews(off), savedViews(off), from, to);
          slotFreed(internalBytes);
          scf::YieldOp::create(b, loc);
        });
  }
  for (size_t i = 0; i < pairs; ++i)
    slotSize.erase(base - int64_t(i) * internalBytes);
  // After an odd number of steps the gradient is in the other buffer.
  if (pairs % 2 == 1)
    gradientInA = !gradientInA;
  return 2 * pairs;
}

void ScheduleEmitter::emit() {
  // Working set and pool.
  for (Type t : k.stateTypes) {
    curA.push_back(alloc(t));
    curB.push_back(alloc(t));
    dA.push_back(alloc(t));
    dB.push_back(alloc(t));
    workStates.push_back(alloc(t));
  }
  for (Type t : k.savedTypes)
    workSaved.push_back(alloc(t));
  // 4|h| + |s| plus the step's workspace (e.g. GPU kernel temporaries):
  // the planner's working set, so that stats[1] is the planned peak.
  int64_t workingBytes = p.chain.workingSetBytes();
  pool = memref::AllocOp::create(
      b, loc,
      MemRefType::get({std::max<int64_t>(1, p.plan.predicted.poolBytes)},
                      b.getI8Type()));
  live = memref::AllocaOp::create(b, loc, MemRefType::get({}, b.getI64Type()));
  buildWrappers();
  prologue.emplace(b.getContext());
  prologue->setInsertionPointAfter(live.getDefiningOp());

  for (Value d : dA)
    zero(d);
  for (Value d : dparams)
    zero(d);
  zero(loss);
  zero(stats);
  memref::StoreOp::create(b, loc, i64(workingBytes), live);
  memref::StoreOp::create(b, loc, i64(workingBytes), stats, index(1));
  cursor.assign(h0.begin(), h0.end());

  ArrayRef<Action> actions = p.plan.actions;
  size_t i = 0;
  while (i < actions.size()) {
    const Action &a = actions[i];
    ArrayRef<Action> rest = actions.drop_front(i);
    switch (a.kind) {
    case ActionKind::Restore:
      cursor = a.offset < 0 ? SmallVector<Value>(h0)
                            : slotStates(a.offset);
      cursorSlot = a.offset;
      ++i;
      break;
    case ActionKind::Forward:
      i += emitForwardRun(rest);
      break;
    case ActionKind::ForwardKeep:
      i += emitKeepRun(rest);
      break;
    case ActionKind::ForwardToWork: {
      bool first = !executed.contains(a.step);
      executed.insert(a.step);
      forwardStep(index(a.step), cursor, workStates, workSaved, first);
      cursor.clear(); // the working buffer is consumed by the backward step
      cursorSlot = -1;
      ++i;
      break;
    }
    case ActionKind::StoreHidden: {
      SmallVector<Value> slot = slotStates(a.offset);
      for (auto [from, to] : llvm::zip(cursor, slot))
        memref::CopyOp::create(b, loc, from, to);
      slotSize[a.offset] = hiddenBytes;
      slotAllocated(hiddenBytes);
      ++i;
      break;
    }
    case ActionKind::Backward: {
      if (a.offset >= 0 && slotSize.lookup(a.offset) == internalBytes &&
          i + 1 < actions.size() && actions[i + 1].kind == ActionKind::Free) {
        i += emitBackwardRun(rest);
        cursor.clear();
        cursorSlot = -1;
        break;
      }
      SmallVector<Value> dCur = gradientInA ? dA : dB,
                         dNext = gradientInA ? dB : dA;
      if (a.offset < 0)
        backwardStep(index(a.step), workStates, workSaved, dCur, dNext);
      else
        backwardStep(index(a.step), slotStates(a.offset),
                     slotSaved(a.offset), dCur, dNext);
      gradientInA = !gradientInA;
      cursor.clear();
      cursorSlot = -1;
      ++i;
      break;
    }
    case ActionKind::Free:
      if (!cursor.empty() && cursorSlot == a.offset) {
        // The slot's bytes may be reused at once (a segment freeing its own
        // start): keep the cursor in a working buffer.
        SmallVector<Value> to = otherCursor();
        for (auto [from, into] : llvm::zip(cursor, to))
          memref::CopyOp::create(b, loc, from, into);
        cursor = to;
        cursorSlot = -1;
      }
      slotFreed(slotSize.lookup(a.offset));
      slotSize.erase(a.offset);
      ++i;
      break;
    }
  }
  // dL/dh0 is the last state gradient.
  for (auto [from, to] : llvm::zip(gradientInA ? dA : dB, dh0))
    memref::CopyOp::create(b, loc, from, to);
  // Buffers are freed by the deallocation pipeline of the lowering.
  func::ReturnOp::create(b, loc);
}

namespace {
struct RNNRematPass : public bptt::rnn::impl::RNNRematBase<RNNRematPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    llvm::MapVector<Operation *, Kernels> kernels;
    SmallVector<BPTTOp> requests;
    module.walk([&](BPTTOp op) { requests.push_back(op); });
    for (BPTTOp op : requests)
      if (failed(rewrite(op, symbols, kernels)))
        return signalPassFailure();
    SmallVector<ApplyOp> applies;
    module.walk([&](ApplyOp op) { applies.push_back(op); });
    for (ApplyOp op : applies)
      if (failed(lowerApply(op, symbols)))
        return signalPassFailure();
    // Nothing refers to the cells any more: drop them and their tensor-level
    // functions (the kernels are what the program calls).
    for (CellOp cell :
         llvm::make_early_inc_range(module.getOps<CellOp>())) {
      for (StringRef attr : {"rnn.forward", "rnn.backward"})
        if (auto ref = cell->getAttrOfType<FlatSymbolRefAttr>(attr))
          if (Operation *fn = symbols.lookup(ref.getValue()))
            symbols.erase(fn);
      symbols.erase(cell);
    }
  }

  LogicalResult rewrite(BPTTOp op, SymbolTable &symbols,
                        llvm::MapVector<Operation *, Kernels> &kernels) {
    auto cell = symbols.lookup<CellOp>(op.getCell());
    if (!cell)
      return op.emitOpError() << "refers to @" << op.getCell()
                              << ", which is not an rnn.cell";
    if (!cell->hasAttr("rnn.backward"))
      return op.emitOpError()
             << "needs the backward step of cell @" << cell.getSymName()
             << "; run -rnn-differentiate before -rnn-remat";
    FailureOr<BPTTPlan> plan = planBPTT(op, cell, workspaceBytes);
    if (failed(plan))
      return failure();
    recordPlan(op, cell, *plan);
    if (!kernels.count(cell)) {
      FailureOr<Kernels> k = bufferizeKernels(cell, symbols);
      if (failed(k))
        return failure();
      kernels[cell] = *k;
    }
    const Kernels &k = kernels[cell];

    // The entry point, on caller buffers.
    auto parent = op->getParentOfType<func::FuncOp>();
    std::string name =
        ((parent ? parent.getSymName() : StringRef("bptt")) + "_bptt").str();
    SmallVector<Type> argTypes;
    for (Value v : op->getOperands())
      argTypes.push_back(storageType(v.getType()));
    for (Value v : op.getGradients())
      argTypes.push_back(storageType(v.getType()));
    argTypes.push_back(storageType(op.getLoss().getType()));
    argTypes.push_back(MemRefType::get({2}, IntegerType::get(&getContext(), 64)));
    OpBuilder mb(cell);
    mb.setInsertionPointToEnd(getOperation().getBody());
    auto entry = func::FuncOp::create(
        mb, op.getLoc(), name, FunctionType::get(&getContext(), argTypes, {}));
    symbols.insert(entry); // renames on a clash
    entry->setAttr("rnn.plan", op->getAttr("rnn.plan"));
    // The schedule is straight-line calls and loops, linear in T: LLVM's
    // optimisers gain nothing on it and would take seconds at T = 1000; the
    // kernels it calls are optimised as usual.
    entry->setAttr("passthrough",
                   mb.getArrayAttr({mb.getStringAttr("noinline"),
                                    mb.getStringAttr("optnone")}));
    entry.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockEnd(&entry.front());
    ScheduleEmitter(b, op.getLoc(), cell, k, *plan, entry).emit();

    // The request becomes a call on buffers of its tensors.
    OpBuilder rb(op);
    Location loc = op.getLoc();
    SmallVector<Value> args, outs;
    for (Value v : op->getOperands())
      args.push_back(bufferization::ToBufferOp::create(
          rb, loc, storageType(v.getType()), v, /*readOnly=*/true));
    for (Value g : op->getResults()) {
      Value buffer = memref::AllocOp::create(rb, loc, storageType(g.getType()));
      outs.push_back(buffer);
    }
    // Results are (loss, gradients...); the entry takes gradients then loss.
    llvm::append_range(args, ArrayRef<Value>(outs).drop_front());
    args.push_back(outs.front());
    args.push_back(memref::AllocaOp::create(
        rb, loc, MemRefType::get({2}, rb.getI64Type())));
    func::CallOp::create(rb, loc, entry, args);
    SmallVector<Value> results;
    results.push_back(memref::LoadOp::create(rb, loc, outs.front()));
    for (auto [g, buffer] : llvm::zip(op.getGradients(),
                                      ArrayRef<Value>(outs).drop_front()))
      results.push_back(bufferization::ToTensorOp::create(
          rb, loc, g.getType(), buffer, /*restrict=*/true, /*writable=*/true));
    op->replaceAllUsesWith(results);
    op->erase();
    ++numMaterialized;
    return success();
  }

  /// rnn.apply: the cell body inlined into a loop over the steps.
  LogicalResult lowerApply(ApplyOp op, SymbolTable &symbols) {
    auto cell = symbols.lookup<CellOp>(op.getCell());
    if (!cell)
      return op.emitOpError() << "refers to @" << op.getCell()
                              << ", which is not an rnn.cell";
    OpBuilder b(op);
    Location loc = op.getLoc();
    Value xs = op.getInputs();
    auto xsType = cast<RankedTensorType>(xs.getType());
    Value steps = tensor::DimOp::create(b, loc, xs, 0);
    SmallVector<Value> init(op.getInitialStates());
    Type lossType = op.getLoss().getType();
    init.push_back(
        arith::ConstantOp::create(b, loc, b.getFloatAttr(lossType, 0.0)));
    Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
    auto loop = scf::ForOp::create(
        b, loc, c0, steps, c1, init,
        [&](OpBuilder &nb, Location l, Value t, ValueRange carried) {
          unsigned rank = xsType.getRank();
          SmallVector<OpFoldResult> offsets(rank, nb.getIndexAttr(0)), sizes,
              strides(rank, nb.getIndexAttr(1));
          offsets[0] = t;
          sizes.push_back(nb.getIndexAttr(1));
          for (int64_t s : xsType.getShape().drop_front())
            sizes.push_back(nb.getIndexAttr(s));
          auto stepType = cast<RankedTensorType>(cell.getInputType());
          Value x = tensor::ExtractSliceOp::create(nb, l, stepType, xs, offsets,
                                                   sizes, strides);
          IRMapping m;
          Block &body = cell.getBody().front();
          unsigned numStates = cell.getNumStates();
          for (unsigned s = 0; s < numStates; ++s)
            m.map(body.getArgument(s), carried[s]);
          m.map(body.getArgument(numStates), x);
          for (auto [arg, param] : llvm::zip(
                   body.getArguments().drop_front(numStates + 1),
                   op.getParams()))
            m.map(arg, param);
          for (Operation &inner : body.without_terminator())
            nb.clone(inner, m);
          auto yield = cast<YieldOp>(body.getTerminator());
          SmallVector<Value> next;
          for (unsigned s = 0; s < numStates; ++s)
            next.push_back(m.lookupOrDefault(yield.getOperand(s)));
          next.push_back(arith::AddFOp::create(
              nb, l, carried.back(),
              m.lookupOrDefault(yield.getOperand(numStates))));
          scf::YieldOp::create(nb, l, next);
        });
    op->replaceAllUsesWith(loop.getResults());
    op->erase();
    return success();
  }
};
} // namespace
