//===- PlanSupport.cpp - planning an rnn.bptt ---------------------------===//

#include "PlanSupport.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace bptt;
using namespace bptt::rnn;

/// Name of the cell attribute through which rnn-differentiate records the
/// exact size of the internal state.
static constexpr llvm::StringLiteral kInternalBytesAttr =
    "rnn.internal_state_bytes";

planner::Strategy bptt::rnn::plannerStrategy(BPTTOp op) {
  switch (op.getStrategyOrDefault()) {
  case Strategy::All:
    return planner::Strategy::All;
  case Strategy::Chen:
    return planner::Strategy::Chen;
  case Strategy::Revolve:
    return planner::Strategy::Revolve;
  case Strategy::HSM:
    return planner::Strategy::HSM;
  case Strategy::ISM:
    return planner::Strategy::ISM;
  case Strategy::MSM:
    return planner::Strategy::MSM;
  }
  llvm_unreachable("unknown strategy");
}

/// The internal state's size: recorded by rnn-differentiate, or else an
/// upper bound (the previous state plus every tensor the step computes).
static FailureOr<int64_t> internalStateBytes(CellOp cell) {
  if (auto recorded = cell->getAttrOfType<IntegerAttr>(kInternalBytesAttr))
    return recorded.getInt();
  int64_t bytes = cell.getStateBytes();
  WalkResult walk = cell.getBody().walk([&](Operation *op) {
    for (Type t : op->getResultTypes()) {
      if (!isa<TensorType>(t))
        continue;
      std::optional<int64_t> b = storageBytes(t);
      if (!b) {
        op->emitError() << "cannot size the internal state of cell @"
                        << cell.getSymName() << ": result type " << t
                        << " has no static shape; give the cell an '"
                        << kInternalBytesAttr << "' attribute";
        return WalkResult::interrupt();
      }
      bytes += *b;
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  return bytes;
}

std::optional<int64_t> bptt::rnn::savedStateBytes(CellOp cell) {
  auto bytes = cell->getAttrOfType<IntegerAttr>("rnn.saved_bytes");
  // The planner's model has |s| >= |h| (a kept internal state can stand
  // for the hidden state it recomputes).
  if (!bytes || !cell->hasAttr("rnn.states") ||
      bytes.getInt() < cell.getStateBytes())
    return std::nullopt;
  return bytes.getInt();
}

FailureOr<planner::Chain>
bptt::rnn::bpttChain(BPTTOp op, CellOp cell, int64_t workspaceBytes,
                     std::optional<int64_t> internalBytes) {
  auto seq = cast<RankedTensorType>(op.getInputs().getType());
  if (seq.isDynamicDim(0))
    return op.emitOpError()
           << "cannot be planned: the sequence length T is dynamic, and "
              "the checkpointing schedule is chosen at compile time; give "
              "the inputs a static leading dimension";
  FailureOr<int64_t> internal =
      internalBytes ? *internalBytes : internalStateBytes(cell);
  if (failed(internal))
    return failure();
  return planner::Chain::uniform(
      seq.getDimSize(0), cell.getStateBytes(),
      std::max(*internal, cell.getStateBytes()), workspaceBytes);
}

FailureOr<BPTTPlan> bptt::rnn::planBPTT(BPTTOp op, CellOp cell,
                                         int64_t workspaceBytes,
                                         bool savedOnly) {
  std::optional<int64_t> saved = savedStateBytes(cell);
  assert((!savedOnly || saved) && "the caller checks for rnn.saved_bytes");
  FailureOr<int64_t> internal =
      savedOnly ? FailureOr<int64_t>(*saved) : internalStateBytes(cell);
  if (failed(internal))
    return failure();
  FailureOr<planner::Chain> chain =
      bpttChain(op, cell, workspaceBytes, *internal);
  if (failed(chain))
    return failure();
  int64_t steps = chain->steps;
  planner::Strategy strategy = plannerStrategy(op);
  llvm::Expected<planner::Plan> plan =
      planner::plan(*chain, op.getMemoryBudget(), strategy);
  if (!plan)
    return op.emitOpError()
           << "cannot run BPTT of @" << cell.getSymName() << " over T = "
           << steps << " steps in memory_budget = " << op.getMemoryBudget()
           << " bytes: " << llvm::toString(plan.takeError());
  return BPTTPlan{*chain, std::move(*plan), steps, *internal, savedOnly};
}

void bptt::rnn::recordPlan(BPTTOp op, CellOp cell, const BPTTPlan &p) {
  Builder b(op.getContext());
  const planner::Execution &e = p.plan.predicted;
  NamedAttribute fields[] = {
      b.getNamedAttr("strategy", b.getStringAttr(stringify(p.plan.strategy))),
      b.getNamedAttr("forward_steps", b.getI64IntegerAttr(e.forwardSteps)),
      b.getNamedAttr("peak_bytes", b.getI64IntegerAttr(e.peakBytes)),
      b.getNamedAttr("pool_bytes", b.getI64IntegerAttr(e.poolBytes)),
      b.getNamedAttr("working_set_bytes",
                     b.getI64IntegerAttr(p.chain.workingSetBytes())),
      b.getNamedAttr("hidden_state_bytes",
                     b.getI64IntegerAttr(cell.getStateBytes())),
      b.getNamedAttr("internal_state_bytes",
                     b.getI64IntegerAttr(p.internalBytes)),
      b.getNamedAttr("internal_state",
                     b.getStringAttr(p.savedOnly ? "saved" : "full")),
      b.getNamedAttr("exact", b.getBoolAttr(p.plan.exact)),
  };
  op->setAttr("rnn.plan", b.getDictionaryAttr(fields));
  std::string perStep = llvm::formatv(
      "{0:F3}", p.steps ? double(e.forwardSteps) / p.steps : 0.0);
  op.emitRemark() << "planned " << stringify(p.plan.strategy) << " for T = "
                  << p.steps << ": " << e.forwardSteps << " forward steps ("
                  << perStep << " per step), peak " << e.peakBytes << " of "
                  << op.getMemoryBudget() << " bytes"
                  << (p.savedOnly ? ", kept internal states without their "
                                    "new states"
                                  : "");
}
