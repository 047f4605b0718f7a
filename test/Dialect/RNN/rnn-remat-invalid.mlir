// RUN: bptt-opt %s -split-input-file -rnn-remat -verify-diagnostics

// rnn-remat needs the cell's backward step.
rnn.cell @id state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  // expected-error @below {{'rnn.bptt' op needs the backward step of cell @id; run -rnn-differentiate before -rnn-remat}}
  %r:3 = rnn.bptt @id(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A budget below the smallest feasible one names it (the working set of 4|h|
// + |s| = 4 * 16 + 16 bytes).
rnn.cell @id state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32)
    attributes {rnn.backward = @id_backward, rnn.forward = @id_forward, rnn.internal_state_bytes = 16 : i64} {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func private @id_forward(%h: tensor<4xf32>, %x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  return %h, %l : tensor<4xf32>, f32
}
func.func private @id_backward(%x: tensor<4xf32>, %h: tensor<4xf32>, %dh: tensor<4xf32>, %dl: f32) -> (tensor<4xf32>, tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  return %dh, %x, %l : tensor<4xf32>, tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  // expected-error @below {{'rnn.bptt' op cannot run BPTT of @id over T = 3 steps in memory_budget = 64 bytes: a budget of 64 bytes is below the smallest feasible budget for strategy 'msm' on this chain, 80 bytes (the working set of one step; store-all needs 112 bytes)}}
  %r:3 = rnn.bptt @id(%h) over %xs {memory_budget = 64 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A backward function that does not have rnn-differentiate's signature (here
// without the step's loss) is named, not miscompiled.
// expected-error @+1 {{rnn-remat: the backward function @old_backward of cell @old returns 2 value(s); expected 3: the state gradients, the input's, the parameters' and the step's loss last (rnn-differentiate's signature)}}
rnn.cell @old state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32)
    attributes {rnn.backward = @old_backward, rnn.forward = @old_forward, rnn.internal_state_bytes = 16 : i64} {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func private @old_forward(%h: tensor<4xf32>, %x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  return %h, %l : tensor<4xf32>, f32
}
func.func private @old_backward(%x: tensor<4xf32>, %h: tensor<4xf32>, %dh: tensor<4xf32>, %dl: f32) -> (tensor<4xf32>, tensor<4xf32>) {
  return %dh, %x : tensor<4xf32>, tensor<4xf32>
}
func.func @g(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @old(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}
