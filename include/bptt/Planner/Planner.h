//===- Planner.h - optimal checkpointing under a byte budget ----*- C++ -*-===//
//
// Given a chain (per-step costs and state sizes) and a budget in bytes,
// returns the schedule of least forward cost whose peak stays in the budget.
// The model, the recurrences and their complexity are in docs/planner.md.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_PLANNER_PLANNER_H
#define BPTT_PLANNER_PLANNER_H

#include "bptt/Planner/Chain.h"
#include "bptt/Planner/Schedule.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <vector>

namespace bptt::planner {

enum class Strategy {
  All,     ///< standard BPTT: keep every internal state
  Chen,    ///< √T segments: store boundaries, recompute one segment at a time
  Revolve, ///< binomial checkpointing (closed form; uniform chains only)
  HSM,     ///< optimal with stored hidden states only
  ISM,     ///< optimal with stored internal states only
  MSM,     ///< optimal with both (the default; dominates the others)
};

llvm::StringRef stringify(Strategy s);
std::optional<Strategy> parseStrategy(llvm::StringRef name);
/// Every strategy, in the order above.
llvm::ArrayRef<Strategy> allStrategies();

struct Plan {
  Strategy strategy = Strategy::MSM;
  std::vector<Action> actions;
  /// The predicted execution; equal to simulate(chain, actions).
  Execution predicted;
  /// The granularity, in bytes, at which the dynamic programs accounted
  /// memory. The plan is optimal among schedules whose slots are accounted at
  /// this granularity; it is exactly optimal when `exact` is true.
  int64_t memoryUnit = 1;
  bool exact = true;
};

struct PlannerOptions {
  /// Upper bound on the cells of each dynamic-programming table (there are
  /// two, of 8 bytes per cell). A
  /// problem whose table would exceed it is solved on coarser memory units
  /// (sizes rounded up, budget rounded down): still within budget, then
  /// `Plan::exact` is false.
  int64_t maxTableCells = int64_t(1) << 25;
};

/// The smallest budget for which `strategy` has a schedule.
int64_t minimumBudget(const Chain &chain, Strategy strategy);

/// The least-cost schedule of `strategy` within `budgetBytes`. Errors: an
/// invalid chain, a budget below minimumBudget() (the message names it), or
/// Revolve on a chain with non-uniform costs or sizes.
llvm::Expected<Plan> plan(const Chain &chain, int64_t budgetBytes,
                          Strategy strategy = Strategy::MSM,
                          const PlannerOptions &options = {});

/// Griewank's binomial bound: the fewest forward steps that reverse `steps`
/// uniform steps with `checkpoints` stored states, the start included,
/// counting the forward that precedes each backward step (so it is
/// steps + Revolve's repeated-forward count). Exposed for tests and tools.
int64_t revolveForwardSteps(int64_t steps, int64_t checkpoints);

} // namespace bptt::planner

#endif // BPTT_PLANNER_PLANNER_H
