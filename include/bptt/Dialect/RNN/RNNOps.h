//===- RNNOps.h - rnn dialect operations ------------------------*- C++ -*-===//

#ifndef BPTT_DIALECT_RNN_RNNOPS_H
#define BPTT_DIALECT_RNN_RNNOPS_H

#include "bptt/Dialect/RNN/RNNDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "bptt/Dialect/RNN/RNNEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "bptt/Dialect/RNN/RNNAttrs.h.inc"

#define GET_OP_CLASSES
#include "bptt/Dialect/RNN/RNNOps.h.inc"

#include <optional>

namespace bptt::rnn {
/// Bytes a value of `type` occupies in memory: a statically shaped tensor or
/// memref of integers or floats, or an integer or float scalar. nullopt for
/// anything else. The one size rule the planner's byte budgets rest on.
std::optional<int64_t> storageBytes(mlir::Type type);
} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_RNNOPS_H
