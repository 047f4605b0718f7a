//===- PlanSupport.h - planning an rnn.bptt -----------------------*- C++ -*-===//
//
// What rnn-plan and rnn-remat share: sizing a cell's states, asking the
// planner for an rnn.bptt's schedule, and recording the prediction.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_DIALECT_RNN_TRANSFORMS_PLANSUPPORT_H
#define BPTT_LIB_DIALECT_RNN_TRANSFORMS_PLANSUPPORT_H

#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Planner/Planner.h"

namespace bptt::rnn {

struct BPTTPlan {
  planner::Chain chain;
  planner::Plan plan;
  int64_t steps = 0;
  int64_t internalBytes = 0;
  /// Whether a kept internal state holds the saved values alone, its new
  /// states recomputed from them (rnn-remat's internal-state option).
  bool savedOnly = false;
};

/// The planner's name for `op`'s strategy (MSM by default).
planner::Strategy plannerStrategy(BPTTOp op);

/// The size of the cell's saved values alone, where its new states follow
/// from them (rnn-differentiate's `rnn.states` and `rnn.saved_bytes`): what
/// a kept internal state holds under internal-state=saved. Else nothing.
std::optional<int64_t> savedStateBytes(CellOp cell);

/// The chain `op` runs over its cell: T, the state sizes, the working set
/// with `workspaceBytes`. Emits an error and fails when T is dynamic or the
/// internal state cannot be sized. `internalBytes`, where given, is the
/// internal state's size instead of the cell's.
mlir::FailureOr<planner::Chain>
bpttChain(BPTTOp op, CellOp cell, int64_t workspaceBytes,
          std::optional<int64_t> internalBytes = std::nullopt);

/// Plans `op` over its cell. Emits an error (naming the smallest feasible
/// budget when the budget is too small) and fails when it cannot. With
/// `savedOnly`, a kept internal state is the cell's saved values alone
/// (`rnn.saved_bytes`).
mlir::FailureOr<BPTTPlan> planBPTT(BPTTOp op, CellOp cell,
                                   int64_t workspaceBytes,
                                   bool savedOnly = false);

/// Records the prediction on `op` as the `rnn.plan` attribute and a remark.
void recordPlan(BPTTOp op, CellOp cell, const BPTTPlan &p);

} // namespace bptt::rnn

#endif // BPTT_LIB_DIALECT_RNN_TRANSFORMS_PLANSUPPORT_H
