//===- RNNDialect.h - the rnn dialect ---------------------------*- C++ -*-===//

#ifndef BPTT_DIALECT_RNN_RNNDIALECT_H
#define BPTT_DIALECT_RNN_RNNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "bptt/Dialect/RNN/RNNDialect.h.inc"

#endif // BPTT_DIALECT_RNN_RNNDIALECT_H
