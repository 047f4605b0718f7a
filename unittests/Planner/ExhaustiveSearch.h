//===- ExhaustiveSearch.h - the planner's independent oracle ----*- C++ -*-===//
//
// A shortest path over every valid schedule of a small chain, written from
// the problem statement alone (it shares no code with the planner beyond the
// Chain description). Tests hold the planner to its answer.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_UNITTESTS_PLANNER_EXHAUSTIVESEARCH_H
#define BPTT_UNITTESTS_PLANNER_EXHAUSTIVESEARCH_H

#include "bptt/Planner/Chain.h"

#include <optional>

namespace bptt::planner::testing {

/// Which states a schedule may store.
struct StoreRules {
  bool hidden = true;
  bool internal = true;
};

/// The least total forward cost of any valid schedule whose stored states
/// never exceed `budgetBytes - chain.workingSetBytes()` bytes at once, or
/// nullopt if none exists. Exponential: T <= 12 or so.
std::optional<double> exhaustiveForwardCost(const Chain &chain,
                                            int64_t budgetBytes,
                                            StoreRules rules = {});

} // namespace bptt::planner::testing

#endif
