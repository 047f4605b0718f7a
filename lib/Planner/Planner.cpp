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
#include <cassert>
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
/// not emitted. Stops adding actions once the list holds `maxActions`
/// (overflowed(): the plan is then refused, not truncated).
class Emitter {
public:
  Emitter(std::vector<Action> &out, int64_t maxActions)
      : out(out), maxActions(maxActions) {}

  bool overflowed() const { return overflow; }

  /// Makes the cursor hold h_s, read from `source` (-1: the caller's h_0).
  void restore(int64_t s, int64_t source) {
    if (cursor != s)
      push({ActionKind::Restore, s, source});
    cursor = s;
  }
  /// Forward steps from the cursor up to and including `to`: one action,
  /// or the extension of the run the list ends with.
  void forwardTo(int64_t to) {
    if (to <= cursor)
      return;
    if (!overflow && !out.empty() && out.back().kind == ActionKind::Forward &&
        out.back().lastStep() == cursor)
      out.back().count += to - cursor;
    else
      push({ActionKind::Forward, cursor + 1, -1, to - cursor});
    cursor = to;
  }
  void forwardKeep(int64_t t, int64_t offset) {
    push({ActionKind::ForwardKeep, t, offset});
    cursor = t;
  }
  void storeHidden(int64_t offset) {
    push({ActionKind::StoreHidden, cursor, offset});
  }
  /// Runs step e into the working set and differentiates it at once.
  void forwardToWorkAndBackward(int64_t e) {
    forwardTo(e - 1);
    push({ActionKind::ForwardToWork, e, -1});
    push({ActionKind::Backward, e, -1});
    cursor = -1;
  }
  void backwardFromSlot(int64_t t, int64_t offset) {
    push({ActionKind::Backward, t, offset});
    cursor = -1;
  }
  void free(int64_t offset) { push({ActionKind::Free, 0, offset}); }

private:
  /// Every action goes through here, so the list never exceeds maxActions.
  void push(const Action &a) {
    if (int64_t(out.size()) >= maxActions)
      overflow = true;
    if (!overflow)
      out.push_back(a);
  }

  std::vector<Action> &out;
  int64_t maxActions;
  bool overflow = false;
  int64_t cursor = -1;
};

/// Source slot of h_s for a segment start: -1 for h_0.
constexpr int64_t kCallerH0 = -1;

//===----------------------------------------------------------------------===//
// The dynamic programs (HSM, ISM, MSM)
//===----------------------------------------------------------------------===//

/// What a segment's start is, which decides what the segment may do with it.
enum class StartKind : uint8_t {
  /// h_s must stay where it is: the caller's h_0, or inside a stored s_s
  /// that backward step s still needs (table C).
  Fixed,
  /// A stored h_s that only this segment uses (tables D and H).
  Hidden,
  /// A stored s_s that this segment may free before backward step s runs;
  /// step s is then handed back to the parent, which recomputes it (table I).
  Internal,
};

enum class ChoiceKind : uint8_t {
  Direct,   ///< run to e into the working set, backward e
  Hidden,   ///< store h_split; the right part hands back down to `handback`
  Internal, ///< keep s_split; solve the right part, backward split from it
  /// Keep s_split and let the right part free it and hand back steps
  /// `handback` .. split (>= split) to this segment.
  InternalHandback,
  /// On the last sweep from a freeable start: free it and keep s_{stop+1}
  /// in its place (`split` = stop + 1; stop = s is the classic move).
  LastInternal,
  /// On the last sweep from a freeable start: free it and store h_split
  /// (split <= stop) in its place; the segment continues from there.
  ReleaseHidden,
  /// As ReleaseHidden, keeping s_split (split <= stop) instead.
  ReleaseInternal,
};
struct Choice {
  double cost;
  ChoiceKind kind;
  int64_t split;
  /// Hidden and InternalHandback: where the right part stops (the last
  /// step it leaves to this segment); -1 for the classic Hidden move, whose
  /// right part stops at its start `split`.
  int64_t handback = -1;
};

/// Emits the optimal schedule of segment (s, e) with m units free, asking
/// `solver` for each segment's first decision (`best(s, e, m, kind, stop)`)
/// and for the units of each state (`hiddenUnits(t)`, `internalUnits(t)`).
/// h_0 is the caller's; new slots start at byte 0.
///
/// A segment is (s, e, stop): backward steps e .. stop+1 remain for it
/// (stop = s unless it hands work back to its parent), its start h_s is in
/// the slot at `source`, its own slots start at `offset`. A segment that
/// frees its start's slot itself (the release moves) says so to its parent
/// through `childFreedStart`; otherwise the parent frees it.
///
/// Iterative, with an explicit stack: segments nest once per stored state,
/// so a long chain with a large budget nests tens of thousands deep.
template <typename Solver>
void emitSegments(const Chain &chain, const Solver &solver, Emitter &em,
                  int64_t T, int64_t m) {
  enum class Resume : uint8_t { Loop, AfterHidden, AfterInternal,
                                AfterInternalHandback, AfterLastInternal };
  struct Frame {
    int64_t s, e, stop, m;
    StartKind kind;
    int64_t source, offset;
    Resume resume;
    int64_t split, handback;
  };
  auto startBytes = [&](StartKind kind, int64_t t) {
    return kind == StartKind::Hidden ? chain.hidden(t) : chain.internal(t);
  };
  auto startUnits = [&](const Frame &f) {
    return f.kind == StartKind::Hidden ? solver.hiddenUnits(f.s)
                                       : solver.internalUnits(f.s);
  };
  std::vector<Frame> stack;
  stack.push_back(
      {0, T, 0, m, StartKind::Fixed, kCallerH0, 0, Resume::Loop, 0, 0});
  // Whether the frame that just finished freed its start's slot itself.
  bool childFreedStart = false;
  while (!stack.empty()) {
    Frame &f = stack.back();
    switch (f.resume) {
    case Resume::Loop:
      break;
    case Resume::AfterHidden:
    case Resume::AfterInternalHandback:
      // The right part stopped at f.handback: what lies below is ours.
      if (!childFreedStart)
        em.free(f.offset);
      f.e = f.handback;
      break;
    case Resume::AfterInternal:
      em.backwardFromSlot(f.split, f.offset);
      em.free(f.offset);
      f.e = f.split - 1;
      break;
    case Resume::AfterLastInternal:
      // Steps stop .. s+1 are the parent's: this segment is done.
      em.backwardFromSlot(f.split, f.source);
      em.free(f.source);
      stack.pop_back();
      childFreedStart = true;
      continue;
    }
    f.resume = Resume::Loop;
    if (f.e <= f.stop) {
      stack.pop_back();
      childFreedStart = false;
      continue;
    }
    if (em.overflowed())
      return;
    Choice c = solver.best(f.s, f.e, f.m, f.kind, f.stop);
    em.restore(f.s, f.source);
    Frame child{};
    switch (c.kind) {
    case ChoiceKind::Direct:
      em.forwardToWorkAndBackward(f.e);
      f.e -= 1;
      continue;
    case ChoiceKind::Hidden: {
      int64_t stop = c.handback < 0 ? c.split : c.handback;
      em.forwardTo(c.split);
      em.storeHidden(f.offset);
      f.resume = Resume::AfterHidden;
      f.split = c.split;
      f.handback = stop;
      child = {c.split, f.e, stop, f.m - solver.hiddenUnits(c.split),
               StartKind::Hidden, f.offset, f.offset + chain.hidden(c.split),
               Resume::Loop, 0, 0};
      break;
    }
    case ChoiceKind::Internal:
    case ChoiceKind::InternalHandback: {
      bool handsBack = c.kind == ChoiceKind::InternalHandback;
      em.forwardTo(c.split - 1);
      em.forwardKeep(c.split, f.offset);
      f.resume = handsBack ? Resume::AfterInternalHandback
                           : Resume::AfterInternal;
      f.split = c.split;
      f.handback = c.handback;
      child = {c.split, f.e, handsBack ? c.handback : c.split,
               f.m - solver.internalUnits(c.split),
               handsBack ? StartKind::Internal : StartKind::Fixed, f.offset,
               f.offset + chain.internal(c.split), Resume::Loop, 0, 0};
      break;
    }
    case ChoiceKind::LastInternal: {
      // The start is in the cursor and never needed again: run to stop,
      // free the start's slot and keep s_{stop+1} in its place.
      int64_t t = f.stop + 1;
      em.forwardTo(f.stop);
      em.free(f.source);
      em.forwardKeep(t, f.source);
      f.resume = Resume::AfterLastInternal;
      f.split = t;
      child = {t, f.e, t, f.m + startUnits(f) - solver.internalUnits(t),
               StartKind::Fixed, f.source, f.source + chain.internal(t),
               Resume::Loop, 0, 0};
      break;
    }
    case ChoiceKind::ReleaseHidden:
    case ChoiceKind::ReleaseInternal: {
      // The last sweep from the start: free it on the way and put the state
      // at `split` in its place; this frame continues as the segment from
      // there, with the same stop (the steps in between are the parent's).
      bool hidden = c.kind == ChoiceKind::ReleaseHidden;
      StartKind kind = hidden ? StartKind::Hidden : StartKind::Internal;
      int64_t units = hidden ? solver.hiddenUnits(c.split)
                             : solver.internalUnits(c.split);
      em.forwardTo(hidden ? c.split : c.split - 1);
      em.free(f.source);
      if (hidden)
        em.storeHidden(f.source);
      else
        em.forwardKeep(c.split, f.source);
      f.m = f.m + startUnits(f) - units;
      f.s = c.split;
      f.kind = kind;
      f.offset = f.source + startBytes(kind, c.split);
      continue;
    }
    }
    stack.push_back(child); // invalidates f
  }
}

/// Optimal segment costs for one chain, strategy and memory granularity.
///
/// A segment (s, e, stop) has backward steps e .. stop+1 to do from its start
/// h_s, stop = s unless it hands the steps stop .. s+1 back to its parent.
/// Tables, by the kind of start:
///
///   C(s, e, m)        the start stays (h_0, or inside an s_s still needed);
///   H(s, e, stop, m)  the start is a stored h_s that only this segment uses:
///                     on its last sweep it may free it and reuse the bytes
///                     (stop = s is the table D of docs/planner.md);
///   I(s, e, stop, m)  the start is a stored s_s (stop >= s) that this
///                     segment frees before backward step s: step s and
///                     those below down to stop's successor go back to the
///                     parent, which recomputes them from an earlier state.
///
/// A freeable start's last sweep may free it and put, in its bytes, s_{stop+1}
/// (last-internal) or h_w or s_w for s < w <= stop (release): the segment
/// then goes on from w with the same stop. With sizes differing per step this
/// trades recomputation by the parent for room for the rest: e.g. store h_1
/// of 1 byte, sweep from it a few times, then free it, store h_2 of 3 bytes
/// and leave step 2 to be recomputed from h_0. The exhaustive search found
/// such schedules; without this index the program missed them (up to 11%).
///
/// `handback` bounds stop - s (hidden starts) and stop - s + 1 (internal
/// starts), the steps a segment may hand back; 0 gives C and D alone. Uniform
/// chains tabulate C and D by segment length (T x M cells each) and never
/// hand back; heterogeneous chains tabulate by (s, e) (T^2/2 x M cells per
/// table, about 1 + 2 x min(handback + 1, e - s) tables per (s, e)).
class SegmentSolver {
public:
  SegmentSolver(const Chain &chain, Strategy strategy, int64_t unit,
                int64_t capacity, int64_t handback)
      : chain(chain), T(chain.steps), M(capacity),
        allowHidden(strategy != Strategy::ISM),
        allowInternal(strategy != Strategy::HSM),
        uniform(chain.isUniform()), handback(uniform ? 0 : handback) {
    prefix.assign(T + 1, 0.0);
    prefix2.assign(T + 1, 0.0);
    for (int64_t t = 1; t <= T; ++t) {
      prefix[t] = prefix[t - 1] + chain.forward(t);
      prefix2[t] = prefix2[t - 1] + prefix[t];
    }
    hiddenU.assign(T + 1, 0);
    internalU.assign(T + 1, 0);
    smallestItem = std::numeric_limits<int64_t>::max();
    for (int64_t t = 1; t <= T; ++t) {
      hiddenU[t] = llvm::divideCeil(chain.hidden(t), unit);
      internalU[t] = llvm::divideCeil(chain.internal(t), unit);
      if (allowHidden && t < T)
        smallestItem = std::min(smallestItem, hiddenU[t]);
      if (allowInternal && t < T)
        smallestItem = std::min(smallestItem, internalU[t]);
    }
    // Uniform tables are filled as segments (0, L) that stand for any
    // (s, s + L), so s = 0 must carry the common hidden size.
    if (T > 0)
      hiddenU[0] = hiddenU[1];
    // Row layout: per (s, e) a group of `group` rows of M + 1 memory levels,
    // C first, then H by stop - s = 0 .. handback, then I by stop - s + 1 =
    // 1 .. handback. Uniform chains keep C and D by length only: the group
    // of (s, e) is that of (0, e - s).
    group = uniform ? 2 : groupRows(handback, allowHidden, allowInternal);
    hiddenRows = allowHidden ? handback + 1 : 0;
    sStride = uniform ? -group : (T + 1) * group;
    fill();
  }

  /// Rows per (s, e) of the heterogeneous tables: C, H for stop - s = 0 ..
  /// handback (MSM, HSM), I for stop - s + 1 = 1 .. handback (MSM, ISM).
  /// ISM never stores a hidden state, so it needs neither D nor H. Rows of a
  /// stop beyond e - 1 stay unused: the square layout keeps the strides
  /// between neighbouring segments constant, which the scans rely on to
  /// stream through memory.
  static int64_t groupRows(int64_t handback, bool hidden, bool internal) {
    return 1 + (hidden ? handback + 1 : 0) + (internal ? handback : 0);
  }
  /// The cells of the heterogeneous tables and the moves tried in filling
  /// them (before pruning), for choosing `handback`.
  static double pairCells(int64_t T, int64_t M, int64_t handback, bool hidden,
                          bool internal) {
    return double(T + 1) * double(T + 1) * double(M + 1) *
           double(groupRows(handback, hidden, internal));
  }
  static double pairWork(int64_t T, int64_t M, int64_t handback, bool hidden,
                         bool internal) {
    double work = 0;
    for (int64_t len = 1; len <= T; ++len) {
      int64_t d = std::min(handback, len);
      int64_t rows = 1 + (hidden ? d + 1 : 0) + (internal ? d : 0);
      int64_t moves = 1 + (hidden ? d + 1 : 0) + (internal ? d + 1 : 0);
      work += double(T - len + 1) * double(len) * double(moves) * double(rows);
    }
    return work * double(M + 1);
  }

  /// The least cost of segment (s, e, stop) with m units free: C when the
  /// start is fixed (stop = s), else H (D when stop = s) or I.
  double cost(StartKind kind, int64_t s, int64_t e, int64_t stop,
              int64_t m) const {
    if (e <= stop)
      return 0;
    return table[row(kind, s, e, stop) * (M + 1) + static_cast<size_t>(m)];
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
    int64_t available = m + (freeableStart ? hiddenU[s] : 0);
    int64_t once = 1 + (allowInternal ? available / internalU[1] : 0);
    return std::max(L, 2 * L - once) * chain.forward(1);
  }

  /// The recurrence: the best first decision for segment (s, e, stop) with
  /// m free. Every move costs at least F(s, e) (each step runs once), which
  /// prunes the scans; on uniform chains the scan also stops when the best
  /// choice meets the lower bound. Moves are tried in a fixed order and
  /// replace the best only when strictly cheaper: direct, the last sweep's
  /// moves, then by split y hidden before internal, no handback first.
  Choice best(int64_t s, int64_t e, int64_t m, StartKind kind,
              int64_t stop) const {
    double fse = F(s, e);
    double bound = lowerBound(s, e, m, kind == StartKind::Hidden);
    Choice bestChoice{fse + cost(kind, s, e - 1, stop, m), ChoiceKind::Direct,
                      e};
    if (kind != StartKind::Fixed) {
      int64_t own = kind == StartKind::Hidden ? hiddenU[s] : internalU[s];
      if (allowInternal && e > stop + 1) {
        int64_t after = m + own - internalU[stop + 1];
        if (after >= 0) {
          double c = F(s, stop + 1) +
                     cost(StartKind::Fixed, stop + 1, e, stop + 1, after);
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::LastInternal, stop + 1};
        }
      }
      for (int64_t w = s + 1; w <= stop; ++w) {
        double fsw = F(s, w);
        if (allowHidden && m + own >= hiddenU[w]) {
          double c = fsw + cost(StartKind::Hidden, w, e, stop,
                                m + own - hiddenU[w]);
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::ReleaseHidden, w};
        }
        if (allowInternal && m + own >= internalU[w]) {
          double c = fsw + cost(StartKind::Internal, w, e, stop,
                                m + own - internalU[w]);
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::ReleaseInternal, w};
        }
      }
    }
    if (m < smallestItem || bestChoice.cost <= bound)
      return bestChoice;
    // The scan reads this segment's own table at (s, z) and the right parts'
    // at (y, e): rows at constant strides, so walk them by pointer.
    const ptrdiff_t levels = M + 1;
    const ptrdiff_t eStep = group * levels;
    const double *leftRow = &table[row(kind, s, s, stop) * levels + m];
    auto left = [&](int64_t z) {
      return z <= stop ? 0.0 : leftRow[(z - s) * eStep]; // (s, z)
    };
    for (int64_t y = s + 1; y < e && bestChoice.cost > bound; ++y) {
      // Every option at y and beyond costs at least F(s,e) + (this segment's
      // cost up to y-1), which never decreases with y: stop once it cannot
      // win.
      double leftBefore = left(y - 1);
      if (fse + leftBefore >= bestChoice.cost)
        break;
      double fsy = F(s, y);
      const double *right = &table[static_cast<size_t>(
          (y * sStride + e * group) * levels)]; // group of (y, e)
      // The right part of a split at y must stop at or above this segment's
      // stop (each backward step runs once); each stop z costs at least
      // F(s, e) + (this segment's cost up to z), rising with z.
      int64_t first = std::max(y, stop);
      if (allowHidden && hiddenU[y] <= m) {
        const double *rightH = right + levels + (m - hiddenU[y]);
        for (int64_t z = first; z < e && z - y <= handback; ++z) {
          double rest = left(z);
          if (fse + rest >= bestChoice.cost)
            break;
          double c = fsy + rightH[(z - y) * levels] + rest;
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::Hidden, y, z == y ? -1 : z};
        }
      }
      if (allowInternal && internalU[y] <= m) {
        int64_t after = m - internalU[y];
        if (y > stop) {
          double c = fsy + right[after] + leftBefore;
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::Internal, y};
        }
        const double *rightI = right + (1 + hiddenRows) * levels + after;
        for (int64_t z = first; z < e && z - y + 1 <= handback; ++z) {
          double rest = left(z);
          if (fse + rest >= bestChoice.cost)
            break;
          double c = fsy + rightI[(z - y) * levels] + rest;
          if (c < bestChoice.cost)
            bestChoice = {c, ChoiceKind::InternalHandback, y, z};
        }
      }
    }
    return bestChoice;
  }

  int64_t hiddenUnits(int64_t t) const { return hiddenU[t]; }
  int64_t internalUnits(int64_t t) const { return internalU[t]; }

  /// Bytes of the tables.
  int64_t tableBytes() const {
    return static_cast<int64_t>(table.size() * sizeof(double));
  }

private:
  double F(int64_t s, int64_t e) const { return prefix[e] - prefix[s]; }

  /// C(s, e, m) when no slot fits: every backward step re-runs from h_s.
  double directOnly(int64_t s, int64_t e) const {
    return (prefix2[e] - prefix2[s]) - (e - s) * prefix[s];
  }

  /// The row of memory levels of segment (s, e, stop) in `table`.
  size_t row(StartKind kind, int64_t s, int64_t e, int64_t stop) const {
    int64_t base = s * sStride + e * group;
    switch (kind) {
    case StartKind::Fixed:
      return static_cast<size_t>(base);
    case StartKind::Hidden:
      assert(allowHidden && stop - s <= handback);
      return static_cast<size_t>(base + 1 + (stop - s));
    case StartKind::Internal:
      assert(allowInternal && stop - s + 1 >= 1 && stop - s + 1 <= handback);
      return static_cast<size_t>(base + 1 + hiddenRows + (stop - s));
    }
    return static_cast<size_t>(base);
  }

  /// Every move of a segment refers to strictly shorter segments, so the
  /// tables fill by length, all memory levels at once.
  void fill() {
    // Cells never computed stay infinite: a stored start's own bytes come
    // out of its parent's memory, so such a segment never has more than M
    // minus them free, and h_0 is never stored.
    int64_t pairs = uniform ? T + 1 : (T + 1) * (T + 1);
    table.assign(static_cast<size_t>(pairs * group * (M + 1)),
                 std::numeric_limits<double>::infinity());
    double unitCost = chain.forward(1);
    auto fillRow = [&](StartKind kind, int64_t s, int64_t e, int64_t stop,
                       int64_t own) {
      double *cells = &table[row(kind, s, e, stop) * (M + 1)];
      for (int64_t m = 0; m + own <= M; ++m) {
        // No slot fits: every backward step re-runs from h_s.
        if (kind == StartKind::Fixed && m < smallestItem) {
          cells[m] = directOnly(s, e);
          continue;
        }
        // Keeping s_1 .. s_{L-1} runs every step once, the least possible.
        if (uniform && allowInternal && m >= (e - s - 1) * internalU[1]) {
          cells[m] = double(e - s) * unitCost;
          continue;
        }
        double c = best(s, e, m, kind, stop).cost;
        // Uniform costs are whole multiples of the step's cost: round off
        // what the sums accumulated.
        cells[m] = uniform ? double(std::llround(c / unitCost)) * unitCost : c;
      }
    };
    for (int64_t len = 1; len <= T; ++len) {
      if (uniform) {
        fillRow(StartKind::Fixed, 0, len, 0, 0);
        fillRow(StartKind::Hidden, 0, len, 0, 0);
        continue;
      }
      for (int64_t s = 0; s + len <= T; ++s) {
        int64_t e = s + len;
        fillRow(StartKind::Fixed, s, e, s, 0);
        if (s == 0)
          continue;
        if (allowHidden)
          for (int64_t d = 0; d <= std::min(handback, len - 1); ++d)
            fillRow(StartKind::Hidden, s, e, s + d, hiddenU[s]);
        if (allowInternal)
          for (int64_t d = 1; d <= std::min(handback, len); ++d)
            fillRow(StartKind::Internal, s, e, s + d - 1, internalU[s]);
      }
    }
  }

  const Chain &chain;
  int64_t T, M;
  bool allowHidden, allowInternal, uniform;
  int64_t handback;
  int64_t smallestItem;
  std::vector<double> prefix, prefix2;
  std::vector<int64_t> hiddenU, internalU;
  /// Rows of M + 1 memory levels, `group` rows per (s, e): the group of
  /// (s, e) starts at row s * sStride + e * group.
  std::vector<double> table;
  int64_t group = 0, hiddenRows = 0, sStride = 0;
};

//===----------------------------------------------------------------------===//
// Uniform chains, MSM and ISM: level sets of the excess over the lower bound
//===----------------------------------------------------------------------===//

/// The uniform recurrence's parameters, in memory units, shared by the two
/// exact fast methods below: T steps, M units free, |h| = h and |s| = s
/// units, and which moves the strategy allows.
struct UniformRecurrence {
  UniformRecurrence(const Chain &chain, Strategy strategy, int64_t unit,
                    int64_t capacity)
      : T(chain.steps), M(capacity),
        h(llvm::divideCeil(chain.hidden(1), unit)),
        s(llvm::divideCeil(chain.internal(1), unit)),
        allowHidden(strategy != Strategy::ISM),
        allowInternal(strategy != Strategy::HSM), needD(allowHidden) {
    // As SegmentSolver: a C segment with no room for any state runs direct.
    smallestItem = std::numeric_limits<int64_t>::max();
    if (T > 1) {
      if (allowHidden)
        smallestItem = std::min(smallestItem, h);
      if (allowInternal)
        smallestItem = std::min(smallestItem, s);
    }
  }

  /// Internal states that fit with m units free, the start's slot included
  /// when the segment may free it (D).
  int64_t K(bool freeable, int64_t m) const {
    if (!allowInternal)
      return 0;
    return (freeable ? m + h : m) / s;
  }
  /// No schedule of L steps costs less (docs/planner.md).
  int64_t lowerBound(bool freeable, int64_t L, int64_t m) const {
    return std::max(L, 2 * L - K(freeable, m) - 1);
  }

  int64_t T, M, h, s;
  bool allowHidden, allowInternal;
  /// D (a freeable start) is reached through hidden moves only: ISM needs
  /// C alone, and C's internal move alone.
  bool needD;
  int64_t smallestItem;
};

/// Exact C and D of a uniform chain without tabulating them over (L, m).
///
/// With K internal states fitting in a segment's free memory (K = m / s for
/// C, (m + h) / s for D, whose start slot may be reused; 0 under HSM) no
/// schedule of L steps costs less than LB = max(L, 2L - K - 1). Write
/// X(L, m) = LB(L, m) + E(L, m). For every move the lower bounds of the parts
/// plus the steps run add up to LB(L, m) plus a slack that is piecewise
/// linear in the split y, so the excess of a move is
///
///   internal y (C): max(0, K - (L-y)) + max(0, y - K - 2) + E_C(L-y, m-s)
///                   + E_C(y-1, m)
///   hidden y (C):   max(0, K+1 - (L-y)) + max(0, y - K - 1) + E_D(L-y, m-h)
///                   + E_C(y, m)
///   last-internal:  E_C(L-1, m+h-s)                        (D, L >= K + 2)
///   direct:         K at L = K + 2, else L - 2 + E(L-1, m) (L >= K + 3)
///
/// (D's internal and hidden moves add c0 = K_D - m/s in {0, 1} and use D for
/// the left part). Segments up to K + 1 steps cost L (keep everything). By
/// induction on (j, m), {L : E(L, m) <= j} is a prefix [0, N_j(m)] and
///
///   N_j(m) = max over moves and j1 + j2 + sigma = j (- c0) of
///            N_j1(right part's m) + min(K + 2 + sigma, N_j2(m) + 1)  internal
///            N_j1(right part's m) + min(K + 1 + sigma, N_j2(m))      hidden
///
/// (with the last-internal, direct and once-region terms), because a split
/// that fits at the largest L also fits at every smaller L >= K + 2 (take
/// y = max(1, L - N_j1)). So C(L, m) = LB + the least j with L <= N_j(m):
/// the levels j = 0, 1, ... are built over m = 0..M until N_j(M) reaches T.
/// Level 0 alone (each step run at most twice, apart from the K + 1 run
/// once) already covers every budget from 1% of store-all at T = 10^5.
/// The tests hold this to the plain dynamic program cell by cell.
///
/// Cost: sum over levels j of O(j * M) (the max-plus convolution over j1;
/// the inner maximum over j2 is precomputed per level as G), memory
/// 6 x (J+1) x (M+1) cells of 4 bytes, J the excess of the whole chain.
class UniformLevels : UniformRecurrence {
public:
  UniformLevels(const Chain &chain, Strategy strategy, int64_t unit,
                int64_t capacity)
      : UniformRecurrence(chain, strategy, unit, capacity) {}

  /// Builds levels until the whole chain is covered (true), or until going
  /// on would not pay (false). Going on pays while the levels are foreseen
  /// to cover the chain within `maxWork` inner-loop steps, or, when the
  /// levels built are to settle the low-excess cells of the hull-cut tables
  /// (`settledWorth` > 0, the level steps one settled cell saves there),
  /// while the last level settled cells worth the next one's work. Never
  /// more than `maxWork` steps, `maxCells` cells per array, `maxLevels`
  /// levels.
  ///
  /// The foresight: N_j(M) is concave in j (measured: the reach per level
  /// falls from hundreds of steps to one once steps run three times), so the
  /// recent reach per level, extrapolated to T, undercounts the levels left
  /// and the work they take. A deep budget stops after a few levels instead
  /// of after the whole allowance.
  bool solve(int64_t maxWork, int64_t maxCells, double settledWorth = 0,
             int64_t maxLevels = std::numeric_limits<int64_t>::max()) {
    if (T > std::numeric_limits<int32_t>::max())
      return false;
    int64_t moves = needD ? 2 * ((allowHidden ? 1 : 0) +
                                 (allowInternal ? 1 : 0) + 1)
                          : 2;
    int64_t work = 0;
    double settledByLast = 0;
    while (levels == 0 || at(NC, levels - 1, M) < T) {
      int64_t j = levels; // the level to build
      int64_t next = (j + 1) * (M + 1) * moves;
      bool covers = true;
      if (j >= 8 && maxWork < std::numeric_limits<int64_t>::max()) {
        int64_t back = j / 4, reach = at(NC, j - 1, M);
        double perLevel = double(reach - at(NC, j - 1 - back, M)) / back;
        double left = perLevel > 0 ? double(T - reach) / perLevel : 1e300;
        double last = double(j) + left;
        double forecast = 0.5 * (last * last - double(j) * double(j)) *
                          double(M + 1) * double(moves);
        covers = double(work) + forecast <= double(maxWork);
      }
      bool settles = j == 0 || settledByLast * settledWorth >= double(next);
      if (!covers && !settles)
        return false;
      work += next;
      int64_t cells = arrays() * std::max(stride, 2 * levels) * (M + 1);
      if (work > maxWork || j >= maxLevels ||
          (levels + 1 > stride && cells > maxCells))
        return false;
      addLevel();
      settledByLast = 0;
      for (int64_t m = 0; m <= M; ++m)
        for (const Table *N : {&NC, &ND}) {
          if (N == &ND && !needD)
            continue;
          settledByLast += at(*N, j, m) - (j > 0 ? at(*N, j - 1, m) : 0);
        }
    }
    return true;
  }

  /// The longest segment of memory m whose cost the levels built settle
  /// (C, or D when freeable): every L up to it, with settledCost().
  int64_t settledReach(bool freeable, int64_t m) const {
    return levels == 0 ? 0 : at(freeable ? ND : NC, levels - 1, m);
  }
  /// The levels built: an unsettled segment's excess is at least this.
  int64_t levelsBuilt() const { return levels; }
  /// cost(freeable, L, m) for L <= settledReach, with L increasing over
  /// the calls sharing `level` (a cursor over the levels, from 0).
  int64_t settledCost(bool freeable, int64_t L, int64_t m,
                      int64_t &level) const {
    const Table &N = freeable ? ND : NC;
    while (at(N, level, m) < L)
      ++level;
    return lowerBound(freeable, L, m) + level;
  }

  int64_t tableBytes() const {
    return arrays() * stride * (M + 1) * static_cast<int64_t>(sizeof(int32_t));
  }

  int64_t hiddenUnits(int64_t) const { return h; }
  int64_t internalUnits(int64_t) const { return s; }
  /// The whole chain's optimal forward steps, C(T, M).
  int64_t forwardSteps() const { return cost(false, T, M); }

  /// C(L, m) or D(L, m) in forward steps; kInfinite past the levels built.
  int64_t cost(bool freeable, int64_t L, int64_t m) const {
    if (L <= 0)
      return 0;
    int64_t e = excessOf(freeable, L, m);
    if (e == kInfinite)
      return kInfinite;
    return lowerBound(freeable, L, m) + e;
  }

  /// A first decision of segment (s, e) that attains its optimal cost, the
  /// one the plain dynamic program takes: direct, else last-internal, else
  /// the least split y, hidden before internal. Only the splits
  /// y = max(1, L - N_j1(right part's m)) need trying: an attaining split y
  /// has a right part of some excess j1, and the candidate of that j1 is no
  /// larger and attains too (the prefix argument above).
  /// Uniform chains never hand work back: every segment stops at its start.
  Choice best(int64_t s0, int64_t e0, int64_t m, StartKind kind,
              int64_t) const {
    return best(s0, e0, m, kind == StartKind::Hidden);
  }
  Choice best(int64_t s0, int64_t e0, int64_t m, bool freeable) const {
    int64_t L = e0 - s0;
    int64_t target = cost(freeable, L, m);
    assert(target != kInfinite && "segment beyond the levels built");
    if (add(L, cost(freeable, L - 1, m)) == target)
      return {double(target), ChoiceKind::Direct, e0};
    if (freeable && allowInternal && L > 1 && m + h - s >= 0 &&
        add(1, cost(false, L - 1, m + h - s)) == target)
      return {double(target), ChoiceKind::LastInternal, s0 + 1};
    if (!freeable && m < smallestItem)
      return {double(target), ChoiceKind::Direct, e0};
    auto leastSplit = [&](bool hidden) {
      int64_t least = kInfinite;
      int64_t units = hidden ? h : s;
      if (!(hidden ? allowHidden : allowInternal) || m < units)
        return least;
      const Table &right = hidden ? ND : NC;
      for (int64_t j1 = 0; j1 < levels; ++j1) {
        int64_t y = std::max<int64_t>(1, L - at(right, j1, m - units));
        int64_t c = hidden ? add(y, add(cost(true, L - y, m - h),
                                        cost(freeable, y, m)))
                           : add(y, add(cost(false, L - y, m - s),
                                        cost(freeable, y - 1, m)));
        if (c == target)
          least = y;
        if (y == 1)
          break;
      }
      return least;
    };
    int64_t hiddenSplit = leastSplit(true);
    int64_t internalSplit = leastSplit(false);
    assert((hiddenSplit != kInfinite || internalSplit != kInfinite) &&
           "no move attains the level sets' optimum");
    if (hiddenSplit <= internalSplit)
      return {double(target), ChoiceKind::Hidden, s0 + hiddenSplit};
    return {double(target), ChoiceKind::Internal, s0 + internalSplit};
  }

private:
  static constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max() / 4;
  static int64_t add(int64_t a, int64_t b) {
    return std::min(a + b, kInfinite);
  }

  /// The least level j with L <= N_j(m) (N grows with j), or kInfinite.
  int64_t excessOf(bool freeable, int64_t L, int64_t m) const {
    const Table &N = freeable ? ND : NC;
    if (levels == 0 || at(N, levels - 1, m) < L)
      return kInfinite;
    int64_t lo = 0, hi = levels - 1;
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (at(N, mid, m) >= L)
        hi = mid;
      else
        lo = mid + 1;
    }
    return lo;
  }

  /// [m][j] with a stride of at least the levels built: the convolutions
  /// run over j at fixed m, contiguously. The stride doubles when the levels
  /// outgrow it (copying, amortised O(1) a cell), so a plan that needs only
  /// level 0 keeps one cell per m. Values are lengths capped at T (< 2^31).
  struct Table {
    std::vector<int32_t> cells;
    int64_t stride = 0;
  };
  int64_t arrays() const { return needD ? 6 : 2; }
  static int64_t at(const Table &v, int64_t j, int64_t m) {
    return v.cells[static_cast<size_t>(m * v.stride + j)];
  }

  /// G(r) = max over j2 + sigma = r of min(base + sigma, N_j2(m) + add),
  /// the longest move for an excess budget r given the right part's. The
  /// j2 = r, sigma = 0 term is `base` (N_j2 >= K + 1 always reaches it); for
  /// j2 < r the first term falls and the second rises with j2, so the
  /// maximum sits where they cross: binary search, then the neighbours.
  int64_t leftReach(const Table &N, int64_t m, int64_t r,
                    int64_t base, int64_t plus) const {
    int64_t bestReach = base;
    if (r == 0)
      return bestReach;
    // Largest j2 in [0, r-1] with N_j2 + plus <= base + r - j2.
    int64_t lo = 0, hi = r - 1;
    while (lo < hi) {
      int64_t mid = (lo + hi + 1) / 2;
      if (at(N, mid, m) + plus <= base + r - mid)
        lo = mid;
      else
        hi = mid - 1;
    }
    for (int64_t j2 = std::max<int64_t>(0, lo - 1);
         j2 <= std::min(r - 1, lo + 1); ++j2)
      bestReach = std::max(bestReach, std::min(base + r - j2,
                                               at(N, j2, m) + plus));
    return bestReach;
  }

  /// N_j(m) of one table at the newest level j, all lower levels and the
  /// lower m of this level being known.
  int64_t reach(bool freeable, int64_t j, int64_t m) const {
    const Table &N = freeable ? ND : NC;
    int64_t k = K(freeable, m);
    int64_t c0 = freeable ? k - K(false, m) : 0;
    int64_t best = k + 1; // keep everything
    if (j > 0)
      best = std::max(best, at(N, j - 1, m));
    // Direct: excess k at L = k + 2; L - 2 + E(L-1) beyond.
    if (k <= j)
      best = std::max(best, k + 2);
    if (j + 2 > best)
      for (int64_t jp = 0; jp < j; ++jp)
        best = std::max(best, std::min(at(N, jp, m) + 1, j - jp + 2));
    if (freeable && allowInternal && m + h - s >= 0)
      best = std::max(best, at(NC, j, m + h - s) + 1);
    int64_t r = j - c0;
    // As in SegmentSolver::cost: a C segment with no room runs direct.
    bool directOnly = !freeable && m < smallestItem;
    bool fitsInternal = allowInternal && m >= s && !directOnly;
    bool fitsHidden = allowHidden && m >= h && !directOnly;
    const Table &GI = freeable ? GID : GIC;
    const Table &GH = freeable ? GHD : GHC;
    if (r >= 0 && fitsInternal)
      for (int64_t j1 = 0; j1 <= r; ++j1)
        best = std::max(best, at(NC, j1, m - s) + at(GI, r - j1, m));
    if (r >= 0 && fitsHidden)
      for (int64_t j1 = 0; j1 <= r; ++j1)
        best = std::max(best, at(ND, j1, m - h) + at(GH, r - j1, m));
    return std::min(best, T);
  }

  void addLevel() {
    int64_t j = levels++;
    if (levels > stride) {
      int64_t grown = std::max<int64_t>(1, 2 * stride);
      for (Table *v : {&NC, &ND, &GIC, &GHC, &GID, &GHD}) {
        if (!needD && v != &NC && v != &GIC)
          continue;
        std::vector<int32_t> cells(static_cast<size_t>((M + 1) * grown), 0);
        for (int64_t m = 0; m <= M; ++m)
          for (int64_t k = 0; k < j; ++k)
            cells[static_cast<size_t>(m * grown + k)] = at(*v, k, m);
        v->cells = std::move(cells);
        v->stride = grown;
      }
      stride = grown;
    }
    for (int64_t m = 0; m <= M; ++m) {
      int64_t kc = K(false, m), kd = K(true, m);
      auto set = [&](Table &v, int64_t value) {
        v.cells[static_cast<size_t>(m * stride + j)] =
            static_cast<int32_t>(std::min(value, T));
      };
      set(GIC, leftReach(NC, m, j, kc + 2, 1));
      if (!needD) {
        set(NC, reach(false, j, m));
        continue;
      }
      set(GHC, leftReach(NC, m, j, kc + 1, 0));
      set(GID, leftReach(ND, m, j, kd + 2, 1));
      set(GHD, leftReach(ND, m, j, kd + 1, 0));
      // D(., m) may use C(., m) itself when s = h (last-internal).
      set(NC, reach(false, j, m));
      set(ND, reach(true, j, m));
    }
  }

  int64_t levels = 0, stride = 0;
  /// N_j(m) of C and D, and the left-part reaches G of the internal and
  /// hidden moves of C and D; [j][m], capped at T.
  Table NC, ND, GIC, GHC, GID, GHD;
};

//===----------------------------------------------------------------------===//
// Uniform chains, MSM and ISM: dense tables, split scans cut by convex hulls
//===----------------------------------------------------------------------===//

/// Exact C and D of a uniform chain where the level sets would take too long
/// (the chain's excess is large: steps run three times or more). It fills the
/// plain recurrence's tables, C(L, m) and D(L, m) for every length and memory
/// level, but instead of scanning every split y it scans only the few that a
/// convex lower bound cannot rule out.
///
/// A split at y costs f(y) = y + X(y') + R(L - y), X the segment's own table
/// at y' = y (hidden) or y - 1 (internal) and R the right part's (D at m - h
/// or C at m - s). X and R are not convex in the length (their increments
/// alternate where hidden and internal states mix), but their lower convex
/// hulls X^ and R^ bound them from below, and g(y) = y + X^(y') + R^(L - y)
/// is convex in y. So once a split of cost c is known, every split that can
/// do better lies in the interval {y : g(y) <= c - 1}: walk to g's minimum
/// (it moves little from one length to the next), try it, then scan outwards
/// while g allows, tightening c as cheaper splits are found. Nothing is
/// assumed about the tables; the hulls are computed from them (the current
/// row's incrementally, as its lengths are filled), and every comparison is
/// in exact integer arithmetic, so the tables equal the plain program's.
/// Measured on the benchmark's LSTM chain: a few splits per cell instead of
/// up to L (per split: two slope tests to confirm the walk's minimum, one
/// bound test, one cost; the walk's hull cursors move with it).
///
/// Cells of low excess come from the level sets instead (UniformLevels,
/// built for a few hundred levels where they cannot finish: while a level
/// settles cells worth its work): C(L, m) = LB + the least j with
/// L <= N_j(m) for every L up to N_J(m), and beyond that the excess is at
/// least J, a higher floor for the splits. At T = 100,000 and 0.2% of
/// store-all that is a quarter of the cells.
///
/// Memory: (M + 1) x (T + 1) cells of 4 bytes per table (costs saturate at
/// 2^31 - 1, which only segments no optimal schedule uses reach), plus the
/// hull vertices of every row.
class UniformHulls : UniformRecurrence {
public:
  /// `settled`, levels built on the same unit and capacity (however few),
  /// fill the cells within their reach: a low-excess cell costs a lookup
  /// instead of split scans, and the others start from a higher floor.
  UniformHulls(const Chain &chain, Strategy strategy, int64_t unit,
               int64_t capacity, const UniformLevels *settled = nullptr)
      : UniformRecurrence(chain, strategy, unit, capacity), settled(settled) {
    if (settled && settled->levelsBuilt() == 0)
      this->settled = nullptr;
  }

  /// Cells of the tables (4 bytes each).
  static double cells(int64_t T, int64_t M, Strategy strategy) {
    return double(T + 1) * double(M + 1) *
           (strategy == Strategy::ISM ? 1.0 : 2.0);
  }

  /// Fills the tables. False if they would exceed `maxCells` or the whole
  /// chain's cost does not fit the cells' 31 bits.
  bool solve(int64_t maxCells) {
    if (T < 1 || T >= kCap ||
        cells(T, M, allowHidden ? Strategy::MSM : Strategy::ISM) >
            double(maxCells))
      return false;
    size_t rowCells = static_cast<size_t>(T + 1);
    C.assign(rowCells * static_cast<size_t>(M + 1), 0);
    if (needD)
      D.assign(rowCells * static_cast<size_t>(M + 1), 0);
    hullC.reserve(static_cast<size_t>(M + 1));
    if (needD)
      hullD.reserve(static_cast<size_t>(M + 1));
    for (int64_t m = 0; m <= M; ++m)
      fillRow(m);
    return get(false, T, M) < kCap;
  }

  int64_t tableBytes() const {
    size_t vertices = 0;
    for (const auto &rows : {&hullC, &hullD})
      for (const auto &hull : *rows)
        vertices += hull.size();
    return static_cast<int64_t>((C.size() + D.size()) * sizeof(int32_t) +
                                vertices * sizeof(Vertex)) +
           (settled ? settled->tableBytes() : 0);
  }

  int64_t hiddenUnits(int64_t) const { return h; }
  int64_t internalUnits(int64_t) const { return s; }
  /// The whole chain's optimal forward steps, C(T, M).
  int64_t forwardSteps() const { return get(false, T, M); }

  /// The first decision the plain dynamic program takes for segment
  /// (s0, e0): direct, else last-internal, else the least split y that
  /// attains the optimum, hidden before internal. Attaining splits satisfy
  /// g(y) <= cost with the rows' full hulls, an interval around g's minimum,
  /// so only that interval is scanned.
  Choice best(int64_t s0, int64_t e0, int64_t m, StartKind kind,
              int64_t) const {
    bool freeable = kind == StartKind::Hidden;
    int64_t L = e0 - s0;
    int64_t target = get(freeable, L, m);
    if (L + get(freeable, L - 1, m) == target)
      return {double(target), ChoiceKind::Direct, e0};
    if (freeable && allowInternal && L > 1 && m + h - s >= 0 &&
        1 + get(false, L - 1, m + h - s) == target)
      return {double(target), ChoiceKind::LastInternal, s0 + 1};
    if (!freeable && m < smallestItem)
      return {double(target), ChoiceKind::Direct, e0};
    int64_t hiddenSplit = kNone, internalSplit = kNone;
    if (allowHidden && m >= h)
      hiddenSplit =
          leastSplit(makeSplit(freeable, true, m, L, hullOf(freeable, m)),
                     target);
    if (allowInternal && m >= s)
      internalSplit =
          leastSplit(makeSplit(freeable, false, m, L, hullOf(freeable, m)),
                     target);
    assert((hiddenSplit != kNone || internalSplit != kNone) &&
           "no split attains the table's optimum");
    if (hiddenSplit <= internalSplit)
      return {double(target), ChoiceKind::Hidden, s0 + hiddenSplit};
    return {double(target), ChoiceKind::Internal, s0 + internalSplit};
  }

  /// C(L, m) or D(L, m) in forward steps (saturated at 2^31 - 1).
  int64_t get(bool freeable, int64_t L, int64_t m) const {
    if (L <= 0)
      return 0;
    const std::vector<int32_t> &table = freeable ? D : C;
    return table[static_cast<size_t>(m * (T + 1) + L)];
  }

private:
  static constexpr int64_t kCap = std::numeric_limits<int32_t>::max();
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

  /// A vertex of a row's lower convex hull: length and cost.
  struct Vertex {
    int32_t x, v;
  };
  using Hull = std::vector<Vertex>;

  /// Piece of `hull` whose span holds x (and [x, x + 1] when x is not the
  /// last vertex): the largest i <= n - 2 with hull[i].x <= x, moved from
  /// `hint` (the cursors below move x by one at a time).
  static size_t piece(const Hull &hull, int64_t x, size_t hint) {
    size_t last = hull.size() - 2;
    size_t i = std::min(hint, last);
    auto search = [&](size_t lo, size_t hi) { // in [lo, hi]
      return static_cast<size_t>(
                 std::upper_bound(hull.begin() + lo, hull.begin() + hi + 1, x,
                                  [](int64_t v, const Vertex &w) {
                                    return v < w.x;
                                  }) -
                 hull.begin()) -
             1;
    };
    // Near moves step, far ones (a new cell) search.
    if (hull[i].x > x) {
      if (i >= 8 && hull[i - 8].x > x)
        return search(0, i - 8);
      while (hull[i].x > x)
        --i;
      return i;
    }
    if (i + 8 <= last && hull[i + 8].x <= x)
      return search(i + 8, last);
    while (i < last && hull[i + 1].x <= x)
      ++i;
    return i;
  }

  /// One split move of one cell: f(y) = y + X(y') + R(L - y) for y in
  /// [1, L - 1], y' = y (hidden) or y - 1 (internal), with the hulls of the
  /// left row (X at m) and of the right part's row.
  struct Split {
    bool freeable; // X is D (else C)
    bool hidden;   // R is D at m - h (else C at m - s)
    int64_t m, L;
    const Hull *left, *right;
    /// The rows of X and R, by length.
    const int32_t *leftRow, *rightRow;
    size_t leftHint = 0, rightHint = 0;
    /// Where the walk to g's minimum starts (0: search).
    int64_t from = 0;
  };
  /// The split of cell (L, m) of C (D when freeable), hidden or internal,
  /// with the left part's hull `left` (the row's, or its prefix's while the
  /// row is filled).
  Split makeSplit(bool freeable, bool hidden, int64_t m, int64_t L,
                  const Hull *left) const {
    int64_t rightM = hidden ? m - h : m - s;
    return Split{freeable,        hidden,
                 m,               L,
                 left,            hullOf(hidden, rightM),
                 rowOf(freeable, m), rowOf(hidden, rightM)};
  }
  const int32_t *rowOf(bool freeable, int64_t m) const {
    return &(freeable ? D : C)[static_cast<size_t>(m * (T + 1))];
  }

  int64_t leftAt(const Split &sp, int64_t y) const {
    return sp.hidden ? y : y - 1;
  }
  /// The split's exact cost f(y).
  int64_t splitCost(const Split &sp, int64_t y) const {
    // (Length 0 of every row holds 0.)
    return y + sp.leftRow[leftAt(sp, y)] + sp.rightRow[sp.L - y];
  }
  /// 1 + slope(left piece il) - slope(right piece ir) >= 0, denominators
  /// cleared: g(y + 1) >= g(y) where those pieces hold [y', y' + 1] and
  /// [L - y - 1, L - y]. (Rises and widths are below 2^31: no overflow.)
  static bool rises(const Hull &left, size_t il, const Hull &right,
                    size_t ir) {
    const Vertex &l0 = left[il], &l1 = left[il + 1];
    const Vertex &r0 = right[ir], &r1 = right[ir + 1];
    int64_t dxl = int64_t(l1.x) - l0.x, dxr = int64_t(r1.x) - r0.x;
    return dxl * dxr + (int64_t(l1.v) - l0.v) * dxr -
               (int64_t(r1.v) - r0.v) * dxl >=
           0;
  }
  /// g(y + 1) >= g(y): the bound no longer falls after y.
  bool boundRisesAfter(Split &sp, int64_t y) const {
    sp.leftHint = piece(*sp.left, leftAt(sp, y), sp.leftHint);
    sp.rightHint = piece(*sp.right, sp.L - y - 1, sp.rightHint);
    return rises(*sp.left, sp.leftHint, *sp.right, sp.rightHint);
  }
  /// g(y) > bound: used with bound = (the best cost known) - 1, so no split
  /// at y costs less (f >= g and costs are whole), nor any beyond y away
  /// from g's minimum (g is convex).
  bool boundExceeds(Split &sp, int64_t y, int64_t bound) const {
    sp.leftHint = piece(*sp.left, leftAt(sp, y), sp.leftHint);
    sp.rightHint = piece(*sp.right, sp.L - y, sp.rightHint);
    return exceedsAtHints(sp, y, bound);
  }
  /// boundExceeds where the hints already hold the pieces at y' and L - y.
  bool exceedsAtHints(const Split &sp, int64_t y, int64_t bound) const {
    int64_t xl = leftAt(sp, y), xr = sp.L - y;
    const Vertex &l0 = (*sp.left)[sp.leftHint], &l1 = (*sp.left)[sp.leftHint + 1];
    const Vertex &r0 = (*sp.right)[sp.rightHint],
                 &r1 = (*sp.right)[sp.rightHint + 1];
    // g(y) = y + l0.v + rl / dxl + r0.v + rr / dxr with the rises rl, rr
    // over the pieces' widths dxl, dxr: compare with denominators cleared.
    int64_t gap = bound - y - l0.v - r0.v;
    if (gap < 0)
      return true;
    int64_t dxl = int64_t(l1.x) - l0.x, dxr = int64_t(r1.x) - r0.x;
    int64_t rl = (int64_t(l1.v) - l0.v) * (xl - l0.x);
    int64_t rr = (int64_t(r1.v) - r0.v) * (xr - r0.x);
    return __int128(rl) * dxr + __int128(rr) * dxl >
           __int128(gap) * dxl * dxr;
  }
  /// The least minimiser of g in [1, L - 1], by bisection on the sign of
  /// its difference (for a walk with no previous minimum to start from).
  int64_t leastMinimiser(Split &sp) const {
    int64_t lo = 1, hi = sp.L - 1;
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      // No hint: boundRisesAfter's lookups search.
      sp.leftHint = sp.left->size();
      sp.rightHint = sp.right->size();
      if (boundRisesAfter(sp, mid))
        hi = mid;
      else
        lo = mid + 1;
    }
    sp.leftHint = piece(*sp.left, leftAt(sp, lo), sp.left->size());
    sp.rightHint = piece(*sp.right, sp.L - lo, sp.right->size());
    return lo;
  }
  /// The least minimiser of g in [1, L - 1], walked from `from`. The hints
  /// follow the walk: they hold the pieces at y' and at L - y (so that the
  /// pieces of both differences around y are they or their predecessors),
  /// and end at the minimum's, where boundExceeds looks next.
  int64_t minimum(Split &sp, int64_t from) const {
    const Hull &left = *sp.left, &right = *sp.right;
    size_t lastLeft = left.size() - 2, lastRight = right.size() - 2;
    int64_t y = std::clamp<int64_t>(from, 1, sp.L - 1);
    int64_t xl = leftAt(sp, y), xr = sp.L - y;
    size_t il = piece(left, xl, sp.leftHint);
    size_t ir = piece(right, xr, sp.rightHint);
    // The pieces of the steps that end at xl and that start at xr - 1.
    auto before = [](const Hull &hull, size_t i, int64_t x) {
      return hull[i].x <= x - 1 ? i : i - 1;
    };
    // g(y) >= g(y - 1): walk down (x' falls, L - y grows).
    while (y > 1 && rises(left, before(left, il, xl), right, ir)) {
      --y, --xl, ++xr;
      if (left[il].x > xl)
        --il;
      if (ir < lastRight && right[ir + 1].x <= xr)
        ++ir;
    }
    // g(y + 1) < g(y): walk up.
    while (y < sp.L - 1 && !rises(left, il, right, before(right, ir, xr))) {
      ++y, ++xl, --xr;
      if (il < lastLeft && left[il + 1].x <= xl)
        ++il;
      if (right[ir].x > xr)
        --ir;
    }
    sp.leftHint = il;
    sp.rightHint = ir;
    return y;
  }
  /// Lowers `best` to the cheapest split that beats it, scanning outwards
  /// from g's minimum y0 while g(y) <= best - 1. The hints hold y0's pieces
  /// (as minimum() and leastMinimiser() leave them).
  void improve(Split &sp, int64_t y0, int64_t &best, int64_t floor) const {
    // g's minimum itself leaves no room: the usual case.
    if (best <= floor || exceedsAtHints(sp, y0, best - 1))
      return;
    for (int64_t y = y0 + 1; y < sp.L && best > floor; ++y) {
      if (boundExceeds(sp, y, best - 1))
        break;
      best = std::min(best, splitCost(sp, y));
    }
    for (int64_t y = y0 - 1; y >= 1 && best > floor; --y) {
      if (boundExceeds(sp, y, best - 1))
        break;
      best = std::min(best, splitCost(sp, y));
    }
  }
  /// The least y with f(y) = target, or kNone.
  int64_t leastSplit(Split sp, int64_t target) const {
    if (sp.L < 2)
      return kNone;
    int64_t lo = leastMinimiser(sp);
    if (boundExceeds(sp, lo, target))
      return kNone;
    int64_t first = lo;
    while (first > 1 && !boundExceeds(sp, first - 1, target))
      --first;
    for (int64_t y = first; y < sp.L; ++y) {
      if (y > lo && boundExceeds(sp, y, target))
        break;
      if (splitCost(sp, y) == target)
        return y;
    }
    return kNone;
  }

  const Hull *hullOf(bool freeable, int64_t m) const {
    return &(freeable ? hullD : hullC)[static_cast<size_t>(m)];
  }
  static void extend(Hull &hull, int64_t x, int64_t v) {
    while (hull.size() >= 2) {
      const Vertex &a = hull[hull.size() - 2], &b = hull.back();
      // b on or above the line from a to (x, v): not a vertex. (Rises and
      // widths are below 2^31: the products fit.)
      if ((int64_t(b.v) - a.v) * (x - a.x) >= (v - a.v) * (int64_t(b.x) - a.x))
        hull.pop_back();
      else
        break;
    }
    hull.push_back({static_cast<int32_t>(x), static_cast<int32_t>(v)});
  }

  /// Row m of C (and D), every length in order: a cell reads shorter cells
  /// of its own row and whole rows of less memory.
  void fillRow(int64_t m) {
    int32_t *rowC = &C[static_cast<size_t>(m * (T + 1))];
    int32_t *rowD = needD ? &D[static_cast<size_t>(m * (T + 1))] : nullptr;
    Hull prefixC{{0, 0}}, prefixD{{0, 0}};
    bool fitsHidden = allowHidden && m >= h;
    bool fitsInternal = allowInternal && m >= s;
    // The splits of each table, hidden then internal. Their walks, and
    // their hull cursors, start where the previous length's minimum was
    // (0: search, the previous length was settled or there was none).
    Split splits[2][2];
    int n = 0;
    for (bool freeable : {false, true}) {
      if (freeable && !needD)
        break;
      const Hull *prefix = freeable ? &prefixD : &prefixC;
      n = 0;
      if (fitsHidden)
        splits[freeable][n++] = makeSplit(freeable, true, m, 0, prefix);
      if (fitsInternal)
        splits[freeable][n++] = makeSplit(freeable, false, m, 0, prefix);
      for (int i = 0; i < n && !settled; ++i)
        splits[freeable][i].from = 1;
    }
    // Cells the levels settle: every length up to their reach; beyond it the
    // excess is at least the levels built.
    int64_t reach[2] = {0, 0}, level[2] = {0, 0}, floorExcess = 0;
    if (settled) {
      reach[0] = settled->settledReach(false, m);
      reach[1] = needD ? settled->settledReach(true, m) : 0;
      floorExcess = settled->levelsBuilt();
    }
    auto cell = [&](bool freeable, int64_t L) -> int64_t {
      if (L <= reach[freeable])
        return std::min(settled->settledCost(freeable, L, m, level[freeable]),
                        kCap);
      int32_t *row = freeable ? rowD : rowC;
      if (!freeable && m < smallestItem)
        return std::min(L * (L + 1) / 2, kCap);
      if (allowInternal && m >= (L - 1) * s)
        return L;
      int64_t best = L + row[L - 1];
      if (freeable && allowInternal && L > 1 && m + h - s >= 0)
        best = std::min(best, 1 + get(false, L - 1, m + h - s));
      int64_t floor = lowerBound(freeable, L, m) + floorExcess;
      if (L < 2 || best <= floor)
        return std::min(best, kCap);
      int64_t y0[2];
      for (int i = 0; i < n; ++i) {
        Split &sp = splits[freeable][i];
        sp.L = L;
        y0[i] = sp.from =
            sp.from == 0 ? leastMinimiser(sp) : minimum(sp, sp.from);
        best = std::min(best, splitCost(sp, y0[i]));
      }
      for (int i = 0; i < n; ++i)
        improve(splits[freeable][i], y0[i], best, floor);
      return std::min(best, kCap);
    };
    for (int64_t L = 1; L <= T; ++L) {
      rowC[L] = static_cast<int32_t>(cell(false, L));
      extend(prefixC, L, rowC[L]);
      if (needD) {
        rowD[L] = static_cast<int32_t>(cell(true, L));
        extend(prefixD, L, rowD[L]);
      }
    }
    prefixC.shrink_to_fit();
    hullC.push_back(std::move(prefixC));
    if (needD) {
      prefixD.shrink_to_fit();
      hullD.push_back(std::move(prefixD));
    }
  }

  const UniformLevels *settled;
  /// C(L, m) and D(L, m) at [m * (T + 1) + L].
  std::vector<int32_t> C, D;
  /// Lower convex hull of each whole row, by m.
  std::vector<Hull> hullC, hullD;
};

//===----------------------------------------------------------------------===//
// Uniform chains, HSM: Revolve's closed form
//===----------------------------------------------------------------------===//

/// HSM on a uniform chain is binomial checkpointing: with c free slots a
/// segment of L steps costs revolveForwardSteps(L, c + 1) (Griewank's
/// theorem; the tests hold the plain dynamic program to it). The cost of
/// storing h at offset y, y + R(L - y, c) + R(y, c + 1), is convex in y (R
/// is convex piecewise linear in the length: its slopes r grow and it is
/// continuous at the binomial breakpoints), so the best split is found by a
/// binary search on the sign of its difference instead of a scan over y.
class RevolveSplits {
public:
  explicit RevolveSplits(int64_t hiddenUnits) : h(hiddenUnits) {}
  int64_t hiddenUnits(int64_t) const { return h; }
  int64_t internalUnits(int64_t) const { return h; }

  Choice best(int64_t s0, int64_t e0, int64_t m, StartKind, int64_t) const {
    int64_t L = e0 - s0, slots = m / h;
    int64_t direct = L + revolveForwardSteps(L - 1, slots + 1);
    if (slots == 0 || L < 2)
      return {double(direct), ChoiceKind::Direct, e0};
    auto at = [&](int64_t y) {
      return y + revolveForwardSteps(L - y, slots) +
             revolveForwardSteps(y, slots + 1);
    };
    int64_t lo = 1, hi = L - 1; // least y whose successor is no cheaper
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (at(mid + 1) >= at(mid))
        hi = mid;
      else
        lo = mid + 1;
    }
    int64_t split = at(lo);
    if (split < direct)
      return {double(split), ChoiceKind::Hidden, s0 + lo};
    return {double(direct), ChoiceKind::Direct, e0};
  }

private:
  int64_t h;
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

/// How many steps a segment of the plain dynamic program may hand back to its
/// parent. Only chains whose state sizes differ per step need it (with
/// uniform sizes the program without it equals the exhaustive search in every
/// tested case), and each step more multiplies the tables and the split
/// options, so the automatic choice takes the largest bound, up to T, whose
/// estimated work and cells stay within the options' limits.
int64_t chooseHandback(const Chain &chain, Strategy strategy, int64_t capacity,
                       const PlannerOptions &options) {
  int64_t T = chain.steps;
  if (chain.hasUniformSizes() || T == 0)
    return 0;
  if (options.maxHandback >= 0)
    return std::min(options.maxHandback, T);
  bool hidden = strategy != Strategy::ISM, internal = strategy != Strategy::HSM;
  int64_t chosen = 0;
  for (int64_t d = 1; d <= T; ++d) {
    if (SegmentSolver::pairCells(T, capacity, d, hidden, internal) >
            2.0 * double(options.maxTableCells) ||
        SegmentSolver::pairWork(T, capacity, d, hidden, internal) >
            double(options.maxHandbackWork))
      break;
    chosen = d;
  }
  return chosen;
}

//===----------------------------------------------------------------------===//
// Fixed policies: store-all, Chen, Revolve
//===----------------------------------------------------------------------===//

void emitStoreAll(const Chain &chain, std::vector<Action> &out) {
  Emitter em(out, std::numeric_limits<int64_t>::max());
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
  Emitter em(out, std::numeric_limits<int64_t>::max());
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
  // The planned strategies' schedules (store-all's and Chen's are linear in
  // T).
  Emitter em(result.actions, options.maxActions);

  switch (strategy) {
  case Strategy::All:
    emitStoreAll(chain, result.actions);
    result.method = "store-all";
    break;
  case Strategy::Chen:
    emitChen(chain, result.actions);
    result.method = "chen";
    break;
  case Strategy::Revolve: {
    result.method = "revolve";
    emitSegments(chain, RevolveSplits(chain.hidden(1)), em, T, slotBytes);
    break;
  }
  case Strategy::ISM:
  case Strategy::MSM:
    // Nothing beats keeping every internal state when it fits; this also
    // spares a table as large as the budget.
    if (storeAllFits) {
      emitStoreAll(chain, result.actions);
      result.method = "store-all";
      break;
    }
    [[fallthrough]];
  case Strategy::HSM: {
    bool fast = options.uniformFastPath && chain.isUniform() && T > 0;
    if (fast && strategy == Strategy::HSM) {
      RevolveSplits splits(chain.hidden(1));
      result.memoryUnit = chain.hidden(1);
      result.method = "revolve";
      emitSegments(chain, splits, em, T, slotBytes);
      break;
    }
    if (fast) {
      // ISM stores only internal states and never frees a segment start
      // (D is reached through hidden moves only), so C depends on the free
      // memory only through the internal states it holds: count in |s|,
      // exactly, and with |s|/gcd times fewer memory levels.
      int64_t unit = strategy == Strategy::ISM
                         ? chain.internal(1)
                         : std::gcd(chain.hidden(1), chain.internal(1));
      int64_t capacity = slotBytes / unit;
      // Records which solver planned, on what unit, and emits its schedule.
      auto emitWith = [&](const auto &solver, const char *method,
                          int64_t solverUnit, int64_t solverCapacity,
                          bool exact) {
        result.memoryUnit = solverUnit;
        result.tableBytes = solver.tableBytes();
        result.method = method;
        result.exact = exact;
        emitSegments(chain, solver, em, T, solverCapacity);
      };
      UniformLevels levels(chain, strategy, unit, capacity);
      using Method = PlannerOptions::UniformMethod;
      // Both exact. The levels' work grows with the square of the chain's
      // excess, which is large when the budget is small for the chain length
      // (steps run three times or more); the hull-cut tables' with their
      // cells, T x M, at a few splits each. Give the levels about the tables'
      // time (they give up early when they foresee needing more), then fill
      // the tables.
      // Measured: a level step takes 0.7-1 ns, a hull-cut cell 20-60 ns.
      // The tables' cells take 4 bytes, the plain program's 8. They may take
      // twice the plain program's memory (1 GiB at the default limit): T =
      // 100,000 needs that between 0.09% and 0.25% of store-all for the
      // benchmark's LSTM, where no other exact method finishes in minutes.
      double maxHullCells = 8.0 * double(options.maxTableCells);
      double hullCells = UniformHulls::cells(T, capacity, strategy);
      // When the exact tables do not fit, the levels are tried twice (exact
      // and on coarse units) before coarse tables: a quarter each.
      double levelStepsPerCell = hullCells <= maxHullCells ? 64.0 : 16.0;
      int64_t levelWork =
          options.uniformMethod == Method::Levels
              ? std::numeric_limits<int64_t>::max()
          : options.maxLevelWork >= 0
              ? options.maxLevelWork
              : std::max(int64_t(levelStepsPerCell *
                                 std::min(hullCells, maxHullCells)),
                         int64_t(1) << 20);
      // The level arrays together may take what the plain program's two
      // tables may. Where the exact tables are next, the levels built
      // settle their low-excess cells (a lookup instead of the splits),
      // and are built on while each level settles cells worth its work: a
      // settled cell is worth 256 level steps (its splits take 60-100 ns, a
      // level step 0.7 ns; 64, 128 and 256 measured the same at T = 30,000
      // and 100,000).
      bool tablesNext = options.uniformMethod != Method::Levels &&
                        hullCells <= maxHullCells;
      double settledWorth = tablesNext && options.hullSettleLevels != 0
                                ? 256.0
                                : 0.0;
      int64_t maxLevels = options.hullSettleLevels >= 0 &&
                                  options.uniformMethod == Method::Hulls
                              ? options.hullSettleLevels
                              : std::numeric_limits<int64_t>::max();
      bool levelsCover =
          options.uniformMethod != Method::Hulls || settledWorth > 0
              ? levels.solve(levelWork, 2 * options.maxTableCells,
                             settledWorth, maxLevels)
              : false;
      if (levelsCover && options.uniformMethod != Method::Hulls) {
        emitWith(levels, "levels", unit, capacity, true);
        break;
      }
      if (tablesNext) {
        UniformHulls hulls(chain, strategy, unit, capacity,
                           settledWorth > 0 ? &levels : nullptr);
        if (hulls.solve(int64_t(maxHullCells))) {
          emitWith(hulls, "hulls", unit, capacity, true);
          break;
        }
      }
      // State sizes with a small common divisor make very many memory
      // levels (|h| = 1 MiB and |s| = 4,260,864 B: a 1 KiB unit, 400,000
      // levels at a 400 MB budget), and then both exact methods take hours:
      // the plain program's work grows with T^2 M. Plan with the level sets
      // on a coarser unit instead, sizes rounded up (so within the budget,
      // optimal for the rounded sizes, `exact` false), before falling back.
      if (capacity > options.coarseLevels && options.coarseLevels > 0) {
        int64_t coarseUnit = llvm::divideCeil(slotBytes, options.coarseLevels);
        int64_t coarseCapacity = slotBytes / coarseUnit;
        UniformLevels coarse(chain, strategy, coarseUnit, coarseCapacity);
        if (coarse.solve(levelWork, 2 * options.maxTableCells)) {
          emitWith(coarse, "levels (coarse units)", coarseUnit,
                   coarseCapacity, false);
          break;
        }
      }
      // A long chain at a small budget: the exact tables would exceed the
      // cell limit. Fill them on a multiple of the unit, sizes rounded up
      // (within the budget, optimal for the rounded sizes, `exact` false).
      if (options.uniformMethod != Method::Levels &&
          hullCells > maxHullCells) {
        double rowCells = hullCells / double(capacity + 1);
        int64_t rows = std::max<int64_t>(int64_t(maxHullCells / rowCells), 2);
        int64_t coarseUnit = unit * llvm::divideCeil(capacity + 1, rows);
        int64_t coarseCapacity = slotBytes / coarseUnit;
        UniformHulls coarse(chain, strategy, coarseUnit, coarseCapacity);
        if (coarse.solve(int64_t(maxHullCells))) {
          emitWith(coarse, "hulls (coarse units)", coarseUnit, coarseCapacity,
                   false);
          break;
        }
      }
    }
    Granularity g = chooseGranularity(chain, slotBytes, options.maxTableCells);
    result.memoryUnit = g.unit;
    result.exact = g.exact;
    int64_t handback = chooseHandback(chain, strategy, g.capacity, options);
    SegmentSolver solver(chain, strategy, g.unit, g.capacity, handback);
    result.tableBytes = solver.tableBytes();
    result.handback = handback;
    result.method = "dp";
    emitSegments(chain, solver, em, T, g.capacity);
    break;
  }
  }

  if (em.overflowed())
    return llvm::createStringError(llvm::formatv(
        "the {0} schedule of {1} steps within {2} bytes has more than {3} "
        "actions (PlannerOptions::maxActions, {4} bytes of actions); raise "
        "the budget (store-all needs {5} bytes) or plan a shorter sequence",
        stringify(strategy), T, budgetBytes, options.maxActions,
        options.maxActions * int64_t(sizeof(Action)), chain.storeAllBytes())
        .str());
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
