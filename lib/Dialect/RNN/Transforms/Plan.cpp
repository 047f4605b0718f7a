//===- Plan.cpp - the rnn-plan pass ---------------------------------------===//

#include "PlanSupport.h"

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
    FailureOr<BPTTPlan> p = planBPTT(op, cell, workspaceBytes);
    if (failed(p))
      return failure();
    recordPlan(op, cell, *p);
    return success();
  }
};
} // namespace
