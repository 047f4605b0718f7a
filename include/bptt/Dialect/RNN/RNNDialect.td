//===- RNNDialect.td - the rnn dialect ---------------------*- tablegen -*-===//
//
// The rnn dialect represents recurrences (a cell applied over T steps) and the
// request to differentiate them through time under a memory budget.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_DIALECT_RNN_RNNDIALECT_TD
#define BPTT_DIALECT_RNN_RNNDIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def RNN_Dialect : Dialect {
  let name = "rnn";
  let cppNamespace = "::bptt::rnn";
  let summary = "Recurrences and memory-budgeted backpropagation through time";
  let description = [{
    The `rnn` dialect describes a recurrent model as a *cell*, one step
    `(h_{t-1}, x_t, θ) -> (h_t, loss_t)`, and the two things one does with it:
    apply it over a sequence (`rnn.apply`) and compute the gradient of the
    summed per-step loss through time (`rnn.bptt`) within a memory budget in
    bytes. The budget is what makes this dialect different from a plain loop:
    the compiler plans which states to keep and which to recompute.

    ```mlir
    rnn.cell @elman state(%h: tensor<4x8xf32>) input(%x: tensor<4x8xf32>)
        params(%w: tensor<8x8xf32>) -> (tensor<4x8xf32>, f32) {
      ...
      rnn.yield %h1, %loss : tensor<4x8xf32>, f32
    }
    %loss, %dh0, %dxs, %dw = rnn.bptt @elman(%h0) over %xs params(%w)
        {memory_budget = 1048576 : i64}
        : (tensor<4x8xf32>, tensor<100x4x8xf32>, tensor<8x8xf32>)
        -> (f32, tensor<4x8xf32>, tensor<100x4x8xf32>, tensor<8x8xf32>)
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
}

class RNN_Op<string mnemonic, list<Trait> traits = []>
    : Op<RNN_Dialect, mnemonic, traits>;

#endif // BPTT_DIALECT_RNN_RNNDIALECT_TD
