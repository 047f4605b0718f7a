//===- PlannerBenchmark.cpp - how fast the planner plans ------------------===//
//
// Plans an LSTM-sized chain (B = 64, H = 512, fp32: h+c = 256 KiB, s_t =
// 1 MiB) with MSM at budgets given as a percentage of store-all. Counters:
// forward steps per step of the plan, whether it is exact, and the planner's
// own table memory. Run with benchmarks/run-planner-benchmark.sh.
//
//===----------------------------------------------------------------------===//

#include "bptt/Planner/Planner.h"

#include <benchmark/benchmark.h>

using namespace bptt::planner;

static void planMSM(benchmark::State &state) {
  int64_t T = state.range(0);
  double fraction = state.range(1) / 100.0;
  Chain chain = Chain::uniform(T, 2 * 64 * 512 * 4, 8 * 64 * 512 * 4);
  int64_t budget = static_cast<int64_t>(fraction * chain.storeAllBytes());
  Plan p;
  for (auto _ : state) {
    llvm::Expected<Plan> result = plan(chain, budget, Strategy::MSM);
    if (!result) {
      state.SkipWithError(llvm::toString(result.takeError()).c_str());
      return;
    }
    p = std::move(*result);
    benchmark::DoNotOptimize(p.actions.data());
  }
  int64_t unitsFree = (budget - chain.workingSetBytes()) / p.memoryUnit;
  state.counters["fwd_per_step"] = double(p.predicted.forwardSteps) / T;
  state.counters["exact"] = p.exact;
  // Two tables of (T+1) x (units+1) 8-byte cells.
  state.counters["table_MiB"] =
      2.0 * (T + 1) * (unitsFree + 1) * 8 / (1024.0 * 1024.0);
}

BENCHMARK(planMSM)
    ->ArgNames({"T", "pct"})
    ->ArgsProduct({{100, 1000}, {1, 5, 10, 25}})
    ->Args({3000, 5})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

BENCHMARK_MAIN();
