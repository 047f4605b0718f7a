//===- ProgramManifestTest.cpp - parsing bptt_program_manifest() ----------===//

#include "bptt/Runtime/ProgramManifest.h"

#include <gtest/gtest.h>

using namespace bptt::runtime;

namespace {

const char *kLstm = R"(bptt-program 1
# an LSTM step, T = 1000, B = 64, H = 512
entry train_step_bptt
cell lstm
steps 1000
strategy msm
budget 67108864
planned_peak 67041792      # pool + working set
forward_steps 1939
precision tf32
chip sm_90

arg h0 state f32 64x512
arg c0 state f32 64x512
arg xs input f32 1000x64x512
arg w param f32 1024x2048
arg b param f32 2048
arg dh0 dstate f32 64x512
arg dc0 dstate f32 64x512
arg dxs dinput f32 1000x64x512
arg dw dparam f32 1024x2048
arg db dparam f32 2048
arg loss loss f32 scalar
arg stats stats i64 2
)";

ProgramManifest parseOrDie(const std::string &text) {
  ProgramManifest m;
  std::string error;
  EXPECT_TRUE(parseManifest(text, m, error)) << error;
  return m;
}

/// The error for `text`, which must not parse.
std::string errorOf(const std::string &text) {
  ProgramManifest m;
  std::string error;
  EXPECT_FALSE(parseManifest(text, m, error)) << "parsed:\n" << text;
  return error;
}

/// kLstm with the first line that starts with `prefix` replaced by
/// `replacement` (which may be empty: the line is dropped).
std::string edit(const std::string &prefix, const std::string &replacement) {
  std::string text = kLstm;
  size_t at = text.find("\n" + prefix);
  EXPECT_NE(at, std::string::npos) << prefix;
  size_t end = text.find('\n', at + 1);
  text.replace(at + 1, end - at - 1 + (replacement.empty() ? 1 : 0),
               replacement);
  return text;
}

TEST(ProgramManifest, ParsesTheAbiExample) {
  ProgramManifest m = parseOrDie(kLstm);
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.entry, "train_step_bptt");
  EXPECT_EQ(m.cell, "lstm");
  EXPECT_EQ(m.steps, 1000);
  EXPECT_EQ(m.strategy, "msm");
  EXPECT_EQ(m.budget, 67108864u);
  EXPECT_EQ(m.plannedPeak, 67041792u);
  EXPECT_EQ(m.workspace, 0u); // optional: none given
  EXPECT_EQ(m.forwardSteps, 1939u);
  EXPECT_EQ(m.precision, "tf32");
  EXPECT_EQ(m.chip, "sm_90");
  ASSERT_EQ(m.args.size(), 12u);
  const ManifestArg &xs = m.args[2];
  EXPECT_EQ(xs.name, "xs");
  EXPECT_EQ(xs.role, ArgRole::Input);
  EXPECT_EQ(xs.dtype, DType::F32);
  EXPECT_EQ(xs.shape, (std::vector<int64_t>{1000, 64, 512}));
  EXPECT_EQ(xs.numElements(), 1000u * 64 * 512);
  EXPECT_EQ(xs.byteSize(), 4u * 1000 * 64 * 512);
  EXPECT_EQ(xs.line, 15);
  EXPECT_TRUE(xs.isInput());
  EXPECT_FALSE(xs.isOutput());
  const ManifestArg &loss = m.args[10];
  EXPECT_TRUE(loss.shape.empty());
  EXPECT_EQ(loss.numElements(), 1u);
  EXPECT_EQ(loss.byteSize(), 4u);
  EXPECT_TRUE(loss.isOutput());
  EXPECT_TRUE(loss.onDevice());
  const ManifestArg &stats = m.args[11];
  EXPECT_EQ(stats.dtype, DType::I64);
  EXPECT_EQ(stats.byteSize(), 16u);
  EXPECT_FALSE(stats.onDevice());
  EXPECT_EQ(m.find(ArgRole::DInput), 7);
  EXPECT_EQ(m.find(ArgRole::Param), 3);
  EXPECT_EQ(shapeString(xs.shape), "1000x64x512");
  EXPECT_EQ(shapeString(loss.shape), "scalar");
  EXPECT_STREQ(roleName(ArgRole::DParam), "dparam");
  EXPECT_STREQ(dtypeName(DType::I64), "i64");
}

TEST(ProgramManifest, AcceptsCrLfTabsNoParamsAndNoFinalNewline) {
  std::string text = "bptt-program 1\r\nentry\tf\r\ncell c\nsteps 3\n"
                     "strategy store-all\nbudget 0\nplanned_peak 10\n"
                     "forward_steps 3\nprecision f32\nchip sm_90a\n"
                     "arg h state f32 2x4\narg xs input f32 3x2x4\n"
                     "arg dh dstate f32 2x4\narg dxs dinput f32 3x2x4\n"
                     "arg loss loss f32 scalar\narg stats stats i64 2";
  ProgramManifest m = parseOrDie(text);
  EXPECT_EQ(m.entry, "f");
  EXPECT_EQ(m.chip, "sm_90a");
  EXPECT_EQ(m.budget, 0u);
  EXPECT_EQ(m.args.size(), 6u);
  EXPECT_EQ(m.find(ArgRole::Param), -1);
}

TEST(ProgramManifest, ReadsTheKernelsWorkspace) {
  ProgramManifest m = parseOrDie(edit("chip", "chip sm_90\nworkspace 84"));
  EXPECT_EQ(m.workspace, 84u);
  EXPECT_EQ(errorOf(edit("chip", "chip sm_90\nworkspace some")),
            "manifest line 12: expected 'workspace <bytes>', got "
            "'workspace some'");
}

TEST(ProgramManifest, MalformedLinesSayWhichLineAndWhatWasExpected) {
  EXPECT_EQ(errorOf(""), "manifest: empty (expected the header 'bptt-program "
                         "1' and the program's facts)");
  EXPECT_EQ(errorOf("# only a comment\nentry f\n"),
            "manifest line 2: expected the header 'bptt-program 1', got "
            "'entry f'");
  EXPECT_EQ(errorOf("bptt-program 2\n"),
            "manifest line 1: manifest version 2 is not supported (this "
            "reader knows version 1)");
  EXPECT_EQ(errorOf(edit("steps", "steps many")),
            "manifest line 5: expected 'steps <T>' with T a positive integer, "
            "got 'steps many'");
  EXPECT_EQ(errorOf(edit("steps", "steps 0")),
            "manifest line 5: expected 'steps <T>' with T a positive integer, "
            "got 'steps 0'");
  EXPECT_EQ(errorOf(edit("budget", "budget -1")),
            "manifest line 7: expected 'budget <bytes or 0>', got "
            "'budget -1'");
  EXPECT_EQ(errorOf(edit("budget", "budget 99999999999999999999999")),
            "manifest line 7: expected 'budget <bytes or 0>', got "
            "'budget 99999999999999999999999'");
  EXPECT_EQ(errorOf(edit("precision", "precision fp16")),
            "manifest line 10: expected 'precision f32' or 'precision tf32', "
            "got 'precision fp16'");
  EXPECT_EQ(errorOf(edit("entry", "entry a b")),
            "manifest line 3: expected 'entry <function name>', got "
            "'entry a b'");
  EXPECT_EQ(errorOf(edit("chip", "chip sm_90\nchip sm_80")),
            "manifest line 12: 'chip' is given twice (first on line 11)");
  EXPECT_EQ(errorOf(edit("chip", "target sm_90")),
            "manifest line 11: unknown key 'target' (expected entry, cell, "
            "steps, strategy, budget, planned_peak, workspace, forward_steps, "
            "precision, chip or arg)");
  EXPECT_EQ(errorOf(edit("chip", "")),
            "manifest: no 'chip' line (expected 'chip <target, e.g. "
            "sm_90>')");

  const std::string argForm =
      "'arg <name> <role> <dtype> <shape>' (role: state, input, param, "
      "dstate, dinput, dparam, loss or stats; dtype: f32 or i64; shape: "
      "'scalar' or positive dims joined by 'x')";
  EXPECT_EQ(errorOf(edit("arg xs", "arg xs input f32")),
            "manifest line 15: expected " + argForm +
                ", got 'arg xs input f32'");
  EXPECT_EQ(errorOf(edit("arg xs", "arg xs sequence f32 1000x64x512")),
            "manifest line 15: unknown role 'sequence' (expected state, "
            "input, param, dstate, dinput, dparam, loss or stats)");
  EXPECT_EQ(errorOf(edit("arg xs", "arg xs input f16 1000x64x512")),
            "manifest line 15: unknown dtype 'f16' (expected f32 or i64)");
  for (const char *shape : {"1000x0x512", "1000xx512", "x64", "64x", "abc",
                            "-4", "1000x64x512x99999999999"})
    EXPECT_EQ(errorOf(edit("arg xs", std::string("arg xs input f32 ") + shape)),
              std::string("manifest line 15: invalid shape '") + shape +
                  "' (expected 'scalar' or positive dims joined by 'x', "
                  "e.g. 1000x64x256, below 2^56 bytes)");
  EXPECT_EQ(errorOf(edit("arg xs", "arg ../xs input f32 1000x64x512")),
            "manifest line 15: argument name '../xs' is not usable as a file "
            "name (expected letters, digits, '_', '-' or '.')");
  EXPECT_EQ(errorOf(edit("arg xs", "arg h0 input f32 1000x64x512")),
            "manifest line 15: argument name 'h0' is already used on line 13");
}

TEST(ProgramManifest, TheArgumentListMustFollowTheAbi) {
  // Roles out of order.
  EXPECT_EQ(errorOf(edit("arg c0", "") + "arg c0 state f32 64x512\n"),
            "manifest line 24: a 'state' argument comes after a 'stats' one "
            "(expected the order state, input, param, dstate, dinput, "
            "dparam, loss, stats)");
  // Counts.
  EXPECT_EQ(errorOf(edit("arg dc0", "")),
            "manifest: 1 'dstate' argument(s), expected 2 (one per state)");
  EXPECT_EQ(errorOf(edit("arg db", "")),
            "manifest: 1 'dparam' argument(s), expected 2 (one per param)");
  EXPECT_EQ(errorOf(edit("arg stats", "")),
            "manifest: 0 'stats' argument(s), expected 1 (the step "
            "statistics)");
  EXPECT_EQ(errorOf(edit("arg xs", "")),
            "manifest: 0 'input' argument(s), expected 1 (the sequence xs)");
  EXPECT_EQ(errorOf(edit("arg h0", "")),
            "manifest: 2 'dstate' argument(s), expected 1 (one per state)");
  // Types and shapes.
  EXPECT_EQ(errorOf(edit("arg stats", "arg stats stats f32 2")),
            "manifest line 24: a 'stats' argument must be i64, not f32");
  EXPECT_EQ(errorOf(edit("arg w ", "arg w param i64 1024x2048")),
            "manifest line 16: a 'param' argument must be f32, not i64");
  EXPECT_EQ(errorOf(edit("arg stats", "arg stats stats i64 3")),
            "manifest line 24: the stats argument has shape 3, expected '2'");
  EXPECT_EQ(errorOf(edit("arg loss", "arg loss loss f32 1")),
            "manifest line 23: the loss has shape 1, expected 'scalar'");
  EXPECT_EQ(errorOf(edit("arg xs", "arg xs input f32 999x64x512")),
            "manifest line 15: the input 'xs' has shape 999x64x512, expected "
            "its first dimension to be the 1000 steps");
  EXPECT_EQ(errorOf(edit("arg dw", "arg dw dparam f32 2048x1024")),
            "manifest line 21: the gradient 'dw' has shape 2048x1024, "
            "expected the shape 1024x2048 of 'w' (line 16)");
  EXPECT_EQ(errorOf(edit("arg dxs", "arg dxs dinput f32 1000x64")),
            "manifest line 20: the gradient 'dxs' has shape 1000x64, expected "
            "the shape 1000x64x512 of 'xs' (line 15)");
  EXPECT_EQ(errorOf(edit("arg dxs", "arg dxs dinput f32 1000x64x512\n"
                                    "arg dys dinput f32 1000x64x512")),
            "manifest: 2 'dinput' argument(s), expected 1 (the gradient of "
            "xs, or none in a program compiled without it)");
}

// A program compiled without the input gradient (bptt-compile
// --input-gradient=false) has no dinput argument.
TEST(ProgramManifest, WithoutInputGradient) {
  ProgramManifest m = parseOrDie(edit("arg dxs", ""));
  for (const ManifestArg &a : m.args)
    EXPECT_NE(a.role, ArgRole::DInput) << a.name;
  EXPECT_EQ(m.args.size(), 11u);
}

} // namespace
