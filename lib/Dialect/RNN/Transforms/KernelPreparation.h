//===- KernelPreparation.h - fewer, fused kernels per step ------*- C++ -*-===//
//
// Internal to rnn-remat: what happens to a cell's forward and backward
// functions around their bufferization so that each step runs few kernels
// and writes its results where they are kept, instead of copying them there.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_DIALECT_RNN_TRANSFORMS_KERNELPREPARATION_H
#define BPTT_LIB_DIALECT_RNN_TRANSFORMS_KERNELPREPARATION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

namespace bptt::rnn {

/// Tensor-level passes before bufferization: folds and CSE, fills that
/// slices overwrite entirely become empty tensors, elementwise producers fuse
/// into their single consumer, and empty tensors that are inserted into a
/// larger one become slices of it (so the producer writes there in place).
void addKernelFusionPasses(mlir::OpPassManager &pm);

/// After bufferization with out-parameters: every out-parameter among
/// `outParams` (indices of `fn`'s arguments) whose only use is a copy from a
/// buffer that `fn` allocates takes that buffer's place, so the ops write
/// into the out-parameter and the copy goes. Only valid for out-parameters
/// that alias no argument of `fn`, which the caller guarantees.
void writeResultsInPlace(mlir::func::FuncOp fn,
                         llvm::ArrayRef<unsigned> outParams);

/// After bufferization: a result computed by one linalg op into a fresh
/// buffer only to be copied into a static slice of another fresh buffer is
/// computed in that slice, when nothing between the op and the copy touches
/// the larger buffer and the op's other accesses to it are disjoint from the
/// slice. (Adjoints assembled slice by slice from a multi-result op, which
/// empty-tensor elimination leaves to copies: an LSTM's gate gradients.)
/// The larger buffer may also be one of the out-parameters `freshArguments`
/// (indices of `fn`'s arguments), which the caller guarantees alias no
/// argument.
void writeSlicesInPlace(mlir::func::FuncOp fn,
                        llvm::ArrayRef<unsigned> freshArguments = {});

/// After bufferization: `memref.copy %in, %out` of an argument the function
/// only reads into an out-parameter nothing else in it touches becomes one
/// more input and output of an elementwise op of the same shape, which
/// passes the value through (an LSTM forward step saving h_{t-1} and c_{t-1}
/// in its slot: with c' and h', one kernel instead of three).
void foldCopiesIntoElementwise(mlir::func::FuncOp fn);

/// Drops `memref.copy %arg[in], %arg[out]` for each (in, out) pair whose
/// out-parameter is only that copy: the caller passes the same buffer for
/// both, the accumulator was updated in place, and the copy is a no-op.
void dropSelfCopies(mlir::func::FuncOp fn,
                    llvm::ArrayRef<std::pair<unsigned, unsigned>> inOut);

} // namespace bptt::rnn

#endif // BPTT_LIB_DIALECT_RNN_TRANSFORMS_KERNELPREPARATION_H
