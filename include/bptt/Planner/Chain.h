//===- Chain.h - the cost and memory model of a recurrence ------*- C++ -*-===//
//
// A recurrence of T steps as the planner sees it: what each step costs and
// how many bytes its hidden and internal states take. No MLIR dependency.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_PLANNER_CHAIN_H
#define BPTT_PLANNER_CHAIN_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace bptt::planner {

/// Steps are numbered 1..T. Step t maps h_{t-1} to h_t; run "keeping", it
/// also produces the internal state s_t (everything backward step t needs,
/// h_t included). h_0 is the caller's and is always available for free.
///
/// Each per-step vector holds either one value (uniform chain) or T values
/// (heterogeneous chain, index t-1 for step t).
struct Chain {
  int64_t steps = 0;
  /// Cost of forward step t (any positive unit: steps, µs, FLOPs).
  std::vector<double> forwardCost{1.0};
  /// Cost of backward step t. Every schedule runs each backward step exactly
  /// once, so these never change the plan, only the reported total.
  std::vector<double> backwardCost{1.0};
  /// Bytes of the hidden state h_t (all state tensors together).
  std::vector<int64_t> hiddenBytes{1};
  /// Bytes of the internal state s_t (the values backward step t needs).
  std::vector<int64_t> internalBytes{1};
  /// Scratch bytes one step needs beyond its state buffers (temporaries of
  /// the forward or backward computation, library workspace).
  int64_t workspaceBytes = 0;

  static Chain uniform(int64_t steps, int64_t hiddenBytes,
                       int64_t internalBytes, int64_t workspaceBytes = 0,
                       double forwardCost = 1.0, double backwardCost = 1.0);

  double forward(int64_t t) const { return pick(forwardCost, t); }
  double backward(int64_t t) const { return pick(backwardCost, t); }
  int64_t hidden(int64_t t) const { return pick(hiddenBytes, t); }
  int64_t internal(int64_t t) const { return pick(internalBytes, t); }

  /// True when every step has the same costs and sizes.
  bool isUniform() const;
  /// True when every step has the same sizes (costs may differ).
  bool hasUniformSizes() const;

  /// The working set: bytes that are live whatever the schedule, reserved
  /// once for the whole run. It is the workspace, two hidden-state buffers
  /// for the forward step being run (h_{t-1} in, h_t out), one internal-state
  /// buffer for the step about to be differentiated when its s_t is
  /// recomputed rather than stored, and two gradient buffers (dL/dh_t in,
  /// dL/dh_{t-1} out). Sizes are the largest over the steps.
  int64_t workingSetBytes() const;

  /// Peak bytes of standard BPTT (store-all): the working set plus s_1 ..
  /// s_{T-1} (s_T is produced straight into the internal-state buffer).
  int64_t storeAllBytes() const;

  /// Checks sizes and costs: T >= 0, vectors of length 1 or T, costs > 0,
  /// bytes > 0 and internal bytes >= hidden bytes (s_t contains h_t).
  llvm::Error validate() const;

private:
  template <typename T>
  static T pick(const std::vector<T> &v, int64_t t) {
    return v.size() == 1 ? v[0] : v[t - 1];
  }
};

} // namespace bptt::planner

#endif // BPTT_PLANNER_CHAIN_H
