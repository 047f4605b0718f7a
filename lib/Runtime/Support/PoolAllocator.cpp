//===- PoolAllocator.cpp - deterministic best-fit offset allocator --------===//

#include "bptt/Runtime/PoolAllocator.h"

#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <limits>

using namespace bptt::runtime;

namespace {
std::string format(const char *fmt, uint64_t a, uint64_t b = 0,
                   uint64_t c = 0) {
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer), fmt, a, b, c);
  return buffer;
}
} // namespace

PoolAllocator::PoolAllocator(uint64_t alignment, GrowFn grow)
    : align(alignment), grow(std::move(grow)) {
  // A zero or non-power-of-two alignment is a programming error in the
  // caller; fall back to 1 rather than computing nonsense masks.
  if (align == 0 || (align & (align - 1)) != 0)
    align = 1;
}

void PoolAllocator::addHole(uint64_t offset, uint64_t size) {
  holesByOffset.emplace(offset, size);
  holesBySize.emplace(size, offset);
}

void PoolAllocator::removeHole(std::map<uint64_t, uint64_t>::iterator it) {
  holesBySize.erase({it->second, it->first});
  holesByOffset.erase(it);
}

bool PoolAllocator::allocate(uint64_t bytes, uint64_t &offset,
                             std::string &error) {
  if (bytes == 0) {
    error = "a pool block must have at least one byte";
    return false;
  }
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (bytes > max - (align - 1)) {
    error = format("a request of %" PRIu64 " bytes overflows", bytes);
    return false;
  }
  uint64_t rounded = (bytes + align - 1) & ~(align - 1);

  uint64_t placed;
  auto fit = holesBySize.lower_bound({rounded, 0});
  if (fit != holesBySize.end()) {
    uint64_t holeSize = fit->first, holeOffset = fit->second;
    removeHole(holesByOffset.find(holeOffset));
    if (holeSize > rounded)
      addHole(holeOffset + rounded, holeSize - rounded);
    placed = holeOffset;
  } else {
    if (rounded > max - topOffset) {
      error = format("a request of %" PRIu64
                     " bytes overflows the pool's offsets (top %" PRIu64 ")",
                     bytes, topOffset);
      return false;
    }
    uint64_t end = topOffset + rounded;
    if (end > cap) {
      uint64_t newCap = cap;
      std::string why;
      if (!grow || !grow(end, newCap, why)) {
        error = grow ? why : "the pool cannot grow";
        return false;
      }
      if (newCap < end) {
        error = format("the pool's grow callback left the capacity at %" PRIu64
                       " bytes, below the %" PRIu64 " required",
                       newCap, end);
        return false;
      }
      cap = newCap;
    }
    placed = topOffset;
    topOffset = end;
  }
  live.emplace(placed, Block{rounded, bytes});
  inUse += bytes;
  if (inUse > peak)
    peak = inUse;
  ++allocCount;
  offset = placed;
  return true;
}

bool PoolAllocator::release(uint64_t offset, std::string &error) {
  auto it = live.find(offset);
  if (it == live.end()) {
    error = format("offset %" PRIu64
                   " is not the start of a live pool block (never allocated, "
                   "or freed already)",
                   offset);
    return false;
  }
  Block block = it->second;
  live.erase(it);
  inUse -= block.requested;
  ++freeCount;

  uint64_t start = offset, size = block.size;
  // Merge with the hole that ends where the block starts, if any.
  auto after = holesByOffset.lower_bound(offset);
  if (after != holesByOffset.begin()) {
    auto before = std::prev(after);
    if (before->first + before->second == start) {
      start = before->first;
      size += before->second;
      removeHole(before);
    }
  }
  // Merge with the hole that starts where the block ends, if any.
  auto next = holesByOffset.find(offset + block.size);
  if (next != holesByOffset.end()) {
    size += next->second;
    removeHole(next);
  }
  if (start + size == topOffset)
    topOffset = start; // give the free space at the top back
  else
    addHole(start, size);
  return true;
}

uint64_t PoolAllocator::requestedSize(uint64_t offset) const {
  auto it = live.find(offset);
  return it == live.end() ? 0 : it->second.requested;
}

PoolCounters PoolAllocator::counters() const {
  PoolCounters c;
  c.inUseBytes = inUse;
  c.peakInUseBytes = peak;
  c.reservedBytes = cap;
  c.allocations = allocCount;
  c.frees = freeCount;
  return c;
}

std::string PoolAllocator::checkInvariants() const {
  if (holesByOffset.size() != holesBySize.size())
    return "the two hole indexes differ in size";
  for (auto [size, offset] : holesBySize) {
    auto it = holesByOffset.find(offset);
    if (it == holesByOffset.end() || it->second != size)
      return format("hole (%" PRIu64 ", %" PRIu64
                    ") is indexed by size only",
                    offset, size);
  }
  // Live blocks and holes must tile [0, top) with no two holes adjacent and
  // no hole at the top.
  uint64_t cursor = 0, sum = 0;
  bool lastWasHole = false;
  auto blockIt = live.begin();
  auto holeIt = holesByOffset.begin();
  while (blockIt != live.end() || holeIt != holesByOffset.end()) {
    bool takeHole = blockIt == live.end() ||
                    (holeIt != holesByOffset.end() &&
                     holeIt->first < blockIt->first);
    uint64_t offset = takeHole ? holeIt->first : blockIt->first;
    uint64_t size = takeHole ? holeIt->second : blockIt->second.size;
    if (offset != cursor)
      return format("gap or overlap at offset %" PRIu64 " (expected %" PRIu64
                    ")",
                    offset, cursor);
    if (offset % align || size % align || size == 0)
      return format("misaligned or empty extent at %" PRIu64 " (%" PRIu64
                    " bytes)",
                    offset, size);
    if (takeHole) {
      if (lastWasHole)
        return format("adjacent holes at %" PRIu64, offset);
      lastWasHole = true;
      ++holeIt;
    } else {
      const Block &b = blockIt->second;
      if (b.requested == 0 || b.requested > b.size ||
          b.size - b.requested >= align)
        return format("block at %" PRIu64 " has size %" PRIu64
                      " for a request of %" PRIu64,
                      offset, b.size, b.requested);
      sum += b.requested;
      lastWasHole = false;
      ++blockIt;
    }
    cursor = offset + size;
  }
  if (lastWasHole)
    return "a hole reaches the top";
  if (cursor != topOffset)
    return format("extents end at %" PRIu64 " but top is %" PRIu64, cursor,
                  topOffset);
  if (topOffset > cap)
    return format("top %" PRIu64 " is above the capacity %" PRIu64,
                  topOffset, cap);
  if (sum != inUse)
    return format("in-use is %" PRIu64 " but live blocks request %" PRIu64,
                  inUse, sum);
  if (peak < inUse)
    return format("peak %" PRIu64 " is below in-use %" PRIu64, peak, inUse);
  return "";
}
