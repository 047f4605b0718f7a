//===- Request.cpp - building and inspecting rnn.bptt requests ------------===//

#include "bptt/Execution/Request.h"

#include "bptt/Dialect/RNN/GradientChunk.h"
#include "bptt/Dialect/RNN/InputProjection.h"
#include "bptt/Dialect/RNN/LossPart.h"

#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Planner/ByteSize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include <algorithm>

using namespace bptt;

llvm::Error bptt::addBPTTRequest(mlir::ModuleOp module,
                                 llvm::StringRef cellName, int64_t steps) {
  rnn::CellOp cell;
  for (rnn::CellOp c : module.getOps<rnn::CellOp>())
    if (cellName.empty() || c.getSymName() == cellName) {
      cell = c;
      break;
    }
  if (!cell)
    return llvm::createStringError(
        "no rnn.cell" + (cellName.empty() ? "" : " @" + cellName.str()) +
        " in the module");
  if (steps < 1)
    return llvm::createStringError("--steps must be at least 1, not " +
                                   std::to_string(steps));
  mlir::OpBuilder b = mlir::OpBuilder::atBlockEnd(module.getBody());
  llvm::SmallVector<mlir::Type> args(cell.getStateTypes());
  auto x = llvm::cast<mlir::RankedTensorType>(cell.getInputType());
  llvm::SmallVector<int64_t> seqShape{steps};
  seqShape.append(x.getShape().begin(), x.getShape().end());
  args.push_back(mlir::RankedTensorType::get(seqShape, x.getElementType()));
  llvm::append_range(args, cell.getParamTypes());
  llvm::SmallVector<mlir::Type> results{cell.getLossType()};
  for (mlir::Type t : args)
    results.push_back(t);
  auto fn = mlir::func::FuncOp::create(b, cell.getLoc(), "train",
                                       b.getFunctionType(args, results));
  mlir::Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  unsigned n = cell.getNumStates();
  auto request = rnn::BPTTOp::create(
      b, cell.getLoc(), mlir::TypeRange(results), cell.getSymName(),
      mlir::ValueRange(entry->getArguments().take_front(n)),
      entry->getArgument(n),
      mlir::ValueRange(entry->getArguments().drop_front(n + 1)),
      uint64_t(1) << 40, rnn::StrategyAttr());
  mlir::func::ReturnOp::create(b, cell.getLoc(), request->getResults());
  return llvm::Error::success();
}

rnn::BPTTOp bptt::findBPTTRequest(mlir::ModuleOp module) {
  rnn::BPTTOp found;
  module.walk([&](rnn::BPTTOp op) {
    if (!found)
      found = op;
  });
  return found;
}

llvm::Error bptt::dropInputGradient(mlir::ModuleOp module) {
  rnn::BPTTOp request = findBPTTRequest(module);
  if (!request)
    return llvm::createStringError("the module has no rnn.bptt");
  auto fn = request->getParentOfType<mlir::func::FuncOp>();
  mlir::Value dxs = request.getInputGrads();
  for (mlir::Operation *user : dxs.getUsers())
    if (!llvm::isa<mlir::func::ReturnOp>(user) || user->getParentOp() != fn)
      return llvm::createStringError(
          "the gradient of xs is used in @" + fn.getSymName().str() +
          " beyond being returned; it cannot be left out");
  llvm::BitVector dropped(fn.getNumResults());
  fn.walk([&](mlir::func::ReturnOp ret) {
    for (unsigned i = ret.getNumOperands(); i-- > 0;)
      if (ret.getOperand(i) == dxs) {
        dropped.set(i);
        ret->eraseOperand(i);
      }
  });
  if (mlir::failed(fn.eraseResults(dropped)))
    return llvm::createStringError("cannot drop the gradient of xs from @" +
                                   fn.getSymName().str());
  return llvm::Error::success();
}

void bptt::keepOnlyRequestFunction(mlir::ModuleOp module) {
  rnn::BPTTOp request = findBPTTRequest(module);
  if (!request)
    return;
  auto keep = request->getParentOfType<mlir::func::FuncOp>();
  for (auto fn :
       llvm::make_early_inc_range(module.getOps<mlir::func::FuncOp>()))
    if (fn != keep)
      fn.erase();
}

planner::Chain RequestFacts::chain() const {
  return planner::Chain::uniform(steps, hiddenBytes,
                                 std::max(internalBytes, hiddenBytes),
                                 workspaceBytes + projectionBytes +
                                     lossBytes + gradBytes);
}

llvm::Expected<RequestFacts> bptt::inspectBPTTRequest(mlir::ModuleOp module,
                                                      int64_t inputChunk,
                                                      int64_t lossChunk,
                                                      int64_t gradChunk) {
  mlir::OwningOpRef<mlir::ModuleOp> copy(module.clone());
  mlir::PassManager pm(module.getContext());
  pm.addPass(rnn::createRNNDifferentiate());
  if (mlir::failed(pm.run(*copy)))
    return llvm::createStringError("differentiating the cell failed");
  rnn::BPTTOp op = findBPTTRequest(*copy);
  if (!op)
    return llvm::createStringError(
        "the module has no rnn.bptt (give --steps to build one over a cell)");
  auto cell = copy->lookupSymbol<rnn::CellOp>(op.getCell());
  RequestFacts facts;
  auto parent = op->getParentOfType<mlir::func::FuncOp>();
  facts.entry = (parent.getSymName() + "_bptt").str();
  facts.cell = cell.getSymName().str();
  facts.steps = llvm::cast<mlir::RankedTensorType>(op.getInputs().getType())
                    .getDimSize(0);
  facts.hiddenBytes = cell.getStateBytes();
  facts.internalBytes =
      cell->getAttrOfType<mlir::IntegerAttr>("rnn.internal_state_bytes")
          .getInt();
  facts.numStates = op.getInitialStates().size();
  facts.numParams = op.getParams().size();
  facts.inputGradient = !op.getInputGrads().use_empty();
  if (inputChunk >= 2)
    facts.projectionBytes = rnn::inputProjectionBytes(cell).value_or(0);
  if (lossChunk >= 1)
    facts.lossBytes =
        rnn::lossPartBytes(cell, facts.inputGradient).value_or(0);
  if (gradChunk != 0)
    if (std::optional<int64_t> perStep =
            rnn::gradientPartBytes(cell, facts.inputGradient)) {
      int64_t chunk =
          gradChunk < 0
              ? rnn::defaultGradientChunk(16, *perStep, facts.steps,
                                          facts.internalBytes)
              : std::min(gradChunk, facts.steps);
      if (chunk >= 2) {
        facts.gradChunk = chunk;
        facts.gradBytes = chunk * *perStep;
      }
    }
  return facts;
}

llvm::Expected<int64_t> bptt::parseBudget(llvm::StringRef text,
                                          int64_t storeAllBytes) {
  if (text.ends_with("%")) {
    double pct;
    if (text.drop_back().getAsDouble(pct) || pct <= 0)
      return llvm::createStringError(
          "bad budget '" + text.str() +
          "': a percentage of store-all's peak must be a positive number");
    return static_cast<int64_t>(pct / 100.0 * storeAllBytes);
  }
  return planner::parseByteSize(text);
}

llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
bptt::loadRequest(const RequestOptions &options, llvm::SourceMgr &sourceMgr,
                  mlir::MLIRContext &context) {
  std::string error;
  auto file = mlir::openInputFile(options.inputFile, &error);
  if (!file)
    return llvm::createStringError(error);
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return llvm::createStringError("cannot parse " + options.inputFile);
  if (options.steps >= 0)
    if (llvm::Error e = addBPTTRequest(*module, options.cell, options.steps))
      return std::move(e);
  // Functions other than the request's (forward-only drivers) are not run.
  keepOnlyRequestFunction(*module);
  return module;
}

llvm::Expected<rnn::Strategy>
bptt::chosenStrategy(const RequestOptions &options, rnn::BPTTOp request) {
  if (options.strategy.empty())
    return request.getStrategyOrDefault();
  if (std::optional<rnn::Strategy> s = rnn::symbolizeStrategy(options.strategy))
    return *s;
  return llvm::createStringError("unknown strategy '" + options.strategy +
                                 "'; one of all, chen, revolve, hsm, ism, "
                                 "msm");
}

llvm::Expected<int64_t> bptt::chosenBudget(const RequestOptions &options,
                                           rnn::BPTTOp request,
                                           int64_t storeAllBytes) {
  if (options.budget.empty())
    return request.getMemoryBudget();
  return parseBudget(options.budget, storeAllBytes);
}

