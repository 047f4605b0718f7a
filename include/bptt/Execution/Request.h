//===- Request.h - building and inspecting rnn.bptt requests ----*- C++ -*-===//
//
// What the drivers (bptt-run, bptt-compile) share: their request options
// (--steps, --cell, --budget, --strategy) and the input file, an rnn.bptt
// built over a cell for --steps, the facts of a request (cell, T, state
// sizes) and the budget syntax (bytes, or a percentage of store-all's peak).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_EXECUTION_REQUEST_H
#define BPTT_EXECUTION_REQUEST_H

#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Planner/Chain.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/SourceMgr.h"

#include <string>

namespace bptt {

/// The command-line options of a driver that takes a request: one
/// declaration, so that the drivers agree on names and meanings. A tool
/// defines one static instance; the options register with LLVM's parser.
struct RequestOptions {
  llvm::cl::opt<std::string> inputFile{
      llvm::cl::Positional, llvm::cl::desc("<input.mlir>"),
      llvm::cl::init("-")};
  llvm::cl::opt<int64_t> steps{
      "steps",
      llvm::cl::desc("Build the rnn.bptt over this many steps for the "
                     "file's (first or --cell) cell, when it has none"),
      llvm::cl::init(-1)};
  llvm::cl::opt<std::string> cell{"cell",
                                  llvm::cl::desc("Cell for --steps")};
  llvm::cl::opt<std::string> budget{
      "budget", llvm::cl::desc("Override the budget: bytes (64MiB, 1.5GB) "
                               "or a percentage of store-all's peak (5%)")};
  llvm::cl::opt<std::string> strategy{
      "strategy", llvm::cl::desc("Override the strategy (all, chen, "
                                 "revolve, hsm, ism, msm)")};
  llvm::cl::opt<int64_t> inputChunk{
      "input-chunk",
      llvm::cl::desc("Compute the input projections (the part of a step "
                     "that reads only x_t and the parameters) of this many "
                     "steps of a forward run as one product; fewer where the "
                     "budget is tight; 0: each step its own"),
      llvm::cl::init(16)};
  llvm::cl::opt<int64_t> lossChunk{
      "loss-chunk",
      llvm::cl::desc("Compute the loss part of a backward step (the output "
                     "layer, softmax and cross-entropy and their gradient "
                     "down to dL/dh') for this many steps of a backward run "
                     "as one batched call; fewer where the budget is tight; "
                     "0: each backward step is one function"),
      llvm::cl::init(16)};
  llvm::cl::opt<int64_t> gradChunk{
      "grad-chunk",
      llvm::cl::desc("Accumulate the parameter gradients (dW += h^T·dgates "
                     "and the like) of this many steps at once, one product "
                     "over their batch rows stacked, in fixed chunks of "
                     "steps whatever the schedule; the same for every "
                     "budget. -1: up to 16, fewer where the chunk's buffers "
                     "would take more than 1/64 of store-all's slots; 0: "
                     "each backward step accumulates its own"),
      llvm::cl::init(-1)};
  llvm::cl::opt<std::string> internalState{
      "internal-state",
      llvm::cl::desc("What a kept internal state holds: full (new states "
                     "and saved values), saved (saved values alone, the new "
                     "states recomputed from them where needed: LSTM, GRU) "
                     "or auto (the plan with fewer forward steps)"),
      llvm::cl::init("auto")};
};

/// Reads --input into `sourceMgr` and parses it (errors go to the context's
/// diagnostic handlers), adds the request for --steps over --cell, and keeps
/// only the request's function.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
loadRequest(const RequestOptions &options, llvm::SourceMgr &sourceMgr,
            mlir::MLIRContext &context);

/// Adds `func.func @train` whose body is an rnn.bptt over `steps` steps of
/// the cell `cellName` (the module's first cell when empty).
llvm::Error addBPTTRequest(mlir::ModuleOp module, llvm::StringRef cellName,
                           int64_t steps);

/// The module's first rnn.bptt, or null.
rnn::BPTTOp findBPTTRequest(mlir::ModuleOp module);

/// The request's function no longer returns the gradient of xs, so that
/// rnn-remat does not compute it (the program has no dxs argument). An error
/// if something else uses it.
llvm::Error dropInputGradient(mlir::ModuleOp module);

/// Keeps only the function that holds the request (drops forward-only
/// drivers and other functions, which the drivers do not run).
void keepOnlyRequestFunction(mlir::ModuleOp module);

/// The facts of a request, learnt by differentiating a copy of the module.
struct RequestFacts {
  std::string entry;         // the function rnn-remat generates
  std::string cell;          // the cell's symbol
  int64_t steps = 0;         // T
  int64_t hiddenBytes = 0;   // |h|
  int64_t internalBytes = 0; // |s|
  unsigned numStates = 0;
  unsigned numParams = 0;
  /// Whether the request's gradient of xs is used (and so computed).
  bool inputGradient = true;
  /// Memory of a step beside states and gradients (e.g. kernel temporaries
  /// on a GPU), counted in every plan's working set.
  int64_t workspaceBytes = 0;
  /// With input projections (--input-chunk >= 2, a cell whose input part
  /// splits off): one step's projected values, counted in the working set
  /// of the store-all reference that percentage budgets are taken of; else
  /// 0. (A plan's own buffer holds 2 or more steps, or none where the
  /// budget is too tight for 2: rnn-remat's chooseInputChunk.)
  int64_t projectionBytes = 0;
  /// With the loss part split off (--loss-chunk >= 1, a cell whose loss
  /// part splits off): one step's values of it, the loss buffers' smallest
  /// size, counted in every plan's working set; else 0.
  int64_t lossBytes = 0;
  /// Steps whose parameter gradients are accumulated at once (--grad-chunk
  /// resolved for this cell and T: 0 for each step its own), and the bytes
  /// of their buffers, counted in every plan's working set.
  int64_t gradChunk = 0;
  int64_t gradBytes = 0;
  /// The request as the planner sees it: T uniform steps.
  planner::Chain chain() const;
  /// Store-all's planned peak: every internal state kept.
  int64_t storeAllBytes() const { return chain().storeAllBytes(); }
};
llvm::Expected<RequestFacts> inspectBPTTRequest(mlir::ModuleOp module,
                                                int64_t inputChunk,
                                                int64_t lossChunk,
                                                int64_t gradChunk);

/// A budget: bytes with an optional unit (64MiB, 1.5GB) or a percentage of
/// `storeAllBytes` (5%).
llvm::Expected<int64_t> parseBudget(llvm::StringRef text,
                                    int64_t storeAllBytes);

/// The strategy to run: --strategy if given, else the request's.
llvm::Expected<rnn::Strategy> chosenStrategy(const RequestOptions &options,
                                             rnn::BPTTOp request);
/// The budget to run in: --budget if given (against `storeAllBytes`), else
/// the request's.
llvm::Expected<int64_t> chosenBudget(const RequestOptions &options,
                                     rnn::BPTTOp request,
                                     int64_t storeAllBytes);

} // namespace bptt

#endif // BPTT_EXECUTION_REQUEST_H
