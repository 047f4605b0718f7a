//===- Pipelines.h - bptt's named lowering pipelines ------------*- C++ -*-===//

#ifndef BPTT_CONVERSION_PIPELINES_H
#define BPTT_CONVERSION_PIPELINES_H

#include "mlir/Pass/PassManager.h"

namespace bptt {

/// Tensors to LLVM for the host CPU: one-shot bufferization (function
/// boundaries included, identity layouts, so callers pass plain strided
/// buffers), automatic deallocation, linalg to loops, then everything to the
/// LLVM dialect. Math functions without an LLVM intrinsic call libm.
void buildLowerToCPUPipeline(mlir::OpPassManager &pm);

/// Registers the pipelines above with the pass registry
/// (`bptt-opt --bptt-lower-to-cpu`).
void registerPipelines();

} // namespace bptt

#endif // BPTT_CONVERSION_PIPELINES_H
