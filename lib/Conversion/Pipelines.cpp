//===- Pipelines.cpp - bptt's named lowering pipelines --------------------===//

#include "bptt/Conversion/Pipelines.h"

#include "PipelineSteps.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace {
/// Orders the loops of each matrix product so that the innermost one runs
/// along the output's last dimension whenever the right-hand operand is
/// contiguous along it: C[m, n] += A[m, k] B[k, n] as m, k, n. Lowered to
/// loops in the default m, n, k order, the inner loop strides down a column
/// of B and cannot be vectorised; in m, k, n order it is a contiguous AXPY
/// that LLVM vectorises. Products already contiguous in k (B transposed)
/// keep their order.
struct ContractionLoopOrderPass
    : PassWrapper<ContractionLoopOrderPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ContractionLoopOrderPass)
  StringRef getArgument() const override {
    return "bptt-cpu-contraction-order";
  }
  StringRef getDescription() const override {
    return "Loop order of matrix products for vectorisable CPU loops";
  }
  void runOnOperation() override {
    SmallVector<linalg::LinalgOp> products;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (op.getNumDpsInputs() == 2 && op.getNumDpsInits() == 1 &&
          linalg::isaContractionOpInterface(op))
        products.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : products) {
      SmallVector<AffineMap> maps = op.getIndexingMapsArray();
      if (maps[2].getNumResults() == 0 || maps[1].getNumResults() == 0)
        continue;
      auto last = [](AffineMap m) {
        return cast<AffineDimExpr>(m.getResults().back()).getPosition();
      };
      unsigned inner = last(maps[2]);
      if (last(maps[1]) != inner)
        continue;
      SmallVector<unsigned> order;
      SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
      for (unsigned d = 0; d < iters.size(); ++d)
        if (iters[d] == utils::IteratorType::parallel && d != inner)
          order.push_back(d);
      for (unsigned d = 0; d < iters.size(); ++d)
        if (iters[d] == utils::IteratorType::reduction)
          order.push_back(d);
      order.push_back(inner);
      bptt::reorderLoops(rewriter, op, order);
    }
  }
};
} // namespace

void bptt::reorderLoops(IRRewriter &rewriter, linalg::LinalgOp op,
                        ArrayRef<unsigned> order) {
  rewriter.setInsertionPoint(op);
  FailureOr<linalg::GenericOp> generic =
      isa<linalg::GenericOp>(op.getOperation())
          ? FailureOr<linalg::GenericOp>(cast<linalg::GenericOp>(op))
          : linalg::generalizeNamedOp(rewriter, op);
  if (succeeded(generic))
    (void)linalg::interchangeGenericOp(rewriter, *generic,
                                       llvm::to_vector(order));
}

void bptt::addBufferizationPasses(OpPassManager &pm) {
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferDeallocationPipelineOptions dealloc;
  bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  pm.addPass(createConvertBufferizationToMemRefPass());
}

void bptt::buildLowerToCPUPipeline(OpPassManager &pm) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(std::make_unique<ContractionLoopOrderPass>());
  bptt::addBufferizationPasses(pm);
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  // rsqrt has neither an LLVM intrinsic nor a libm function.
  math::MathExpandOpsPassOptions expand;
  expand.opMnemonics = {"rsqrt"};
  pm.addPass(math::createMathExpandOpsPass(expand));
  pm.addPass(createConvertMathToFuncs());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void bptt::registerPipelines() {
  PassPipelineRegistration<>(
      "bptt-lower-to-cpu",
      "Lower tensor-level functions to the LLVM dialect for the host CPU",
      buildLowerToCPUPipeline);
  PassPipelineRegistration<GPUPipelineOptions>(
      "bptt-lower-to-gpu",
      "Lower rnn-remat's BPTT programs to the LLVM dialect with NVIDIA GPU "
      "kernels (options: chip, features, precision, format, opt-level, side-stream)",
      buildLowerToGPUPipeline);
  registerGPUPasses();
}
