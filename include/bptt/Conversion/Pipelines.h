//===- Pipelines.h - bptt's named lowering pipelines ------------*- C++ -*-===//

#ifndef BPTT_CONVERSION_PIPELINES_H
#define BPTT_CONVERSION_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/IR/BuiltinOps.h"

namespace bptt {

/// Tensors to LLVM for the host CPU: one-shot bufferization (function
/// boundaries included, identity layouts, so callers pass plain strided
/// buffers), automatic deallocation, linalg to loops, then everything to the
/// LLVM dialect. Math functions without an LLVM intrinsic call libm.
void buildLowerToCPUPipeline(mlir::OpPassManager &pm);

/// $CUDA_ROOT, or /usr/local/cuda.
std::string defaultCUDARoot();

/// Options of `bptt-lower-to-gpu`.
struct GPUPipelineOptions
    : public mlir::PassPipelineOptions<GPUPipelineOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("GPU architecture (e.g. sm_90)"),
                           llvm::cl::init("sm_90")};
  Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features (e.g. +ptx80; empty for the default)"),
      llvm::cl::init("+ptx80")};
  Option<std::string> precision{
      *this, "precision",
      llvm::cl::desc("Matrix products: f32 (full fp32) or tf32 (tensor "
                     "cores, fp32 accumulation)"),
      llvm::cl::init("f32")};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("Device code embedded in the module: isa (PTX text), "
                     "bin (cubin, via ptxas) or fatbin"),
      llvm::cl::init("fatbin")};
  Option<std::string> cudaRoot{
      *this, "cuda-root",
      llvm::cl::desc("CUDA toolkit holding ptxas and libdevice (default: "
                     "$CUDA_ROOT, else /usr/local/cuda)"),
      llvm::cl::init(defaultCUDARoot())};
  Option<int> optLevel{*this, "opt-level",
                       llvm::cl::desc("Device code optimisation level"),
                       llvm::cl::init(3)};
  // Off by default: on an H100 the LSTM benchmark ran 10% slower with it at
  // B = 64 and the same at B = 128 once the weight gradients were summed
  // over chunks of steps (docs/gpu.md, "Work beside the recurrence").
  Option<bool> sideStream{
      *this, "side-stream",
      llvm::cl::desc("Run work off each function's critical path on the "
                     "runtime's side stream (bptt-gpu-side-stream)"),
      llvm::cl::init(false)};
};

/// The BPTT programs of rnn-remat to the LLVM dialect with embedded NVIDIA
/// GPU code: cell bodies become kernels, matrix products calls of the
/// runtime's cuBLAS product, the schedule a host driver that enqueues all
/// work on one stream. See docs/gpu.md.
void buildLowerToGPUPipeline(mlir::OpPassManager &pm,
                             const GPUPipelineOptions &options);

/// Device bytes that the kernels of rnn-remat's programs in `module` (its
/// output) allocate below a program on top of the planned pool and working
/// set: an upper bound of their temporaries, found by running the GPU
/// pipeline's placement passes on a copy. Passed to rnn-remat as its
/// workspace, it makes the plan count all device memory of a step.
mlir::FailureOr<int64_t> gpuScratchBytes(mlir::ModuleOp module,
                                         llvm::StringRef precision);

/// Registers the GPU pipeline's passes, for testing them one at a time.
void registerGPUPasses();

/// Registers the pipelines above with the pass registry
/// (`bptt-opt --bptt-lower-to-cpu`).
void registerPipelines();

} // namespace bptt

#endif // BPTT_CONVERSION_PIPELINES_H
