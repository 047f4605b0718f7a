//===- GradientChunkTest.cpp - the drivers' default gradient chunk --------===//

#include "bptt/Dialect/RNN/GradientChunk.h"

#include <gtest/gtest.h>

using bptt::rnn::defaultGradientChunk;

namespace {

// One LSTM step at B = 64, H = 512: the chunk buffers hold dgates (4H),
// h_{t-1} (H) and h' (H) per batch row; a slot holds the 6H internal state.
constexpr int64_t kRowBytes = 4 * 64;
constexpr int64_t kPerStep = 6 * 512 * kRowBytes;
constexpr int64_t kInternal = 6 * 512 * kRowBytes;

TEST(DefaultGradientChunk, LongSequencesGetTheRequestedChunk) {
  // 16 steps of buffers are 1/125 of store-all's slots at T = 2000.
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 2000, kInternal), 16);
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 100000, kInternal), 16);
}

TEST(DefaultGradientChunk, HalvedUntilTheBuffersTakeAtMostOneSixtyFourth) {
  // T = 512: 8 steps are exactly 1/64; T = 511 needs 4.
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 512, kInternal), 8);
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 511, kInternal), 4);
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 256, kInternal), 4);
}

TEST(DefaultGradientChunk, NoChunkBelowFourSteps) {
  // At T = 100 the 1/64 rule would allow 1 step (and 2 before the rule
  // existed); a chunk that small costs the schedule more than it saves.
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 255, kInternal), 0);
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 100, kInternal), 0);
  // Short sequences cap the chunk at T before the rule applies.
  EXPECT_EQ(defaultGradientChunk(16, kPerStep, 3, kInternal), 0);
  // Cheap buffers let a short sequence use all of it.
  EXPECT_EQ(defaultGradientChunk(16, 1, 8, kInternal), 8);
}

} // namespace
