//===- PipelineSteps.h - steps shared by bptt's pipelines -------*- C++ -*-===//
//
// Internal to lib/Conversion: what the CPU and GPU pipelines do alike.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_CONVERSION_PIPELINESTEPS_H
#define BPTT_LIB_CONVERSION_PIPELINESTEPS_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/PassManager.h"

namespace bptt {

/// One-shot bufferization with function boundaries (identity layouts, so
/// callers pass plain strided buffers), automatic deallocation, and the
/// bufferization dialect lowered to memref.
void addBufferizationPasses(mlir::OpPassManager &pm);

/// Reorders `op`'s loops to `order` (generalising a named op first); an op
/// that cannot be reordered is left as it is.
void reorderLoops(mlir::IRRewriter &rewriter, mlir::linalg::LinalgOp op,
                  llvm::ArrayRef<unsigned> order);

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_PIPELINESTEPS_H
