//===- PoolAllocator.h - deterministic best-fit offset allocator -*- C++ -*-===//
//
// The bookkeeping of the runtime's device memory pool, over offsets in one
// contiguous arena [0, capacity). The arena grows only at its end, through an
// abstract callback (the CUDA runtime maps more physical memory behind a
// reserved virtual address range), so the class is pure and unit tested on
// any machine.
//
// Placement is deterministic and depends on the live blocks only:
//  - block sizes are the requested sizes rounded up to `alignment`;
//  - the free holes are exactly the gaps between live blocks below `top`, the
//    end of the highest live block (holes are fully coalesced, and free space
//    that reaches `top` is given back to the region above it);
//  - a request takes the smallest hole that fits (best fit; ties go to the
//    lowest offset), from the hole's start; when no hole fits it goes at
//    `top`, and the arena grows if `top` would pass `capacity`.
// Hence, from the same set of live blocks, the same sequence of requests and
// frees gets the same offsets whatever the capacity: a program step that
// frees everything it allocates leaves the pool as it found it, its second
// run places every block where its first run did, and it never needs more
// capacity than its first run reached (so a CUDA graph captured after one
// uncaptured run never makes the pool grow).
//
// Accounting is exact: in-use is the sum of the requested (not rounded)
// sizes of live blocks; the peak is the maximum of in-use since the last
// reset; reserved is the capacity.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_RUNTIME_POOLALLOCATOR_H
#define BPTT_RUNTIME_POOLALLOCATOR_H

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace bptt::runtime {

struct PoolCounters {
  uint64_t inUseBytes = 0;
  uint64_t peakInUseBytes = 0;
  uint64_t reservedBytes = 0;
  uint64_t allocations = 0;
  uint64_t frees = 0;
};

class PoolAllocator {
public:
  /// Asked to make the arena at least `required` bytes long (it is
  /// `capacity` long now). Sets `capacity` to the new length (>= required)
  /// and returns true, or sets `error` and returns false.
  using GrowFn = std::function<bool(uint64_t required, uint64_t &capacity,
                                    std::string &error)>;

  /// `alignment` must be a power of two; every offset is a multiple of it.
  PoolAllocator(uint64_t alignment, GrowFn grow);

  /// Places a block of `bytes` (> 0) bytes. On failure (0 bytes, overflow,
  /// the arena could not grow) returns false with a message and changes
  /// nothing.
  bool allocate(uint64_t bytes, uint64_t &offset, std::string &error);
  /// Frees the block that starts at `offset`; an offset that is not the
  /// start of a live block is an error (and changes nothing).
  bool release(uint64_t offset, std::string &error);

  /// Requested size of the live block at `offset`, or 0 if there is none.
  uint64_t requestedSize(uint64_t offset) const;

  PoolCounters counters() const;
  void resetPeak() { peak = inUse; }

  uint64_t alignment() const { return align; }
  uint64_t capacity() const { return cap; }
  /// End of the highest live block (0 when nothing is live).
  uint64_t top() const { return topOffset; }
  size_t liveBlocks() const { return live.size(); }
  size_t holes() const { return holesByOffset.size(); }
  /// Checks every invariant stated above; returns "" or what is broken.
  std::string checkInvariants() const;

private:
  struct Block {
    uint64_t size;      // rounded
    uint64_t requested; // as asked
  };
  void addHole(uint64_t offset, uint64_t size);
  void removeHole(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t align;
  GrowFn grow;
  uint64_t cap = 0;
  uint64_t topOffset = 0;
  uint64_t inUse = 0, peak = 0, allocCount = 0, freeCount = 0;
  std::map<uint64_t, Block> live;                    // offset -> block
  std::map<uint64_t, uint64_t> holesByOffset;        // offset -> size
  std::set<std::pair<uint64_t, uint64_t>> holesBySize; // (size, offset)
};

} // namespace bptt::runtime

#endif // BPTT_RUNTIME_POOLALLOCATOR_H
