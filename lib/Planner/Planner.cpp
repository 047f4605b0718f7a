//===- Planner.cpp - optimal checkpointing under a byte budget ------------===//
//
// See docs/planner.md for the model and the recurrences. In short: a segment
// (s, e) is "backward steps e..s+1 remain, h_s is available"; with m units of
// slot memory free, its least forward cost C(s, e, m) is the minimum of
//
//   direct        F(s,e) + C(s, e-1, m)
//                 run to e keeping s_e in the working set, backward e;
//   hidden y      F(s,y) + C(y, e, m - |h_y|) + C(s, y, m)
//                 store h_y on the way, solve the right part, free it;
//   internal y    F(s,y) + C(y, e, m - |s_y|) + C(s, y-1, m)
//                 keep s_y on the way, solve the right part, backward y
//                 from the slot, free it;
//
// for s < y < e, with C(s, s, m) = 0. HSM allows direct+hidden, ISM
// direct+internal, MSM all three. Slots are used in stack order, so the pool
// offset of a slot is the bytes of the slots below it.
//
//===----------------------------------------------------------------------===//

#include "bptt/Planner/Planner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace bptt::planner;

static const Strategy kStrategies[] = {Strategy::All,     Strategy::Chen,
                                       Strategy::Revolve, Strategy::HSM,
                                       Strategy::ISM,     Strategy::MSM};

llvm::ArrayRef<Strategy> bptt::planner::allStrategies() { return kStrategies; }

llvm::StringRef bptt::planner::stringify(Strategy s) {
  switch (s) {
  case Strategy::All:
    return "all";
  case Strategy::Chen:
    return "chen";
  case Strategy::Revolve:
    return "revolve";
  case Strategy::HSM:
    return "hsm";
  case Strategy::ISM:
    return "ism";
  case Strategy::MSM:
    return "msm";
  }
  return "?";
}

std::optional<Strategy> bptt::planner::parseStrategy(llvm::StringRef name) {
  for (Strategy s : kStrategies)
    if (name.equals_insensitive(stringify(s)))
      return s;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Schedule emission shared by every strategy
//===----------------------------------------------------------------------===//

namespace {

/// Appends actions while tracking the cursor, so that redundant restores are
/// not emitted.
class Emitter {
public:
  explicit Emitter(std::vector<Action> &out) : out(out) {}

  /// Makes the cursor hold h_s, read from `source` (-1: the caller's h_0).
  void restore(int64_t s, int64_t source) {
    if (cursor != s)
      out.push_back({ActionKind::Restore, s, source});
    cursor = s;
  }
  /// Forward steps from the cursor up to and including `to`.
  void forwardTo(int64_t to) {
    for (int64_t t = cursor + 1; t <= to; ++t)
      out.push_back({ActionKind::Forward, t, -1});
    cursor = to;
  }
  void forwardKeep(int64_t t, int64_t offset) {
    out.push_back({ActionKind::ForwardKeep, t, offset});
    cursor = t;
  }
  void storeHidden(int64_t offset) {
    out.push_back({ActionKind::StoreHidden, cursor, offset});
  }
  /// Runs step e into the working set and differentiates it at once.
  void forwardToWorkAndBackward(int64_t e) {
    forwardTo(e - 1);
    out.push_back({ActionKind::ForwardToWork, e, -1});
    out.push_back({ActionKind::Backward, e, -1});
    cursor = -1;
  }
  void backwardFromSlot(int64_t t, int64_t offset) {
    out.push_back({ActionKind::Backward, t, offset});
    cursor = -1;
  }
  void free(int64_t offset) { out.push_back({ActionKind::Free, 0, offset}); }

private:
  std::vector<Action> &out;
  int64_t cursor = -1;
};

/// Source slot of h_s for a segment start: -1 for h_0.
constexpr int64_t kCallerH0 = -1;

//===----------------------------------------------------------------------===//
// The dynamic programs (HSM, ISM, MSM)
//===----------------------------------------------------------------------===//

enum class ChoiceKind : uint8_t { Direct, Hidden, Internal, LastInternal };
struct Choice {
  double cost;
  ChoiceKind kind;
  int64_t split;
};

/// Optimal segment costs for one chain, strategy and memory granularity.
///
/// Two tables: C(s, e, m) for a segment whose start h_s must stay where it is
/// (the caller's h_0, or inside a stored s_s that backward step s still
/// needs), and D(s, e, m) for a segment whose start is a stored hidden state
/// that only this segment uses. D has one more move: on the last sweep from
/// h_s (keeping s_{s+1}, so that no left part remains) the slot of h_s is
/// freed first and its bytes reused. Uniform chains tabulate by segment
/// length (T x M cells each), heterogeneous chains by (s, e) (T^2 x M).
class SegmentSolver {
public:
  SegmentSolver(const Chain &chain, Strategy strategy, int64_t unit,
                int64_t capacity)
      : chain(chain), T(chain.steps), M(capacity),
        allowHidden(strategy != Strategy::ISM),
        allowInternal(strategy != Strategy::HSM),
        uniform(chain.isUniform()) {
    prefix.assign(T + 1, 0.0);
    prefix2.assign(T + 1, 0.0);
    for (int64_t t = 1; t <= T; ++t) {
      prefix[t] = prefix[t - 1] + chain.forward(t);
      prefix2[t] = prefix2[t - 1] + prefix[t];
    }
    hiddenUnits.assign(T + 1, 0);
    internalUnits.assign(T + 1, 0);
    smallestItem = std::numeric_limits<int64_t>::max();
    for (int64_t t = 1; t <= T; ++t) {
      hiddenUnits[t] = llvm::divideCeil(chain.hidden(t), unit);
      internalUnits[t] = llvm::divideCeil(chain.internal(t), unit);
      if (allowHidden && t < T)
        smallestItem = std::min(smallestItem, hiddenUnits[t]);
      if (allowInternal && t < T)
        smallestItem = std::min(smallestItem, internalUnits[t]);
    }
    // Uniform tables are filled as segments (0, L) that stand for any
    // (s, s + L), so s = 0 must carry the common hidden size.
    if (T > 0)
      hiddenUnits[0] = hiddenUnits[1];
    fill();
  }

  /// C(s, e, m), or D(s, e, m) when `freeableStart`.
  double cost(int64_t s, int64_t e, int64_t m, bool freeableStart) const {
    if (e <= s)
      return 0;
    if (!freeableStart && m < smallestItem)
      return directOnly(s, e);
    size_t i = index(s, e, m);
    if (uniform)
      return (freeableStart ? uniformD : uniformC)[i] * chain.forward(1);
    return (freeableStart ? pairD : pairC)[i];
  }

  /// A lower bound on the cost of segment (s, e) on a uniform chain. Every
  /// step runs at least once before the first backward step e; a step that
  /// runs only then must keep its s_t until its backward step, so at that
  /// moment all of them but e are in slots at once: at most K of them, with
  /// K internal states fitting in the free memory (h_s's slot included when
  /// the segment may free it). Every other step runs at least twice.
  double lowerBound(int64_t s, int64_t e, int64_t m, bool freeableStart) const {
    int64_t L = e - s;
    if (!uniform)
      return F(s, e);
    int64_t available = m + (freeableStart ? hiddenUnits[s] : 0);
    int64_t once = 1 + (allowInternal ? available / internalUnits[1] : 0);
    return std::max(L, 2 * L - once) * chain.forward(1);
  }

  /// The recurrence: the best first decision for segment (s, e) with m free.
  /// The scan stops early when the best choice meets the lower bound.
  Choice best(int64_t s, int64_t e, int64_t m, bool freeableStart) const {
    double fse = F(s, e);
    double bound = lowerBound(s, e, m, freeableStart);
    Choice bestChoice{fse + cost(s, e - 1, m, freeableStart),
                      ChoiceKind::Direct, e};
    if (allowInternal && freeableStart && e > s + 1) {
      int64_t after = m + hiddenUnits[s] - internalUnits[s + 1];
      if (after >= 0) {
        double c = F(s, s + 1) + cost(s + 1, e, after, false);
        if (c < bestChoice.cost)
          bestChoice = {c, ChoiceKind::LastInternal, s + 1};
      }
    }
    if (m < smallestItem || bestChoice.cost <= bound)
      return bestChoice;
    for (int64_t y = s + 1; y < e && bestChoice.cost > bound; ++y) {
      // Every option at y and beyond costs at least F(s,e) + (this segment's
      // cost up to y-1), which never decreases with y: stop once it cannot
      // win.
      if (fse + cost(s, y - 1, m, freeableStart) >= bestChoice.cost)
        break;
      double fsy = F(s, y);
      if (allowHidden && hiddenUnits[y] <= m) {
        double c = fsy + cost(y, e, m - hiddenUnits[y], true) +
                   cost(s, y, m, freeableStart);
        if (c < bestChoice.cost)
          bestChoice = {c, ChoiceKind::Hidden, y};
      }
      if (allowInternal && internalUnits[y] <= m) {
        double c = fsy + cost(y, e, m - internalUnits[y], false) +
                   cost(s, y - 1, m, freeableStart);
        if (c < bestChoice.cost)
          bestChoice = {c, ChoiceKind::Internal, y};
      }
    }
    return bestChoice;
  }

  /// Emits the optimal schedule for segment (s, e) with m units free. h_s is
  /// read from `source` (-1: the caller's h_0); new slots start at byte
  /// `offset`. A freeable start is the slot just below `offset`. Returns
  /// true if it freed that slot itself.
  bool emit(Emitter &em, int64_t s, int64_t e, int64_t m, bool freeableStart,
            int64_t source, int64_t offset) const {
    while (e > s) {
      Choice c = best(s, e, m, freeableStart);
      em.restore(s, source);
      switch (c.kind) {
      case ChoiceKind::Direct:
        em.forwardToWorkAndBackward(e);
        e -= 1;
        break;
      case ChoiceKind::Hidden: {
        em.forwardTo(c.split);
        em.storeHidden(offset);
        bool freed = emit(em, c.split, e, m - hiddenUnits[c.split], true,
                          offset, offset + chain.hidden(c.split));
        if (!freed)
          em.free(offset);
        e = c.split;
        break;
      }
      case ChoiceKind::Internal:
        em.forwardTo(c.split - 1);
        em.forwardKeep(c.split, offset);
        emit(em, c.split, e, m - internalUnits[c.split], false, offset,
             offset + chain.internal(c.split));
        em.backwardFromSlot(c.split, offset);
        em.free(offset);
        e = c.split - 1;
        break;
      case ChoiceKind::LastInternal:
        // h_s is in the cursor and never needed again: reuse its slot.
        em.free(source);
        em.forwardKeep(s + 1, source);
        emit(em, s + 1, e, m + hiddenUnits[s] - internalUnits[s + 1], false,
             source, source + chain.internal(s + 1));
        em.backwardFromSlot(s + 1, source);
        em.free(source);
        return true;
      }
    }
    return false;
  }

private:
  double F(int64_t s, int64_t e) const { return prefix[e] - prefix[s]; }

  /// C(s, e, m) when no slot fits: every backward step re-runs from h_s.
  double directOnly(int64_t s, int64_t e) const {
    return (prefix2[e] - prefix2[s]) - (e - s) * prefix[s];
  }

  size_t index(int64_t s, int64_t e, int64_t m) const {
    if (uniform)
      return static_cast<size_t>((e - s) * (M + 1) + m);
    return static_cast<size_t>((s * (T + 1) + e) * (M + 1) + m);
  }

  /// Every move of a segment refers to strictly shorter segments, so the
  /// tables fill by length, all memory levels at once.
  void fill() {
    if (uniform) {
      uniformC.assign((T + 1) * (M + 1), 0);
      uniformD.assign((T + 1) * (M + 1), 0);
      double unitCost = chain.forward(1);
      for (int64_t L = 1; L <= T; ++L)
        for (int64_t m = 0; m <= M; ++m) {
          size_t i = index(0, L, m);
          // Keeping s_1 .. s_{L-1} runs every step once, the least possible.
          if (allowInternal && m >= (L - 1) * internalUnits[1]) {
            uniformC[i] = uniformD[i] = L;
            continue;
          }
          uniformC[i] = std::llround(best(0, L, m, false).cost / unitCost);
          uniformD[i] = std::llround(best(0, L, m, true).cost / unitCost);
        }
      return;
    }
    pairC.assign((T + 1) * (T + 1) * (M + 1), 0.0);
    pairD.assign((T + 1) * (T + 1) * (M + 1), 0.0);
    for (int64_t len = 1; len <= T; ++len)
      for (int64_t s = 0; s + len <= T; ++s)
        for (int64_t m = 0; m <= M; ++m) {
          size_t i = index(s, s + len, m);
          pairC[i] = best(s, s + len, m, false).cost;
          pairD[i] = best(s, s + len, m, true).cost;
        }
  }

  const Chain &chain;
  int64_t T, M;
  bool allowHidden, allowInternal, uniform;
  int64_t smallestItem;
  std::vector<double> prefix, prefix2;
  std::vector<int64_t> hiddenUnits, internalUnits;
  std::vector<int64_t> uniformC, uniformD; // [L][m], in forward steps
  std::vector<double> pairC, pairD;        // [s][e][m]
};

/// Memory granularity for the dynamic programs: the gcd of every state size
/// (exact), coarsened when the table would exceed the cell limit.
struct Granularity {
  int64_t unit;
  int64_t capacity; // slot memory, in units
  bool exact;
};

Granularity chooseGranularity(const Chain &chain, int64_t slotBytes,
                              int64_t maxCells) {
  int64_t g = 0;
  for (int64_t t = 1; t <= chain.steps; ++t)
    g = std::gcd(g, std::gcd(chain.hidden(t), chain.internal(t)));
  if (g == 0)
    g = 1;
  int64_t T = chain.steps;
  int64_t rowCells = chain.isUniform() ? (T + 1) : (T + 1) * (T + 1);
  int64_t maxUnits = std::max<int64_t>(maxCells / rowCells - 1, 1);
  int64_t capacity = slotBytes / g;
  if (capacity <= maxUnits)
    return {g, capacity, true};
  int64_t coarse = llvm::divideCeil(slotBytes, maxUnits);
  return {coarse, slotBytes / coarse, false};
}

//===----------------------------------------------------------------------===//
// Fixed policies: store-all, Chen, Revolve
//===----------------------------------------------------------------------===//

void emitStoreAll(const Chain &chain, std::vector<Action> &out) {
  Emitter em(out);
  int64_t T = chain.steps;
  if (T == 0)
    return;
  std::vector<int64_t> offsets(T + 1);
  int64_t offset = 0;
  em.restore(0, kCallerH0);
  for (int64_t t = 1; t < T; ++t) {
    offsets[t] = offset;
    em.forwardKeep(t, offset);
    offset += chain.internal(t);
  }
  em.forwardToWorkAndBackward(T);
  for (int64_t t = T - 1; t >= 1; --t) {
    em.backwardFromSlot(t, offsets[t]);
    em.free(offsets[t]);
  }
}

int64_t chenSegmentLength(int64_t T) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(T))));
}

/// Chen et al.: segments of ceil(√T) steps. The first pass stores h at every
/// segment boundary and keeps the last segment's internal states; each
/// earlier segment is re-run from its boundary, keeping its internal states,
/// and differentiated.
void emitChen(const Chain &chain, std::vector<Action> &out) {
  Emitter em(out);
  int64_t T = chain.steps;
  if (T == 0)
    return;
  int64_t k = chenSegmentLength(T);
  // Segment starts 0, k, 2k, ... ; boundaries > 0 are stored as hidden.
  std::vector<int64_t> starts, boundaryOffset;
  for (int64_t b = 0; b < T; b += k)
    starts.push_back(b);
  int64_t offset = 0;
  boundaryOffset.assign(starts.size(), kCallerH0);
  em.restore(0, kCallerH0);
  for (size_t i = 1; i < starts.size(); ++i) {
    em.forwardTo(starts[i]);
    em.storeHidden(offset);
    boundaryOffset[i] = offset;
    offset += chain.hidden(starts[i]);
  }
  // Segments from last to first: keep internal states, differentiate.
  for (size_t i = starts.size(); i-- > 0;) {
    int64_t begin = starts[i];
    int64_t end = i + 1 < starts.size() ? starts[i + 1] : T;
    em.restore(begin, boundaryOffset[i]);
    std::vector<int64_t> kept;
    int64_t segOffset = offset;
    for (int64_t t = begin + 1; t < end; ++t) {
      em.forwardKeep(t, segOffset);
      kept.push_back(segOffset);
      segOffset += chain.internal(t);
    }
    em.forwardToWorkAndBackward(end);
    for (int64_t t = end - 1; t > begin; --t) {
      em.backwardFromSlot(t, kept[t - begin - 1]);
      em.free(kept[t - begin - 1]);
    }
    if (i > 0) {
      em.free(boundaryOffset[i]);
      offset -= chain.hidden(begin);
    }
  }
}

/// β(s, r) = binom(s + r, s), saturated at `cap`.
int64_t binomialCapped(int64_t s, int64_t r, int64_t cap) {
  // binom(s+r, r) computed incrementally; each partial value is exact.
  __int128 v = 1;
  for (int64_t i = 1; i <= r; ++i) {
    v = v * (s + i) / i;
    if (v > cap)
      return cap + 1;
  }
  return static_cast<int64_t>(v);
}

/// Revolve: the optimal split of `steps` steps with `slots` free hidden
/// slots, from the closed form of the cost.
void emitRevolve(const Chain &chain, Emitter &em, int64_t s, int64_t e,
                 int64_t slots, int64_t source, int64_t offset) {
  while (e > s) {
    int64_t L = e - s;
    em.restore(s, source);
    int64_t bestCost = L + revolveForwardSteps(L - 1, slots + 1);
    int64_t bestSplit = e; // direct
    if (slots > 0)
      for (int64_t y = 1; y < L; ++y) {
        int64_t c = y + revolveForwardSteps(L - y, slots) +
                    revolveForwardSteps(y, slots + 1);
        if (c < bestCost) {
          bestCost = c;
          bestSplit = s + y;
        }
      }
    if (bestSplit == e) {
      em.forwardToWorkAndBackward(e);
      e -= 1;
      continue;
    }
    em.forwardTo(bestSplit);
    em.storeHidden(offset);
    emitRevolve(chain, em, bestSplit, e, slots - 1, offset,
                offset + chain.hidden(1));
    em.free(offset);
    e = bestSplit;
  }
}

} // namespace

int64_t bptt::planner::revolveForwardSteps(int64_t steps, int64_t checkpoints) {
  if (steps <= 0)
    return 0;
  if (checkpoints <= 1)
    return steps * (steps + 1) / 2;
  // Griewank: with s checkpoints, l steps and r the least integer with
  // β(s, r) >= l, reversal needs r·l - β(s+1, r-1) forward steps (not
  // counting the forward before each backward step), where β(s, r) =
  // binom(s+r, s). Add those l forwards.
  int64_t s = checkpoints; // Griewank counts the start as a snapshot
  int64_t r = 0;
  while (binomialCapped(s, r, steps) < steps)
    ++r;
  int64_t beta = r == 0 ? 0
                        : binomialCapped(s + 1, r - 1,
                                         std::numeric_limits<int64_t>::max() / 4);
  return r * steps - beta + steps;
}

int64_t bptt::planner::minimumBudget(const Chain &chain, Strategy strategy) {
  switch (strategy) {
  case Strategy::All:
    return chain.storeAllBytes();
  case Strategy::Chen: {
    std::vector<Action> actions;
    emitChen(chain, actions);
    llvm::Expected<Execution> exec = simulate(chain, actions);
    return exec ? exec->peakBytes : chain.storeAllBytes();
  }
  case Strategy::Revolve:
  case Strategy::HSM:
  case Strategy::ISM:
  case Strategy::MSM:
    return chain.workingSetBytes();
  }
  return chain.storeAllBytes();
}

llvm::Expected<Plan> bptt::planner::plan(const Chain &chain,
                                         int64_t budgetBytes,
                                         Strategy strategy,
                                         const PlannerOptions &options) {
  if (llvm::Error err = chain.validate())
    return std::move(err);
  int64_t minimum = minimumBudget(chain, strategy);
  if (budgetBytes < minimum)
    return llvm::createStringError(llvm::formatv(
        "a budget of {0} bytes is below the smallest feasible budget for "
        "strategy '{1}' on this chain, {2} bytes ({3}; store-all needs {4} "
        "bytes)",
        budgetBytes, stringify(strategy), minimum,
        strategy == Strategy::All    ? "every internal state kept"
        : strategy == Strategy::Chen ? "√T segment boundaries plus one "
                                       "segment's internal states"
                                     : "the working set of one step",
        chain.storeAllBytes()).str());
  if (strategy == Strategy::Revolve && !chain.isUniform())
    return llvm::createStringError(
        "strategy 'revolve' is the closed form for uniform chains; this chain "
        "has per-step costs or sizes, use 'hsm' (its exact generalisation) or "
        "'msm'");

  Plan result;
  result.strategy = strategy;
  int64_t T = chain.steps;
  int64_t slotBytes = budgetBytes - chain.workingSetBytes();
  bool storeAllFits = budgetBytes >= chain.storeAllBytes();

  switch (strategy) {
  case Strategy::All:
    emitStoreAll(chain, result.actions);
    break;
  case Strategy::Chen:
    emitChen(chain, result.actions);
    break;
  case Strategy::Revolve: {
    Emitter em(result.actions);
    emitRevolve(chain, em, 0, T, slotBytes / chain.hidden(1), kCallerH0, 0);
    break;
  }
  case Strategy::ISM:
  case Strategy::MSM:
    // Nothing beats keeping every internal state when it fits; this also
    // spares a table as large as the budget.
    if (storeAllFits) {
      emitStoreAll(chain, result.actions);
      break;
    }
    [[fallthrough]];
  case Strategy::HSM: {
    Granularity g = chooseGranularity(chain, slotBytes, options.maxTableCells);
    result.memoryUnit = g.unit;
    result.exact = g.exact;
    SegmentSolver solver(chain, strategy, g.unit, g.capacity);
    Emitter em(result.actions);
    solver.emit(em, 0, T, g.capacity, /*freeableStart=*/false, kCallerH0, 0);
    break;
  }
  }

  llvm::Expected<Execution> exec = simulate(chain, result.actions);
  if (!exec)
    return llvm::createStringError(
        "internal error: the planned schedule is invalid: " +
        llvm::toString(exec.takeError()));
  result.predicted = *exec;
  if (result.predicted.peakBytes > budgetBytes)
    return llvm::createStringError(llvm::formatv(
        "internal error: the planned schedule peaks at {0} bytes, above the "
        "budget of {1} bytes",
        result.predicted.peakBytes, budgetBytes).str());
  return result;
}
