//===- PlannerBenchmark.cpp - how fast the planner plans ------------------===//
//
// Plans an LSTM-sized chain (B = 64, H = 512, fp32: h+c = 256 KiB, s_t =
// 1 MiB, so alpha = 4 and the memory unit is |h|) at budgets given as a
// percentage of store-all. Counters: forward steps of the plan (its cost)
// and per step, whether it is exact, the planner's own tables in MiB, the
// number of actions and the most slots live at once; the label names the
// method ("levels", "hulls", "revolve", "dp"). The deep grids give the budget
// in basis points (0.01%) of store-all: there steps run three times or more;
// the tightest rows give it as the working set plus a few hidden states.
// Run with benchmarks/run-planner-benchmark.sh.
//
//===----------------------------------------------------------------------===//

#include "bptt/Planner/Planner.h"

#include <benchmark/benchmark.h>

#include <random>

using namespace bptt::planner;

/// How a row's second argument gives the budget.
enum class Budget {
  Percent,      // of store-all
  BasisPoints,  // of store-all (0.01%)
  HiddenStates, // the working set plus this many hidden states
};

static void planChain(benchmark::State &state, Strategy strategy,
                      bool fastPath, Budget unit = Budget::Percent) {
  int64_t T = state.range(0);
  Chain chain = Chain::uniform(T, 2 * 64 * 512 * 4, 8 * 64 * 512 * 4);
  int64_t budget = 0;
  switch (unit) {
  case Budget::Percent:
  case Budget::BasisPoints:
    budget = static_cast<int64_t>(
        state.range(1) / (unit == Budget::Percent ? 100.0 : 10000.0) *
        chain.storeAllBytes());
    break;
  case Budget::HiddenStates:
    budget = chain.workingSetBytes() + state.range(1) * chain.hidden(1);
    break;
  }
  PlannerOptions options;
  options.uniformFastPath = fastPath;
  Plan p;
  for (auto _ : state) {
    llvm::Expected<Plan> result = plan(chain, budget, strategy, options);
    if (!result) {
      state.SkipWithError(llvm::toString(result.takeError()).c_str());
      return;
    }
    p = std::move(*result);
    benchmark::DoNotOptimize(p.actions.data());
  }
  state.counters["fwd_steps"] = double(p.predicted.forwardSteps);
  state.counters["fwd_per_step"] = double(p.predicted.forwardSteps) / T;
  state.counters["exact"] = p.exact;
  state.counters["table_MiB"] = p.tableBytes / (1024.0 * 1024.0);
  state.counters["actions"] = double(p.actions.size());
  // The emitter's explicit stack holds one frame (56 bytes) per live slot.
  state.counters["slots"] = double(p.predicted.maxLiveSlots);
  state.SetLabel(p.method);
}

/// A heterogeneous chain (per-step costs 1..6, |h_t| 1..3 units, |s_t| =
/// |h_t| + 0..4 units, a unit of 64 KiB), the same for every run: these take
/// the plain dynamic program over (s, e) pairs.
static Chain heterogeneousChain(int64_t T) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> cost(1, 6), hidden(1, 3), extra(0, 4);
  const int64_t unit = 64 * 1024;
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
    c.hiddenBytes.push_back(h * unit);
    c.internalBytes.push_back((h + extra(rng)) * unit);
  }
  return c;
}

static void planHeterogeneous(benchmark::State &state, Strategy strategy) {
  int64_t T = state.range(0);
  Chain chain = heterogeneousChain(T);
  int64_t budget =
      static_cast<int64_t>(state.range(1) / 100.0 * chain.storeAllBytes());
  Plan p;
  for (auto _ : state) {
    llvm::Expected<Plan> result = plan(chain, budget, strategy);
    if (!result) {
      state.SkipWithError(llvm::toString(result.takeError()).c_str());
      return;
    }
    p = std::move(*result);
    benchmark::DoNotOptimize(p.actions.data());
  }
  state.counters["fwd_cost"] = p.predicted.forwardCost;
  state.counters["handback"] = double(p.handback);
  state.counters["exact"] = p.exact;
  state.counters["table_MiB"] = p.tableBytes / (1024.0 * 1024.0);
  state.SetLabel(p.method);
}

static void planHeteroMSM(benchmark::State &state) {
  planHeterogeneous(state, Strategy::MSM);
}
static void planHeteroHSM(benchmark::State &state) {
  planHeterogeneous(state, Strategy::HSM);
}
static void planHeteroISM(benchmark::State &state) {
  planHeterogeneous(state, Strategy::ISM);
}

static void planMSM(benchmark::State &state) {
  planChain(state, Strategy::MSM, true);
}
static void planISM(benchmark::State &state) {
  planChain(state, Strategy::ISM, true);
}
static void planHSM(benchmark::State &state) {
  planChain(state, Strategy::HSM, true);
}
/// Budgets in basis points of store-all.
static void planMSMDeep(benchmark::State &state) {
  planChain(state, Strategy::MSM, true, Budget::BasisPoints);
}
static void planISMDeep(benchmark::State &state) {
  planChain(state, Strategy::ISM, true, Budget::BasisPoints);
}
/// Near the working set alone: steps run up to T/2 times on average.
static void planMSMTightest(benchmark::State &state) {
  planChain(state, Strategy::MSM, true, Budget::HiddenStates);
}
/// The plain dynamic program, for comparison where it is affordable.
static void planMSMPlainDP(benchmark::State &state) {
  planChain(state, Strategy::MSM, false);
}

// One iteration each: the larger cases take seconds, and planning is
// deterministic.
#define PLANNER_GRID(fn)                                                       \
  BENCHMARK(fn)                                                                \
      ->ArgNames({"T", "pct"})                                                 \
      ->ArgsProduct({{1000, 10000, 100000}, {1, 5, 10, 25, 50}})              \
      ->Unit(benchmark::kMillisecond)                                          \
      ->Iterations(1)

PLANNER_GRID(planMSM);
PLANNER_GRID(planISM);
PLANNER_GRID(planHSM);
// Small budgets for the chain length: from the working set plus a few
// states (T = 10,000 at 0.05%: 5 MiB, 12 hidden states) to where two
// sweeps suffice again (0.25% at T = 100,000, 0.7% at T = 10,000).
#define DEEP_GRID(fn)                                                          \
  BENCHMARK(fn)                                                                \
      ->ArgNames({"T", "bp"})                                                  \
      ->ArgsProduct({{10000}, {5, 10, 20, 30, 50, 60, 70}})                    \
      ->ArgsProduct({{100000}, {1, 3, 5, 10, 15, 20, 22, 25}})                 \
      ->Unit(benchmark::kMillisecond)                                          \
      ->Iterations(1)

DEEP_GRID(planMSMDeep);
DEEP_GRID(planISMDeep);
BENCHMARK(planMSMTightest)
    ->ArgNames({"T", "hidden_states"})
    ->ArgsProduct({{10000, 100000}, {0, 1, 10}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

BENCHMARK(planMSMPlainDP)
    ->ArgNames({"T", "pct"})
    ->ArgsProduct({{1000}, {1, 5, 10, 25, 50}})
    ->Args({3000, 5})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

#define HETERO_GRID(fn)                                                        \
  BENCHMARK(fn)                                                                \
      ->ArgNames({"T", "pct"})                                                 \
      ->ArgsProduct({{100, 300}, {5, 10, 25, 50}})                             \
      ->Unit(benchmark::kMillisecond)                                          \
      ->Iterations(1)

HETERO_GRID(planHeteroMSM);
HETERO_GRID(planHeteroHSM);
HETERO_GRID(planHeteroISM);

BENCHMARK_MAIN();
