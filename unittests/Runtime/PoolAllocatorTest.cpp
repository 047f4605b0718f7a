//===- PoolAllocatorTest.cpp - the memory pool's bookkeeping --------------===//
//
// The device memory pool's placement and accounting, over a fake arena whose
// growth is recorded: exact in-use and peak, best fit, coalescing, giving
// free space at the top back, growth only when no hole fits, errors that
// change nothing, and the property the CUDA graph capture relies on: a step
// that frees what it allocates, replayed from the same live blocks, gets the
// same offsets and never grows the pool again.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/PoolAllocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

using namespace bptt::runtime;

namespace {

/// A pool over a fake arena that grows to exactly what is required (or by a
/// fixed step), records every growth, and can be told to refuse.
struct FakeArena {
  uint64_t step = 0; // 0: exact
  uint64_t limit = UINT64_MAX;
  bool refuse = false;
  std::vector<uint64_t> growths; // the `required` of each call

  PoolAllocator::GrowFn fn() {
    return [this](uint64_t required, uint64_t &capacity, std::string &error) {
      growths.push_back(required);
      if (refuse || required > limit) {
        error = "fake arena refuses to grow to " + std::to_string(required);
        return false;
      }
      uint64_t target = std::max(required, capacity + step);
      capacity = std::min(target, std::max(required, limit));
      return true;
    };
  }
};

uint64_t allocOrDie(PoolAllocator &pool, uint64_t bytes) {
  uint64_t offset = UINT64_MAX;
  std::string error;
  EXPECT_TRUE(pool.allocate(bytes, offset, error)) << error;
  EXPECT_EQ(pool.checkInvariants(), "");
  return offset;
}

void freeOrDie(PoolAllocator &pool, uint64_t offset) {
  std::string error;
  EXPECT_TRUE(pool.release(offset, error)) << error;
  EXPECT_EQ(pool.checkInvariants(), "");
}

TEST(PoolAllocator, ExactAccountingOfRequestedBytes) {
  FakeArena arena;
  PoolAllocator pool(256, arena.fn());
  uint64_t a = allocOrDie(pool, 1);
  uint64_t b = allocOrDie(pool, 1000);
  uint64_t c = allocOrDie(pool, 256);
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 256u);  // 1 byte takes one 256-byte unit
  EXPECT_EQ(c, 1280u); // 1000 bytes take four
  PoolCounters k = pool.counters();
  EXPECT_EQ(k.inUseBytes, 1257u);
  EXPECT_EQ(k.peakInUseBytes, 1257u);
  EXPECT_EQ(k.reservedBytes, 1536u);
  EXPECT_EQ(k.allocations, 3u);
  EXPECT_EQ(k.frees, 0u);
  EXPECT_EQ(pool.requestedSize(b), 1000u);
  EXPECT_EQ(pool.requestedSize(b + 256), 0u);

  freeOrDie(pool, b);
  k = pool.counters();
  EXPECT_EQ(k.inUseBytes, 257u);
  EXPECT_EQ(k.peakInUseBytes, 1257u);
  EXPECT_EQ(k.frees, 1u);
  pool.resetPeak();
  EXPECT_EQ(pool.counters().peakInUseBytes, 257u);
  allocOrDie(pool, 100);
  EXPECT_EQ(pool.counters().peakInUseBytes, 357u);
}

TEST(PoolAllocator, BestFitTakesTheSmallestHoleThenTheLowest) {
  FakeArena arena;
  PoolAllocator pool(1, arena.fn());
  // Holes of 30, 10, 20 and 10 bytes separated by live 1-byte blocks.
  std::vector<uint64_t> sizes = {30, 1, 10, 1, 20, 1, 10, 1};
  std::vector<uint64_t> offsets;
  for (uint64_t s : sizes)
    offsets.push_back(allocOrDie(pool, s));
  for (size_t i : {0, 2, 4, 6})
    freeOrDie(pool, offsets[i]);
  EXPECT_EQ(pool.holes(), 4u);
  // 10 fits the two 10-byte holes exactly: the lower one wins.
  EXPECT_EQ(allocOrDie(pool, 10), offsets[2]);
  EXPECT_EQ(allocOrDie(pool, 10), offsets[6]);
  // 15 goes to the 20-byte hole (not the 30), leaving a 5-byte hole.
  EXPECT_EQ(allocOrDie(pool, 15), offsets[4]);
  EXPECT_EQ(allocOrDie(pool, 5), offsets[4] + 15);
  // 31 fits no hole: it goes to the top.
  uint64_t top = pool.top();
  EXPECT_EQ(allocOrDie(pool, 31), top);
  EXPECT_TRUE(arena.growths.size() >= 2);
}

TEST(PoolAllocator, FreesCoalesceAndTheTopIsGivenBack) {
  FakeArena arena;
  PoolAllocator pool(1, arena.fn());
  uint64_t a = allocOrDie(pool, 10), b = allocOrDie(pool, 10),
           c = allocOrDie(pool, 10), d = allocOrDie(pool, 10);
  freeOrDie(pool, b);
  freeOrDie(pool, c); // merges with b's hole
  EXPECT_EQ(pool.holes(), 1u);
  EXPECT_EQ(allocOrDie(pool, 20), b);
  freeOrDie(pool, b);
  freeOrDie(pool, d); // the hole b..d reaches the top: given back
  EXPECT_EQ(pool.holes(), 0u);
  EXPECT_EQ(pool.top(), 10u);
  freeOrDie(pool, a);
  EXPECT_EQ(pool.top(), 0u);
  EXPECT_EQ(pool.liveBlocks(), 0u);
  EXPECT_EQ(pool.counters().inUseBytes, 0u);
  EXPECT_EQ(pool.counters().reservedBytes, 40u); // never shrinks
}

TEST(PoolAllocator, GrowsOnlyWhenNoHoleFits) {
  FakeArena arena;
  arena.step = 1000;
  PoolAllocator pool(8, arena.fn());
  allocOrDie(pool, 8);
  ASSERT_EQ(arena.growths, (std::vector<uint64_t>{8}));
  EXPECT_EQ(pool.capacity(), 1000u);
  for (int i = 0; i < 100; ++i)
    allocOrDie(pool, 8);
  EXPECT_EQ(arena.growths.size(), 1u);
  uint64_t before = pool.top();
  allocOrDie(pool, 200); // 808 + 200 > 1000
  EXPECT_EQ(arena.growths.size(), 2u);
  EXPECT_EQ(arena.growths.back(), before + 200);
  EXPECT_EQ(pool.capacity(), 2000u);
}

TEST(PoolAllocator, ErrorsChangeNothing) {
  FakeArena arena;
  arena.limit = 1024;
  PoolAllocator pool(256, arena.fn());
  uint64_t a = allocOrDie(pool, 300);
  PoolCounters before = pool.counters();
  uint64_t offset = 12345;
  std::string error;

  EXPECT_FALSE(pool.allocate(0, offset, error));
  EXPECT_EQ(error, "a pool block must have at least one byte");
  EXPECT_FALSE(pool.allocate(UINT64_MAX - 3, offset, error));
  EXPECT_NE(error.find("overflows"), std::string::npos) << error;
  EXPECT_FALSE(pool.allocate(1000, offset, error)); // 512 + 1024 > limit
  EXPECT_EQ(error, "fake arena refuses to grow to 1536");
  EXPECT_EQ(offset, 12345u);

  EXPECT_FALSE(pool.release(a + 256, error));
  EXPECT_EQ(error, "offset 256 is not the start of a live pool block (never "
                   "allocated, or freed already)");
  freeOrDie(pool, a);
  EXPECT_FALSE(pool.release(a, error)); // double free
  EXPECT_NE(error.find("freed already"), std::string::npos);

  PoolCounters after = pool.counters();
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_EQ(after.frees, before.frees + 1);
  EXPECT_EQ(after.inUseBytes, 0u);
  EXPECT_EQ(pool.checkInvariants(), "");

  // A grow callback that claims success but grows too little is caught.
  PoolAllocator liar(1, [](uint64_t, uint64_t &capacity, std::string &) {
    capacity += 1;
    return true;
  });
  EXPECT_FALSE(liar.allocate(10, offset, error));
  EXPECT_EQ(error, "the pool's grow callback left the capacity at 1 bytes, "
                   "below the 10 required");
  EXPECT_EQ(liar.liveBlocks(), 0u);
}

/// One random "program step": allocations and frees in a random order,
/// freeing everything it allocated by the end. Returns the offsets it got.
struct Step {
  struct Op {
    bool alloc;
    uint64_t bytes; // alloc
    size_t which;   // free: index of the allocation to free
  };
  std::vector<Op> ops;

  static Step random(std::mt19937_64 &rng, int allocations) {
    Step step;
    std::vector<size_t> liveIds;
    size_t next = 0;
    std::uniform_int_distribution<uint64_t> size(1, 5000);
    while (next < size_t(allocations) || !liveIds.empty()) {
      bool alloc = next < size_t(allocations) &&
                   (liveIds.empty() || rng() % 3 != 0);
      if (alloc) {
        // Mostly small, sometimes large, sometimes exactly aligned.
        uint64_t bytes = size(rng);
        if (rng() % 10 == 0)
          bytes *= 64;
        if (rng() % 7 == 0)
          bytes = (bytes + 255) / 256 * 256;
        step.ops.push_back({true, bytes, 0});
        liveIds.push_back(next++);
      } else {
        size_t pick = rng() % liveIds.size();
        step.ops.push_back({false, 0, liveIds[pick]});
        liveIds.erase(liveIds.begin() + long(pick));
      }
    }
    return step;
  }

  std::vector<uint64_t> run(PoolAllocator &pool) const {
    std::vector<uint64_t> offsets;
    for (const Op &op : ops) {
      if (op.alloc)
        offsets.push_back(allocOrDie(pool, op.bytes));
      else
        freeOrDie(pool, offsets[op.which]);
    }
    return offsets;
  }
};

struct Snapshot {
  uint64_t top, inUse;
  size_t holes, live;
  bool operator==(const Snapshot &o) const {
    return top == o.top && inUse == o.inUse && holes == o.holes &&
           live == o.live;
  }
};
Snapshot snapshot(const PoolAllocator &p) {
  return {p.top(), p.counters().inUseBytes, p.holes(), p.liveBlocks()};
}

TEST(PoolAllocator, ReplayedStepsGetTheSameOffsetsAndNeverGrowAgain) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    FakeArena arena;
    arena.step = (seed % 3) * 4096; // exact, or coarse growth
    PoolAllocator pool(256, arena.fn());
    // The runner's arguments and the cuBLAS workspace: live throughout,
    // possibly with holes between them.
    std::vector<uint64_t> persistent;
    for (int i = 0; i < 6; ++i)
      persistent.push_back(allocOrDie(pool, 1 + rng() % 100000));
    if (seed % 2)
      freeOrDie(pool, persistent[2]);

    Step step = Step::random(rng, 1 + int(rng() % 60));
    Snapshot before = snapshot(pool);
    pool.resetPeak();
    std::vector<uint64_t> first = step.run(pool);
    uint64_t firstPeak = pool.counters().peakInUseBytes;
    size_t growthsAfterFirst = arena.growths.size();
    ASSERT_TRUE(snapshot(pool) == before) << "seed " << seed;

    for (int replay = 0; replay < 3; ++replay) {
      pool.resetPeak();
      std::vector<uint64_t> again = step.run(pool);
      ASSERT_EQ(again, first) << "seed " << seed << " replay " << replay;
      EXPECT_EQ(pool.counters().peakInUseBytes, firstPeak);
      ASSERT_TRUE(snapshot(pool) == before);
    }
    EXPECT_EQ(arena.growths.size(), growthsAfterFirst) << "seed " << seed;

    // A pool that is already large places the same step identically: the
    // offsets depend on the live blocks only, not on the capacity.
    FakeArena big;
    big.step = uint64_t(1) << 40;
    PoolAllocator roomy(256, big.fn());
    std::mt19937_64 rng2(seed);
    std::vector<uint64_t> persistent2;
    for (int i = 0; i < 6; ++i)
      persistent2.push_back(allocOrDie(roomy, 1 + rng2() % 100000));
    if (seed % 2)
      freeOrDie(roomy, persistent2[2]);
    EXPECT_EQ(persistent2, persistent);
    EXPECT_EQ(step.run(roomy), first) << "seed " << seed;
    EXPECT_EQ(big.growths.size(), 1u);
  }
}

TEST(PoolAllocator, PeakIsTheMaximumOfTheExactInUse) {
  std::mt19937_64 rng(99);
  FakeArena arena;
  PoolAllocator pool(512, arena.fn());
  Step step = Step::random(rng, 300);
  uint64_t inUse = 0, peak = 0;
  std::vector<uint64_t> offsets, sizes;
  for (const Step::Op &op : step.ops) {
    if (op.alloc) {
      offsets.push_back(allocOrDie(pool, op.bytes));
      sizes.push_back(op.bytes);
      inUse += op.bytes;
    } else {
      freeOrDie(pool, offsets[op.which]);
      inUse -= sizes[op.which];
    }
    peak = std::max(peak, inUse);
    ASSERT_EQ(pool.counters().inUseBytes, inUse);
    ASSERT_EQ(pool.counters().peakInUseBytes, peak);
  }
  EXPECT_EQ(pool.counters().allocations, 300u);
  EXPECT_EQ(pool.counters().frees, 300u);
  EXPECT_EQ(pool.top(), 0u);
}

TEST(PoolAllocator, RandomOperationsKeepTheInvariants) {
  std::mt19937_64 rng(5);
  FakeArena arena;
  arena.step = 1 << 20;
  PoolAllocator pool(256, arena.fn());
  std::vector<uint64_t> live;
  for (int i = 0; i < 5000; ++i) {
    if (live.empty() || rng() % 2) {
      live.push_back(allocOrDie(pool, 1 + rng() % 70000));
    } else {
      size_t pick = rng() % live.size();
      freeOrDie(pool, live[pick]);
      live.erase(live.begin() + long(pick));
    }
    // Live blocks never overlap (checked by checkInvariants) and offsets
    // are aligned.
    if (!live.empty()) {
      ASSERT_EQ(live.back() % 256, 0u);
    }
  }
  while (!live.empty()) {
    freeOrDie(pool, live.back());
    live.pop_back();
  }
  EXPECT_EQ(pool.top(), 0u);
  EXPECT_EQ(pool.holes(), 0u);
}

} // namespace
