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
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "bptt/Dialect/RNN/RNNEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "bptt/Dialect/RNN/RNNAttrs.h.inc"

#define GET_OP_CLASSES
#include "bptt/Dialect/RNN/RNNOps.h.inc"

#endif // BPTT_DIALECT_RNN_RNNOPS_H
