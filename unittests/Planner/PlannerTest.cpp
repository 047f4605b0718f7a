//===- PlannerTest.cpp - the planner against independent oracles ----------===//

#include "ExhaustiveSearch.h"

#include "bptt/Planner/Planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <random>

using namespace bptt::planner;
using bptt::planner::testing::exhaustiveForwardCost;
using bptt::planner::testing::StoreRules;

namespace {

Plan planOrDie(const Chain &chain, int64_t budget, Strategy strategy,
               const PlannerOptions &options = {}) {
  llvm::Expected<Plan> p = plan(chain, budget, strategy, options);
  if (!p) {
    ADD_FAILURE() << "plan failed: " << llvm::toString(p.takeError());
    return Plan();
  }
  return std::move(*p);
}

StoreRules rulesOf(Strategy s) {
  return {s != Strategy::ISM, s != Strategy::HSM};
}

/// Holds the planner to the exhaustive search for every budget from the
/// minimum up to store-all (and one beyond), for HSM, ISM and MSM: the
/// planner must reach the optimum (the search is always a lower bound), and
/// the predicted execution must be what the simulator measures. Returns the
/// number of (strategy, budget) cases checked.
int checkAgainstOracle(const Chain &chain, const std::string &what) {
  int cases = 0;
  int64_t lo = chain.workingSetBytes();
  int64_t hi = chain.storeAllBytes() + 1;
  for (Strategy strategy : {Strategy::MSM, Strategy::HSM, Strategy::ISM}) {
    for (int64_t budget = lo; budget <= hi; ++budget) {
      std::optional<double> best =
          exhaustiveForwardCost(chain, budget, rulesOf(strategy));
      EXPECT_TRUE(best.has_value()) << what << " budget " << budget;
      if (!best)
        return cases;
      ++cases;
      Plan p = planOrDie(chain, budget, strategy);
      EXPECT_TRUE(p.exact);
      std::string where = what + " strategy " + stringify(strategy).str() +
                          " budget " + std::to_string(budget);
      EXPECT_NEAR(p.predicted.forwardCost, *best, 1e-9) << where;
      llvm::Expected<Execution> sim = simulate(chain, p.actions);
      EXPECT_TRUE(static_cast<bool>(sim)) << llvm::toString(sim.takeError());
      if (!sim)
        return cases;
      EXPECT_DOUBLE_EQ(sim->forwardCost, p.predicted.forwardCost);
      EXPECT_EQ(sim->peakBytes, p.predicted.peakBytes);
      EXPECT_LE(sim->peakBytes, budget);
    }
  }
  return cases;
}

TEST(PlannerExhaustive, UniformChainsEveryBudget) {
  // hidden = 2 bytes; internal/hidden ratios α = 1, 1.5, 2, 3.5.
  for (int64_t internal : {2, 3, 4, 7})
    for (int64_t T = 0; T <= 10; ++T)
      checkAgainstOracle(Chain::uniform(T, 2, internal),
                         "T=" + std::to_string(T) +
                             " internal=" + std::to_string(internal));
}

// T = 11 and 12 at the same four ratios, one test each: these searches take
// seconds to a minute, and separate tests run in parallel under lit.
class PlannerExhaustiveLong
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(PlannerExhaustiveLong, UniformChainEveryBudget) {
  auto [T, internal] = GetParam();
  Chain chain = Chain::uniform(T, 2, internal);
  int cases = checkAgainstOracle(chain, "T=" + std::to_string(T) +
                                            " internal=" +
                                            std::to_string(internal));
  // Three strategies at every budget from the working set to one past
  // store-all: a search that found nothing would have stopped the count.
  EXPECT_EQ(cases,
            3 * (chain.storeAllBytes() + 2 - chain.workingSetBytes()));
}

INSTANTIATE_TEST_SUITE_P(
    T11AndT12, PlannerExhaustiveLong,
    ::testing::Combine(::testing::Values<int64_t>(11, 12),
                       ::testing::Values<int64_t>(2, 3, 4, 7)),
    [](const ::testing::TestParamInfo<std::tuple<int64_t, int64_t>> &info) {
      return "T" + std::to_string(std::get<0>(info.param)) + "_internal" +
             std::to_string(std::get<1>(info.param));
    });

/// A random chain with per-step costs and sizes: forward costs 1..maxCost,
/// |h_t| in 1..maxHidden, |s_t| = |h_t| + 0..maxExtra; with `bimodal`, |h_t|
/// is 1 or 4 (small and large states side by side).
Chain randomChain(std::mt19937 &rng, int64_t T, int maxCost, int maxHidden,
                  int maxExtra, bool bimodal = false) {
  std::uniform_int_distribution<int> cost(1, maxCost), hidden(1, maxHidden),
      extra(0, maxExtra);
  Chain c;
  c.steps = T;
  c.forwardCost.clear();
  c.backwardCost.clear();
  c.hiddenBytes.clear();
  c.internalBytes.clear();
  for (int64_t t = 0; t < T; ++t) {
    c.forwardCost.push_back(cost(rng));
    c.backwardCost.push_back(2.0 * cost(rng));
    int64_t h = hidden(rng);
    if (bimodal)
      h = h <= maxHidden / 2 ? 1 : 4;
    c.hiddenBytes.push_back(h);
    c.internalBytes.push_back(h + extra(rng));
  }
  return c;
}

// Chains whose state sizes vary per step. Here the best schedules may free a
// stored state at its last use as a segment start and leave the steps before
// the next state stored to the parent, which recomputes them from an earlier
// state (docs/planner.md, "Handing steps back"). Without that move the
// dynamic program was above the optimum in 18 of these 3,213 cases (worst by
// 11%); with it, at these sizes the full recurrence (handback = T), it equals
// the optimum in every case.
TEST(PlannerExhaustive, HeterogeneousChains) {
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> cost(1, 6), hidden(1, 3), extra(0, 4);
  int cases = 0;
  for (int trial = 0; trial < 40; ++trial) {
    int64_t T = 3 + trial % 10; // 3..12
    Chain c;
    c.steps = T;
    c.forwardCost.clear();
    c.backwardCost.clear();
    c.hiddenBytes.clear();
    c.internalBytes.clear();
    for (int64_t t = 0; t < T; ++t) {
      c.forwardCost.push_back(cost(rng));
      c.backwardCost.push_back(2.0 * cost(rng));
      int64_t h = hidden(rng);
      c.hiddenBytes.push_back(h);
      c.internalBytes.push_back(h + extra(rng));
    }
    // A costly last step, as in a model whose head is expensive.
    if (trial % 3 == 0)
      c.forwardCost.back() = 20;
    EXPECT_EQ(planOrDie(c, c.workingSetBytes(), Strategy::MSM).handback, T);
    cases +=
        checkAgainstOracle(c, "heterogeneous trial " + std::to_string(trial));
  }
  std::cout << "heterogeneous: " << cases << " cases checked\n";
  EXPECT_EQ(cases, 3213);
}

// More random chains, with wider costs and sizes and with small and large
// states mixed: the ones that needed the longest handbacks (3 and 4 steps)
// while the move was developed came from these distributions.
TEST(PlannerExhaustive, HeterogeneousChainsWideSizes) {
  std::mt19937 rng(22);
  int cases = 0;
  for (int trial = 0; trial < 24; ++trial) {
    int64_t T = 6 + trial % 6; // 6..11
    Chain c = randomChain(rng, T, 20, 6, 6);
    cases += checkAgainstOracle(c, "wide trial " + std::to_string(trial));
  }
  std::cout << "wide sizes: " << cases << " cases checked\n";
}

TEST(PlannerExhaustive, HeterogeneousChainsMixedSizes) {
  std::mt19937 rng(13);
  int cases = 0;
  for (int trial = 0; trial < 24; ++trial) {
    int64_t T = 6 + trial % 6; // 6..11
    Chain c = randomChain(rng, T, 6, 4, 8, /*bimodal=*/true);
    cases += checkAgainstOracle(c, "mixed trial " + std::to_string(trial));
  }
  std::cout << "mixed sizes: " << cases << " cases checked\n";
}

// T = 12 with wide sizes: the longest chains the exhaustive search takes in
// reasonable time.
TEST(PlannerExhaustive, HeterogeneousChainsT12) {
  std::mt19937 rng(1212);
  int cases = 0;
  for (int trial = 0; trial < 4; ++trial)
    cases += checkAgainstOracle(randomChain(rng, 12, 9, 4, 5),
                                "T=12 trial " + std::to_string(trial));
  std::cout << "T = 12: " << cases << " cases checked\n";
}

// A bounded handback (what large problems get) plans from a subset of the
// full recurrence's schedules: never below the optimum, never above the
// program without handback, always valid and within budget.
TEST(PlannerHandback, BoundedHandbackBetweenNoneAndFull) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 3; ++trial) {
    Chain c = randomChain(rng, 16 + 4 * trial, 6, 3, 4);
    int64_t lo = c.workingSetBytes(), hi = c.storeAllBytes();
    int64_t step = std::max<int64_t>(1, (hi - lo) / 12);
    for (Strategy strategy : {Strategy::MSM, Strategy::HSM, Strategy::ISM})
      for (int64_t budget = lo; budget < hi; budget += step) {
        double previous = std::numeric_limits<double>::infinity();
        for (int64_t handback : {int64_t(0), int64_t(1), int64_t(2),
                                 int64_t(4), c.steps}) {
          PlannerOptions options;
          options.maxHandback = handback;
          Plan p = planOrDie(c, budget, strategy, options);
          std::string where = "trial " + std::to_string(trial) + " " +
                              stringify(strategy).str() + " budget " +
                              std::to_string(budget) + " handback " +
                              std::to_string(handback);
          EXPECT_EQ(p.handback, handback) << where;
          EXPECT_LE(p.predicted.peakBytes, budget) << where;
          // A larger bound only adds moves.
          EXPECT_LE(p.predicted.forwardCost, previous + 1e-9) << where;
          previous = p.predicted.forwardCost;
        }
      }
  }
}

// Equal sizes never hand back (the program without it equals the exhaustive
// search there); elsewhere the automatic bound is the largest whose work fits
// the limit, and no handback at all when even one step does not.
TEST(PlannerHandback, WhereItApplies) {
  Chain sizes = Chain::uniform(9, 2, 5);
  sizes.forwardCost = {1, 1, 4, 1, 1, 9, 1, 2, 3};
  EXPECT_EQ(planOrDie(sizes, sizes.workingSetBytes() + 7, Strategy::MSM)
                .handback,
            0);
  std::mt19937 rng(9);
  Chain c = randomChain(rng, 60, 6, 3, 4);
  int64_t budget = c.storeAllBytes() / 4;
  Plan automatic = planOrDie(c, budget, Strategy::MSM);
  EXPECT_EQ(automatic.method, "dp");
  EXPECT_GT(automatic.handback, 0);
  EXPECT_LT(automatic.handback, c.steps);
  PlannerOptions tight;
  tight.maxHandbackWork = 1;
  Plan none = planOrDie(c, budget, Strategy::MSM, tight);
  EXPECT_EQ(none.handback, 0);
  EXPECT_LE(automatic.predicted.forwardCost, none.predicted.forwardCost);
}

TEST(PlannerExhaustive, HeterogeneousCostsUniformSizes) {
  Chain c = Chain::uniform(9, 2, 5);
  c.forwardCost = {1, 1, 4, 1, 1, 9, 1, 2, 3};
  c.backwardCost = {2, 2, 2, 2, 2, 2, 2, 2, 2};
  checkAgainstOracle(c, "costs vary, sizes do not");
}

TEST(PlannerRevolve, HSMEqualsBinomialClosedFormPlusT) {
  std::vector<int64_t> lengths;
  for (int64_t T = 1; T <= 64; ++T)
    lengths.push_back(T);
  for (int64_t T : {100, 127, 255, 500, 777, 1000})
    lengths.push_back(T);
  for (int64_t T : lengths) {
    Chain c = Chain::uniform(T, 1, 4);
    for (int64_t slots = 0; slots <= 20; ++slots) {
      int64_t budget = c.workingSetBytes() + slots;
      Plan hsm = planOrDie(c, budget, Strategy::HSM);
      // Paper convention: m = slots + 1 checkpoints, h_0's included.
      EXPECT_EQ(hsm.predicted.forwardSteps, revolveForwardSteps(T, slots + 1))
          << "T=" << T << " slots=" << slots;
      Plan revolve = planOrDie(c, budget, Strategy::Revolve);
      EXPECT_EQ(revolve.predicted.forwardSteps, hsm.predicted.forwardSteps)
          << "T=" << T << " slots=" << slots;
    }
  }
}

TEST(PlannerRevolve, ClosedFormKnownValues) {
  // One checkpoint (h_0 only): every backward step re-runs from the start.
  EXPECT_EQ(revolveForwardSteps(10, 1), 55);
  EXPECT_EQ(revolveForwardSteps(1, 5), 1);
  EXPECT_EQ(revolveForwardSteps(0, 3), 0);
  // Small cases against the exhaustive search restricted to hidden states.
  for (int64_t T = 1; T <= 9; ++T)
    for (int64_t slots = 0; slots <= 4; ++slots) {
      Chain c = Chain::uniform(T, 1, 100);
      auto best = exhaustiveForwardCost(c, c.workingSetBytes() + slots,
                                        StoreRules{true, false});
      ASSERT_TRUE(best);
      EXPECT_EQ(*best, revolveForwardSteps(T, slots + 1))
          << "T=" << T << " slots=" << slots;
    }
}

TEST(PlannerProperties, MSMDominatesHSMAndISM) {
  for (int64_t internal : {1, 3, 8})
    for (int64_t T : {17, 60, 200}) {
      Chain c = Chain::uniform(T, 1, internal);
      int64_t step = std::max<int64_t>(1, (c.storeAllBytes() -
                                           c.workingSetBytes()) / 40);
      for (int64_t budget = c.workingSetBytes();
           budget <= c.storeAllBytes() + step; budget += step) {
        double msm = planOrDie(c, budget, Strategy::MSM).predicted.forwardCost;
        double hsm = planOrDie(c, budget, Strategy::HSM).predicted.forwardCost;
        double ism = planOrDie(c, budget, Strategy::ISM).predicted.forwardCost;
        EXPECT_LE(msm, std::min(hsm, ism))
            << "T=" << T << " internal=" << internal << " budget=" << budget;
      }
    }
}

TEST(PlannerProperties, PaperBoundHolds) {
  // C(t, m) <= m · t^(1 + 1/m), m checkpoints including the start.
  for (int64_t T : {2, 10, 100, 1000})
    for (int64_t m = 1; m <= 12; ++m) {
      Chain c = Chain::uniform(T, 1, 3);
      Plan p = planOrDie(c, c.workingSetBytes() + (m - 1), Strategy::HSM);
      EXPECT_LE(p.predicted.forwardSteps,
                m * std::pow(double(T), 1.0 + 1.0 / m))
          << "T=" << T << " m=" << m;
    }
}

TEST(PlannerBudget, TooSmallNamesTheMinimum) {
  Chain c = Chain::uniform(100, 1024, 4096, /*workspace=*/512);
  int64_t w = c.workingSetBytes();
  EXPECT_EQ(w, 512 + 4 * 1024 + 4096);
  for (Strategy s : allStrategies()) {
    int64_t minimum = minimumBudget(c, s);
    llvm::Expected<Plan> p = plan(c, minimum - 1, s);
    ASSERT_FALSE(static_cast<bool>(p));
    std::string msg = llvm::toString(p.takeError());
    EXPECT_NE(msg.find(std::to_string(minimum) + " bytes"), std::string::npos)
        << msg;
    EXPECT_TRUE(static_cast<bool>(plan(c, minimum, s))) << stringify(s).str();
  }
}

TEST(PlannerBudget, StoreAllBudgetGivesStoreAll) {
  Chain c = Chain::uniform(50, 8, 24);
  Plan all = planOrDie(c, c.storeAllBytes(), Strategy::All);
  EXPECT_EQ(all.predicted.forwardSteps, 50);
  EXPECT_EQ(all.predicted.peakBytes, c.storeAllBytes());
  for (int64_t budget : {c.storeAllBytes(), c.storeAllBytes() * 10}) {
    Plan msm = planOrDie(c, budget, Strategy::MSM);
    EXPECT_EQ(msm.actions, all.actions);
  }
}

TEST(PlannerChen, SqrtSegments) {
  Chain c = Chain::uniform(100, 4, 10);
  Plan p = planOrDie(c, c.storeAllBytes(), Strategy::Chen);
  // 10 segments of 10: 9 stored boundaries and 9 kept internal states; the
  // first nine segments are run twice.
  EXPECT_EQ(p.predicted.forwardSteps, 100 + 90);
  EXPECT_EQ(p.predicted.poolBytes, 9 * 4 + 9 * 10);
  EXPECT_EQ(minimumBudget(c, Strategy::Chen),
            c.workingSetBytes() + 9 * 4 + 9 * 10);
}

TEST(PlannerErrors, RevolveNeedsAUniformChain) {
  Chain c = Chain::uniform(5, 1, 2);
  c.forwardCost = {1, 2, 1, 2, 1};
  llvm::Expected<Plan> p = plan(c, c.storeAllBytes(), Strategy::Revolve);
  ASSERT_FALSE(static_cast<bool>(p));
  EXPECT_NE(llvm::toString(p.takeError()).find("use 'hsm'"),
            std::string::npos);
}

TEST(PlannerErrors, InvalidChains) {
  Chain c = Chain::uniform(5, 4, 2); // internal smaller than hidden
  EXPECT_FALSE(static_cast<bool>(plan(c, 1 << 20)));
  Chain d = Chain::uniform(5, 4, 8);
  d.forwardCost = {1, 2}; // neither 1 nor T values
  llvm::Expected<Plan> p = plan(d, 1 << 20);
  ASSERT_FALSE(static_cast<bool>(p));
  EXPECT_NE(llvm::toString(p.takeError()).find("forward costs"),
            std::string::npos);
}

TEST(PlannerCoarse, CoarseUnitsStayValidAndWithinBudget) {
  Chain c = Chain::uniform(300, 3, 7);
  int64_t budget = c.workingSetBytes() + 400;
  Plan exact = planOrDie(c, budget, Strategy::MSM);
  ASSERT_TRUE(exact.exact);
  PlannerOptions small;
  small.maxTableCells = 301 * 20;
  // The coarsening belongs to the plain dynamic program; the uniform fast
  // path needs no table over memory (next test).
  small.uniformFastPath = false;
  Plan coarse = planOrDie(c, budget, Strategy::MSM, small);
  EXPECT_FALSE(coarse.exact);
  EXPECT_GT(coarse.memoryUnit, 1);
  EXPECT_LE(coarse.predicted.peakBytes, budget);
  EXPECT_GE(coarse.predicted.forwardCost, exact.predicted.forwardCost);
}

TEST(PlannerCoarse, UniformFastPathStaysExactUnderTheCellLimit) {
  Chain c = Chain::uniform(300, 3, 7);
  int64_t budget = c.workingSetBytes() + 400;
  PlannerOptions small;
  small.maxTableCells = 301 * 20;
  Plan fast = planOrDie(c, budget, Strategy::MSM, small);
  EXPECT_TRUE(fast.exact);
  PlannerOptions plain;
  plain.uniformFastPath = false;
  EXPECT_EQ(fast.predicted.forwardSteps,
            planOrDie(c, budget, Strategy::MSM, plain).predicted.forwardSteps);
}

/// The uniform fast paths (Revolve's closed form for HSM; for MSM and ISM
/// the excess level sets and the hull-cut tables) against the plain dynamic
/// program, which the exhaustive search validates for T <= 12: the same
/// optimal cost and the same schedule at every budget tried, and every plan
/// valid (plan() simulates it) and within budget.
void crossCheckFastPath(const Chain &c, int64_t budgetStep,
                        const std::string &what) {
  PlannerOptions plain;
  plain.uniformFastPath = false;
  // Each fast method however long it takes (by default the plain program
  // plans small problems whose levels would take longer). The hull-cut
  // tables three ways: their low-excess cells settled by as many levels as
  // pay (which on these short chains is often all of them), by one level,
  // and by none, every cell from split scans.
  PlannerOptions levels, hulls, hullsOneLevel, hullsAlone;
  levels.uniformMethod = PlannerOptions::UniformMethod::Levels;
  hulls.uniformMethod = PlannerOptions::UniformMethod::Hulls;
  hullsOneLevel = hullsAlone = hulls;
  hullsOneLevel.hullSettleLevels = 1;
  hullsAlone.hullSettleLevels = 0;
  int64_t lo = c.workingSetBytes(), hi = c.storeAllBytes();
  for (int64_t budget = lo; budget <= hi + 1;
       budget += budget < lo + 12 ? 1 : budgetStep)
    for (Strategy strategy : {Strategy::MSM, Strategy::ISM, Strategy::HSM}) {
      Plan slow = planOrDie(c, budget, strategy, plain);
      EXPECT_EQ(slow.method, budget >= hi && strategy != Strategy::HSM
                                 ? "store-all"
                                 : "dp");
      for (const PlannerOptions *options :
           {&levels, &hulls, &hullsOneLevel, &hullsAlone}) {
        Plan fast = planOrDie(c, budget, strategy, *options);
        if (c.steps > 0 && budget < hi) {
          EXPECT_EQ(fast.method, strategy == Strategy::HSM ? "revolve"
                                 : options == &levels      ? "levels"
                                                           : "hulls");
        }
        std::string where = what + " " + stringify(strategy).str() +
                            " budget " + std::to_string(budget) + " " +
                            fast.method;
        ASSERT_TRUE(fast.exact && slow.exact) << where;
        ASSERT_EQ(fast.predicted.forwardSteps, slow.predicted.forwardSteps)
            << where;
        EXPECT_DOUBLE_EQ(fast.predicted.forwardCost,
                         slow.predicted.forwardCost)
            << where;
        EXPECT_LE(fast.predicted.peakBytes, budget) << where;
        // All take the first optimal move in the same order, so the
        // schedules agree too, not only their cost.
        EXPECT_EQ(fast.actions, slow.actions) << where;
      }
    }
}

TEST(PlannerFastPath, EqualsPlainDynamicProgramShortChains) {
  // Every T up to 40, every budget, sizes with |s|/|h| = 1, 1.5, 2, 3.5, 4.
  for (auto [hidden, internal] : std::vector<std::pair<int64_t, int64_t>>{
           {2, 2}, {2, 3}, {2, 4}, {2, 7}, {1, 4}})
    for (int64_t T = 0; T <= 40; ++T)
      crossCheckFastPath(Chain::uniform(T, hidden, internal), 1,
                         "T=" + std::to_string(T) + " h=" +
                             std::to_string(hidden) + " s=" +
                             std::to_string(internal));
}

TEST(PlannerFastPath, EqualsPlainDynamicProgramLongChains) {
  // Longer chains at spread budgets; odd sizes make the memory unit their
  // gcd and the working set include a workspace.
  struct Case {
    int64_t T, hidden, internal, workspace;
  };
  for (Case k : {Case{97, 2, 7, 0}, Case{128, 1, 4, 0}, Case{150, 3, 5, 1},
                 Case{200, 4, 9, 0}, Case{256, 1, 1, 0},
                 Case{300, 1, 4, 3}}) {
    Chain c = Chain::uniform(k.T, k.hidden, k.internal, k.workspace);
    int64_t step = std::max<int64_t>(
        1, (c.storeAllBytes() - c.workingSetBytes()) / 25);
    crossCheckFastPath(c, step,
                       "T=" + std::to_string(k.T) + " h=" +
                           std::to_string(k.hidden) + " s=" +
                           std::to_string(k.internal));
  }
}

TEST(PlannerFastPath, EqualsPlainDynamicProgramDeepRegime) {
  // T = 1000 at 1-3% of store-all on the benchmark's alpha = 4: steps run up
  // to four times, the chain's excess over the two-sweep bound is in the
  // hundreds (856 levels at 1%).
  PlannerOptions plain, levels, hulls, hullsAlone;
  plain.uniformFastPath = false;
  levels.uniformMethod = PlannerOptions::UniformMethod::Levels;
  hulls.uniformMethod = PlannerOptions::UniformMethod::Hulls;
  hullsAlone = hulls;
  hullsAlone.hullSettleLevels = 0;
  Chain c = Chain::uniform(1000, 1, 4);
  for (int percent : {1, 2, 3})
    for (Strategy strategy : {Strategy::MSM, Strategy::ISM}) {
      int64_t budget = c.storeAllBytes() * percent / 100;
      Plan slow = planOrDie(c, budget, strategy, plain);
      for (const PlannerOptions *options : {&levels, &hulls, &hullsAlone}) {
        Plan fast = planOrDie(c, budget, strategy, *options);
        EXPECT_EQ(fast.method, options == &levels ? "levels" : "hulls");
        EXPECT_EQ(fast.predicted.forwardSteps, slow.predicted.forwardSteps)
            << percent << "% " << stringify(strategy).str() << " "
            << fast.method;
        EXPECT_EQ(fast.actions, slow.actions)
            << percent << "% " << stringify(strategy).str() << " "
            << fast.method;
      }
    }
}

TEST(PlannerFastPath, HullsWhereStepsRunManyTimes) {
  // T = 3000 at 0.2% to 1.2% of store-all: steps run 2.2 to 8.3 times on
  // average, where the level sets' work (the square of the excess) is
  // largest (0.5-1.5 s each, the hull-cut tables 3-50 ms). The exact fast
  // methods agree, schedule for schedule: the levels, and the hull-cut
  // tables, which plan by default with their low-excess cells settled by
  // the levels (2% to 30% of them here) and, forced, with none settled.
  PlannerOptions levels, hullsAlone;
  levels.uniformMethod = PlannerOptions::UniformMethod::Levels;
  hullsAlone.uniformMethod = PlannerOptions::UniformMethod::Hulls;
  hullsAlone.hullSettleLevels = 0;
  Chain c = Chain::uniform(3000, 1, 4);
  for (double percent : {0.2, 0.3, 0.9, 1.2})
    for (Strategy strategy : {Strategy::MSM, Strategy::ISM}) {
      int64_t budget =
          static_cast<int64_t>(double(c.storeAllBytes()) * percent / 100);
      Plan byDefault = planOrDie(c, budget, strategy);
      Plan byLevels = planOrDie(c, budget, strategy, levels);
      Plan byHullsAlone = planOrDie(c, budget, strategy, hullsAlone);
      std::string where =
          std::to_string(percent) + "% " + stringify(strategy).str();
      EXPECT_EQ(byDefault.method, "hulls") << where;
      EXPECT_EQ(byHullsAlone.method, "hulls") << where;
      EXPECT_GT(byDefault.predicted.forwardSteps, 2 * 3000) << where;
      EXPECT_EQ(byDefault.predicted.forwardSteps,
                byLevels.predicted.forwardSteps)
          << where;
      EXPECT_EQ(byDefault.actions, byLevels.actions) << where;
      EXPECT_EQ(byHullsAlone.actions, byLevels.actions) << where;
    }
}

TEST(Planner, ScheduleTooLongIsAnError) {
  // Past PlannerOptions::maxActions plan() says so instead of exhausting
  // memory. At the working set alone the schedule is T(T+1)/2 forward steps
  // in four actions a step (restore h_0, a forward run, a step into the
  // working set, backward): 400 here. Within the limit it plans.
  Chain c = Chain::uniform(100, 1, 4);
  PlannerOptions small;
  small.maxActions = 100;
  for (Strategy strategy : {Strategy::MSM, Strategy::HSM, Strategy::ISM}) {
    int64_t budget = minimumBudget(c, strategy);
    llvm::Expected<Plan> p = plan(c, budget, strategy, small);
    ASSERT_FALSE(bool(p)) << stringify(strategy).str();
    std::string message = llvm::toString(p.takeError());
    EXPECT_NE(message.find("more than 100 actions"), std::string::npos)
        << message;
    EXPECT_NE(message.find("raise the budget"), std::string::npos) << message;
    Plan fits = planOrDie(c, budget, strategy);
    EXPECT_EQ(fits.predicted.forwardSteps, 100 * 101 / 2)
        << stringify(strategy).str();
    EXPECT_EQ(fits.actions.size(), 4u * 100 - 1) << stringify(strategy).str();
  }
}

TEST(Planner, ForwardRunsKeepSchedulesLinearInT) {
  // T = 100,000 at the working set alone: 5 x 10^9 forward steps, each run
  // one action (the cost of a uniform run is one product in the simulator).
  const int64_t T = 100000;
  Chain c = Chain::uniform(T, 1, 4);
  Plan p = planOrDie(c, c.workingSetBytes(), Strategy::MSM);
  EXPECT_EQ(p.predicted.forwardSteps, T * (T + 1) / 2);
  EXPECT_EQ(p.predicted.forwardCost, double(T * (T + 1) / 2));
  EXPECT_LE(int64_t(p.actions.size()), 4 * T);
  // No two runs are adjacent in the list (the emitter extends a run).
  for (size_t i = 1; i < p.actions.size(); ++i) {
    if (p.actions[i].kind == ActionKind::Forward) {
      ASSERT_NE(p.actions[i - 1].kind, ActionKind::Forward) << i;
    }
  }
  // A heterogeneous chain sums its runs step by step: the same schedule on
  // per-step costs of 1 costs the same.
  Chain het = Chain::uniform(300, 1, 4);
  het.forwardCost.assign(300, 1.0);
  Plan hp = planOrDie(het, het.workingSetBytes(), Strategy::HSM);
  EXPECT_EQ(hp.predicted.forwardCost, 300.0 * 301 / 2);
}

TEST(PlannerFastPath, LongChainPlansStayValid) {
  // Nesting tens of thousands deep (the emitter keeps an explicit stack);
  // T = 20000 at 50%: level 0 covers it, cost 2T - (K + 1).
  Chain c = Chain::uniform(20000, 1, 4);
  int64_t budget = c.storeAllBytes() / 2;
  Plan p = planOrDie(c, budget, Strategy::MSM);
  int64_t K = (budget - c.workingSetBytes()) / 4;
  EXPECT_EQ(p.predicted.forwardSteps, 2 * 20000 - (K + 1));
  EXPECT_LE(p.predicted.peakBytes, budget);
  // HSM there holds about 20,000 hidden states at once, nested.
  Plan hsm = planOrDie(c, budget, Strategy::HSM);
  EXPECT_EQ(hsm.method, "revolve");
  EXPECT_GT(hsm.predicted.maxLiveSlots, 10000);
  EXPECT_EQ(hsm.predicted.forwardSteps,
            revolveForwardSteps(20000, (budget - c.workingSetBytes()) + 1));
}

TEST(Simulator, RejectsInvalidSchedules) {
  Chain c = Chain::uniform(2, 4, 8);
  using K = ActionKind;
  auto error = [&](std::vector<Action> actions) {
    llvm::Expected<Execution> e = simulate(c, actions);
    if (e)
      return std::string();
    return llvm::toString(e.takeError());
  };
  // Valid: keep s_1, run step 2 into the working set, backward 2, 1.
  std::vector<Action> good = {{K::Restore, 0, -1},  {K::ForwardKeep, 1, 0},
                              {K::ForwardToWork, 2, -1}, {K::Backward, 2, -1},
                              {K::Backward, 1, 0},  {K::Free, 0, 0}};
  EXPECT_EQ(error(good), "");
  // Backward out of order.
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::ForwardToWork, 1, -1},
                   {K::Backward, 1, -1}})
                .find("expected step 2"),
            std::string::npos);
  // Backward without its internal state.
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::Forward, 1, -1},
                   {K::Backward, 2, -1}})
                .find("needs s_2"),
            std::string::npos);
  // Forward from the wrong hidden state.
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::Forward, 2, -1}}).find("needs h_1"),
            std::string::npos);
  // Overlapping slots.
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::ForwardKeep, 1, 0},
                   {K::StoreHidden, 1, 4}})
                .find("overlaps"),
            std::string::npos);
  // A slot never freed.
  std::vector<Action> leak(good.begin(), good.end() - 1);
  EXPECT_NE(error(leak).find("still held"), std::string::npos);
  // Stopping early.
  EXPECT_NE(error({{K::Restore, 0, -1}}).find("before backward step 2"),
            std::string::npos);
  // Forward runs: valid as one action, not empty, not past T, and only
  // forward actions run several steps.
  EXPECT_EQ(error({{K::Restore, 0, -1}, {K::Forward, 1, -1, 1},
                   {K::ForwardToWork, 2, -1}, {K::Backward, 2, -1},
                   {K::Restore, 0, -1}, {K::ForwardToWork, 1, -1},
                   {K::Backward, 1, -1}}),
            "");
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::Forward, 1, -1, 0}})
                .find("at least one step"),
            std::string::npos);
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::Forward, 1, -1, 3}})
                .find("forward steps 1..3 run past step 2"),
            std::string::npos);
  EXPECT_NE(error({{K::Restore, 0, -1}, {K::ForwardKeep, 1, 0, 2}})
                .find("only a forward run covers several steps"),
            std::string::npos);
}

} // namespace

/// State sizes with a small common divisor (the benchmark's LSTM at B = 128,
/// H = 1024 on the GPU: |h| = 1 MiB, |s| = 4,260,864 B, gcd 1 KiB) give the
/// exact methods about 400,000 memory levels at a 1% budget, and then both
/// take far too long. The level sets run on coarser units instead: a valid
/// plan within the budget, marked inexact, within a few steps of the
/// two-sweep lower bound 2T - K - 1 (K internal states fit).
TEST(Planner, CoarseUnitsWhenTheExactUnitIsTooFine) {
  const int64_t T = 10000, hidden = 1048576, internal = 4260864;
  Chain c = Chain::uniform(T, hidden, internal, /*workspace=*/2229764);
  int64_t budget = 426150640;
  Plan p = planOrDie(c, budget, Strategy::MSM, PlannerOptions());
  EXPECT_EQ(p.method, "levels (coarse units)");
  EXPECT_FALSE(p.exact);
  EXPECT_LE(p.predicted.peakBytes, budget);
  int64_t K = (budget - c.workingSetBytes()) / internal;
  int64_t lowerBound = 2 * T - K - 1;
  EXPECT_GE(p.predicted.forwardSteps, lowerBound);
  EXPECT_LE(p.predicted.forwardSteps, lowerBound + 50);
}
