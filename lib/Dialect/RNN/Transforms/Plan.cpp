//===- Plan.cpp - the rnn-plan pass ---------------------------------------===//

#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Planner/Planner.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FormatVariadic.h"

namespace bptt::rnn {
#define GEN_PASS_DEF_RNNPLAN
#include "bptt/Dialect/RNN/Passes.h.inc"
} // namespace bptt::rnn

using namespace mlir;
using namespace bptt;
using namespace bptt::rnn;

/// Name of the cell attribute through which rnn-differentiate records the
/// exact size of the internal state.
static constexpr llvm::StringLiteral kInternalBytesAttr =
    "rnn.internal_state_bytes";

static planner::Strategy toPlannerStrategy(Strategy s) {
  switch (s) {
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

/// Bytes of a statically shaped tensor, or nullopt.
static std::optional<int64_t> tensorBytes(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape() ||
      !tensor.getElementType().isIntOrFloat())
    return std::nullopt;
  return tensor.getNumElements() *
         llvm::divideCeil(tensor.getElementTypeBitWidth(), 8);
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
      std::optional<int64_t> b = tensorBytes(t);
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

namespace {
struct RNNPlanPass : public bptt::rnn::impl::RNNPlanBase<RNNPlanPass> {
  using RNNPlanBase::RNNPlanBase;

  void runOnOperation() override {
    SymbolTableCollection symbols;
    WalkResult result = getOperation().walk([&](BPTTOp op) {
      if (failed(planOne(op, symbols)))
        return WalkResult::interrupt();
      ++numPlanned;
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  LogicalResult planOne(BPTTOp op, SymbolTableCollection &symbols) {
    auto cell = symbols.lookupNearestSymbolFrom<CellOp>(op, op.getCellAttr());
    if (!cell)
      return op.emitOpError() << "refers to " << op.getCellAttr()
                              << ", which is not an rnn.cell";
    auto seq = cast<RankedTensorType>(op.getInputs().getType());
    if (seq.isDynamicDim(0))
      return op.emitOpError()
             << "cannot be planned: the sequence length T is dynamic, and "
                "the checkpointing schedule is chosen at compile time; give "
                "the inputs a static leading dimension";
    FailureOr<int64_t> internal = internalStateBytes(cell);
    if (failed(internal))
      return failure();

    int64_t steps = seq.getDimSize(0);
    planner::Chain chain = planner::Chain::uniform(
        steps, cell.getStateBytes(), std::max(*internal, cell.getStateBytes()),
        workspaceBytes);
    planner::Strategy strategy = toPlannerStrategy(op.getStrategyOrDefault());
    llvm::Expected<planner::Plan> plan =
        planner::plan(chain, op.getMemoryBudget(), strategy);
    if (!plan)
      return op.emitOpError()
             << "cannot run BPTT of @" << cell.getSymName() << " over T = "
             << steps << " steps in memory_budget = " << op.getMemoryBudget()
             << " bytes: " << llvm::toString(plan.takeError());

    Builder b(op.getContext());
    const planner::Execution &e = plan->predicted;
    NamedAttribute fields[] = {
        b.getNamedAttr("strategy", b.getStringAttr(stringify(strategy))),
        b.getNamedAttr("forward_steps", b.getI64IntegerAttr(e.forwardSteps)),
        b.getNamedAttr("peak_bytes", b.getI64IntegerAttr(e.peakBytes)),
        b.getNamedAttr("pool_bytes", b.getI64IntegerAttr(e.poolBytes)),
        b.getNamedAttr("working_set_bytes",
                       b.getI64IntegerAttr(chain.workingSetBytes())),
        b.getNamedAttr("hidden_state_bytes",
                       b.getI64IntegerAttr(cell.getStateBytes())),
        b.getNamedAttr("internal_state_bytes", b.getI64IntegerAttr(*internal)),
        b.getNamedAttr("exact", b.getBoolAttr(plan->exact)),
    };
    op->setAttr("rnn.plan", b.getDictionaryAttr(fields));
    std::string perStep = llvm::formatv(
        "{0:F3}", steps ? double(e.forwardSteps) / steps : 0.0);
    op.emitRemark() << "planned " << stringify(strategy) << " for T = "
                    << steps << ": " << e.forwardSteps << " forward steps ("
                    << perStep << " per step), peak " << e.peakBytes << " of "
                    << op.getMemoryBudget() << " bytes";
    return success();
  }
};
} // namespace
