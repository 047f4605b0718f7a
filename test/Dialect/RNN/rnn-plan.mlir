// RUN: bptt-opt %s -rnn-plan -split-input-file -verify-diagnostics | FileCheck %s

// A tiny Elman-like cell: h is 2x4xf32 = 32 bytes. Its internal state is
// recorded as 64 bytes (as rnn-differentiate will), so the working set is
// 4 * 32 + 64 = 192 bytes and store-all needs 192 + 9 * 64 = 768 bytes.
rnn.cell @elman state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, f32)
    attributes {rnn.internal_state_bytes = 64 : i64} {
  %t = math.tanh %x : tensor<2x4xf32>
  %l = arith.constant 0.0 : f32
  rnn.yield %t, %l : tensor<2x4xf32>, f32
}

// CHECK-LABEL: func.func @fits
func.func @fits(%h0: tensor<2x4xf32>, %xs: tensor<10x2x4xf32>) {
  // At store-all's budget MSM is store-all: one forward per step.
  // CHECK: rnn.bptt @elman
  // CHECK-SAME: rnn.plan = {exact = true, forward_steps = 10 : i64, hidden_state_bytes = 32 : i64, internal_state = "full", internal_state_bytes = 64 : i64, peak_bytes = 768 : i64, pool_bytes = 576 : i64, strategy = "msm", working_set_bytes = 192 : i64}
  // expected-remark @+1 {{planned msm for T = 10: 10 forward steps (1.000 per step), peak 768 of 768 bytes}}
  %a:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 768 : i64}
      : (tensor<2x4xf32>, tensor<10x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<10x2x4xf32>)
  // The working set alone: every step recomputed from h_0.
  // CHECK: rnn.bptt @elman
  // CHECK-SAME: forward_steps = 55 : i64
  // CHECK-SAME: peak_bytes = 192 : i64
  // expected-remark @+1 {{planned msm for T = 10: 55 forward steps (5.500 per step), peak 192 of 192 bytes}}
  %b:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 192 : i64}
      : (tensor<2x4xf32>, tensor<10x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<10x2x4xf32>)
  // Revolve with two hidden slots.
  // CHECK: rnn.bptt @elman
  // CHECK-SAME: strategy = "revolve"
  // expected-remark @+1 {{planned revolve for T = 10: 25 forward steps (2.500 per step), peak 256 of 256 bytes}}
  %c:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 256 : i64, strategy = #rnn.strategy<revolve>}
      : (tensor<2x4xf32>, tensor<10x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<10x2x4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, f32)
    attributes {rnn.internal_state_bytes = 64 : i64} {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<2x4xf32>, f32
}
func.func @too_small(%h0: tensor<2x4xf32>, %xs: tensor<10x2x4xf32>) {
  // expected-error @+1 {{cannot run BPTT of @elman over T = 10 steps in memory_budget = 100 bytes: a budget of 100 bytes is below the smallest feasible budget for strategy 'msm' on this chain, 192 bytes}}
  %a:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 100 : i64}
      : (tensor<2x4xf32>, tensor<10x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<10x2x4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, f32)
    attributes {rnn.internal_state_bytes = 64 : i64} {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<2x4xf32>, f32
}
func.func @chen_too_small(%h0: tensor<2x4xf32>, %xs: tensor<16x2x4xf32>) {
  // Chen keeps 3 boundaries and 3 internal states of one 4-step segment.
  // expected-error @+1 {{below the smallest feasible budget for strategy 'chen' on this chain, 480 bytes}}
  %a:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 479 : i64, strategy = #rnn.strategy<chen>}
      : (tensor<2x4xf32>, tensor<16x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<16x2x4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<2x4xf32>, f32
}
func.func @dynamic(%h0: tensor<2x4xf32>, %xs: tensor<?x2x4xf32>) {
  // expected-error @+1 {{cannot be planned: the sequence length T is dynamic, and the checkpointing schedule is chosen at compile time; give the inputs a static leading dimension}}
  %a:3 = rnn.bptt @elman(%h0) over %xs {memory_budget = 4096 : i64}
      : (tensor<2x4xf32>, tensor<?x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<?x2x4xf32>)
  return
}

// -----

// Without a recorded size, the internal state is bounded by the previous
// state plus every tensor the step computes: 32 + 32 (tanh) = 64 bytes.
rnn.cell @estimated state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, f32) {
  %t = math.tanh %x : tensor<2x4xf32>
  %l = arith.constant 0.0 : f32
  rnn.yield %t, %l : tensor<2x4xf32>, f32
}
// CHECK-LABEL: func.func @estimated_size
func.func @estimated_size(%h0: tensor<2x4xf32>, %xs: tensor<3x2x4xf32>) {
  // CHECK: internal_state_bytes = 64 : i64
  // expected-remark @+1 {{planned msm}}
  %a:3 = rnn.bptt @estimated(%h0) over %xs {memory_budget = 4096 : i64}
      : (tensor<2x4xf32>, tensor<3x2x4xf32>) -> (f32, tensor<2x4xf32>, tensor<3x2x4xf32>)
  return
}
