//===- ProgramManifest.h - the manifest of a compiled GPU program -*- C++ -*-===//
//
// Parses and checks the text returned by bptt_program_manifest() (format in
// docs/gpu-abi.md). Pure C++ with no LLVM or CUDA dependency: the runner
// uses it on the GPU machine and the unit tests anywhere.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_RUNTIME_PROGRAMMANIFEST_H
#define BPTT_RUNTIME_PROGRAMMANIFEST_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bptt::runtime {

/// Argument roles, in the order the arguments must appear.
enum class ArgRole { State, Input, Param, DState, DInput, DParam, Loss, Stats };
enum class DType { F32, I64 };

const char *roleName(ArgRole role);
const char *dtypeName(DType type);

struct ManifestArg {
  std::string name;
  ArgRole role = ArgRole::State;
  DType dtype = DType::F32;
  std::vector<int64_t> shape; // empty: rank 0 ("scalar")
  int line = 0;               // 1-based line of the manifest

  uint64_t numElements() const;
  uint64_t elementBytes() const { return dtype == DType::F32 ? 4 : 8; }
  uint64_t byteSize() const { return numElements() * elementBytes(); }
  /// dstate, dinput, dparam, loss, stats: written by the program.
  bool isOutput() const { return role >= ArgRole::DState; }
  /// state, input, param: read by the program (the runner fills them).
  bool isInput() const { return role <= ArgRole::Param; }
  /// Every argument but `stats` lives in device memory.
  bool onDevice() const { return role != ArgRole::Stats; }
};

struct ProgramManifest {
  int version = 0;
  std::string entry, cell, strategy, precision, chip;
  int64_t steps = 0;
  uint64_t budget = 0, plannedPeak = 0, forwardSteps = 0;
  /// Device bytes of the kernels' temporaries, inside plannedPeak.
  uint64_t workspace = 0;
  std::vector<ManifestArg> args;

  /// Index of the first argument with `role`, or -1.
  int find(ArgRole role) const;
};

/// "scalar" for rank 0, else the dims joined by 'x' ("1000x64x256").
std::string shapeString(const std::vector<int64_t> &shape);

/// Parses `text`. On failure returns false and sets `error` to a message
/// naming the line ("manifest line 7: ...") and what was expected there, or
/// the rule that the whole manifest breaks. Checked: the header
/// `bptt-program 1`; every key once (entry, cell, steps, strategy, budget,
/// planned_peak, forward_steps, precision, chip) with a well-formed value;
/// `arg` lines with a name usable as a file name, unique, a known role and
/// dtype and a valid shape; roles in order; one input whose first dimension
/// is `steps`; as many dstates as states and dparams as params, each shaped
/// like its primal (dinput like the input); one f32 scalar loss and one i64
/// stats of shape 2 last.
bool parseManifest(std::string_view text, ProgramManifest &out,
                   std::string &error);

} // namespace bptt::runtime

#endif // BPTT_RUNTIME_PROGRAMMANIFEST_H
