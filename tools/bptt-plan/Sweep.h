//===- Sweep.h - compute/memory trade-off of every strategy -----*- C++ -*-===//

#ifndef BPTT_TOOLS_BPTTPLAN_SWEEP_H
#define BPTT_TOOLS_BPTTPLAN_SWEEP_H

#include "bptt/Planner/Planner.h"

#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <vector>

namespace bptt::planner {

/// One budget of a sweep: each strategy's forward steps per step, if it fits.
struct SweepRow {
  double fraction; // budget / store-all bytes
  int64_t budget;
  std::vector<std::optional<double>> forwardPerStep; // by allStrategies()
};

std::vector<SweepRow> sweep(const Chain &chain,
                            const std::vector<double> &fractions);

/// The table, one row per budget, one column per strategy.
void printSweep(llvm::raw_ostream &os, const Chain &chain,
                const std::vector<SweepRow> &rows);

/// Forward steps per step against memory (% of store-all), one polyline per
/// strategy, in the style of the paper's cost-versus-memory figures.
void writeSweepSvg(llvm::raw_ostream &os, const Chain &chain,
                   const std::vector<SweepRow> &rows);

} // namespace bptt::planner

#endif
