//===- Schedule.cpp - the abstract machine that checks schedules ----------===//

#include "bptt/Planner/Schedule.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <map>

using namespace bptt::planner;

llvm::StringRef bptt::planner::stringify(ActionKind kind) {
  switch (kind) {
  case ActionKind::Restore:
    return "restore";
  case ActionKind::Forward:
    return "forward";
  case ActionKind::ForwardKeep:
    return "forward-keep";
  case ActionKind::ForwardToWork:
    return "forward-to-work";
  case ActionKind::StoreHidden:
    return "store-hidden";
  case ActionKind::Backward:
    return "backward";
  case ActionKind::Free:
    return "free";
  }
  return "?";
}

std::optional<ActionKind> bptt::planner::parseActionKind(llvm::StringRef name) {
  for (ActionKind k :
       {ActionKind::Restore, ActionKind::Forward, ActionKind::ForwardKeep,
        ActionKind::ForwardToWork, ActionKind::StoreHidden,
        ActionKind::Backward, ActionKind::Free})
    if (stringify(k) == name)
      return k;
  return std::nullopt;
}

llvm::raw_ostream &bptt::planner::operator<<(llvm::raw_ostream &os,
                                            const Action &a) {
  os << stringify(a.kind);
  if (a.kind != ActionKind::Free)
    os << ' ' << a.step;
  if (a.count != 1)
    os << ".." << a.lastStep();
  if (a.offset >= 0)
    os << " @" << a.offset;
  return os;
}

namespace {
std::string describe(const Action &a) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << a;
  return s;
}

struct Slot {
  int64_t end;
  bool internal; // holds s_step (else h_step)
  int64_t step;
};

/// The abstract machine of Schedule.h.
class Machine {
public:
  explicit Machine(const Chain &chain) : chain(chain), next(chain.steps) {}

  llvm::Error run(llvm::ArrayRef<Action> actions, Execution &out) {
    for (size_t i = 0; i < actions.size(); ++i)
      if (llvm::Error err = apply(actions[i]))
        return llvm::createStringError(
            llvm::formatv("action #{0} ({1}): {2}", i, describe(actions[i]),
                          llvm::toString(std::move(err)))
                .str());
    if (next != 0)
      return fail("the schedule ends before backward step {0} ran", next);
    if (!slots.empty())
      return fail("the schedule ends with {0} slot(s) still held",
                  slots.size());
    exec.peakBytes = chain.workingSetBytes() + exec.poolBytes;
    out = exec;
    return llvm::Error::success();
  }

private:
  template <typename... Ts>
  static llvm::Error fail(const char *fmt, Ts &&...vals) {
    return llvm::createStringError(
        llvm::formatv(fmt, std::forward<Ts>(vals)...).str());
  }

  llvm::Error checkStep(int64_t step) {
    if (step < 1 || step > chain.steps)
      return fail("step {0} is outside 1..{1}", step, chain.steps);
    return llvm::Error::success();
  }

  /// Forward steps step .. step+count-1 from the cursor.
  llvm::Error runForward(int64_t step, int64_t count = 1) {
    if (count < 1)
      return fail("a forward run needs at least one step, got {0}", count);
    if (llvm::Error err = checkStep(step))
      return err;
    if (count > chain.steps - step + 1)
      return fail("forward steps {0}..{1} run past step {2}", step,
                  step + count - 1, chain.steps);
    if (cursor != step - 1)
      return fail("forward step {0} needs h_{1}, but the cursor holds {2}",
                  step, step - 1,
                  cursor < 0 ? std::string("nothing")
                             : "h_" + std::to_string(cursor));
    cursor = step + count - 1;
    // Uniform costs: one product (these runs reach T^2/2 steps in all).
    if (chain.forwardCost.size() == 1)
      exec.forwardCost += chain.forwardCost[0] * double(count);
    else
      for (int64_t t = step; t <= cursor; ++t)
        exec.forwardCost += chain.forward(t);
    exec.forwardSteps += count;
    return llvm::Error::success();
  }

  llvm::Error allocate(int64_t offset, int64_t bytes, bool internal,
                       int64_t step) {
    if (offset < 0)
      return fail("a slot needs an offset >= 0, got {0}", offset);
    auto after = slots.lower_bound(offset);
    if (after != slots.end() && after->first < offset + bytes)
      return fail("slot [{0}, {1}) overlaps the slot at {2}", offset,
                  offset + bytes, after->first);
    if (after != slots.begin() && std::prev(after)->second.end > offset)
      return fail("slot [{0}, {1}) overlaps the slot at {2}", offset,
                  offset + bytes, std::prev(after)->first);
    slots[offset] = Slot{offset + bytes, internal, step};
    exec.poolBytes = std::max(exec.poolBytes, offset + bytes);
    exec.maxLiveSlots =
        std::max(exec.maxLiveSlots, static_cast<int64_t>(slots.size()));
    return llvm::Error::success();
  }

  llvm::Error apply(const Action &a) {
    if (a.kind != ActionKind::Forward && a.count != 1)
      return fail("only a forward run covers several steps; {0} has a count "
                  "of {1}",
                  stringify(a.kind), a.count);
    switch (a.kind) {
    case ActionKind::Restore: {
      if (a.offset < 0) {
        if (a.step != 0)
          return fail("only h_0 is restored without a slot, not h_{0}",
                      a.step);
        cursor = 0;
        return llvm::Error::success();
      }
      auto it = slots.find(a.offset);
      if (it == slots.end() || it->second.step != a.step)
        return fail("no slot at {0} holds h_{1} or s_{1}", a.offset, a.step);
      cursor = a.step;
      return llvm::Error::success();
    }
    case ActionKind::Forward:
      return runForward(a.step, a.count);
    case ActionKind::ForwardKeep:
      if (llvm::Error err = runForward(a.step))
        return err;
      return allocate(a.offset, chain.internal(a.step), /*internal=*/true,
                      a.step);
    case ActionKind::ForwardToWork:
      if (llvm::Error err = runForward(a.step))
        return err;
      workStep = a.step;
      return llvm::Error::success();
    case ActionKind::StoreHidden:
      if (a.step < 1 || cursor != a.step)
        return fail("storing h_{0} needs the cursor to hold it (h_0 is the "
                    "caller's and is never stored)",
                    a.step);
      return allocate(a.offset, chain.hidden(a.step), /*internal=*/false,
                      a.step);
    case ActionKind::Backward: {
      if (a.step != next)
        return fail("backward steps run T..1; expected step {0}, got {1}",
                    next, a.step);
      if (a.offset < 0) {
        if (workStep != a.step)
          return fail("backward step {0} needs s_{0}, which is not in the "
                      "working set",
                      a.step);
      } else {
        auto it = slots.find(a.offset);
        if (it == slots.end() || !it->second.internal ||
            it->second.step != a.step)
          return fail("backward step {0} needs s_{0}, which the slot at {1} "
                      "does not hold",
                      a.step, a.offset);
      }
      exec.backwardCost += chain.backward(a.step);
      workStep = -1;
      cursor = -1;
      --next;
      return llvm::Error::success();
    }
    case ActionKind::Free: {
      auto it = slots.find(a.offset);
      if (it == slots.end())
        return fail("no slot at {0} to free", a.offset);
      slots.erase(it);
      return llvm::Error::success();
    }
    }
    return fail("unknown action");
  }

  const Chain &chain;
  int64_t next;         // the next backward step
  int64_t cursor = -1;  // the hidden state forward steps advance; -1: none
  int64_t workStep = -1; // the step whose s_t is in the working set
  std::map<int64_t, Slot> slots; // by offset
  Execution exec;
};
} // namespace

llvm::Expected<Execution>
bptt::planner::simulate(const Chain &chain, llvm::ArrayRef<Action> actions) {
  if (llvm::Error err = chain.validate())
    return std::move(err);
  Execution exec;
  Machine machine(chain);
  if (llvm::Error err = machine.run(actions, exec))
    return std::move(err);
  return exec;
}
