//===- ExhaustiveSearch.cpp - shortest path over all schedules ------------===//
//
// A state is (k, cursor, stored): k the next backward step (T..1, 0 when
// done), cursor the hidden state that forward steps advance (or none), and
// the set of stored hidden states h_i and internal states s_t. Moves, each
// as in the problem statement:
//   restore h_i into the cursor from h_0, a stored h_i or a stored s_i;
//   run a forward step from the cursor, optionally keeping s_t (stored);
//   store the cursor's h_t;
//   run backward step k from a stored s_k, or right after computing s_k
//   from h_{k-1} (the working set holds it);
//   free any stored state.
// The search is A*: every remaining backward step t <= k whose s_t is not
// stored needs at least one more forward of step t, so the sum of those
// forward costs is a consistent lower bound on the cost to go.
// Two canonical forms keep the search small without losing any optimum:
// stored states that can no longer be used (h_i with i >= k, s_t with t > k)
// are dropped at once, and a state is freed only when the largest state
// would no longer fit (freeing lazily, just before a store that needs the
// room, never costs anything).
//
//===----------------------------------------------------------------------===//

#include "ExhaustiveSearch.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

using namespace bptt::planner;
using namespace bptt::planner::testing;

namespace {
struct State {
  int k;
  int cursor;        // -1: none
  uint32_t hidden;   // bit i: h_i stored (1 <= i < T)
  uint32_t internal; // bit t: s_t stored (1 <= t <= T)

  uint64_t key() const {
    return uint64_t(hidden) | (uint64_t(internal) << 16) |
           (uint64_t(cursor + 1) << 34) | (uint64_t(k) << 40);
  }
  static State fromKey(uint64_t key) {
    return State{int(key >> 40), int((key >> 34) & 63) - 1,
                 uint32_t(key & 0xffff), uint32_t((key >> 16) & 0x3ffff)};
  }
};
} // namespace

std::optional<double>
bptt::planner::testing::exhaustiveForwardCost(const Chain &chain,
                                              int64_t budgetBytes,
                                              StoreRules rules) {
  const int T = static_cast<int>(chain.steps);
  const int64_t capacity = budgetBytes - chain.workingSetBytes();
  if (capacity < 0)
    return std::nullopt;
  if (T == 0)
    return 0.0;
  assert(T <= 15 && "the exhaustive search handles T <= 15");
  int64_t largestItem = 0;
  for (int t = 1; t <= T; ++t)
    largestItem = std::max({largestItem, chain.hidden(t), chain.internal(t)});

  auto bytesOf = [&](const State &s) {
    int64_t b = 0;
    for (int i = 1; i <= T; ++i) {
      if (s.hidden >> i & 1)
        b += chain.hidden(i);
      if (s.internal >> i & 1)
        b += chain.internal(i);
    }
    return b;
  };
  auto prune = [&](State s) {
    for (int i = s.k; i <= T; ++i)
      s.hidden &= ~(uint32_t(1) << i);
    for (int t = s.k + 1; t <= T; ++t)
      s.internal &= ~(uint32_t(1) << t);
    return s;
  };

  auto costToGo = [&](const State &s) {
    double h = 0;
    for (int t = 1; t <= s.k; ++t)
      if (!(s.internal >> t & 1))
        h += chain.forward(t);
    return h;
  };

  using Entry = std::pair<double, uint64_t>; // (cost so far + cost to go, key)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  std::unordered_map<uint64_t, double> dist;

  auto push = [&](const State &s, double d) {
    if (bytesOf(s) > capacity)
      return;
    uint64_t key = s.key();
    auto [it, inserted] = dist.try_emplace(key, d);
    if (!inserted) {
      if (it->second <= d)
        return;
      it->second = d;
    }
    queue.push({d + costToGo(s), key});
  };

  push(State{T, -1, 0, 0}, 0.0);
  while (!queue.empty()) {
    auto [priority, key] = queue.top();
    queue.pop();
    State s = State::fromKey(key);
    double d = dist[key];
    if (priority > d + costToGo(s))
      continue; // a stale entry: the state was reached more cheaply since
    if (s.k == 0)
      return d;

    // Restore a hidden state below k into the cursor (from h_0, a stored
    // h_i, or the h_i inside a stored s_i).
    for (int i = 0; i < s.k; ++i) {
      bool available = i == 0 || (s.hidden >> i & 1) || (s.internal >> i & 1);
      if (available && i != s.cursor) {
        State n = s;
        n.cursor = i;
        push(n, d);
      }
    }
    if (s.cursor >= 0) {
      int t = s.cursor + 1;
      double f = chain.forward(t);
      if (t <= s.k - 1) { // plain, only toward states below k
        State n = s;
        n.cursor = t;
        push(n, d + f);
      }
      if (rules.internal && t <= s.k && !(s.internal >> t & 1)) { // keep s_t
        State n = s;
        n.cursor = t;
        n.internal |= uint32_t(1) << t;
        push(n, d + f);
      }
      if (t == s.k) { // into the working set, then backward k at once
        State n = s;
        n.k -= 1;
        n.cursor = -1;
        push(prune(n), d + f);
      }
    }
    // Store the cursor's hidden state.
    if (rules.hidden && s.cursor >= 1 && s.cursor < s.k &&
        !(s.hidden >> s.cursor & 1)) {
      State n = s;
      n.hidden |= uint32_t(1) << s.cursor;
      push(n, d);
    }
    // Backward k from a stored s_k.
    if (s.internal >> s.k & 1) {
      State n = s;
      n.internal &= ~(uint32_t(1) << s.k);
      n.k -= 1;
      n.cursor = -1;
      push(prune(n), d);
    }
    // Free a stored state, only when the largest state would not fit.
    if (bytesOf(s) + largestItem > capacity)
      for (int i = 1; i <= T; ++i) {
        if (s.hidden >> i & 1) {
          State n = s;
          n.hidden &= ~(uint32_t(1) << i);
          push(n, d);
        }
        if (s.internal >> i & 1) {
          State n = s;
          n.internal &= ~(uint32_t(1) << i);
          push(n, d);
        }
      }
  }
  return std::nullopt;
}
