//===- bptt-run.cpp - plan, compile and run BPTT on the CPU ---------------===//
//
// Takes a module with an rnn.bptt (or a file of cells and --steps, from
// which it builds one), differentiates, plans and materialises it
// (rnn-differentiate, rnn-remat), lowers it to the CPU, JIT-compiles it and
// runs one training step on deterministic inputs. It prints the strategy,
// the budget, the planned and measured peak bytes, the planned and executed
// forward steps, the time and a checksum of the gradients.
//
// --check-exact runs every strategy at budgets from its smallest feasible
// one up to store-all's and requires, in every case, gradients and loss
// bitwise identical to store-all's, executed forward steps equal to the
// plan's, and a measured peak equal to the plan's and within the budget.
// --check-fd compares store-all's gradients with central finite differences
// of the loss (f64 cells). Exit status 1 when a check fails.
//
// --inputs-from DIR reads every input argument from DIR/<name>.bin instead
// of drawing it; --dump DIR writes every argument of the run, inputs and
// outputs, as DIR/<name>.bin and lists them in DIR/index.txt. Names, roles
// and the file format are the GPU program ABI's: raw little-endian
// row-major elements of the argument's type; arguments state0.., xs,
// param0.. (inputs), dstate0.., dxs, dparam0.., loss, stats (outputs).
//
//===----------------------------------------------------------------------===//

#include "bptt/Conversion/Pipelines.h"
#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNDialect.h"
#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Execution/FiniteDifferences.h"
#include "bptt/Execution/JitProgram.h"
#include "bptt/Execution/Request.h"
#include "bptt/Planner/ByteSize.h"
#include "bptt/Planner/Planner.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/SwapByteOrder.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cstring>

using namespace bptt;
namespace cl = llvm::cl;

static RequestOptions requestOptions;
static cl::opt<bool> checkExact(
    "check-exact",
    cl::desc("Every strategy at budgets from the smallest to store-all: "
             "bitwise-identical gradients, forward steps and peak as planned"));
static cl::opt<int> budgetPoints(
    "budget-points", cl::desc("Budgets per strategy for --check-exact"),
    cl::init(4));
static cl::opt<bool> checkFD(
    "check-fd",
    cl::desc("Store-all's gradients against finite differences of the loss"));
static cl::opt<int64_t> fdSamples(
    "fd-samples", cl::desc("Elements per argument for --check-fd (0: all)"),
    cl::init(8));
static cl::opt<uint64_t> seed("seed", cl::desc("Random seed"), cl::init(1));
static cl::opt<bool> warmUpOpt(
    "warm-up",
    cl::desc("Run the step once untimed before the timed run (the program is "
             "compiled before either)"),
    cl::init(false));
static cl::opt<std::string> inputsFrom(
    "inputs-from",
    cl::desc("Read every input argument (state0.., xs, param0..) from "
             "DIR/<name>.bin: raw little-endian row-major elements of its "
             "type"),
    cl::value_desc("DIR"));
static cl::opt<std::string> dumpDir(
    "dump",
    cl::desc("Write every argument of the run, inputs and outputs, as "
             "DIR/<name>.bin, and DIR/index.txt ('name role dtype shape' "
             "lines)"),
    cl::value_desc("DIR"));

namespace {
struct RunResult {
  std::vector<HostTensor> outputs; // dh0..., dxs, dparams..., loss
  HostTensor stats;                // [forward steps, peak bytes]
  int64_t forwardSteps = 0, peakBytes = 0;
  int64_t plannedSteps = 0, plannedPeak = 0;
  double milliseconds = 0;
};
} // namespace

/// The request compiled with one strategy and budget.
struct Compiled {
  std::unique_ptr<JitProgram> program;
  int64_t plannedSteps = 0, plannedPeak = 0;
};

static llvm::Expected<Compiled> compile(mlir::ModuleOp module, const RequestFacts &s,
                                        rnn::Strategy strategy,
                                        int64_t budget) {
  mlir::OwningOpRef<mlir::ModuleOp> copy(module.clone());
  rnn::BPTTOp op = findBPTTRequest(*copy);
  op.setMemoryBudget(budget);
  op.setStrategyAttr(rnn::StrategyAttr::get(copy->getContext(), strategy));
  mlir::PassManager pm(module.getContext());
  pm.addPass(rnn::createRNNDifferentiate());
  rnn::RNNRematOptions remat;
  remat.inputChunk = requestOptions.inputChunk;
  remat.lossChunk = requestOptions.lossChunk;
  remat.gradChunk = s.gradChunk;
  remat.internalState = requestOptions.internalState;
  pm.addPass(rnn::createRNNRemat(remat));
  if (mlir::failed(pm.run(*copy)))
    return llvm::createStringError("planning or materialising failed");
  auto entry = copy->lookupSymbol<mlir::func::FuncOp>(s.entry);
  auto plan = entry->getAttrOfType<mlir::DictionaryAttr>("rnn.plan");
  Compiled c;
  c.plannedSteps = plan.getAs<mlir::IntegerAttr>("forward_steps").getInt();
  c.plannedPeak = plan.getAs<mlir::IntegerAttr>("peak_bytes").getInt();
  auto program = JitProgram::compile(*copy);
  if (!program)
    return program.takeError();
  c.program = std::move(*program);
  return c;
}

/// Runs a compiled request on `inputs` (h0..., xs, params...).
static llvm::Expected<RunResult> execute(Compiled &c, const RequestFacts &s,
                                         const std::vector<HostTensor> &inputs,
                                         bool warmUp = true) {
  RunResult r;
  r.plannedSteps = c.plannedSteps;
  r.plannedPeak = c.plannedPeak;
  const JitProgram::Signature *sig = c.program->signature(s.entry);
  std::vector<HostTensor> buffers(inputs);
  for (size_t i = inputs.size(); i < sig->inputs.size(); ++i)
    buffers.emplace_back(sig->inputs[i]);
  std::vector<HostTensor *> args;
  for (HostTensor &t : buffers)
    args.push_back(&t);
  // An optional first call warms caches up; the program zeroes its outputs,
  // so the timed second call computes the same values.
  if (warmUp)
    if (auto warm = c.program->callInPlace(s.entry, args); !warm)
      return warm.takeError();
  auto start = std::chrono::steady_clock::now();
  auto called = c.program->callInPlace(s.entry, args);
  auto stop = std::chrono::steady_clock::now();
  if (!called)
    return called.takeError();
  r.milliseconds =
      std::chrono::duration<double, std::milli>(stop - start).count();
  HostTensor &stats = buffers.back();
  r.forwardSteps = stats.getInt(0);
  r.peakBytes = stats.getInt(1);
  r.stats = stats;
  r.outputs.assign(buffers.begin() + inputs.size(), buffers.end() - 1);
  return r;
}

static llvm::Expected<RunResult> run(mlir::ModuleOp module, const RequestFacts &s,
                                     rnn::Strategy strategy, int64_t budget,
                                     const std::vector<HostTensor> &inputs,
                                     bool warmUp = true) {
  auto c = compile(module, s, strategy, budget);
  if (!c)
    return c.takeError();
  return execute(*c, s, inputs, warmUp);
}

static uint64_t checksum(const std::vector<HostTensor> &outputs) {
  uint64_t h = 0;
  for (const HostTensor &t : outputs)
    h = h * 1099511628211ull ^ t.fingerprint();
  return h;
}

static void report(const RequestFacts &s, llvm::StringRef strategy, int64_t budget,
                   const RunResult &r) {
  llvm::outs() << llvm::formatv(
      "{0,-7} budget {1,12} B: forward steps {2} planned, {3} executed "
      "({4:F3} per step); peak {5} planned, {6} measured; loss {7:e6}; "
      "{8:F1} ms; gradient checksum {9:x16}\n",
      strategy, budget, r.plannedSteps, r.forwardSteps,
      s.steps ? double(r.forwardSteps) / s.steps : 0.0, r.plannedPeak,
      r.peakBytes, r.outputs.back().get(0), r.milliseconds,
      checksum(r.outputs));
}

/// One argument of the program as the GPU program ABI names it.
struct Argument {
  std::string name, role;
  const HostTensor *value;
};

/// Input i of the request (states, xs, params) as the ABI names it, or its
/// gradient: state<k> / dstate<k>, xs / dxs, param<k> / dparam<k>.
static Argument inputArgument(size_t i, unsigned numStates, bool gradient,
                              const HostTensor *value) {
  std::string d = gradient ? "d" : "";
  if (i < numStates)
    return {d + "state" + std::to_string(i), d + "state", value};
  if (i == numStates)
    return {d + "xs", gradient ? "dinput" : "input", value};
  return {d + "param" + std::to_string(i - numStates - 1), d + "param", value};
}

/// The arguments of a run in the ABI's order: inputs (states, xs, params),
/// then outputs (their gradients, the loss, the stats).
static std::vector<Argument> abiArguments(const std::vector<HostTensor> &inputs,
                                          unsigned numStates,
                                          const RunResult &r) {
  std::vector<Argument> args;
  for (size_t i = 0; i < inputs.size(); ++i)
    args.push_back(inputArgument(i, numStates, false, &inputs[i]));
  for (size_t i = 0; i < inputs.size(); ++i)
    args.push_back(inputArgument(i, numStates, true, &r.outputs[i]));
  args.push_back({"loss", "loss", &r.outputs.back()});
  args.push_back({"stats", "stats", &r.stats});
  return args;
}

static const char *dtypeName(ElementKind k) {
  switch (k) {
  case ElementKind::F32:
    return "f32";
  case ElementKind::F64:
    return "f64";
  case ElementKind::I64:
    return "i64";
  }
  return "?";
}

static std::string shapeText(const ValueShape &v) {
  if (v.shape.empty())
    return "scalar";
  std::string s;
  for (int64_t d : v.shape)
    s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

/// Reads DIR/<name>.bin into `t` (its shape and element type fixed).
static llvm::Error readArgument(llvm::StringRef dir, llvm::StringRef name,
                                HostTensor &t) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, name + ".bin");
  const ValueShape &v = t.shape();
  std::string expected = llvm::formatv(
      "{0} bytes ({1} {2} of shape {3})", t.byteSize(), v.numElements(),
      dtypeName(v.kind), shapeText(v));
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError(
        llvm::formatv("cannot read input '{0}' from {1}: {2}; expected {3}",
                      name, path, buffer.getError().message(), expected)
            .str());
  int64_t size = (*buffer)->getBufferSize();
  if (size != t.byteSize())
    return llvm::createStringError(
        llvm::formatv("input '{0}': {1} has {2} bytes; expected {3}", name,
                      path, size, expected)
            .str());
  std::memcpy(t.data(), (*buffer)->getBufferStart(), size);
  return llvm::Error::success();
}

/// Writes every argument as DIR/<name>.bin and DIR/index.txt.
static llvm::Error dumpArguments(llvm::StringRef dir,
                                 llvm::ArrayRef<Argument> args) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return llvm::createStringError("cannot create " + dir.str() + ": " +
                                   ec.message());
  std::string index = "# name role dtype shape (raw little-endian row-major "
                      "<name>.bin files)\n";
  for (const Argument &a : args) {
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, a.name + ".bin");
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
    if (ec)
      return llvm::createStringError("cannot write " + path.str().str() +
                                     ": " + ec.message());
    os.write(static_cast<const char *>(a.value->data()), a.value->byteSize());
    os.close();
    if (os.has_error())
      return llvm::createStringError("cannot write " + path.str().str() +
                                     ": " + os.error().message());
    index += a.name + " " + a.role + " " + dtypeName(a.value->shape().kind) +
             " " + shapeText(a.value->shape()) + "\n";
  }
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, "index.txt");
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return llvm::createStringError("cannot write " + path.str().str() + ": " +
                                   ec.message());
  os << index;
  os.close();
  if (os.has_error())
    return llvm::createStringError("cannot write " + path.str().str() + ": " +
                                   os.error().message());
  return llvm::Error::success();
}

static rnn::Strategy toRNN(planner::Strategy s) {
  return *rnn::symbolizeStrategy(planner::stringify(s));
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bptt-run: plan, compile and run one BPTT training step on the CPU\n");
  if (!dumpDir.empty() && (checkExact || checkFD)) {
    llvm::errs() << "bptt-run: --dump writes the arguments of one run; it "
                    "cannot be combined with --check-exact or --check-fd\n";
    return 2;
  }
  if constexpr (!llvm::sys::IsLittleEndianHost) {
    if (!dumpDir.empty() || !inputsFrom.empty()) {
      llvm::errs() << "bptt-run: --dump and --inputs-from need a "
                      "little-endian host\n";
      return 2;
    }
  }

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<rnn::RNNDialect>();
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  llvm::SourceMgr sourceMgr;
  // The planner's remarks are reported by this tool in its own words.
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  context.getDiagEngine().registerHandler([](mlir::Diagnostic &d) {
    return mlir::success(d.getSeverity() == mlir::DiagnosticSeverity::Remark);
  });
  auto loaded = loadRequest(requestOptions, sourceMgr, context);
  if (!loaded) {
    llvm::errs() << "bptt-run: " << llvm::toString(loaded.takeError()) << "\n";
    return 2;
  }
  mlir::OwningOpRef<mlir::ModuleOp> module = std::move(*loaded);
  llvm::Expected<RequestFacts> setup = inspectBPTTRequest(
      *module, requestOptions.inputChunk, requestOptions.lossChunk,
      requestOptions.gradChunk);
  if (!setup) {
    llvm::errs() << "bptt-run: " << llvm::toString(setup.takeError()) << "\n";
    return 2;
  }
  const RequestFacts &s = *setup;
  planner::Chain chain = s.chain();

  // Deterministic inputs: h0 and xs in [-1, 1), parameters in [-0.5, 0.5).
  rnn::BPTTOp op = findBPTTRequest(*module);
  std::vector<HostTensor> inputs;
  uint64_t stream = seed * 104729;
  unsigned numStates = op.getInitialStates().size();
  for (auto [i, v] : llvm::enumerate(op->getOperands())) {
    auto shape = ValueShape::of(v.getType());
    if (!shape) {
      llvm::errs() << "bptt-run: " << llvm::toString(shape.takeError()) << "\n";
      return 2;
    }
    HostTensor t(*shape);
    bool param = i > numStates;
    t.fillUniform(++stream, param ? -0.5 : -1.0, param ? 0.5 : 1.0);
    inputs.push_back(std::move(t));
  }
  if (!inputsFrom.empty()) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      Argument a = inputArgument(i, numStates, false, &inputs[i]);
      if (llvm::Error e = readArgument(inputsFrom, a.name, inputs[i])) {
        llvm::errs() << "bptt-run: " << llvm::toString(std::move(e)) << "\n";
        return 2;
      }
    }
  }

  int64_t storeAll = chain.storeAllBytes();

  llvm::outs() << llvm::formatv(
      "@{0}: T = {1}, hidden state {2} B, internal state {3} B, store-all "
      "peak {4} B\n",
      s.cell, s.steps, s.hiddenBytes, s.internalBytes, storeAll);

  if (!checkExact && !checkFD) {
    llvm::Expected<rnn::Strategy> chosenStrat =
        chosenStrategy(requestOptions, op);
    if (!chosenStrat) {
      llvm::errs() << "bptt-run: " << llvm::toString(chosenStrat.takeError())
                   << "\n";
      return 2;
    }
    llvm::Expected<int64_t> chosen = chosenBudget(requestOptions, op, storeAll);
    if (!chosen) {
      llvm::errs() << "bptt-run: " << llvm::toString(chosen.takeError())
                   << "\n";
      return 2;
    }
    rnn::Strategy strategy = *chosenStrat;
    int64_t budget = *chosen;
    auto r = run(*module, s, strategy, budget, inputs, warmUpOpt);
    if (!r) {
      llvm::errs() << "bptt-run: " << llvm::toString(r.takeError()) << "\n";
      return 2;
    }
    report(s, rnn::stringifyStrategy(strategy), budget, *r);
    if (!dumpDir.empty()) {
      auto args = abiArguments(inputs, numStates, *r);
      if (llvm::Error e = dumpArguments(dumpDir, args)) {
        llvm::errs() << "bptt-run: " << llvm::toString(std::move(e)) << "\n";
        return 2;
      }
      llvm::outs() << "wrote " << args.size() << " arguments to " << dumpDir
                   << " (index.txt)\n";
    }
    return 0;
  }

  bool ok = true;
  auto reference = run(*module, s, rnn::Strategy::All, storeAll, inputs,
                       /*warmUp=*/false);
  if (!reference) {
    llvm::errs() << "bptt-run: " << llvm::toString(reference.takeError())
                 << "\n";
    return 2;
  }
  report(s, "all", storeAll, *reference);

  if (checkExact) {
    for (planner::Strategy strategy : planner::allStrategies()) {
      if (strategy == planner::Strategy::All)
        continue;
      int64_t lo = planner::minimumBudget(chain, strategy);
      std::vector<int64_t> budgets;
      for (int k = 0; k < budgetPoints; ++k)
        budgets.push_back(lo + (storeAll - lo) * k /
                                   std::max(1, budgetPoints.getValue() - 1));
      budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());
      for (int64_t budget : budgets) {
        auto r = run(*module, s, toRNN(strategy), budget, inputs,
                     /*warmUp=*/false);
        if (!r) {
          llvm::errs() << "bptt-run: " << llvm::toString(r.takeError())
                       << "\n";
          return 2;
        }
        report(s, planner::stringify(strategy), budget, *r);
        bool same = r->outputs.size() == reference->outputs.size();
        for (size_t i = 0; same && i < r->outputs.size(); ++i)
          same = r->outputs[i].bitwiseEqual(reference->outputs[i]);
        if (!same) {
          llvm::outs() << "  FAIL: gradients differ from store-all's\n";
          ok = false;
        }
        if (r->forwardSteps != r->plannedSteps) {
          llvm::outs() << "  FAIL: executed forward steps differ from the "
                          "plan\n";
          ok = false;
        }
        if (r->peakBytes != r->plannedPeak || r->peakBytes > budget) {
          llvm::outs() << "  FAIL: measured peak differs from the plan or "
                          "exceeds the budget\n";
          ok = false;
        }
      }
    }
  }

  if (checkFD) {
    // d loss / d input by the fourth-order central stencil, on one
    // compilation of store-all.
    auto storeAllProgram = compile(*module, s, rnn::Strategy::All, storeAll);
    if (!storeAllProgram) {
      llvm::errs() << "bptt-run: "
                   << llvm::toString(storeAllProgram.takeError()) << "\n";
      return 2;
    }
    const double h = 1e-5;
    std::vector<HostTensor> point(inputs);
    size_t numInputs = inputs.size();
    double worst = 0;
    for (size_t a = 0; a < numInputs; ++a) {
      int64_t n = point[a].size();
      auto check = checkGradient(
          point[a], reference->outputs[a], h, fdSamples,
          [&]() -> llvm::Expected<double> {
            auto r = execute(*storeAllProgram, s, point, /*warmUp=*/false);
            if (!r)
              return r.takeError();
            return r->outputs.back().get(0);
          });
      if (!check) {
        llvm::errs() << "bptt-run: " << llvm::toString(check.takeError())
                     << "\n";
        return 2;
      }
      int64_t count = check->checked;
      double err = check->relativeError;
      worst = std::max(worst, err);
      llvm::outs() << llvm::formatv(
          "  d loss / d operand {0}: {1} of {2} elements, relative error "
          "{3:e2}{4}\n",
          a, count, n, err, err <= 1e-6 ? "" : "  FAIL");
      ok &= err <= 1e-6;
    }
    llvm::outs() << llvm::formatv(
        "store-all against finite differences: max relative error {0:e2}\n",
        worst);
  }
  llvm::outs() << (ok ? "PASS\n" : "FAIL\n");
  return ok ? 0 : 1;
}
