//===- bptt-gradcheck.cpp - check cell gradients against finite differences ===//
//
// Differentiates every rnn.cell of a module with rnn-differentiate, JIT-
// compiles the generated functions for the CPU, and compares the backward
// function's gradients with central finite differences of the forward
// function, for one random point and random output weights per cell:
//
//   J(states, x, params) = sum_s <w_s, new_state_s> + w_loss * loss
//
// The backward function is called with random parameter-gradient
// accumulators, and what it adds to them is what is compared, so the
// accumulation contract is checked too; the step loss it returns must equal
// the forward function's. Finite differences use the fourth-
// order stencil (8 (J(u+h) - J(u-h)) - (J(u+2h) - J(u-2h))) / 12h. The error
// of a gradient g against the difference quotient r is
// max|g - r| / max(max|r|, max|g|, 1e-12); a cell passes when every
// argument's error is at most --tolerance. Exit status 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNDialect.h"
#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Execution/FiniteDifferences.h"
#include "bptt/Execution/JitProgram.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"

#include <algorithm>
#include <cmath>

using namespace bptt;
namespace cl = llvm::cl;

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input.mlir>"),
                                      cl::init("-"));
static cl::list<std::string>
    cellNames("cell", cl::desc("Check only these cells (default: all)"));
static cl::opt<double> tolerance("tolerance",
                                 cl::desc("Largest relative error accepted"),
                                 cl::init(1e-6));
// Small enough that a kink (max, abs, a ReLU) rarely falls inside the
// stencil, large enough that rounding stays near 1e-11 in f64.
static cl::opt<double> step("step", cl::desc("Finite-difference step"),
                            cl::init(1e-5));
static cl::opt<int64_t>
    samples("samples",
            cl::desc("Check at most this many elements per argument, spread "
                     "evenly (0: all)"),
            cl::init(0));
static cl::opt<uint64_t> seed("seed", cl::desc("Random seed"), cl::init(1));

namespace {
struct CellCheck {
  std::string name;
  unsigned numStates, numParams;
};
} // namespace

static double dot(const HostTensor &a, const HostTensor &w) {
  double s = 0;
  for (int64_t i = 0, n = a.size(); i < n; ++i)
    s += a.get(i) * w.get(i);
  return s;
}

/// Checks one cell; prints a line per argument. Returns whether it passed.
static llvm::Expected<bool> checkCell(JitProgram &program,
                                      const CellCheck &cell) {
  std::string fwd = cell.name + "_forward", bwd = cell.name + "_backward";
  const JitProgram::Signature *fsig = program.signature(fwd);
  unsigned numInputs = cell.numStates + 1 + cell.numParams;
  uint64_t s = seed * 7919;

  // The point, the output weights and the accumulators.
  std::vector<HostTensor> inputs;
  for (unsigned i = 0; i < numInputs; ++i) {
    HostTensor t(fsig->inputs[i]);
    bool param = i > cell.numStates;
    t.fillUniform(++s, param ? -0.5 : -1.0, param ? 0.5 : 1.0);
    inputs.push_back(std::move(t));
  }
  std::vector<HostTensor> weights;
  for (unsigned i = 0; i <= cell.numStates; ++i) {
    HostTensor w(fsig->results[i]);
    w.fillUniform(++s, -1.0, 1.0);
    weights.push_back(std::move(w));
  }
  std::vector<HostTensor> accumulators;
  for (unsigned p = 0; p < cell.numParams; ++p) {
    HostTensor a(fsig->inputs[cell.numStates + 1 + p]);
    a.fillUniform(++s, -1.0, 1.0);
    accumulators.push_back(std::move(a));
  }

  auto objective = [&](const std::vector<HostTensor> &point)
      -> llvm::Expected<double> {
    std::vector<const HostTensor *> args;
    for (const HostTensor &t : point)
      args.push_back(&t);
    auto out = program.call(fwd, args);
    if (!out)
      return out.takeError();
    double j = 0;
    for (unsigned i = 0; i <= cell.numStates; ++i)
      j += dot((*out)[i], weights[i]);
    return j;
  };

  // Gradients from the generated backward function.
  std::vector<const HostTensor *> fargs;
  for (const HostTensor &t : inputs)
    fargs.push_back(&t);
  auto forward = program.call(fwd, fargs);
  if (!forward)
    return forward.takeError();
  std::vector<const HostTensor *> bargs;
  for (unsigned i = cell.numStates; i < numInputs; ++i)
    bargs.push_back(&inputs[i]); // x, params
  for (unsigned i = 0; i < cell.numStates; ++i)
    bargs.push_back(&(*forward)[i]); // new states
  for (size_t i = cell.numStates + 1; i < forward->size(); ++i)
    bargs.push_back(&(*forward)[i]); // saved values
  for (const HostTensor &w : weights)
    bargs.push_back(&w);
  for (const HostTensor &a : accumulators)
    bargs.push_back(&a);
  auto grads = program.call(bwd, bargs);
  if (!grads)
    return grads.takeError();
  // Parameter gradients come back added to the accumulators.
  std::vector<HostTensor> ad(grads->begin(), grads->end());
  for (unsigned p = 0; p < cell.numParams; ++p) {
    HostTensor &g = ad[cell.numStates + 1 + p];
    for (int64_t i = 0, n = g.size(); i < n; ++i)
      g.set(i, g.get(i) - accumulators[p].get(i));
  }

  bool passed = true;
  double worst = 0;
  int64_t checked = 0;
  // The backward function also returns the step's loss (last), recomputed
  // from the new states: it must be the forward function's.
  {
    double fromForward = (*forward)[cell.numStates].get(0);
    double fromBackward = grads->back().get(0);
    double err = std::abs(fromBackward - fromForward) /
                 std::max(std::abs(fromForward), 1e-30);
    bool ok = err <= tolerance;
    passed &= ok;
    llvm::outs() << llvm::formatv(
        "  loss: {0:e6} from the forward function, {1:e6} from the backward "
        "function, relative difference {2:e2}{3}\n",
        fromForward, fromBackward, err, ok ? "" : "  FAIL");
  }
  for (unsigned a = 0; a < numInputs; ++a) {
    int64_t n = inputs[a].size();
    auto check = checkGradient(inputs[a], ad[a], step, samples,
                               [&] { return objective(inputs); });
    if (!check)
      return check.takeError();
    int64_t count = check->checked;
    double maxRef = check->maxReference, err = check->relativeError;
    checked += count;
    worst = std::max(worst, err);
    bool ok = err <= tolerance;
    passed &= ok;
    const char *role = a < cell.numStates    ? "state"
                       : a == cell.numStates ? "input"
                                             : "param";
    unsigned index = a < cell.numStates    ? a
                     : a == cell.numStates ? 0
                                           : a - cell.numStates - 1;
    llvm::outs() << llvm::formatv(
        "  {0} {1}: {2} of {3} elements, max |gradient| {4:e2}, relative "
        "error {5:e2}{6}\n",
        role, index, count, n, maxRef, err, ok ? "" : "  FAIL");
  }
  llvm::outs() << llvm::formatv("@{0}: {1} ({2} derivatives, max relative "
                                "error {3:e2}, tolerance {4:e1})\n",
                                cell.name, passed ? "PASS" : "FAIL", checked,
                                worst, double(tolerance));
  return passed;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bptt-gradcheck: checks rnn-differentiate's gradients of every cell "
      "against finite differences, on the CPU\n");

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<rnn::RNNDialect>();
  mlir::MLIRContext context(registry);

  std::string error;
  auto file = mlir::openInputFile(inputFile, &error);
  if (!file) {
    llvm::errs() << "bptt-gradcheck: " << error << "\n";
    return 2;
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 2;

  std::vector<CellCheck> cells;
  for (rnn::CellOp cell : module->getOps<rnn::CellOp>())
    if (cellNames.empty() ||
        llvm::is_contained(cellNames, cell.getSymName().str()))
      cells.push_back({cell.getSymName().str(), unsigned(cell.getNumStates()),
                       cell.getNumParams()});
  if (cells.empty()) {
    llvm::errs() << "bptt-gradcheck: no rnn.cell to check\n";
    return 2;
  }

  mlir::PassManager pm(&context);
  rnn::RNNDifferentiateOptions options;
  for (const CellCheck &c : cells)
    options.cells.push_back(c.name);
  pm.addPass(rnn::createRNNDifferentiate(options));
  if (mlir::failed(pm.run(*module)))
    return 2;

  // Only the generated functions are compiled.
  mlir::OwningOpRef<mlir::ModuleOp> generated(
      mlir::ModuleOp::create(module->getLoc()));
  mlir::OpBuilder b = mlir::OpBuilder::atBlockEnd(generated->getBody());
  for (const CellCheck &c : cells) {
    auto cell = module->lookupSymbol<rnn::CellOp>(c.name);
    llvm::outs() << llvm::formatv(
        "@{0}: internal state {1} bytes (hidden state {2} bytes)\n", c.name,
        cell->getAttrOfType<mlir::IntegerAttr>("rnn.internal_state_bytes")
            .getInt(),
        cell.getStateBytes());
    for (llvm::StringRef suffix : {"_forward", "_backward"}) {
      auto fn = module->lookupSymbol<mlir::func::FuncOp>(c.name + suffix.str());
      auto copy = llvm::cast<mlir::func::FuncOp>(b.clone(*fn));
      copy.setPublic();
    }
  }
  auto program = JitProgram::compile(*generated);
  if (!program) {
    llvm::errs() << "bptt-gradcheck: " << llvm::toString(program.takeError())
                 << "\n";
    return 2;
  }

  bool allPassed = true;
  for (const CellCheck &c : cells) {
    auto passed = checkCell(**program, c);
    if (!passed) {
      llvm::errs() << "bptt-gradcheck: @" << c.name << ": "
                   << llvm::toString(passed.takeError()) << "\n";
      return 2;
    }
    allPassed &= *passed;
  }
  return allPassed ? 0 : 1;
}
