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
#include <string>
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
  /// Bytes of the planner's own tables for this plan (the dynamic programs'
  /// cells or the uniform level arrays; 0 for the fixed policies).
  int64_t tableBytes = 0;
  /// The plain dynamic program on a chain whose state sizes differ per step:
  /// the most steps a segment could hand back to its parent (docs/planner.md,
  /// "Handing steps back"). T is the full recurrence; 0 on other chains and
  /// methods, or where the bound on the program's work left no room for it.
  int64_t handback = 0;
  /// How the plan was made: "store-all", "chen", "revolve" (closed form),
  /// "levels" (uniform MSM/ISM level sets), "hulls" (uniform MSM/ISM tables
  /// with hull-cut split scans) or "dp" (the plain dynamic program).
  std::string method;
};

struct PlannerOptions {
  /// Upper bound on the cells of each dynamic-programming table (there are
  /// two, of 8 bytes per cell). A
  /// problem whose table would exceed it is solved on coarser memory units
  /// (sizes rounded up, budget rounded down): still within budget, then
  /// `Plan::exact` is false.
  int64_t maxTableCells = int64_t(1) << 25;
  /// Uniform chains only: plan HSM with Revolve's closed form and MSM/ISM
  /// with the level sets of the excess over the two-sweep lower bound
  /// (docs/planner.md, "Uniform chains"). Both give the plain dynamic
  /// program's optimal cost; false forces the plain dynamic program (tests
  /// cross-check the two).
  bool uniformFastPath = true;
  /// Work limit of the level computation (inner-loop steps, about 1 ns
  /// each). It grows with the square of the chain's excess over the lower
  /// bound, which is large only when the budget is small for the chain
  /// length; beyond the limit the plain dynamic program plans instead.
  /// -1 (the default): the plain program's estimated work (4 T^2 M in
  /// level steps), so that the faster of the two exact methods plans.
  int64_t maxLevelWork = -1;
  /// Uniform chains, MSM and ISM: which exact method plans. Auto tries the
  /// level sets within `maxLevelWork` (by default about what the hull-cut
  /// tables would take), then the hull-cut tables, then the plain program;
  /// the others force one method (tests cross-check them).
  enum class UniformMethod { Auto, Levels, Hulls };
  UniformMethod uniformMethod = UniformMethod::Auto;
  /// The hull-cut tables take the cells of low excess from the level sets
  /// (a lookup instead of split scans), built while each level settles
  /// cells worth its work: -1 (the default). With `uniformMethod` Hulls, a
  /// number caps the levels built (0: none; tests cross-check them).
  int64_t hullSettleLevels = -1;
  /// Uniform chains: when the level sets on the exact memory unit (the gcd
  /// of the state sizes) would exceed the limits, they are tried on this
  /// many memory levels (a coarser unit, sizes rounded up; `Plan::exact`
  /// false) before the plain dynamic program. 0 disables.
  int64_t coarseLevels = 16384;
  /// Chains whose state sizes differ per step: the most steps the plain
  /// dynamic program lets a segment hand back to its parent (which then
  /// recomputes them from an earlier state). -1 (the default): as many as
  /// the work and table limits below allow, up to T (the full recurrence);
  /// each step more adds tables and split options, see docs/planner.md.
  int64_t maxHandback = -1;
  /// Work limit (moves tried, before pruning, about 1-3 ns each) for the
  /// automatic choice of maxHandback; the tables together stay within
  /// 2 x maxTableCells too. Handing back is never cut below 0 (the program
  /// without it), whatever its work.
  int64_t maxHandbackWork = int64_t(1) << 30;
  /// The most actions a schedule may have; beyond this many, plan() fails
  /// with an error that says so instead of exhausting memory. A run of
  /// forward steps is one action and every split of the recursion adds a
  /// few, so a schedule has at most about 8 actions a step whatever the
  /// budget (T = 100,000 at the working set alone: 5 x 10^9 forward steps
  /// in 400,000 actions); the default, 2^27 actions (4 GiB), refuses only
  /// chains of more than about 16 million steps.
  int64_t maxActions = int64_t(1) << 27;
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
