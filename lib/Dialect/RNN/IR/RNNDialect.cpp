//===- RNNDialect.cpp - the rnn dialect -----------------------------------===//

#include "bptt/Dialect/RNN/RNNDialect.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace bptt::rnn;

#include "bptt/Dialect/RNN/RNNDialect.cpp.inc"
#include "bptt/Dialect/RNN/RNNEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "bptt/Dialect/RNN/RNNAttrs.cpp.inc"

void RNNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "bptt/Dialect/RNN/RNNOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "bptt/Dialect/RNN/RNNAttrs.cpp.inc"
      >();
}
