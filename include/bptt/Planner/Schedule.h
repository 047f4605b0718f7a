//===- Schedule.h - checkpointing schedules and their simulator -*- C++ -*-===//

#ifndef BPTT_PLANNER_SCHEDULE_H
#define BPTT_PLANNER_SCHEDULE_H

#include "bptt/Planner/Chain.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace bptt::planner {

/// The abstract machine a schedule runs on: a "cursor" hidden state that
/// forward steps advance, a pool of slots (byte ranges) holding stored hidden
/// or internal states, the working set, and the next backward step k (T at
/// the start, 0 when done).
enum class ActionKind : uint8_t {
  /// cursor := h_step, read from the slot at `offset` (a stored h_step, or a
  /// stored s_step, which contains h_step); offset = -1 reads the caller's h_0.
  Restore,
  /// Run the `count` forward steps step .. step+count-1 from the cursor
  /// (h_{step-1}); cursor := h_{step+count-1}. Their internal states are
  /// discarded. One action per run keeps a schedule's length linear in T
  /// even where it runs T^2/2 forward steps (the working set alone).
  Forward,
  /// As Forward, but keep s_step in a new slot at `offset`.
  ForwardKeep,
  /// As Forward, but keep s_step in the working set's internal-state buffer,
  /// for the backward step that follows at once.
  ForwardToWork,
  /// Copy the cursor (h_step) into a new slot at `offset`.
  StoreHidden,
  /// Run backward step `step` (= k) with s_step from the slot at `offset`, or
  /// from the internal-state buffer when offset = -1. Frees nothing.
  Backward,
  /// Release the slot at `offset`.
  Free,
};

struct Action {
  ActionKind kind;
  int64_t step = 0;
  int64_t offset = -1;
  /// Forward: the number of steps in the run (>= 1); 1 for every other kind.
  int64_t count = 1;

  /// The last step the action runs or touches (step + count - 1).
  int64_t lastStep() const { return step + count - 1; }

  bool operator==(const Action &o) const {
    return kind == o.kind && step == o.step && offset == o.offset &&
           count == o.count;
  }
};

llvm::StringRef stringify(ActionKind kind);
/// The kind whose stringify() is `name`, or nullopt.
std::optional<ActionKind> parseActionKind(llvm::StringRef name);
llvm::raw_ostream &operator<<(llvm::raw_ostream &os, const Action &a);

/// What running a schedule on the abstract machine costs.
struct Execution {
  double forwardCost = 0;     // sum of forward costs of executed steps
  double backwardCost = 0;    // sum of backward costs (each step once)
  int64_t forwardSteps = 0;   // number of forward steps executed
  int64_t poolBytes = 0;      // high-water mark of the slot pool
  int64_t peakBytes = 0;      // working set + peak of live slot bytes
  int64_t maxLiveSlots = 0;   // most slots held at once
};

/// Executes `actions` abstractly and checks that the schedule is valid:
/// forward steps start from the right hidden state, slots never overlap and
/// are freed only once, every backward step has its internal state, backward
/// steps run T..1 exactly once each and every slot is freed at the end.
/// Returns what it cost, or an error naming the first violation.
llvm::Expected<Execution> simulate(const Chain &chain,
                                   llvm::ArrayRef<Action> actions);

} // namespace bptt::planner

#endif // BPTT_PLANNER_SCHEDULE_H
