//===- Passes.h - rnn dialect passes ----------------------------*- C++ -*-===//

#ifndef BPTT_DIALECT_RNN_PASSES_H
#define BPTT_DIALECT_RNN_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace bptt::rnn {

#define GEN_PASS_DECL
#include "bptt/Dialect/RNN/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "bptt/Dialect/RNN/Passes.h.inc"

} // namespace bptt::rnn

#endif // BPTT_DIALECT_RNN_PASSES_H
