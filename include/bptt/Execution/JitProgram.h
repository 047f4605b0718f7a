//===- JitProgram.h - tensor functions JIT-compiled for the CPU -*- C++ -*-===//
//
// Lowers a module of tensor-level func.func ops with bptt-lower-to-cpu and
// JIT-compiles it, so that tests and tools can call its public functions on
// HostTensors. Used by bptt-gradcheck and the CPU BPTT tests.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_EXECUTION_JITPROGRAM_H
#define BPTT_EXECUTION_JITPROGRAM_H

#include "bptt/Execution/HostTensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

#include <memory>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace bptt {

class JitProgram {
public:
  struct Signature {
    std::vector<ValueShape> inputs, results;
  };

  /// Lowers a clone of `module` and JIT-compiles it. Every public func.func
  /// becomes callable; rnn.cell ops are dropped (they must no longer be
  /// referenced). Errors: a signature with a type other than static f32/f64
  /// tensors and scalars, or a lowering failure.
  static llvm::Expected<std::unique_ptr<JitProgram>>
  compile(mlir::ModuleOp module);

  ~JitProgram();

  const Signature *signature(llvm::StringRef function) const;

  /// Calls `function`. Arguments must match its signature exactly. They are
  /// copied first, so a callee that updates its arguments in place does not
  /// change them.
  llvm::Expected<std::vector<HostTensor>>
  call(llvm::StringRef function, llvm::ArrayRef<const HostTensor *> args);

  /// Calls `function` on the arguments' own buffers: what the callee writes
  /// into them (out-parameters of a memref entry point) stays there.
  llvm::Expected<std::vector<HostTensor>>
  callInPlace(llvm::StringRef function, llvm::ArrayRef<HostTensor *> args);

private:
  JitProgram() = default;
  llvm::Expected<std::vector<HostTensor>>
  invoke(llvm::StringRef function, llvm::ArrayRef<HostTensor *> args);
  std::unique_ptr<mlir::ExecutionEngine> engine;
  llvm::StringMap<Signature> signatures;
};

} // namespace bptt

#endif // BPTT_EXECUTION_JITPROGRAM_H
