//===- bptt-opt.cpp - the bptt optimizer driver ---------------------------===//
//
// An mlir-opt-style driver: every upstream dialect and pass (the GPU/NVVM
// pipeline included) plus the rnn dialect and its passes.
//
//===----------------------------------------------------------------------===//

#include "bptt/Conversion/Pipelines.h"
#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNDialect.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  bptt::rnn::registerRNNPasses();
  bptt::registerPipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary translates device code to LLVM IR and PTX.
  mlir::registerAllToLLVMIRTranslations(registry);
  registry.insert<bptt::rnn::RNNDialect>();

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "bptt optimizer driver: the rnn dialect, its passes and "
                  "every upstream MLIR pass\n",
      registry));
}
