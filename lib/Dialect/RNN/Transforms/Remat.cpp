//===- Remat.cpp - the rnn-remat pass -------------------------------------===//
//
// Turns each rnn.bptt into an explicit, buffer-level program that runs the
// planner's schedule:
//
//   func.func @<caller>_bptt(h0..., xs, params...,            // inputs
//                            dh0..., dxs, dparams..., loss,   // outputs
//                            stats)                           // accounting
//
// (dxs only where the request's input gradient is used: a request whose
// result for it has no uses gets a program without it, and its backward
// steps do not compute it.)
//
// It allocates the working set (two cursor buffers, two state-gradient
// buffers, one internal-state buffer: the planner's 4|h| + |s|) and one slot
// pool of the plan's pool bytes, and calls the cell's bufferized forward and
// backward kernels (rnn-differentiate's functions, bufferized with
// out-parameters so that they write straight into slots). The plan's actions
// are grouped into runs (forward steps, kept steps into consecutive slots,
// backward steps from consecutive slots: scf.for loops); a short schedule is
// straight-line code, a long one a table of runs and one dispatch loop, so
// the program's size does not grow with T.
//
// Where the cell has a states function (rnn-differentiate's @c_states) and
// the internal-state option allows it, a kept internal state is the saved
// values alone: the new states of a kept step go to the cursor buffers, and
// @c_states_kernel recomputes them before a backward step from a slot and
// for a restore of one.
//
// At run time it counts the forward steps it executes (stats[0]) and tracks
// the peak of working-set plus live slot bytes (stats[1]); the tests hold
// both to the plan.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/GradientChunk.h"
#include "bptt/Dialect/RNN/InputProjection.h"
#include "bptt/Dialect/RNN/LossPart.h"
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
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"
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
  /// With kept internal states of saved values alone (internal-state=saved;
  /// null without): the new states from x_t, the parameters and the saved
  /// values, into out-parameters (rnn-differentiate's @c_states).
  func::FuncOp states;
  /// With input projections (InputProjection.h; null without): the forward
  /// step that reads its projected values from buffers, and the input part
  /// for `chunk` steps at once and for one step. Every step then computes
  /// its input part alone and adds the rest to it (so all schedules compute
  /// bitwise the same values); `forward` is not used.
  func::FuncOp projectedForward, batchedInput, singleInput;
  int64_t chunk = 0;
  /// Whether the backward step writes the gradient of x_t.
  bool inputGradient = true;
  /// One step's projected values (tensor types) and the rows of x_t.
  SmallVector<Type> projectionTypes;
  int64_t projectionRows = 0;
  /// With the loss part split off (LossPart.h; null without): the loss part
  /// of one step and of `lossChunk` steps (when >= 2). `backward` then reads
  /// the step's rows of their results, of types `lossTypes`, after the
  /// parameter gradients. `lossStepArgs` are the per-step arguments they
  /// read, as argument indices of the tensor-level backward function.
  func::FuncOp lossSingle, lossBatched;
  int64_t lossChunk = 0;
  SmallVector<Type> lossTypes;
  SmallVector<unsigned> lossStepArgs;
  /// The types (one step's) of those in slots (not x), which the batched
  /// loss part reads gathered into buffers.
  SmallVector<Type> lossGatherTypes;
  /// With saved values alone and a batched loss part: for each state, which
  /// saved value is the step's incoming state as it is (savedIncomingStates),
  /// where the batched loss part finds a step's new state: in the slot of
  /// the step after it.
  SmallVector<int> incomingStateSaved;
  int64_t lossRows = 0;
  /// With the parameter gradients accumulated over chunks of steps
  /// (GradientChunk.h; null without): the accumulations of `gradChunk`
  /// steps, and of the `gradTailSteps` steps of the chunk holding T when
  /// that one is shorter. `backward` then writes the step's operands of
  /// them, of types `gradTypes`, into out-parameters after the parameter
  /// gradients; the chunk functions read x stacked first if `gradReadsX`,
  /// then those operands stacked, and accumulate into the gradients of
  /// `gradParams`.
  func::FuncOp gradFull, gradTail;
  int64_t gradChunk = 0, gradTailSteps = 0;
  SmallVector<Type> gradTypes;
  SmallVector<unsigned> gradParams;
  bool gradReadsX = false;
  int64_t gradRows = 0;
};

/// For each of the `numStates` states of a cell whose forward function is
/// `fwd` (rnn-differentiate's: states, x and the parameters in; new states,
/// the loss and the saved values out), the index of the saved value that is
/// the incoming state itself, or -1. A kept step's slot then holds the new
/// states of the step before it.
static SmallVector<int> savedIncomingStates(func::FuncOp fwd,
                                            unsigned numStates) {
  SmallVector<int> index(numStates, -1);
  if (fwd.isExternal())
    return index;
  Block &entry = fwd.getBody().front();
  Operation *ret = entry.getTerminator();
  for (unsigned j = numStates + 1; j < ret->getNumOperands(); ++j)
    if (auto arg = dyn_cast<BlockArgument>(ret->getOperand(j)))
      if (arg.getOwner() == &entry && arg.getArgNumber() < numStates &&
          index[arg.getArgNumber()] < 0)
        index[arg.getArgNumber()] = int(j - numStates - 1);
  return index;
}

/// Whether the loss part reading the per-step arguments `stepArgs` (of the
/// backward function of a cell with `numParams` parameters) finds the new
/// states it reads in slots of saved values alone (savedIncomingStates).
static bool newStatesInSavedSlots(ArrayRef<unsigned> stepArgs,
                                  ArrayRef<int> incomingStateSaved,
                                  unsigned numParams) {
  unsigned firstState = 1 + numParams;
  return llvm::all_of(stepArgs, [&](unsigned i) {
    return i < firstState || i >= firstState + incomingStateSaved.size() ||
           incomingStateSaved[i - firstState] >= 0;
  });
}

/// Bytes of the gather buffers of a loss part batched over `chunk` steps
/// (none below 2) that reads `gathered` bytes of slot values a step,
/// `gatheredStates` of them new states. With saved values alone, a new
/// state's buffer ends with cursor buffer A (ScheduleEmitter::lossBody),
/// which the working set counts already.
static int64_t lossGatherBytes(int64_t chunk, bool savedOnly, int64_t gathered,
                               int64_t gatheredStates) {
  if (chunk < 2)
    return 0;
  return chunk * gathered - (savedOnly ? gatheredStates : 0);
}

/// The per-step arguments of the loss part that its batched form reads
/// gathered out of slots (one for each of k.lossGatherTypes): none without
/// a batched form, else those other than x.
static SmallVector<unsigned> gatheredStepArgs(const Kernels &k) {
  SmallVector<unsigned> args;
  if (k.lossChunk >= 2)
    for (unsigned i : k.lossStepArgs)
      if (i != 0)
        args.push_back(i);
  return args;
}

/// `fn` (one block) no longer returns its result `index`; its type follows
/// the entry block (whose arguments the caller may have extended).
static void eraseReturned(func::FuncOp fn, unsigned index) {
  Block &entry = fn.getBody().front();
  Operation *ret = entry.getTerminator();
  ret->eraseOperand(index);
  fn.setFunctionType(FunctionType::get(
      fn.getContext(), entry.getArgumentTypes(), ret->getOperandTypes()));
}

/// The backward kernel's one result after bufferization, the step's loss,
/// becomes `total += loss` on a new last argument, right where the loss is
/// computed: the sum is the same as the caller's would be, and on the GPU it
/// joins the one-thread kernel that computes the loss instead of being one
/// more kernel per step.
static void addLossToTotal(func::FuncOp g) {
  Block &entry = g.getBody().front();
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  Value stepLoss = ret.getOperand(ret.getNumOperands() - 1);
  BlockArgument total = entry.addArgument(
      MemRefType::get({}, stepLoss.getType()), g.getLoc());
  OpBuilder b(ret);
  if (Operation *def = stepLoss.getDefiningOp();
      def && def->getBlock() == &entry)
    b.setInsertionPointAfter(def);
  else
    b.setInsertionPointToStart(&entry);
  Value sum = arith::AddFOp::create(
      b, g.getLoc(), memref::LoadOp::create(b, g.getLoc(), total), stepLoss);
  memref::StoreOp::create(b, g.getLoc(), sum, total);
  eraseReturned(g, ret.getNumOperands() - 1);
}

/// Bufferizes @c_forward and @c_backward into @c_forward_kernel and
/// @c_backward_kernel. Only the backward step's incoming state gradient and
/// parameter-gradient accumulators may be updated in place. With `chunk` >= 1
/// (a cell whose input part can be split off, InputProjection.h), the forward
/// step on projected inputs and the input part of one step instead of
/// @c_forward_kernel, and the input part of `chunk` steps when `chunk` >= 2.
/// Without `inputGradient`, @c_backward_kernel does not compute dx. With
/// `lossChunk` >= 1 (a cell whose loss part can be split off, LossPart.h),
/// the loss part of one step and, when `lossChunk` >= 2, of `lossChunk`
/// steps are functions of their own, and @c_backward_kernel reads their
/// results. With `gradChunk` >= 2 (a cell whose parameter gradients can be
/// deferred, GradientChunk.h), the accumulations of `gradChunk` steps (and
/// of the shorter chunk holding T, of `steps`) are functions of their own,
/// and @c_backward_kernel writes their operands.
FailureOr<Kernels> bufferizeKernels(CellOp cell, SymbolTable &symbols,
                                    int64_t chunk, int64_t lossChunk,
                                    int64_t gradChunk, int64_t steps,
                                    bool inputGradient, bool savedOnly) {
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
  // rnn-differentiate's signature: (d states, d x, d params, loss).
  unsigned expected = numStates + 1 + numParams + 1;
  if (bwd.isExternal() || bwd.getNumResults() != expected ||
      !isa<FloatType>(bwd.getResultTypes().back()))
    return cell.emitError()
           << "rnn-remat: the backward function @" << bwd.getSymName()
           << " of cell @" << cell.getSymName() << " returns "
           << bwd.getNumResults() << " value(s); expected " << expected
           << ": the state gradients, the input's, the parameters' and the "
              "step's loss last (rnn-differentiate's signature)";
  llvm::append_range(k.stateTypes, cell.getStateTypes());
  for (Type t : fwd.getResultTypes().drop_front(numStates + 1))
    k.savedTypes.push_back(t);

  MLIRContext *ctx = cell.getContext();
  OwningOpRef<ModuleOp> scratch(ModuleOp::create(cell.getLoc()));
  OpBuilder b = OpBuilder::atBlockEnd(scratch->getBody());
  auto f = cast<func::FuncOp>(b.clone(*fwd));
  auto g = cast<func::FuncOp>(b.clone(*bwd));
  func::FuncOp st;
  if (savedOnly) {
    auto fn = symbols.lookup<func::FuncOp>(
        cell->getAttrOfType<FlatSymbolRefAttr>("rnn.states").getValue());
    if (!fn)
      return cell.emitError() << "rnn-remat: the states function of cell @"
                              << cell.getSymName() << " is missing";
    st = cast<func::FuncOp>(b.clone(*fn));
    st.setSymName((cell.getSymName() + "_states_kernel").str());
  }
  f.setSymName((cell.getSymName() + "_forward_kernel").str());
  // A forward step computes the step proper: the loss comes from the
  // backward step (rnn-differentiate), so the loss part goes with it.
  eraseReturned(f, numStates);
  g.setSymName((cell.getSymName() + "_backward_kernel").str());
  // dx is the result after the state gradients; unreturned, what computes
  // it (an LSTM's dgates·W_ih, a product per step) is dead code that the
  // fusion passes' canonicalization removes.
  k.inputGradient = inputGradient;
  if (!inputGradient)
    eraseReturned(g, numStates);
  unsigned numDx = inputGradient ? 1 : 0;
  auto readOnly = b.getNamedAttr("bufferization.writable", b.getBoolAttr(false));
  auto inputsReadOnly = [&](func::FuncOp fn) {
    for (unsigned i = 0; i < fn.getNumArguments(); ++i)
      if (isa<TensorType>(fn.getArgumentTypes()[i]))
        fn.setArgAttrs(i, {readOnly});
  };
  inputsReadOnly(f);
  if (st)
    inputsReadOnly(st);
  // The input part, split off before bufferization (its functions are
  // tensor-level like the forward one). Verified here, so that a split the
  // analysis got wrong is dropped rather than miscompiled.
  func::FuncOp projected, batched, single;
  if (chunk >= 1) {
    std::optional<InputProjection> split =
        findInputProjection(f, cell.getNumStates());
    if (!split)
      return cell.emitError() << "rnn-remat: the input part of cell @"
                              << cell.getSymName()
                              << " was found once and not again";
    projected = buildProjectedForward(*split);
    single = buildBatchedInput(*split, 1);
    if (chunk >= 2)
      batched = buildBatchedInput(*split, chunk);
    bool valid;
    {
      ScopedDiagnosticHandler quiet(ctx, [](Diagnostic &) { return success(); });
      valid = succeeded(verify(projected)) && succeeded(verify(single)) &&
              (!batched || succeeded(verify(batched)));
    }
    if (!valid)
      return cell.emitError()
             << "rnn-remat: splitting the input part off cell @"
             << cell.getSymName()
             << " made invalid IR; rerun with input-chunk=0";
    // The projected values stay writable: each row of the projection
    // buffers is read by one step only, which may accumulate onto it (an
    // LSTM's h·W_hh onto x·W_ih + b) instead of copying it first.
    for (unsigned i = 0;
         i < projected.getNumArguments() - split->projected.size(); ++i)
      if (isa<TensorType>(projected.getArgumentTypes()[i]))
        projected.setArgAttrs(i, {readOnly});
    for (func::FuncOp input : {single, batched})
      if (input)
        inputsReadOnly(input);
    k.chunk = chunk;
    k.projectionRows = split->rows;
    for (Value v : split->projected)
      k.projectionTypes.push_back(v.getType());
  }
  // The loss part, split off the backward function the same way.
  unsigned numSaved = k.savedTypes.size();
  BackwardArgs backwardArgs{numParams, numStates, numSaved};
  func::FuncOp lossSingle, lossBatched;
  if (lossChunk >= 1) {
    splitLossAccumulations(g, backwardArgs);
    std::optional<LossPart> part = findLossPart(g, backwardArgs);
    if (!part)
      return cell.emitError() << "rnn-remat: the loss part of cell @"
                              << cell.getSymName()
                              << " was found once and not again";
    lossSingle = buildBatchedLoss(*part, 1);
    if (lossChunk >= 2)
      lossBatched = buildBatchedLoss(*part, lossChunk);
    for (Value v : part->exported)
      k.lossTypes.push_back(v.getType());
    k.lossStepArgs = part->stepArgs;
    for (unsigned i : part->stepArgs)
      if (i != 0 && lossChunk >= 2)
        k.lossGatherTypes.push_back(g.getArgumentTypes()[i]);
    k.lossRows = part->rows;
    k.lossChunk = lossChunk;
    if (savedOnly && lossChunk >= 2) {
      k.incomingStateSaved = savedIncomingStates(fwd, numStates);
      if (!newStatesInSavedSlots(k.lossStepArgs, k.incomingStateSaved,
                                 numParams))
        return cell.emitError()
               << "rnn-remat: the batched loss part of cell @"
               << cell.getSymName()
               << " reads a new state that its saved values do not hold; "
                  "rerun with loss-chunk=1 or internal-state=full";
    }
    makeLossRest(*part);
    bool valid;
    {
      ScopedDiagnosticHandler quiet(ctx, [](Diagnostic &) { return success(); });
      valid = succeeded(verify(g)) && succeeded(verify(lossSingle)) &&
              (!lossBatched || succeeded(verify(lossBatched)));
    }
    if (!valid)
      return cell.emitError()
             << "rnn-remat: splitting the loss part off cell @"
             << cell.getSymName() << " made invalid IR; rerun with loss-chunk=0";
    for (func::FuncOp fn : {lossSingle, lossBatched})
      if (fn)
        inputsReadOnly(fn);
  }
  // The parameter gradients, deferred from the rest of the step.
  func::FuncOp gradFull, gradTail;
  if (gradChunk >= 2) {
    std::optional<GradientPart> part = findGradientPart(g, backwardArgs);
    if (!part)
      return cell.emitError()
             << "rnn-remat: the parameter gradients of cell @"
             << cell.getSymName()
             << " cannot be accumulated over chunks of steps (no "
                "accumulation adds a reduction over the batch rows of "
                "per-step values); rerun with grad-chunk=0";
    k.gradChunk = std::min(gradChunk, steps);
    k.gradTailSteps = steps % k.gradChunk;
    gradFull = buildGradientChunk(*part, k.gradChunk);
    if (k.gradTailSteps)
      gradTail = buildGradientChunk(*part, k.gradTailSteps);
    for (Value v : part->exported)
      k.gradTypes.push_back(v.getType());
    k.gradParams = part->params;
    k.gradReadsX = part->readsX;
    k.gradRows = part->rows;
    makeGradientRest(*part);
    bool valid;
    {
      ScopedDiagnosticHandler quiet(ctx, [](Diagnostic &) { return success(); });
      valid = succeeded(verify(g)) && succeeded(verify(gradFull)) &&
              (!gradTail || succeeded(verify(gradTail)));
    }
    if (!valid)
      return cell.emitError()
             << "rnn-remat: deferring the parameter gradients of cell @"
             << cell.getSymName() << " made invalid IR; rerun with grad-chunk=0";
    // The stacked operands are read; the accumulators are updated in place.
    unsigned numStacked = (part->readsX ? 1 : 0) + part->exported.size();
    for (func::FuncOp fn : {gradFull, gradTail})
      if (fn)
        for (unsigned i = 0; i < numStacked; ++i)
          fn.setArgAttrs(i, {readOnly});
  }
  std::string gradFullName = gradFull ? gradFull.getSymName().str() : "";
  std::string gradTailName = gradTail ? gradTail.getSymName().str() : "";
  std::string lossSingleName = lossSingle ? lossSingle.getSymName().str() : "";
  std::string lossBatchedName =
      lossBatched ? lossBatched.getSymName().str() : "";
  std::string projectedName = projected ? projected.getSymName().str() : "";
  std::string batchedName = batched ? batched.getSymName().str() : "";
  std::string singleName = single ? single.getSymName().str() : "";
  std::string statesName = st ? st.getSymName().str() : "";
  // The backward arguments from the incoming state gradients on (d new
  // states, d loss, d params, [the loss part's values]) may be written (each
  // row of the loss buffers is read by one step only).
  for (unsigned i = 0; i < g.getNumArguments(); ++i) {
    bool writable = i >= backwardArgs.firstGradient();
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
    unsigned numOuts = k.stateTypes.size() +
                       llvm::count_if(k.savedTypes,
                                      [](Type t) { return isa<TensorType>(t); });
    auto lastArguments = [](func::FuncOp fn, unsigned n) {
      SmallVector<unsigned> indices;
      for (unsigned i = fn.getNumArguments() - n; i < fn.getNumArguments(); ++i)
        indices.push_back(i);
      return indices;
    };
    writeResultsInPlace(f, lastArguments(f, numOuts));
    if (!statesName.empty()) {
      st = scratch->lookupSymbol<func::FuncOp>(statesName);
      writeResultsInPlace(st, lastArguments(st, numStates));
    }
    if (!projectedName.empty()) {
      projected = scratch->lookupSymbol<func::FuncOp>(projectedName);
      single = scratch->lookupSymbol<func::FuncOp>(singleName);
      batched = batchedName.empty()
                    ? nullptr
                    : scratch->lookupSymbol<func::FuncOp>(batchedName);
      writeResultsInPlace(projected, lastArguments(projected, numOuts));
      for (func::FuncOp input : {single, batched})
        if (input)
          writeResultsInPlace(input,
                              lastArguments(input, k.projectionTypes.size()));
    }
    if (!lossSingleName.empty()) {
      lossSingle = scratch->lookupSymbol<func::FuncOp>(lossSingleName);
      lossBatched = lossBatchedName.empty()
                        ? nullptr
                        : scratch->lookupSymbol<func::FuncOp>(lossBatchedName);
      for (func::FuncOp fn : {lossSingle, lossBatched})
        if (fn)
          writeResultsInPlace(fn, lastArguments(fn, k.lossTypes.size()));
    }
    // Out-parameters: d states, [dx], d params, [gradient operands].
    unsigned numGradOuts = k.gradTypes.size();
    unsigned bwdFirst =
        g.getNumArguments() - numStates - numDx - numParams - numGradOuts;
    SmallVector<unsigned> bwdOut;
    for (unsigned i = bwdFirst; i < bwdFirst + numStates + numDx; ++i)
      bwdOut.push_back(i);
    for (unsigned e = 0; e < numGradOuts; ++e)
      bwdOut.push_back(bwdFirst + numStates + numDx + numParams + e);
    writeResultsInPlace(g, bwdOut);
    SmallVector<std::pair<unsigned, unsigned>> accumulators;
    for (unsigned q = 0; q < numParams; ++q)
      accumulators.push_back(
          {backwardArgs.accumulator(q), bwdFirst + numStates + numDx + q});
    dropSelfCopies(g, accumulators);
    if (!gradFullName.empty()) {
      gradFull = scratch->lookupSymbol<func::FuncOp>(gradFullName);
      gradTail = gradTailName.empty()
                     ? nullptr
                     : scratch->lookupSymbol<func::FuncOp>(gradTailName);
      // (stacked operands..., accumulators..., their out-parameters...):
      // the caller passes each accumulator for both.
      for (func::FuncOp fn : {gradFull, gradTail}) {
        if (!fn)
          continue;
        unsigned numAcc = k.gradParams.size();
        unsigned firstAcc = fn.getNumArguments() - 2 * numAcc;
        SmallVector<std::pair<unsigned, unsigned>> inOut;
        for (unsigned j = 0; j < numAcc; ++j)
          inOut.push_back({firstAcc + j, firstAcc + numAcc + j});
        dropSelfCopies(fn, inOut);
      }
    }
    // Views of one region become one value, and copies onto themselves go.
    PassManager cleanup(ctx);
    cleanup.addNestedPass<func::FuncOp>(createCSEPass());
    cleanup.addNestedPass<func::FuncOp>(createCanonicalizerPass());
    if (failed(cleanup.run(*scratch)))
      return cell.emitError() << "rnn-remat: cannot simplify the kernels of "
                                 "cell @"
                              << cell.getSymName();
    // With the copies onto themselves gone, results copied into slices can
    // be computed there.
    writeSlicesInPlace(f);
    if (st)
      writeSlicesInPlace(st);
    writeSlicesInPlace(g, bwdOut);
    for (func::FuncOp fn : {projected, single, batched, lossSingle, lossBatched})
      if (fn)
        writeSlicesInPlace(fn);
    // (In the backward step: its operands of the deferred parameter
    // gradients that are arguments, h_{t-1} and h', copied into its rows.)
    for (func::FuncOp fn : {f, projected, g, st})
      if (fn)
        foldCopiesIntoElementwise(fn);
    addLossToTotal(g);
  }
  OpBuilder into(cell);
  into.setInsertionPointAfter(bwd);
  for (Operation &op : llvm::make_early_inc_range(*scratch->getBody())) {
    op.remove();
    into.insert(&op);
    if (auto fn = dyn_cast<func::FuncOp>(&op)) {
      StringRef before = fn.getSymName();
      func::FuncOp *role = before.ends_with("_forward_kernel")    ? &k.forward
                           : before.ends_with("_backward_kernel") ? &k.backward
                           : before.ends_with("_states_kernel") ? &k.states
                           : before == projectedName ? &k.projectedForward
                           : before == batchedName   ? &k.batchedInput
                           : before == singleName    ? &k.singleInput
                           : before == lossSingleName ? &k.lossSingle
                           : before == lossBatchedName ? &k.lossBatched
                           : before == gradFullName ? &k.gradFull
                           : before == gradTailName ? &k.gradTail
                                                     : nullptr;
      symbols.insert(fn);
      if (role)
        *role = fn;
    }
    into.setInsertionPointAfter(&op);
  }
  // With input projections every step runs the split kernels.
  if (k.projectedForward) {
    symbols.erase(k.forward);
    k.forward = nullptr;
  }
  return k;
}

/// One row of a materialised schedule: a run of the plan's actions of one
/// kind that the program executes as a unit (a loop where count > 1).
enum class RunKind : int64_t {
  /// cursor := the state at `offset` (a slot, or h0).
  Restore,
  /// `count` forward steps from `step` on, alternating between the two cursor
  /// buffers.
  Forward,
  /// `count` forward steps from `step` on, each kept in the next slot from
  /// `offset` on (`bytes` each), each from the previous one.
  Keep,
  /// One forward step into the internal-state buffer.
  ToWork,
  /// The cursor copied into a new slot of `bytes` at `offset`.
  StoreHidden,
  /// `count` backward steps from `step` down, from slots at `offset`,
  /// `offset` - |s|, ..., each slot releasing `bytes` (0: none) after its
  /// step.
  Backward,
  /// One backward step from the internal-state buffer.
  BackwardFromWork,
  /// The slot at `offset`, of `bytes`, released.
  Free,
  /// cursor := the new states of `step`, recomputed into cursor buffer A
  /// from its kept internal state at `offset` (internal-state=saved).
  RestoreKept,
};
constexpr unsigned kNumRunKinds = unsigned(RunKind::RestoreKept) + 1;

struct Run {
  RunKind kind;
  int64_t step = 0, count = 1, offset = 0, bytes = 0;
};
/// Columns of a row of the schedule table, in this order.
constexpr unsigned kRunFields = 5;

/// Where the cursor (the current hidden state) is, as the program tracks it
/// at run time: a byte offset of the pool, or one of these.
constexpr int64_t kAtH0 = -1;    // the caller's h0
constexpr int64_t kAtA = -2;     // cursor buffer A
constexpr int64_t kAtB = -3;     // cursor buffer B
constexpr int64_t kNowhere = -4; // consumed: a step into the internal-state
                                 // buffer, or a backward step, came last

/// Groups the plan's actions into runs: the compile-time half of the
/// schedule (the size of every slot, and whether a restored slot holds a
/// kept internal state of saved values alone, `savedOnly`); the cursor and
/// the state-gradient parity are tracked at run time.
SmallVector<Run> groupIntoRuns(ArrayRef<Action> actions, int64_t hiddenBytes,
                               int64_t internalBytes, bool savedOnly) {
  SmallVector<Run> runs;
  llvm::DenseMap<int64_t, int64_t> slotSize;
  llvm::DenseMap<int64_t, bool> kept;
  size_t i = 0;
  while (i < actions.size()) {
    const Action &a = actions[i];
    Run r{RunKind::Restore};
    r.step = a.step;
    switch (a.kind) {
    case ActionKind::Restore:
      r.offset = a.offset < 0 ? kAtH0 : a.offset;
      if (savedOnly && a.offset >= 0 && kept.lookup(a.offset))
        r.kind = RunKind::RestoreKept;
      ++i;
      break;
    case ActionKind::Forward:
      // The planner emits a run of forward steps as one action.
      r.kind = RunKind::Forward;
      r.offset = 0;
      r.count = a.count;
      ++i;
      break;
    case ActionKind::ForwardKeep: {
      // Steps keeping their internal states in consecutive slots.
      r.kind = RunKind::Keep;
      r.offset = a.offset;
      r.bytes = internalBytes;
      size_t n = 1;
      while (i + n < actions.size() && actions[i + n].kind == a.kind &&
             actions[i + n].step == a.step + int64_t(n) &&
             actions[i + n].offset == a.offset + int64_t(n) * internalBytes)
        ++n;
      r.count = n;
      for (size_t j = 0; j < n; ++j) {
        slotSize[a.offset + int64_t(j) * internalBytes] = internalBytes;
        kept[a.offset + int64_t(j) * internalBytes] = true;
      }
      i += n;
      break;
    }
    case ActionKind::ForwardToWork:
      r.kind = RunKind::ToWork;
      ++i;
      break;
    case ActionKind::StoreHidden:
      r.kind = RunKind::StoreHidden;
      r.offset = a.offset;
      r.bytes = hiddenBytes;
      slotSize[a.offset] = hiddenBytes;
      kept[a.offset] = false;
      ++i;
      break;
    case ActionKind::Backward: {
      r.kind = a.offset < 0 ? RunKind::BackwardFromWork : RunKind::Backward;
      r.offset = a.offset;
      // Backward steps each followed by the release of its own kept slot,
      // from consecutive slots downwards.
      auto isPair = [&](size_t j, int64_t n) {
        const Action &back = actions[j];
        int64_t offset = a.offset - n * internalBytes;
        return a.offset >= 0 && j + 1 < actions.size() &&
               back.kind == ActionKind::Backward && back.step == a.step - n &&
               back.offset == offset &&
               actions[j + 1].kind == ActionKind::Free &&
               actions[j + 1].offset == offset &&
               slotSize.lookup(offset) == internalBytes;
      };
      int64_t pairs = 0;
      while (isPair(i + 2 * pairs, pairs))
        ++pairs;
      if (pairs == 0) {
        ++i;
        break;
      }
      r.count = pairs;
      r.bytes = internalBytes;
      for (int64_t j = 0; j < pairs; ++j)
        slotSize.erase(a.offset - j * internalBytes);
      i += 2 * pairs;
      break;
    }
    case ActionKind::Free:
      r.kind = RunKind::Free;
      r.offset = a.offset;
      r.bytes = slotSize.lookup(a.offset);
      slotSize.erase(a.offset);
      ++i;
      break;
    }
    runs.push_back(r);
  }
  return runs;
}

/// Emits the schedule of one rnn.bptt as the body of its entry function.
///
/// Each run is emitted by one generator from operands that are either
/// constants (a short schedule: straight-line code, folded as it is built,
/// which reads like the plan) or loaded from a table (a long one: one
/// dispatch loop over the rows, so the program's size does not depend on T).
/// Either way the cursor and the state-gradient parity are values the
/// program carries from run to run.
class ScheduleEmitter {
public:
  ScheduleEmitter(OpBuilder &b, Location loc, CellOp cell, Kernels k,
                  const BPTTPlan &p, func::FuncOp entry, SymbolTable &symbols,
                  int64_t maxUnrolledRuns)
      : b(b), loc(loc), cell(cell), k(k), p(p), entry(entry),
        symbols(symbols), maxUnrolledRuns(maxUnrolledRuns) {
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
    if (k.inputGradient)
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
    // Without its new states, a kept internal state is the saved values.
    if (savedOnly())
      offset = 0;
    for (Type t : k.savedTypes) {
      savedOffsets.push_back(offset);
      offset += *storageBytes(t);
    }
    internalBytes = offset;
  }

  void emit();

private:
  /// What the program tracks from run to run.
  struct Machine {
    Value cursor;      // index: a pool offset or one of the kAt* buffers
    Value gradientInA; // i1: the incoming state gradient is in dA
  };
  /// A run's operands as values (index, except `bytes`: i64).
  struct RunOperands {
    Value step, count, offset, bytes;
  };

  /// Whether kept internal states hold the saved values alone: a step's new
  /// states are then in the cursor buffers, never in its slot, and are
  /// recomputed (recomputeStates) where a backward step or a restore needs
  /// them.
  bool savedOnly() const { return bool(k.states); }
  /// The new states of `step` from its saved values, into `into`.
  void recomputeStates(Value step, ValueRange saved, ValueRange into);

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value i64(int64_t v) {
    return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
  }
  Value flag(bool v) {
    return arith::ConstantIntOp::create(b, loc, b.getI1Type(), v);
  }
  template <typename OpTy, typename... Args> Value fold(Args &&...args) {
    return b.createOrFold<OpTy>(loc, std::forward<Args>(args)...);
  }
  Value add(Value x, Value y) { return fold<arith::AddIOp>(x, y); }
  Value sub(Value x, Value y) { return fold<arith::SubIOp>(x, y); }
  Value mul(Value x, Value y) { return fold<arith::MulIOp>(x, y); }
  Value equal(Value x, Value y) {
    return fold<arith::CmpIOp>(arith::CmpIPredicate::eq, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return fold<arith::SelectOp>(c, x, y);
  }
  /// Whether an index is even, or odd, as an i1.
  Value isEven(Value i) {
    return equal(fold<arith::RemUIOp>(i, index(2)), index(0));
  }
  Value isOdd(Value i) {
    return fold<arith::CmpIOp>(arith::CmpIPredicate::ne,
                               fold<arith::RemUIOp>(i, index(2)), index(0));
  }
  /// body(i) for i in [lb, ub): nothing or the body itself when the bounds
  /// are constants and allow at most one iteration, else an scf.for.
  void forEach(Value lb, Value ub, function_ref<void(Value)> body);
  /// body() where `cond` holds: nothing or the body itself when `cond` is a
  /// constant, else an scf.if.
  void when(Value cond, function_ref<void()> body);

  Value alloc(Type t) { return memref::AllocOp::create(b, loc, storageType(t)); }
  /// Views of the parts of a slot at `byteOffset` of the pool.
  SmallVector<Value> views(Value byteOffset, ArrayRef<Type> types,
                           ArrayRef<int64_t> offsets);
  /// The hidden state at a location (kAt* or a pool offset) that may only be
  /// known at run time.
  SmallVector<Value> statesAt(Value at);
  /// The parts of the internal state in the slot at a pool offset.
  SmallVector<Value> slotStates(Value at) {
    return views(at, k.stateTypes, stateOffsets);
  }
  SmallVector<Value> slotSaved(Value at) {
    return views(at, k.savedTypes, savedOffsets);
  }
  /// (`xs`, `ys`) when `c` holds, else (`ys`, `xs`): which of two buffer
  /// sets a step reads and which it writes, decided at run time.
  std::pair<SmallVector<Value>, SmallVector<Value>>
  orderedBy(Value c, ValueRange xs, ValueRange ys) {
    SmallVector<Value> first, second;
    for (auto [x, y] : llvm::zip(xs, ys)) {
      first.push_back(select(c, x, y));
      second.push_back(select(c, y, x));
    }
    return {first, second};
  }
  /// The incoming state gradient's buffers and the other ones.
  std::pair<SmallVector<Value>, SmallVector<Value>>
  stateGradients(Machine m) {
    return orderedBy(m.gradientInA, dA, dB);
  }
  /// The cursor buffer a forward step from `at` writes: B after A, else A.
  Value otherCursor(Value at) {
    return select(equal(at, index(kAtA)), index(kAtB), index(kAtA));
  }
  /// x_t for a 1-based step index.
  Value inputAt(Value step, Value from);
  /// x_step .. x_{step+count-1}, stacked row-wise: the slice of xs with its
  /// two leading dimensions collapsed (contiguous, as xs is).
  Value stackedInputs(Value step, int64_t count);
  Value castTo(Value v, Type t) {
    return v.getType() == t ? v : memref::CastOp::create(b, loc, t, v);
  }
  /// A call of `kernel` on `args`, each cast to its parameter's layout.
  ValueRange callKernel(func::FuncOp kernel, ArrayRef<Value> args) {
    FunctionType type = kernel.getFunctionType();
    SmallVector<Value> cast;
    for (auto [i, v] : llvm::enumerate(args))
      cast.push_back(castTo(v, type.getInput(i)));
    return func::CallOp::create(b, loc, kernel, cast).getResults();
  }
  /// `count` entries of `buffer`'s leading dimension from `first` on.
  Value leadingSlice(Value buffer, Value first, int64_t count);
  void zero(Value buffer);
  void addToCounter(unsigned slot, Value amount);
  void slotAllocated(Value bytes);
  void slotFreed(Value bytes);

  /// One forward step from `in` into `outStates` and `outSaved`: a call of
  /// the forward wrapper, whose body (forwardBody) slices x_t, calls the
  /// kernel and counts the step (its loss comes from its backward step).
  /// With input projections, `row` is the step's row in the projection
  /// buffers, or -1 when the step computes its own.
  void forwardStep(Value step, ValueRange in, ValueRange outStates,
                   ValueRange outSaved, Value row);
  void forwardBody(Value step, ValueRange in, ValueRange outStates,
                   ValueRange outSaved, Value row);
  /// Before step j (0-based) of a run of `count` forward steps from `runStep`:
  /// when j starts a chunk, the input projections of the chunk's steps, as
  /// one batched call; returns step j's row in the projection buffers, or -1
  /// (runs shorter than a chunk compute each step's own). The last chunk
  /// ends with the run, overlapping the one before it, so that no step
  /// outside the run is projected.
  Value projectionRow(Value runStep, Value count, Value j);
  /// The input projections of `chunk` steps from `step` on (a call of the
  /// projection wrapper, whose body is projectionBody).
  void projectionBody(Value step);
  /// One step's rows of the projection buffers.
  SmallVector<Value> projectionViews(Value row);
  /// One backward step: reads dCur, writes dNext and adds the step's loss (a
  /// call of the backward wrapper, whose body is backwardBody). With the
  /// loss part split off, `row` is the step's row in the loss buffers, or -1
  /// when the step computes its own.
  void backwardStep(Value step, ValueRange states, ValueRange saved,
                    ValueRange dCur, ValueRange dNext, Value row);
  void backwardBody(Value step, ValueRange states, ValueRange saved,
                    ValueRange dCur, ValueRange dNext, Value row);
  /// Before step j (0-based) of a backward run (r): when j starts a chunk,
  /// the loss part of the chunk's steps, as one batched call; returns step
  /// j's row in the loss buffers, or -1 (runs shorter than a chunk compute
  /// each step's own). As with projections, the last chunk ends with the
  /// run and overlaps the one before it. The buffers hold the chunk's steps
  /// in increasing order, so step j's row counts down.
  Value lossRow(const RunOperands &r, Value j);
  /// The loss part of `chunk` steps from `step` on, whose internal states
  /// are in consecutive slots from `lowest` on (a call of the loss wrapper,
  /// whose body is lossBody). With saved values alone, a step's new states
  /// are in the slot of the step after it (Kernels::incomingStateSaved), and
  /// the last row of a new state's gather buffer is cursor buffer A.
  void lossBody(Value step, Value lowest);
  /// One step's rows of the loss buffers.
  SmallVector<Value> lossViews(Value row);
  /// The part of type `part` at `partOffset` within a slot, of `count`
  /// steps whose slots follow each other from `lowest` on: one row of its
  /// elements per step.
  Value slotSequence(Type part, int64_t partOffset, Value lowest,
                     int64_t count);
  void buildWrappers();

  /// The code of one run; returns the machine after it.
  Machine emitRun(RunKind kind, const RunOperands &r, Machine m);
  /// Forward steps from r.step on, alternating between the cursor buffers;
  /// with `keep`, each keeps its saved values in the next slot from
  /// r.offset on (internal-state=saved), else in the internal-state buffer.
  Machine emitForwardRun(const RunOperands &r, Machine m, bool keep = false);
  Machine emitKeepRun(const RunOperands &r, Machine m);
  Machine emitBackwardRun(const RunOperands &r, Machine m);
  Machine emitFree(const RunOperands &r, Machine m);
  /// The runs as straight-line code, or as a table and a dispatch loop.
  Machine emitUnrolled(ArrayRef<Run> runs, Machine m);
  Machine emitDispatchLoop(ArrayRef<Run> runs, Machine m);

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
  SymbolTable &symbols;
  int64_t maxUnrolledRuns;
  func::FuncOp forwardWrapper, backwardWrapper, projectionWrapper;
  /// The projection buffers: one step's projected values times the chunk,
  /// stacked row-wise (empty without input projections).
  SmallVector<Value> projections;
  /// The loss buffers: one step's values of the loss part times the loss
  /// chunk, stacked row-wise (empty without a split loss part).
  SmallVector<Value> lossBuffers;
  /// Where the batched loss part reads its slot values from: chunk x one
  /// step's value, stacked row-wise, one per type in lossGatherTypes.
  SmallVector<Value> lossGathers;
  func::FuncOp lossWrapper;
  /// The gradient buffers: one step's operands of the deferred parameter
  /// gradients times the gradient chunk, stacked row-wise, step k·c + j + 1
  /// in block j (empty without deferred parameter gradients).
  SmallVector<Value> gradBuffers;
  /// After backward step `step`: when it completes its chunk, the chunk's
  /// parameter gradients (a call of the chunk function).
  void gradientChunkEnd(Value step);
  /// Step `step`'s block of the gradient buffers.
  SmallVector<Value> gradientViews(Value step);
};

} // namespace

void ScheduleEmitter::forEach(Value lb, Value ub,
                              function_ref<void(Value)> body) {
  std::optional<int64_t> l = getConstantIntValue(lb),
                         u = getConstantIntValue(ub);
  if (l && u && *u - *l <= 1) {
    if (*u > *l)
      body(lb);
    return;
  }
  scf::ForOp::create(b, loc, lb, ub, index(1), ValueRange{},
                     [&](OpBuilder &nb, Location, Value i, ValueRange) {
                       OpBuilder::InsertionGuard guard(b);
                       b.setInsertionPoint(nb.getInsertionBlock(),
                                           nb.getInsertionPoint());
                       body(i);
                       scf::YieldOp::create(b, loc);
                     });
}

void ScheduleEmitter::when(Value cond, function_ref<void()> body) {
  if (std::optional<int64_t> known = getConstantIntValue(cond)) {
    if (*known)
      body();
    return;
  }
  scf::IfOp::create(b, loc, cond, [&](OpBuilder &nb, Location) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
    body();
    scf::YieldOp::create(b, loc);
  });
}

SmallVector<Value> ScheduleEmitter::views(Value byteOffset, ArrayRef<Type> types,
                                          ArrayRef<int64_t> offsets) {
  SmallVector<Value> result;
  for (auto [t, off] : llvm::zip(types, offsets))
    result.push_back(memref::ViewOp::create(b, loc, storageType(t), pool,
                                            add(byteOffset, index(off)),
                                            ValueRange{}));
  return result;
}

SmallVector<Value> ScheduleEmitter::statesAt(Value at) {
  if (std::optional<int64_t> c = getConstantIntValue(at)) {
    switch (*c) {
    case kAtH0:
      return h0;
    case kAtA:
      return curA;
    case kAtB:
      return curB;
    default:
      assert(*c >= 0 && "a hidden state that nothing holds");
      return slotStates(at);
    }
  }
  // A pool offset, or (clamped to the pool) one of the buffers.
  Value inPool = fold<arith::MaxSIOp>(at, index(0));
  SmallVector<Value> result = slotStates(inPool);
  std::pair<int64_t, ArrayRef<Value>> buffers[] = {
      {kAtH0, h0}, {kAtA, curA}, {kAtB, curB}};
  for (auto [code, values] : buffers) {
    Value is = equal(at, index(code));
    for (auto [r, v] : llvm::zip(result, values))
      r = select(is, v, r);
  }
  return result;
}

Value ScheduleEmitter::inputAt(Value step, Value from) {
  auto type = cast<MemRefType>(from.getType());
  Value t0 = sub(step, index(1));
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

void ScheduleEmitter::slotAllocated(Value bytes) {
  Value now = arith::AddIOp::create(b, loc, memref::LoadOp::create(b, loc, live),
                                    bytes);
  memref::StoreOp::create(b, loc, now, live);
  Value i = index(1);
  Value peak = memref::LoadOp::create(b, loc, stats, i);
  memref::StoreOp::create(b, loc, arith::MaxSIOp::create(b, loc, peak, now),
                          stats, i);
}

void ScheduleEmitter::slotFreed(Value bytes) {
  if (matchPattern(bytes, m_Zero()))
    return;
  Value now = arith::SubIOp::create(b, loc, memref::LoadOp::create(b, loc, live),
                                    bytes);
  memref::StoreOp::create(b, loc, now, live);
}

void ScheduleEmitter::forwardBody(Value step, ValueRange in,
                                  ValueRange outStates, ValueRange outSaved,
                                  Value row) {
  Value x = inputAt(step, xs);
  // Out-parameters: the memref-typed new states and saved values, in order;
  // the scalar saved values are results, stored below.
  SmallVector<Value> outs, scalarDestinations;
  llvm::append_range(outs, outStates);
  for (auto [v, t] : llvm::zip(outSaved, k.savedTypes))
    (isa<TensorType>(t) ? outs : scalarDestinations).push_back(v);
  // Arguments: states, x_t, parameters, [projected values], out-parameters.
  auto callStep = [&](func::FuncOp kernel, ValueRange projected) {
    SmallVector<Value> args(in);
    args.push_back(x);
    llvm::append_range(args, params);
    llvm::append_range(args, projected);
    llvm::append_range(args, outs);
    return callKernel(kernel, args);
  };
  SmallVector<Value> results;
  if (projections.empty()) {
    llvm::append_range(results, callStep(k.forward, {}));
  } else {
    // A step outside a chunk projects its own input into the buffers' first
    // rows (chunks are computed per run, so nothing there is still needed).
    Value own = fold<arith::CmpIOp>(arith::CmpIPredicate::slt, row, index(0));
    when(own, [&] {
      SmallVector<Value> args{x};
      llvm::append_range(args, params);
      llvm::append_range(args, projectionViews(index(0)));
      callKernel(k.singleInput, args);
    });
    Value at = select(own, index(0), row);
    llvm::append_range(results,
                       callStep(k.projectedForward, projectionViews(at)));
  }
  // Results: the scalar saved values.
  for (auto [dest, value] : llvm::zip_equal(scalarDestinations, results))
    memref::StoreOp::create(b, loc, value, dest);
  addToCounter(0, i64(1));
}

Value ScheduleEmitter::leadingSlice(Value buffer, Value first,
                                    int64_t count) {
  auto type = cast<MemRefType>(buffer.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0)), sizes,
      strides(type.getRank(), b.getIndexAttr(1));
  offsets[0] = first;
  sizes.push_back(b.getIndexAttr(count));
  for (int64_t d : type.getShape().drop_front())
    sizes.push_back(b.getIndexAttr(d));
  return memref::SubViewOp::create(b, loc, buffer, offsets, sizes, strides);
}

SmallVector<Value> ScheduleEmitter::projectionViews(Value row) {
  SmallVector<Value> views;
  Value firstRow = mul(row, index(k.projectionRows));
  for (Value buffer : projections)
    views.push_back(leadingSlice(buffer, firstRow, k.projectionRows));
  return views;
}

Value ScheduleEmitter::stackedInputs(Value step, int64_t count) {
  Value chunkInputs = leadingSlice(xs, sub(step, index(1)), count);
  SmallVector<ReassociationIndices> rows{{0, 1}};
  for (unsigned d = 2, rank = cast<MemRefType>(xs.getType()).getRank();
       d < rank; ++d)
    rows.push_back({int64_t(d)});
  return memref::CollapseShapeOp::create(b, loc, chunkInputs, rows);
}

void ScheduleEmitter::projectionBody(Value step) {
  SmallVector<Value> args{stackedInputs(step, k.chunk)};
  llvm::append_range(args, params);
  llvm::append_range(args, projections);
  callKernel(k.batchedInput, args);
}

Value ScheduleEmitter::projectionRow(Value runStep, Value count, Value j) {
  if (k.chunk < 2)
    return index(-1);
  Value chunk = index(k.chunk);
  Value batched =
      fold<arith::CmpIOp>(arith::CmpIPredicate::sge, count, chunk);
  Value offset = fold<arith::RemUIOp>(j, chunk);
  // The chunk holding j starts at j - offset, or earlier for the last one.
  Value start =
      fold<arith::MinSIOp>(sub(j, offset), sub(count, chunk));
  Value startsChunk = fold<arith::AndIOp>(batched, equal(offset, index(0)));
  when(startsChunk, [&] {
    SmallVector<Value> args{xs};
    llvm::append_range(args, params);
    args.push_back(add(runStep, start));
    llvm::append_range(args, projections);
    func::CallOp::create(b, loc, projectionWrapper, args);
  });
  return select(batched, sub(j, start), index(-1));
}

void ScheduleEmitter::forwardStep(Value step, ValueRange in,
                                  ValueRange outStates, ValueRange outSaved,
                                  Value row) {
  SmallVector<Value> args{xs};
  llvm::append_range(args, params);
  args.push_back(stats);
  args.push_back(step);
  if (!projections.empty()) {
    args.push_back(row);
    llvm::append_range(args, projections);
  }
  llvm::append_range(args, in);
  llvm::append_range(args, outStates);
  llvm::append_range(args, outSaved);
  func::CallOp::create(b, loc, forwardWrapper, args);
}

void ScheduleEmitter::backwardStep(Value step, ValueRange states,
                                   ValueRange saved, ValueRange dCur,
                                   ValueRange dNext, Value row) {
  SmallVector<Value> args{xs};
  llvm::append_range(args, params);
  if (dxs)
    args.push_back(dxs);
  llvm::append_range(args, dparams);
  args.push_back(loss);
  args.push_back(step);
  if (!lossBuffers.empty()) {
    args.push_back(row);
    llvm::append_range(args, lossBuffers);
  }
  llvm::append_range(args, gradBuffers);
  llvm::append_range(args, states);
  llvm::append_range(args, saved);
  llvm::append_range(args, dCur);
  llvm::append_range(args, dNext);
  func::CallOp::create(b, loc, backwardWrapper, args);
}

void ScheduleEmitter::recomputeStates(Value step, ValueRange saved,
                                      ValueRange into) {
  SmallVector<Value> args{inputAt(step, xs)};
  llvm::append_range(args, params);
  for (auto [v, t] : llvm::zip(saved, k.savedTypes))
    args.push_back(isa<TensorType>(t) ? v
                                      : memref::LoadOp::create(b, loc, v));
  llvm::append_range(args, into);
  callKernel(k.states, args);
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
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(fn.addEntryBlock());
    build(fn.front().getArguments());
    func::ReturnOp::create(b, loc);
    xs = savedXs, loss = savedLoss, stats = savedStats, dxs = savedDxs;
    params = savedParams, dparams = savedDparams;
  };

  SmallVector<Type> fwdTypes{xs.getType()};
  llvm::append_range(fwdTypes, typesOf(params));
  fwdTypes.push_back(stats.getType());
  fwdTypes.push_back(indexType);
  if (!projections.empty()) {
    fwdTypes.push_back(indexType);
    llvm::append_range(fwdTypes, typesOf(projections));
  }
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
    stats = a[i++];
    Value step = a[i++], row;
    SmallVector<Value> savedProjections = projections;
    if (!projections.empty()) {
      row = a[i++];
      for (Value &buffer : projections)
        buffer = a[i++];
    }
    forwardBody(step, a.slice(i, ns), a.slice(i + ns, ns),
                a.drop_front(i + 2 * ns), row);
    projections = savedProjections;
  });

  if (k.batchedInput) {
    SmallVector<Type> projTypes{xs.getType()};
    llvm::append_range(projTypes, typesOf(params));
    projTypes.push_back(indexType);
    llvm::append_range(projTypes, typesOf(projections));
    projectionWrapper = func::FuncOp::create(
        mb, loc, (entry.getSymName() + "_input_projection").str(),
        FunctionType::get(ctx, projTypes, {}));
    projectionWrapper.setPrivate();
    withArgs(projectionWrapper, [&](ValueRange a) {
      unsigned i = 0, n = params.size();
      SmallVector<Value> savedProjections = projections;
      xs = a[i++];
      for (unsigned q = 0; q < n; ++q)
        params[q] = a[i++];
      Value step = a[i++];
      for (Value &buffer : projections)
        buffer = a[i++];
      projectionBody(step);
      projections = savedProjections;
    });
  }

  SmallVector<Type> bwdTypes{xs.getType()};
  llvm::append_range(bwdTypes, typesOf(params));
  if (dxs)
    bwdTypes.push_back(dxs.getType());
  llvm::append_range(bwdTypes, typesOf(dparams));
  bwdTypes.push_back(loss.getType());
  bwdTypes.push_back(indexType);
  if (!lossBuffers.empty()) {
    bwdTypes.push_back(indexType);
    llvm::append_range(bwdTypes, typesOf(lossBuffers));
  }
  llvm::append_range(bwdTypes, typesOf(gradBuffers));
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
    if (dxs)
      dxs = a[i++];
    for (unsigned q = 0; q < n; ++q)
      dparams[q] = a[i++];
    loss = a[i++];
    Value step = a[i++], row;
    SmallVector<Value> savedBuffers = lossBuffers,
                       savedGradBuffers = gradBuffers;
    if (!lossBuffers.empty()) {
      row = a[i++];
      for (Value &buffer : lossBuffers)
        buffer = a[i++];
    }
    for (Value &buffer : gradBuffers)
      buffer = a[i++];
    backwardBody(step, a.slice(i, ns), a.slice(i + ns, nv),
                 a.slice(i + ns + nv, ns), a.slice(i + 2 * ns + nv, ns), row);
    lossBuffers = savedBuffers;
    gradBuffers = savedGradBuffers;
  });

  if (k.lossBatched) {
    SmallVector<Type> lossTypes{xs.getType()};
    llvm::append_range(lossTypes, typesOf(params));
    lossTypes.push_back(pool.getType());
    lossTypes.push_back(indexType);
    lossTypes.push_back(indexType);
    llvm::append_range(lossTypes, typesOf(lossBuffers));
    llvm::append_range(lossTypes, typesOf(lossGathers));
    lossWrapper = func::FuncOp::create(
        mb, loc, (entry.getSymName() + "_loss_part").str(),
        FunctionType::get(ctx, lossTypes, {}));
    lossWrapper.setPrivate();
    withArgs(lossWrapper, [&](ValueRange a) {
      unsigned i = 0, n = params.size();
      SmallVector<Value> savedBuffers = lossBuffers, savedGathers = lossGathers;
      Value savedPool = pool;
      xs = a[i++];
      for (unsigned q = 0; q < n; ++q)
        params[q] = a[i++];
      pool = a[i++];
      Value step = a[i++], lowest = a[i++];
      for (Value &buffer : lossBuffers)
        buffer = a[i++];
      for (Value &buffer : lossGathers)
        buffer = a[i++];
      lossBody(step, lowest);
      lossBuffers = savedBuffers;
      lossGathers = savedGathers;
      pool = savedPool;
    });
  }
}

SmallVector<Value> ScheduleEmitter::lossViews(Value row) {
  SmallVector<Value> views;
  Value firstRow = mul(row, index(k.lossRows));
  for (Value buffer : lossBuffers)
    views.push_back(leadingSlice(buffer, firstRow, k.lossRows));
  return views;
}

Value ScheduleEmitter::slotSequence(Type part, int64_t partOffset, Value lowest,
                                    int64_t count) {
  auto tensor = cast<RankedTensorType>(part);
  Type element = tensor.getElementType();
  int64_t elementBytes = *storageBytes(element);
  // The pool as elements, and the parts as a strided view of it: slots are
  // internalBytes apart (chooseLossChunk checked the alignment).
  int64_t poolBytes = cast<MemRefType>(pool.getType()).getDimSize(0);
  Value flat = memref::ViewOp::create(
      b, loc, MemRefType::get({poolBytes / elementBytes}, element), pool,
      index(0), ValueRange{});
  // One row per step: a step's part is contiguous. (Two dimensions, so
  // that the copy reading it is a kernel of the usual 2-d shape.)
  SmallVector<int64_t> shape{count, tensor.getNumElements()},
      strides{internalBytes / elementBytes, 1};
  auto type = MemRefType::get(
      shape, element,
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides));
  Value offset = fold<arith::DivUIOp>(add(lowest, index(partOffset)),
                                      index(elementBytes));
  SmallVector<OpFoldResult> sizes, strideAttrs;
  for (int64_t d : shape)
    sizes.push_back(b.getIndexAttr(d));
  for (int64_t st : strides)
    strideAttrs.push_back(b.getIndexAttr(st));
  return memref::ReinterpretCastOp::create(b, loc, type, flat,
                                           OpFoldResult(offset), sizes,
                                           strideAttrs);
}

/// `buffer` (contiguous) as `rows` rows of equal length.
static Value asRows(OpBuilder &b, Location loc, Value buffer, int64_t rows) {
  auto type = cast<MemRefType>(buffer.getType());
  ReassociationIndices all;
  for (int64_t d = 0; d < type.getRank(); ++d)
    all.push_back(d);
  Value flat = memref::CollapseShapeOp::create(
      b, loc, buffer, ArrayRef<ReassociationIndices>{all});
  return memref::ExpandShapeOp::create(
      b, loc,
      MemRefType::get({rows, type.getNumElements() / rows},
                      type.getElementType()),
      flat, ArrayRef<ReassociationIndices>{{0, 1}});
}

void ScheduleEmitter::lossBody(Value step, Value lowest) {
  SmallVector<Value> args;
  unsigned gathered = 0, firstState = 1 + params.size();
  int64_t chunk = k.lossChunk;
  for (unsigned i : k.lossStepArgs) {
    if (i == 0) {
      args.push_back(stackedInputs(step, chunk));
      continue;
    }
    // The chunk's values of this slot part, gathered row-wise: the buffer
    // as one row per step.
    Value gather = lossGathers[gathered++];
    Value steps = asRows(b, loc, gather, chunk);
    unsigned s = i - firstState;
    if (s >= k.stateTypes.size()) {
      unsigned v = s - k.stateTypes.size();
      memref::CopyOp::create(
          b, loc, slotSequence(k.savedTypes[v], savedOffsets[v], lowest, chunk),
          steps);
    } else if (!savedOnly()) {
      memref::CopyOp::create(
          b, loc, slotSequence(k.stateTypes[s], stateOffsets[s], lowest, chunk),
          steps);
    } else {
      // Step t's new state is the incoming state saved by step t + 1, for
      // all but the chunk's last step, whose slot may be the run's first.
      // That step's row is cursor buffer A (emit), computed here at the
      // chunk's first backward step, right after the recomputation of its
      // new states into A. (The run's last chunk, which overlaps the one
      // before it, is computed at a lower step, whose states A then holds:
      // the row is that of a step whose backward step is done, and nothing
      // reads its values.)
      unsigned v = k.incomingStateSaved[s];
      memref::CopyOp::create(b, loc,
                             slotSequence(k.savedTypes[v], savedOffsets[v],
                                          add(lowest, index(internalBytes)),
                                          chunk - 1),
                             leadingSlice(steps, index(0), chunk - 1));
    }
    args.push_back(gather);
  }
  llvm::append_range(args, params);
  Type lossType = k.lossBatched.getFunctionType().getInput(args.size());
  args.push_back(
      arith::ConstantOp::create(b, loc, b.getFloatAttr(lossType, 1.0)));
  llvm::append_range(args, lossBuffers);
  callKernel(k.lossBatched, args);
}

Value ScheduleEmitter::lossRow(const RunOperands &r, Value j) {
  if (k.lossChunk < 2)
    return index(-1);
  Value chunk = index(k.lossChunk);
  Value batched =
      fold<arith::CmpIOp>(arith::CmpIPredicate::sge, r.count, chunk);
  Value offset = fold<arith::RemUIOp>(j, chunk);
  Value start = fold<arith::MinSIOp>(sub(j, offset), sub(r.count, chunk));
  Value startsChunk = fold<arith::AndIOp>(batched, equal(offset, index(0)));
  // The chunk's run positions are start .. start + chunk - 1: steps
  // r.step - start - chunk + 1 (its first) up to r.step - start, whose slot
  // is r.offset - start·|s|.
  Value last = add(start, sub(chunk, index(1)));
  when(startsChunk, [&] {
    SmallVector<Value> args{xs};
    llvm::append_range(args, params);
    args.push_back(pool);
    args.push_back(sub(r.step, last));
    args.push_back(sub(r.offset, mul(last, index(internalBytes))));
    llvm::append_range(args, lossBuffers);
    llvm::append_range(args, lossGathers);
    func::CallOp::create(b, loc, lossWrapper, args);
  });
  return select(batched, sub(last, j), index(-1));
}

void ScheduleEmitter::backwardBody(Value step, ValueRange states,
                                   ValueRange saved, ValueRange dCur,
                                   ValueRange dNext, Value row) {
  FunctionType type = k.backward.getFunctionType();
  SmallVector<Value> args;
  unsigned a = 0;
  Value x = inputAt(step, xs);
  SmallVector<Value> lossValues;
  if (!lossBuffers.empty()) {
    // A step outside a chunk computes its own loss part into the buffers'
    // first rows (chunks are computed per run: nothing there is needed).
    Value own = fold<arith::CmpIOp>(arith::CmpIPredicate::slt, row, index(0));
    when(own, [&] {
      FunctionType single = k.lossSingle.getFunctionType();
      SmallVector<Value> lossArgs;
      unsigned firstState = 1 + params.size();
      for (unsigned i : k.lossStepArgs) {
        Value v;
        if (i == 0)
          v = x;
        else if (i - firstState < states.size())
          v = states[i - firstState];
        else
          v = saved[i - firstState - states.size()];
        lossArgs.push_back(castTo(v, single.getInput(lossArgs.size())));
      }
      for (Value v : params)
        lossArgs.push_back(castTo(v, single.getInput(lossArgs.size())));
      lossArgs.push_back(arith::ConstantOp::create(
          b, loc, b.getFloatAttr(single.getInput(lossArgs.size()), 1.0)));
      for (Value v : lossViews(index(0)))
        lossArgs.push_back(castTo(v, single.getInput(lossArgs.size())));
      func::CallOp::create(b, loc, k.lossSingle, lossArgs);
    });
    lossValues = lossViews(select(own, index(0), row));
  }
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
  for (Value v : lossValues)
    args.push_back(castTo(v, type.getInput(a++)));
  // Out-parameters: d states, d x (where wanted), d params (accumulated in
  // place).
  for (Value v : dNext)
    args.push_back(castTo(v, type.getInput(a++)));
  if (dxs)
    args.push_back(castTo(inputAt(step, dxs), type.getInput(a++)));
  for (Value v : dparams)
    args.push_back(castTo(v, type.getInput(a++)));
  // Its operands of the deferred parameter gradients, into its block.
  for (Value v : gradientViews(step))
    args.push_back(castTo(v, type.getInput(a++)));
  // The running loss, to which the step adds its own (addLossToTotal).
  args.push_back(castTo(loss, type.getInput(a++)));
  func::CallOp::create(b, loc, k.backward, args);
  gradientChunkEnd(step);
}

SmallVector<Value> ScheduleEmitter::gradientViews(Value step) {
  SmallVector<Value> views;
  if (gradBuffers.empty())
    return views;
  Value block = fold<arith::RemUIOp>(sub(step, index(1)), index(k.gradChunk));
  Value firstRow = mul(block, index(k.gradRows));
  for (Value buffer : gradBuffers)
    views.push_back(leadingSlice(buffer, firstRow, k.gradRows));
  return views;
}

void ScheduleEmitter::gradientChunkEnd(Value step) {
  if (gradBuffers.empty())
    return;
  // Backward steps run T..1: step k·c + 1 completes chunk k, which holds
  // steps k·c + 1 .. min(k·c + c, T) in its first blocks.
  int64_t steps = cast<MemRefType>(xs.getType()).getDimSize(0);
  Value chunkStart = equal(
      fold<arith::RemUIOp>(sub(step, index(1)), index(k.gradChunk)), index(0));
  Value tailStart = index(steps - k.gradTailSteps + 1);
  auto call = [&](func::FuncOp fn, int64_t count) {
    SmallVector<Value> args;
    if (k.gradReadsX)
      args.push_back(stackedInputs(step, count));
    for (Value buffer : gradBuffers)
      args.push_back(count == k.gradChunk
                         ? buffer
                         : leadingSlice(buffer, index(0), count * k.gradRows));
    for (int pass = 0; pass < 2; ++pass)
      for (unsigned q : k.gradParams)
        args.push_back(dparams[q]);
    callKernel(fn, args);
  };
  if (!k.gradTail) {
    when(chunkStart, [&] { call(k.gradFull, k.gradChunk); });
    return;
  }
  Value isTail = equal(step, tailStart);
  when(fold<arith::AndIOp>(chunkStart,
                           fold<arith::XOrIOp>(isTail, flag(true))),
       [&] { call(k.gradFull, k.gradChunk); });
  when(isTail, [&] { call(k.gradTail, k.gradTailSteps); });
}


/// Forward steps from r.step on: the first from the cursor into the other
/// cursor buffer, the rest in a loop that alternates between the two buffers
/// by the parity of the iteration (so no buffer is loop-carried).
ScheduleEmitter::Machine ScheduleEmitter::emitForwardRun(const RunOperands &r,
                                                         Machine m, bool keep) {
  Value into = otherCursor(m.cursor), back = otherCursor(into);
  SmallVector<Value> intoStates = statesAt(into), backStates = statesAt(back);
  // Where step j of the run writes its saved values.
  auto savedOf = [&](Value j) -> SmallVector<Value> {
    if (!keep)
      return workSaved;
    return slotSaved(add(r.offset, mul(j, index(internalBytes))));
  };
  forwardStep(r.step, statesAt(m.cursor), intoStates, savedOf(index(0)),
              projectionRow(r.step, r.count, index(0)));
  if (keep)
    slotAllocated(r.bytes);
  // Iteration j (>= 1) reads `into` and writes `back` when j is odd.
  forEach(index(1), r.count, [&](Value j) {
    auto [from, to] = orderedBy(isOdd(j), intoStates, backStates);
    forwardStep(add(r.step, j), from, to, savedOf(j),
                projectionRow(r.step, r.count, j));
    if (keep)
      slotAllocated(r.bytes);
  });
  // The last iteration, count - 1, wrote `into` if it is even.
  m.cursor = select(isEven(sub(r.count, index(1))), into, back);
  return m;
}

/// Kept steps from r.step on into slots at r.offset, r.offset + |s|, ...:
/// the first from the cursor, the rest each from the previous slot.
ScheduleEmitter::Machine ScheduleEmitter::emitKeepRun(const RunOperands &r,
                                                      Machine m) {
  // Saved values alone: the new states go to the cursor buffers, as in a
  // run of forward steps.
  if (savedOnly())
    return emitForwardRun(r, m, /*keep=*/true);
  Value stride = index(internalBytes);
  forwardStep(r.step, statesAt(m.cursor), slotStates(r.offset),
              slotSaved(r.offset),
              projectionRow(r.step, r.count, index(0)));
  slotAllocated(r.bytes);
  forEach(index(1), r.count, [&](Value i) {
    Value at = add(r.offset, mul(i, stride));
    Value prev = sub(at, stride);
    forwardStep(add(r.step, i), slotStates(prev), slotStates(at),
                slotSaved(at), projectionRow(r.step, r.count, i));
    slotAllocated(r.bytes);
  });
  m.cursor = add(r.offset, mul(sub(r.count, index(1)), stride));
  return m;
}

/// Backward steps r.step, r.step - 1, ... from r.offset, r.offset - |s|, ...,
/// each releasing r.bytes after it, alternating between the two
/// state-gradient buffers by parity.
ScheduleEmitter::Machine ScheduleEmitter::emitBackwardRun(const RunOperands &r,
                                                          Machine m) {
  auto [dCur, dNext] = stateGradients(m);
  forEach(index(0), r.count, [&](Value i) {
    auto [from, to] = orderedBy(isEven(i), dCur, dNext);
    Value at = sub(r.offset, mul(i, index(internalBytes)));
    Value step = sub(r.step, i);
    SmallVector<Value> saved = slotSaved(at), states;
    if (savedOnly()) {
      // The cursor buffers are free: no run after a backward step reads
      // the cursor before a restore.
      recomputeStates(step, saved, curA);
      states = curA;
    } else {
      states = slotStates(at);
    }
    backwardStep(step, states, saved, from, to, lossRow(r, i));
    slotFreed(r.bytes);
  });
  // After an odd number of steps the gradient is in the other buffer.
  m.gradientInA = fold<arith::XOrIOp>(m.gradientInA, isOdd(r.count));
  m.cursor = index(kNowhere);
  return m;
}

/// Releasing the slot the cursor is in (a segment freeing its own start, so
/// that its bytes may be reused at once) first moves the cursor to buffer A.
ScheduleEmitter::Machine ScheduleEmitter::emitFree(const RunOperands &r,
                                                   Machine m) {
  Value inSlot = equal(m.cursor, r.offset);
  when(inSlot, [&] {
    for (auto [from, to] : llvm::zip(statesAt(m.cursor), curA))
      memref::CopyOp::create(b, loc, from, to);
  });
  m.cursor = select(inSlot, index(kAtA), m.cursor);
  slotFreed(r.bytes);
  return m;
}

ScheduleEmitter::Machine ScheduleEmitter::emitRun(RunKind kind,
                                                  const RunOperands &r,
                                                  Machine m) {
  switch (kind) {
  case RunKind::Restore:
    m.cursor = r.offset;
    return m;
  case RunKind::RestoreKept:
    // (A case of the dispatch loop of every program; only programs with
    // saved values alone have such runs.)
    if (!savedOnly())
      return m;
    // The cursor it replaces is dead, whichever buffer it was in.
    recomputeStates(r.step, slotSaved(r.offset), curA);
    m.cursor = index(kAtA);
    return m;
  case RunKind::Forward:
    return emitForwardRun(r, m);
  case RunKind::Keep:
    return emitKeepRun(r, m);
  case RunKind::ToWork:
    if (savedOnly()) {
      // The new states go to the other cursor buffer, where the backward
      // step that follows reads them.
      Value into = otherCursor(m.cursor);
      forwardStep(r.step, statesAt(m.cursor), statesAt(into), workSaved,
                  index(-1));
      m.cursor = into;
      return m;
    }
    forwardStep(r.step, statesAt(m.cursor), workStates, workSaved, index(-1));
    m.cursor = index(kNowhere);
    return m;
  case RunKind::StoreHidden:
    for (auto [from, to] : llvm::zip(statesAt(m.cursor), slotStates(r.offset)))
      memref::CopyOp::create(b, loc, from, to);
    slotAllocated(r.bytes);
    return m;
  case RunKind::Backward:
    return emitBackwardRun(r, m);
  case RunKind::BackwardFromWork: {
    auto [dCur, dNext] = stateGradients(m);
    backwardStep(r.step, savedOnly() ? statesAt(m.cursor) : workStates,
                 workSaved, dCur, dNext, index(-1));
    m.gradientInA = fold<arith::XOrIOp>(m.gradientInA, flag(true));
    m.cursor = index(kNowhere);
    return m;
  }
  case RunKind::Free:
    return emitFree(r, m);
  }
  llvm_unreachable("unknown run kind");
}

ScheduleEmitter::Machine ScheduleEmitter::emitUnrolled(ArrayRef<Run> runs,
                                                       Machine m) {
  for (const Run &run : runs) {
    RunOperands r{index(run.step), index(run.count), index(run.offset),
                  i64(run.bytes)};
    m = emitRun(run.kind, r, m);
  }
  return m;
}

/// The runs as rows of a constant table (@<entry>_schedule, one row of
/// kRunFields i64 per run) and one loop that dispatches on each row's kind.
ScheduleEmitter::Machine ScheduleEmitter::emitDispatchLoop(ArrayRef<Run> runs,
                                                           Machine m) {
  SmallVector<int64_t> rows;
  for (const Run &r : runs)
    llvm::append_values(rows, int64_t(r.kind), r.step, r.count, r.offset,
                        r.bytes);
  auto tableType = MemRefType::get(
      {int64_t(runs.size()), int64_t(kRunFields)}, b.getI64Type());
  auto data = DenseElementsAttr::get(
      RankedTensorType::get(tableType.getShape(), b.getI64Type()),
      ArrayRef<int64_t>(rows));
  OpBuilder mb(entry);
  auto global = memref::GlobalOp::create(
      mb, loc, (entry.getSymName() + "_schedule").str(),
      mb.getStringAttr("private"), tableType, data, /*constant=*/true,
      /*alignment=*/IntegerAttr());
  // Host memory: the GPU pipeline keeps the dispatch loop on the host.
  global->setAttr("rnn.schedule", mb.getUnitAttr());
  symbols.insert(global);
  Value table =
      memref::GetGlobalOp::create(b, loc, tableType, global.getSymName());

  Type indexType = b.getIndexType(), i1 = b.getI1Type();
  SmallVector<Type> carried{indexType, indexType, i1};
  auto loop = scf::WhileOp::create(
      b, loc, carried, ValueRange{index(0), m.cursor, m.gradientInA},
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value more = arith::CmpIOp::create(
            nb, l, arith::CmpIPredicate::slt, args[0],
            arith::ConstantIndexOp::create(nb, l, runs.size()));
        scf::ConditionOp::create(nb, l, more, args);
      },
      [&](OpBuilder &nb, Location l, ValueRange args) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value row = args[0];
        auto field = [&](unsigned column) -> Value {
          return memref::LoadOp::create(b, loc, table,
                                        ValueRange{row, index(column)});
        };
        auto asIndex = [&](Value v) -> Value {
          return arith::IndexCastOp::create(b, loc, indexType, v);
        };
        Value kind = asIndex(field(0));
        RunOperands r{asIndex(field(1)), asIndex(field(2)), asIndex(field(3)),
                      field(4)};
        SmallVector<int64_t> cases;
        for (unsigned c = 0; c < kNumRunKinds; ++c)
          cases.push_back(c);
        auto dispatch = scf::IndexSwitchOp::create(
            b, loc, TypeRange{indexType, i1}, kind, cases, cases.size());
        Machine in{args[1], args[2]};
        auto fill = [&](Region &region, std::optional<RunKind> kind) {
          OpBuilder::InsertionGuard caseGuard(b);
          b.setInsertionPointToEnd(&region.emplaceBlock());
          Machine out = kind ? emitRun(*kind, r, in) : in;
          scf::YieldOp::create(b, loc,
                               ValueRange{out.cursor, out.gradientInA});
        };
        for (unsigned c = 0; c < kNumRunKinds; ++c)
          fill(dispatch.getCaseRegions()[c], RunKind(c));
        fill(dispatch.getDefaultRegion(), std::nullopt);
        Value next = arith::AddIOp::create(b, loc, row, index(1));
        scf::YieldOp::create(
            b, loc,
            ValueRange{next, dispatch.getResult(0), dispatch.getResult(1)});
      });
  return {loop.getResult(1), loop.getResult(2)};
}

void ScheduleEmitter::emit() {
  // Working set and pool. The gather buffers first: with saved values
  // alone, that of a new state ends with cursor buffer A (lossBody), so it
  // is one buffer of bytes and two views.
  unsigned firstState = 1 + params.size();
  SmallVector<Value> cursorInGather(k.stateTypes.size());
  for (auto [i, t] : llvm::zip_equal(gatheredStepArgs(k), k.lossGatherTypes)) {
    auto perStep = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(perStep.getShape());
    shape[0] *= k.lossChunk;
    auto type = MemRefType::get(shape, perStep.getElementType());
    unsigned s = i - firstState;
    if (!savedOnly() || s >= k.stateTypes.size()) {
      lossGathers.push_back(memref::AllocOp::create(b, loc, type));
      continue;
    }
    int64_t rowBytes = *storageBytes(t);
    Value bytes = memref::AllocOp::create(
        b, loc, MemRefType::get({k.lossChunk * rowBytes}, b.getI8Type()));
    lossGathers.push_back(
        memref::ViewOp::create(b, loc, type, bytes, index(0), ValueRange{}));
    cursorInGather[s] = memref::ViewOp::create(
        b, loc, storageType(t), bytes, index((k.lossChunk - 1) * rowBytes),
        ValueRange{});
  }
  for (auto [s, t] : llvm::enumerate(k.stateTypes)) {
    curA.push_back(cursorInGather[s] ? cursorInGather[s] : alloc(t));
    curB.push_back(alloc(t));
    dA.push_back(alloc(t));
    dB.push_back(alloc(t));
    // (With saved values alone, a step into the internal-state buffer puts
    // its new states in a cursor buffer.)
    if (!savedOnly())
      workStates.push_back(alloc(t));
  }
  for (Type t : k.savedTypes)
    workSaved.push_back(alloc(t));
  for (Type t : k.projectionTypes) {
    auto perStep = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(perStep.getShape());
    shape[0] *= k.chunk;
    projections.push_back(memref::AllocOp::create(
        b, loc, MemRefType::get(shape, perStep.getElementType())));
  }
  for (Type t : k.lossTypes) {
    auto perStep = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(perStep.getShape());
    shape[0] *= std::max<int64_t>(k.lossChunk, 1);
    lossBuffers.push_back(memref::AllocOp::create(
        b, loc, MemRefType::get(shape, perStep.getElementType())));
  }
  for (Type t : k.gradTypes) {
    auto perStep = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(perStep.getShape());
    shape[0] *= k.gradChunk;
    gradBuffers.push_back(memref::AllocOp::create(
        b, loc, MemRefType::get(shape, perStep.getElementType())));
  }
  // 4|h| + |s| plus the step's workspace (e.g. GPU kernel temporaries):
  // the planner's working set, so that stats[1] is the planned peak.
  int64_t workingBytes = p.chain.workingSetBytes();
  pool = memref::AllocOp::create(
      b, loc,
      MemRefType::get({std::max<int64_t>(1, p.plan.predicted.poolBytes)},
                      b.getI8Type()));
  live = memref::AllocaOp::create(b, loc, MemRefType::get({}, b.getI64Type()));
  buildWrappers();

  for (Value d : dA)
    zero(d);
  for (Value d : dparams)
    zero(d);
  zero(loss);
  zero(stats);
  memref::StoreOp::create(b, loc, i64(workingBytes), live);
  memref::StoreOp::create(b, loc, i64(workingBytes), stats, index(1));

  SmallVector<Run> runs =
      groupIntoRuns(p.plan.actions, hiddenBytes, internalBytes, savedOnly());
  Machine start{index(kAtH0), flag(true)};
  Machine end = int64_t(runs.size()) <= maxUnrolledRuns
                    ? emitUnrolled(runs, start)
                    : emitDispatchLoop(runs, start);
  // dL/dh0 is the last state gradient.
  for (auto [a, bb, to] : llvm::zip(dA, dB, dh0))
    memref::CopyOp::create(b, loc, select(end.gradientInA, a, bb), to);
  // Buffers are freed by the deallocation pipeline of the lowering.
  func::ReturnOp::create(b, loc);
}

namespace {
struct RNNRematPass : public bptt::rnn::impl::RNNRematBase<RNNRematPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    llvm::MapVector<std::tuple<Operation *, int64_t, int64_t, int64_t, unsigned, unsigned>, Kernels>
        kernels;
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
      for (StringRef attr : {"rnn.forward", "rnn.backward", "rnn.states"})
        if (auto ref = cell->getAttrOfType<FlatSymbolRefAttr>(attr))
          if (Operation *fn = symbols.lookup(ref.getValue()))
            symbols.erase(fn);
      symbols.erase(cell);
    }
  }

  /// Steps whose input projections are computed together, for `op`: 0 when
  /// the option is below 2 or the cell's input part cannot be split off
  /// (each step runs the one-step kernel), else at least 2. Split, every
  /// step reads its input part from a buffer of chunk x one step's projected
  /// values in the working set; the chunk is the option, halved until the
  /// buffer takes at most an eighth of the budget's room above the
  /// strategy's smallest feasible budget, so that it costs the schedule few
  /// slots. Below 2 steps the one-step kernel does the same work with no
  /// buffer (its projection accumulates in the gates, KernelPreparation.cpp),
  /// so the chunk is 0 then.
  FailureOr<int64_t> chooseInputChunk(BPTTOp op, CellOp cell,
                                      int64_t otherBytes) {
    if (inputChunk < 2)
      return 0;
    std::optional<int64_t> perStep = inputProjectionBytes(cell);
    if (!perStep)
      return 0;
    FailureOr<planner::Chain> chain =
        bpttChain(op, cell, workspaceBytes + otherBytes);
    if (failed(chain))
      return failure();
    int64_t room = op.getMemoryBudget() -
                   planner::minimumBudget(*chain, plannerStrategy(op));
    int64_t chunk = inputChunk;
    while (chunk >= 2 && chunk * *perStep > room / 8)
      chunk /= 2;
    return chunk >= 2 ? chunk : 0;
  }

  /// Steps whose loss parts are computed together, for `op`: 0 when the
  /// option is below 1 or the cell's loss part cannot be split off (`size`
  /// is nullopt: each backward step runs one function), else at least 1;
  /// chosen like the input chunk, for the loss buffers and the gather
  /// buffers (whose rows beyond the first count) on top of the `otherBytes`
  /// of the working set.
  /// (The batched function's temporaries are the drivers' workspace, which
  /// they measure on the largest chunk.) A chunk of 2 or more also needs
  /// every part of a slot aligned to its element size, as the batched
  /// function reads the parts of consecutive slots as one strided view.
  FailureOr<int64_t> chooseLossChunk(BPTTOp op, CellOp cell, int64_t otherBytes,
                                     const std::optional<LossPartSize> &size) {
    if (lossChunk < 1 || !size)
      return 0;
    if (lossChunk < 2)
      return 1;
    FailureOr<planner::Chain> chain =
        bpttChain(op, cell, workspaceBytes + otherBytes + size->exportedBytes);
    if (failed(chain))
      return failure();
    // Slots hold the new states and the saved values, or the saved values
    // alone, and start at multiples of their size: where every part's size
    // is a multiple of every part's element size, each part is aligned
    // within its slot either way.
    auto fwd = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        cell, cell->getAttrOfType<FlatSymbolRefAttr>("rnn.forward"));
    SmallVector<Type> parts(cell.getStateTypes());
    for (Type t : fwd.getResultTypes().drop_front(cell.getNumStates() + 1))
      parts.push_back(t);
    auto elementBytes = [](Type t) {
      auto shaped = dyn_cast<ShapedType>(t);
      return storageBytes(shaped ? shaped.getElementType() : t).value_or(1);
    };
    bool aligned = llvm::all_of(parts, [&](Type t) {
      return llvm::all_of(parts, [&](Type u) {
        return storageBytes(t).value_or(0) % elementBytes(u) == 0;
      });
    });
    if (!aligned)
      return 1;
    int64_t room = op.getMemoryBudget() -
                   planner::minimumBudget(*chain, plannerStrategy(op));
    int64_t perStep = size->exportedBytes + size->gatheredBytes;
    int64_t chunk = lossChunk;
    while (chunk >= 2 && (chunk - 1) * perStep > room / 8)
      chunk /= 2;
    return std::max<int64_t>(chunk, 1);
  }

  /// What `op`'s kept internal states hold, how many steps' loss parts run
  /// together, and the plan made to choose them.
  struct ScheduleChoice {
    bool savedOnly = false;
    int64_t lossChunk = 0;
    /// Where there was a choice, the chosen plan, made with the working
    /// set's bytes beyond the states in its chain's workspace: rewrite uses
    /// it rather than planning again (at T = 100,000 planning takes
    /// seconds).
    std::optional<BPTTPlan> plan;
  };

  /// Whether a batched loss part (`lossChunk` >= 2) can run on slots of
  /// saved values alone: whether each new state it reads is a saved value
  /// of the next step (savedIncomingStates).
  static bool batchedLossOnSavedSlots(CellOp cell, int64_t lossChunk,
                                      const std::optional<LossPartSize> &size) {
    if (lossChunk < 2)
      return true;
    auto fwd = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        cell, cell->getAttrOfType<FlatSymbolRefAttr>("rnn.forward"));
    return size && fwd &&
           newStatesInSavedSlots(size->stepArgs,
                                 savedIncomingStates(fwd, cell.getNumStates()),
                                 cell.getNumParams());
  }

  /// What `op`'s kept internal states hold (option internal-state; see
  /// Passes.td) and its loss chunk: `lossChunk` (chooseLossChunk's) or,
  /// when that is 2 or more and T at most 10,000, 1. Saved values alone take
  /// a batched loss part only where it finds the new states it reads in
  /// their slots (batchedLossOnSavedSlots). Where more than one pair
  /// remains, each is planned with the working set's `otherBytes` and its
  /// loss and gather buffers (of `size`, the loss part's), and the cheapest
  /// is taken, in forward steps:
  /// - each recomputation of new states costs kStatesCost of a step: a
  ///   states kernel is elementwise over one step's saved values (on an
  ///   H100 at B = 128, H = 1024, LSTM: 2.7 us against a 45 us forward
  ///   step);
  /// - a chunk of c loss parts saves (1 - 1/c) kLossBatchGain of a step for
  ///   each step it batches (those of backward runs of at least c steps):
  ///   the batched products and softmax cost little more than one step's,
  ///   whose kernels are short. On an H100, LSTM, T = 100, chunks of 2
  ///   saved per batched step 4.8 us (8% of store-all) and 6.2 us (5%) at
  ///   B = 128, H = 1024, against a forward step of 45 us, and 5.7 us at
  ///   B = 64, H = 512 (8%) against 17.7 us: kLossBatchGain 0.21, 0.27 and
  ///   0.64; about the smallest is taken. So the batch's buffers, which
  ///   take budget from the schedule, are kept only where the forward steps
  ///   they add cost less.
  FailureOr<ScheduleChoice>
  chooseSchedule(BPTTOp op, CellOp cell, int64_t otherBytes, int64_t lossChunk,
                 const std::optional<LossPartSize> &size) {
    constexpr double kStatesCost = 0.1, kLossBatchGain = 0.2;
    std::optional<int64_t> saved = savedStateBytes(cell);
    if (internalState == "saved" && !saved)
      return op.emitOpError()
             << "cannot keep internal states of saved values alone "
                "(internal-state=saved): the new states of cell @"
             << cell.getSymName()
             << " do not follow from its saved values without a matrix "
                "product; use internal-state=full or auto";
    if (internalState != "auto" && internalState != "full" &&
        internalState != "saved")
      return op.emitOpError() << "unknown internal-state '" << internalState
                              << "'; expected auto, full or saved";
    // Beyond this many steps one plan takes seconds, and the chunk's
    // buffers are small against budgets that grow with T: the chunk stands
    // as chooseLossChunk sized it.
    constexpr int64_t kMostStepsToWeighChunks = 10000;
    int64_t steps =
        cast<RankedTensorType>(op.getInputs().getType()).getDimSize(0);
    SmallVector<ScheduleChoice, 4> candidates;
    auto addWithChunks = [&](bool savedOnly) {
      int64_t chunk = lossChunk;
      if (savedOnly && !batchedLossOnSavedSlots(cell, chunk, size))
        chunk = 1;
      candidates.push_back({savedOnly, chunk, std::nullopt});
      if (chunk >= 2 && steps <= kMostStepsToWeighChunks)
        candidates.push_back({savedOnly, 1, std::nullopt});
    };
    if (internalState != "saved")
      addWithChunks(false);
    if (internalState == "saved" || (internalState == "auto" && saved))
      addWithChunks(true);
    if (candidates.size() == 1)
      return candidates.front();

    std::optional<ScheduleChoice> best;
    double bestCost = 0;
    for (ScheduleChoice &c : candidates) {
      // The loss and gather buffers, as rewrite counts them.
      int64_t lossBytes = 0;
      if (size)
        lossBytes =
            c.lossChunk * size->exportedBytes +
            lossGatherBytes(c.lossChunk, c.savedOnly, size->gatheredBytes,
                            size->gatheredStateBytes);
      std::optional<int64_t> internal;
      if (c.savedOnly)
        internal = *saved;
      FailureOr<planner::Chain> chain = bpttChain(
          op, cell, workspaceBytes + otherBytes + lossBytes, internal);
      if (failed(chain))
        return failure();
      llvm::Expected<planner::Plan> plan =
          planner::plan(*chain, op.getMemoryBudget(), plannerStrategy(op));
      if (!plan) {
        llvm::consumeError(plan.takeError());
        continue;
      }
      // Recomputations: a backward step from a kept slot, a restore of one.
      int64_t recomputations = 0;
      llvm::DenseMap<int64_t, bool> kept;
      for (const planner::Action &a : plan->actions) {
        if (a.kind == planner::ActionKind::ForwardKeep)
          kept[a.offset] = true;
        else if (a.kind == planner::ActionKind::StoreHidden)
          kept[a.offset] = false;
        else if ((a.kind == planner::ActionKind::Backward && a.offset >= 0) ||
                 (a.kind == planner::ActionKind::Restore && a.offset >= 0 &&
                  kept.lookup(a.offset)))
          ++recomputations;
      }
      double cost = plan->predicted.forwardSteps +
                    (c.savedOnly ? kStatesCost * recomputations : 0.0);
      // Batched: the steps of backward runs of at least a chunk
      // (ScheduleEmitter::lossRow).
      if (c.lossChunk >= 2) {
        int64_t batched = 0;
        for (const Run &r : groupIntoRuns(plan->actions, cell.getStateBytes(),
                                          chain->internal(1), c.savedOnly))
          if (r.kind == RunKind::Backward && r.count >= c.lossChunk)
            batched += r.count;
        cost -= kLossBatchGain * (1.0 - 1.0 / double(c.lossChunk)) *
                double(batched);
      }
      if (best && cost >= bestCost)
        continue;
      int64_t bytes = chain->internal(1);
      c.plan = BPTTPlan{std::move(*chain), std::move(*plan), steps, bytes,
                        c.savedOnly};
      best = std::move(c);
      bestCost = cost;
    }
    // No pair fits the budget: the first, whose planning in rewrite says
    // why.
    if (!best)
      return candidates.front();
    return std::move(*best);
  }

  LogicalResult
  rewrite(BPTTOp op, SymbolTable &symbols,
          llvm::MapVector<std::tuple<Operation *, int64_t, int64_t, int64_t,
                                     unsigned, unsigned>,
                          Kernels> &kernels) {
    auto cell = symbols.lookup<CellOp>(op.getCell());
    if (!cell)
      return op.emitOpError() << "refers to @" << op.getCell()
                              << ", which is not an rnn.cell";
    if (!cell->hasAttr("rnn.backward"))
      return op.emitOpError()
             << "needs the backward step of cell @" << cell.getSymName()
             << "; run -rnn-differentiate before -rnn-remat";
    // The input gradient is computed where the request's result is used.
    bool inputGradient = !op.getInputGrads().use_empty();
    int64_t steps = cast<RankedTensorType>(op.getInputs().getType()).getDimSize(0);
    // Parameter gradients over chunks of steps: the option as it is (capped
    // at T), whatever the budget, so that every budget sums the same chunks.
    int64_t gradChunkChosen = 0, gradBytes = 0;
    if (std::min(gradChunk.getValue(), steps) >= 2)
      if (std::optional<int64_t> perStep =
              gradientPartBytes(cell, inputGradient)) {
        gradChunkChosen = std::min(gradChunk.getValue(), steps);
        gradBytes = gradChunkChosen * *perStep;
      }
    FailureOr<int64_t> chunk = chooseInputChunk(op, cell, gradBytes);
    if (failed(chunk))
      return failure();
    // The projection buffer: chunk rows, none for a chunk of 0.
    int64_t projectionBufferBytes =
        *chunk * inputProjectionBytes(cell).value_or(0);
    // The loss part's sizes, analysed once (on a copy of the backward
    // function) for both choices below.
    std::optional<LossPartSize> lossSize =
        lossChunk >= 1 ? lossPartSize(cell, inputGradient) : std::nullopt;
    FailureOr<int64_t> lossChunkChosen =
        chooseLossChunk(op, cell, gradBytes + projectionBufferBytes, lossSize);
    if (failed(lossChunkChosen))
      return failure();
    FailureOr<ScheduleChoice> choice =
        chooseSchedule(op, cell, gradBytes + projectionBufferBytes,
                       *lossChunkChosen, lossSize);
    if (failed(choice))
      return failure();
    bool savedOnly = choice->savedOnly;
    lossChunkChosen = choice->lossChunk;
    std::tuple<Operation *, int64_t, int64_t, int64_t, unsigned, unsigned> key{
        cell,          *chunk,        *lossChunkChosen, gradChunkChosen,
        inputGradient, savedOnly};
    if (!kernels.count(key)) {
      FailureOr<Kernels> k =
          bufferizeKernels(cell, symbols, *chunk, *lossChunkChosen,
                           gradChunkChosen, steps, inputGradient, savedOnly);
      if (failed(k))
        return failure();
      kernels[key] = *k;
    }
    const Kernels &k = kernels[key];
    // The projection buffers are part of the working set.
    int64_t projectionBytes = 0;
    for (Type t : k.projectionTypes)
      projectionBytes += k.chunk * *storageBytes(t);
    // So are the loss buffers.
    for (Type t : k.lossTypes)
      projectionBytes += std::max<int64_t>(k.lossChunk, 1) * *storageBytes(t);
    int64_t gathered = 0, gatheredStates = 0;
    for (auto [i, t] :
         llvm::zip_equal(gatheredStepArgs(k), k.lossGatherTypes)) {
      gathered += *storageBytes(t);
      if (i < 1 + cell.getNumParams() + cell.getNumStates())
        gatheredStates += *storageBytes(t);
    }
    projectionBytes +=
        lossGatherBytes(k.lossChunk, savedOnly, gathered, gatheredStates);
    // And the gradient buffers.
    for (Type t : k.gradTypes)
      projectionBytes += k.gradChunk * *storageBytes(t);
    // The plan made to choose the internal state, where it counted the
    // same working set (else, or without one, a plan made here).
    int64_t planWorkspace = workspaceBytes + projectionBytes;
    FailureOr<BPTTPlan> plan =
        choice->plan && choice->plan->chain.workspaceBytes == planWorkspace
            ? FailureOr<BPTTPlan>(std::move(*choice->plan))
            : planBPTT(op, cell, planWorkspace, savedOnly);
    if (failed(plan))
      return failure();
    recordPlan(op, cell, *plan);

    // The entry point, on caller buffers.
    auto parent = op->getParentOfType<func::FuncOp>();
    std::string name =
        ((parent ? parent.getSymName() : StringRef("bptt")) + "_bptt").str();
    SmallVector<Type> argTypes;
    for (Value v : op->getOperands())
      argTypes.push_back(storageType(v.getType()));
    for (Value v : op.getGradients())
      if (v != op.getInputGrads() || inputGradient)
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
    ScheduleEmitter(b, op.getLoc(), cell, k, *plan, entry, symbols,
                    maxUnrolledRuns)
        .emit();
    // Fold what the emitter left: constants, selects between known buffers.
    OpPassManager cleanup(func::FuncOp::getOperationName());
    cleanup.addPass(createCanonicalizerPass());
    cleanup.addPass(createCSEPass());
    if (failed(runPipeline(cleanup, entry)))
      return failure();

    // The request becomes a call on buffers of its tensors.
    OpBuilder rb(op);
    Location loc = op.getLoc();
    SmallVector<Value> args;
    for (Value v : op->getOperands())
      args.push_back(bufferization::ToBufferOp::create(
          rb, loc, storageType(v.getType()), v, /*readOnly=*/true));
    // The entry takes the gradients (the computed ones), then the loss.
    Value lossBuffer =
        memref::AllocOp::create(rb, loc, storageType(op.getLoss().getType()));
    SmallVector<std::pair<Value, Value>> gradients;
    for (Value g : op.getGradients()) {
      if (g == op.getInputGrads() && !inputGradient)
        continue;
      Value buffer = memref::AllocOp::create(rb, loc, storageType(g.getType()));
      gradients.push_back({g, buffer});
      args.push_back(buffer);
    }
    args.push_back(lossBuffer);
    args.push_back(memref::AllocaOp::create(
        rb, loc, MemRefType::get({2}, rb.getI64Type())));
    func::CallOp::create(rb, loc, entry, args);
    op.getLoss().replaceAllUsesWith(
        memref::LoadOp::create(rb, loc, lossBuffer).getResult());
    for (auto [g, buffer] : gradients)
      g.replaceAllUsesWith(bufferization::ToTensorOp::create(
          rb, loc, g.getType(), buffer, /*restrict=*/true, /*writable=*/true));
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
          cell.cloneBodyInto(nb, m);
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
