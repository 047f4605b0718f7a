//===- ScalarDerivatives.h - reverse-mode rules of scalar ops ---*- C++ -*-===//
//
// The derivative rules of the scalar arith and math ops that cell bodies use,
// inside linalg.generic bodies and on the step loss. rnn-differentiate applies
// them to recomputed scalars, so they take their operands and result lazily:
// a rule asks only for what it needs (addf needs neither).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_DIALECT_RNN_TRANSFORMS_SCALARDERIVATIVES_H
#define BPTT_LIB_DIALECT_RNN_TRANSFORMS_SCALARDERIVATIVES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace bptt::rnn {

enum class ScalarOpClass {
  /// Has a float result and a derivative rule.
  Differentiable,
  /// Carries no derivative: constants, comparisons, integer and index
  /// arithmetic, casts from integers, linalg.index.
  Inactive,
  /// Not known to the differentiator.
  Unsupported,
};

/// Classifies a scalar op (one found in a linalg.generic body or on scalars
/// in a cell body).
ScalarOpClass classifyScalarOp(mlir::Operation *op);

/// The names of the scalar ops with a rule, for diagnostics.
llvm::StringRef supportedScalarOps();

/// Emits, at `b`'s insertion point, the adjoint contribution of each operand
/// of the differentiable scalar op `op` given the adjoint `d` of its result.
/// `operand(i)` and `result()` return the op's operand i and result as values
/// usable at the insertion point. Only entries with `wanted(i)` are computed;
/// the others, and those of operands that carry no derivative (integers,
/// select's condition), are null.
llvm::SmallVector<mlir::Value>
scalarAdjoints(mlir::OpBuilder &b, mlir::Location loc, mlir::Operation *op,
               llvm::function_ref<mlir::Value(unsigned)> operand,
               llvm::function_ref<mlir::Value()> result, mlir::Value d,
               llvm::function_ref<bool(unsigned)> wanted);

} // namespace bptt::rnn

#endif // BPTT_LIB_DIALECT_RNN_TRANSFORMS_SCALARDERIVATIVES_H
