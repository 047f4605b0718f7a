// RUN: bptt-opt %s | bptt-opt | FileCheck %s
// RUN: bptt-opt %s --mlir-print-op-generic | bptt-opt | FileCheck %s
// RUN: bptt-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// A one-state cell with parameters.
// CHECK-LABEL: rnn.cell @elman
// CHECK-SAME:    state(%{{.*}}: tensor<2x4xf32>) input(%{{.*}}: tensor<2x4xf32>)
// CHECK-SAME:    params(%{{.*}}: tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
// CHECK:         linalg.matmul
// CHECK:         rnn.yield %{{.*}}, %{{.*}} : tensor<2x4xf32>, f32
// GENERIC-LABEL: "rnn.cell"()
// GENERIC-SAME:  function_type = (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
// GENERIC-SAME:  num_states = 1 : i64
// GENERIC-SAME:  sym_name = "elman"
rnn.cell @elman state(%h: tensor<2x4xf32>) input(%x: tensor<2x4xf32>)
    params(%w: tensor<4x4xf32>) -> (tensor<2x4xf32>, f32) {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<2x4xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<2x4xf32>) -> tensor<2x4xf32>
  %hw = linalg.matmul ins(%h, %w : tensor<2x4xf32>, tensor<4x4xf32>)
                      outs(%acc : tensor<2x4xf32>) -> tensor<2x4xf32>
  %pre = arith.addf %hw, %x : tensor<2x4xf32>
  %next = math.tanh %pre : tensor<2x4xf32>
  rnn.yield %next, %zero : tensor<2x4xf32>, f32
}

// Two states (h and c), no parameters, an f64 loss and attributes.
// CHECK-LABEL: rnn.cell @two_states
// CHECK-SAME:    state(%{{.*}}: tensor<3xf32>, %{{.*}}: tensor<3xf32>) input(%{{.*}}: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, f64)
// CHECK-SAME:    attributes {note = "no params"}
// CHECK-NOT:     params
// GENERIC-LABEL: "rnn.cell"()
// GENERIC-SAME:  num_states = 2 : i64
rnn.cell @two_states state(%h: tensor<3xf32>, %c: tensor<3xf32>) input(%x: tensor<3xf32>)
    -> (tensor<3xf32>, tensor<3xf32>, f64) attributes {note = "no params"} {
  %loss = arith.constant 1.5 : f64
  rnn.yield %c, %h, %loss : tensor<3xf32>, tensor<3xf32>, f64
}

// rnn.stop_gradient, on a tensor and on a scalar.
// CHECK-LABEL: rnn.cell @stopped
// CHECK:         %[[S:.*]] = rnn.stop_gradient %{{.*}} : tensor<3xf32>
// CHECK:         rnn.stop_gradient %{{.*}} : f32
// CHECK:         rnn.yield %[[S]]
// GENERIC:       "rnn.stop_gradient"(%{{.*}}) : (tensor<3xf32>) -> tensor<3xf32>
rnn.cell @stopped state(%h: tensor<3xf32>) input(%x: tensor<3xf32>) -> (tensor<3xf32>, f32) {
  %s = rnn.stop_gradient %h : tensor<3xf32>
  %one = arith.constant 1.0 : f32
  %l = rnn.stop_gradient %one : f32
  rnn.yield %s, %l : tensor<3xf32>, f32
}

// CHECK-LABEL: func.func @uses
func.func @uses(%h0: tensor<2x4xf32>, %xs: tensor<1000x2x4xf32>, %dyn: tensor<?x2x4xf32>,
                %empty: tensor<0x2x4xf32>, %one: tensor<1x2x4xf32>, %w: tensor<4x4xf32>,
                %c0: tensor<3xf32>, %ys: tensor<5x3xf32>) {
  // CHECK: rnn.apply @elman(%{{.*}}) over %{{.*}} params(%{{.*}}) : (tensor<2x4xf32>, tensor<1000x2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
  // GENERIC: "rnn.apply"(%{{.*}}, %{{.*}}, %{{.*}}) <{cell = @elman, operandSegmentSizes = array<i32: 1, 1, 1>}>
  %h1, %l1 = rnn.apply @elman(%h0) over %xs params(%w)
      : (tensor<2x4xf32>, tensor<1000x2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
  // Dynamic T, T = 0 and T = 1 are all valid.
  // CHECK: rnn.apply @elman{{.*}}tensor<?x2x4xf32>
  %h2, %l2 = rnn.apply @elman(%h0) over %dyn params(%w)
      : (tensor<2x4xf32>, tensor<?x2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
  // CHECK: rnn.apply @elman{{.*}}tensor<0x2x4xf32>
  %h3, %l3 = rnn.apply @elman(%h0) over %empty params(%w)
      : (tensor<2x4xf32>, tensor<0x2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
  // CHECK: rnn.apply @elman{{.*}}tensor<1x2x4xf32>
  %h4, %l4 = rnn.apply @elman(%h0) over %one params(%w)
      : (tensor<2x4xf32>, tensor<1x2x4xf32>, tensor<4x4xf32>) -> (tensor<2x4xf32>, f32)
  // CHECK: rnn.apply @two_states(%{{.*}}, %{{.*}}) over %{{.*}} : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (tensor<3xf32>, tensor<3xf32>, f64)
  %a, %b, %l5 = rnn.apply @two_states(%c0, %c0) over %ys
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (tensor<3xf32>, tensor<3xf32>, f64)

  // CHECK: rnn.bptt @elman(%{{.*}}) over %{{.*}} params(%{{.*}}) {memory_budget = 4096 : i64} : (tensor<2x4xf32>, tensor<?x2x4xf32>, tensor<4x4xf32>) -> (f32, tensor<2x4xf32>, tensor<?x2x4xf32>, tensor<4x4xf32>)
  // GENERIC: "rnn.bptt"(%{{.*}}, %{{.*}}, %{{.*}}) <{cell = @elman, memory_budget = 4096 : i64, operandSegmentSizes = array<i32: 1, 1, 1>}>
  %loss, %dh0, %dxs, %dw = rnn.bptt @elman(%h0) over %dyn params(%w) {memory_budget = 4096 : i64}
      : (tensor<2x4xf32>, tensor<?x2x4xf32>, tensor<4x4xf32>)
      -> (f32, tensor<2x4xf32>, tensor<?x2x4xf32>, tensor<4x4xf32>)
  // CHECK: rnn.bptt @two_states({{.*}}) over %{{.*}} {memory_budget = 1099511627776 : i64, strategy = #rnn.strategy<hsm>}
  // GENERIC: strategy = #rnn.strategy<hsm>
  %loss2, %dh, %dc, %dys = rnn.bptt @two_states(%c0, %c0) over %ys
      {memory_budget = 1099511627776 : i64, strategy = #rnn.strategy<hsm>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
      -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  // Every strategy spelling parses.
  // CHECK: strategy = #rnn.strategy<all>
  // CHECK: strategy = #rnn.strategy<chen>
  // CHECK: strategy = #rnn.strategy<revolve>
  // CHECK: strategy = #rnn.strategy<ism>
  // CHECK: strategy = #rnn.strategy<msm>
  %s0:4 = rnn.bptt @two_states(%c0, %c0) over %ys {memory_budget = 64 : i64, strategy = #rnn.strategy<all>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  %s1:4 = rnn.bptt @two_states(%c0, %c0) over %ys {memory_budget = 64 : i64, strategy = #rnn.strategy<chen>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  %s2:4 = rnn.bptt @two_states(%c0, %c0) over %ys {memory_budget = 64 : i64, strategy = #rnn.strategy<revolve>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  %s3:4 = rnn.bptt @two_states(%c0, %c0) over %ys {memory_budget = 64 : i64, strategy = #rnn.strategy<ism>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  %s4:4 = rnn.bptt @two_states(%c0, %c0) over %ys {memory_budget = 64 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>) -> (f64, tensor<3xf32>, tensor<3xf32>, tensor<5x3xf32>)
  return
}
