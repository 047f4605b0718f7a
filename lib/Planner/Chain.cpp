//===- Chain.cpp - the cost and memory model of a recurrence --------------===//

#include "bptt/Planner/Chain.h"

#include <algorithm>

using namespace bptt::planner;

Chain Chain::uniform(int64_t steps, int64_t hiddenBytes, int64_t internalBytes,
                     int64_t workspaceBytes, double forwardCost,
                     double backwardCost) {
  Chain c;
  c.steps = steps;
  c.forwardCost = {forwardCost};
  c.backwardCost = {backwardCost};
  c.hiddenBytes = {hiddenBytes};
  c.internalBytes = {internalBytes};
  c.workspaceBytes = workspaceBytes;
  return c;
}

template <typename T> static bool allEqual(const std::vector<T> &v) {
  return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<T>()) ==
         v.end();
}

bool Chain::hasUniformSizes() const {
  return allEqual(hiddenBytes) && allEqual(internalBytes);
}

bool Chain::isUniform() const {
  return hasUniformSizes() && allEqual(forwardCost) && allEqual(backwardCost);
}

int64_t Chain::workingSetBytes() const {
  int64_t maxHidden =
      *std::max_element(hiddenBytes.begin(), hiddenBytes.end());
  int64_t maxInternal =
      *std::max_element(internalBytes.begin(), internalBytes.end());
  // h_{t-1} and h_t of the running forward step, dL/dh_t and dL/dh_{t-1} of
  // the running backward step, s_t of the step about to be differentiated.
  return workspaceBytes + 4 * maxHidden + maxInternal;
}

int64_t Chain::storeAllBytes() const {
  int64_t bytes = workingSetBytes();
  for (int64_t t = 1; t < steps; ++t)
    bytes += internal(t);
  return bytes;
}

llvm::Error Chain::validate() const {
  auto sizeOk = [&](size_t n) {
    return n == 1 || static_cast<int64_t>(n) == steps;
  };
  if (steps < 0)
    return llvm::createStringError("a chain has T >= 0 steps, got %lld",
                                   static_cast<long long>(steps));
  struct {
    const char *name;
    size_t size;
  } vectors[] = {{"forward costs", forwardCost.size()},
                 {"backward costs", backwardCost.size()},
                 {"hidden-state sizes", hiddenBytes.size()},
                 {"internal-state sizes", internalBytes.size()}};
  for (auto &v : vectors)
    if (!sizeOk(v.size))
      return llvm::createStringError(
          "%s: expected 1 value (uniform) or one per step (%lld), got %zu",
          v.name, static_cast<long long>(steps), v.size);
  for (double c : forwardCost)
    if (!(c > 0))
      return llvm::createStringError("forward costs must be positive, got %g",
                                     c);
  for (double c : backwardCost)
    if (!(c >= 0))
      return llvm::createStringError(
          "backward costs must be non-negative, got %g", c);
  for (size_t i = 0; i < std::max(hiddenBytes.size(), internalBytes.size());
       ++i) {
    int64_t h = hiddenBytes[std::min(i, hiddenBytes.size() - 1)];
    int64_t s = internalBytes[std::min(i, internalBytes.size() - 1)];
    if (h <= 0 || s <= 0)
      return llvm::createStringError(
          "state sizes must be positive, got hidden %lld and internal %lld "
          "bytes",
          static_cast<long long>(h), static_cast<long long>(s));
    if (s < h)
      return llvm::createStringError(
          "an internal state contains its hidden state, so it cannot be "
          "smaller: got internal %lld < hidden %lld bytes",
          static_cast<long long>(s), static_cast<long long>(h));
  }
  if (workspaceBytes < 0)
    return llvm::createStringError("workspace bytes must be >= 0, got %lld",
                                   static_cast<long long>(workspaceBytes));
  return llvm::Error::success();
}
