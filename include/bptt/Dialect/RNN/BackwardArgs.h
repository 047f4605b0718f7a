//===- BackwardArgs.h - rnn-differentiate's backward signature -*- C++ -*-===//
//
// Where rnn-differentiate's backward function keeps each argument and
// result. The parts rnn-remat splits off a backward step (LossPart.h,
// GradientChunk.h) and the analyses that size them all read the signature
// through this one description.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_DIALECT_RNN_BACKWARDARGS_H
#define BPTT_DIALECT_RNN_BACKWARDARGS_H

namespace bptt::rnn {

/// Argument and result positions of rnn-differentiate's backward function:
/// arguments (x, params..., new states..., saved..., d new states..., d loss,
/// d params so far..., [this step's loss-part values, LossPart.h]) and
/// results (d states..., [dx], d params..., loss).
struct BackwardArgs {
  unsigned numParams = 0, numStates = 0, numSaved = 0;
  unsigned firstState() const { return 1 + numParams; }
  unsigned firstSaved() const { return firstState() + numStates; }
  unsigned firstGradient() const { return firstSaved() + numSaved; }
  unsigned dLoss() const { return firstGradient() + numStates; }
  unsigned accumulator(unsigned q) const { return dLoss() + 1 + q; }
  unsigned afterAccumulators() const { return accumulator(numParams); }
  /// Arguments that hold this step's values: x, new states, saved values
  /// and whatever follows the accumulators.
  bool isStep(unsigned i) const {
    return i == 0 || (i >= firstState() && i < firstGradient()) ||
           i >= afterAccumulators();
  }
  bool isStateGradient(unsigned i) const {
    return i >= firstGradient() && i < dLoss();
  }
  /// An incoming state gradient or a parameter-gradient accumulator.
  bool isGradient(unsigned i) const {
    return isStateGradient(i) || (i > dLoss() && i < afterAccumulators());
  }
  /// The result holding parameter q's gradient, after `numDx` results of dx.
  unsigned gradientResult(unsigned q, unsigned numDx) const {
    return numStates + numDx + q;
  }
};

} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_BACKWARDARGS_H
