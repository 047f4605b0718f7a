// RUN: bptt-opt %s -split-input-file -rnn-differentiate -verify-diagnostics
// RUN: not bptt-opt %s -split-input-file -rnn-differentiate=cells=missing 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: rnn-differentiate: no rnn.cell named @missing (option 'cells')

// An op outside the supported set is named, with the cell.
// expected-note @below {{cell @sorted is here}}
rnn.cell @sorted state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %e = tensor.empty() : tensor<4xf32>
  // expected-error @below {{'linalg.softmax' op in cell @sorted is not supported by rnn-differentiate; supported ops: linalg.matmul, linalg.batch_matmul, linalg.generic}}
  %s = linalg.softmax dimension(0) ins(%h : tensor<4xf32>) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %c = arith.constant 0 : index
  %l = tensor.extract %s[%c] : tensor<4xf32>
  rnn.yield %s, %l : tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @sorted(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A scalar op inside a generic body without a derivative rule.
#id = affine_map<(d0) -> (d0)>
// expected-note @below {{cell @atan is here}}
rnn.cell @atan state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %e = tensor.empty() : tensor<4xf32>
  %s = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%h : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%v: f32, %o: f32):
    // expected-error @below {{'math.atan' op in cell @atan is not supported by rnn-differentiate inside a linalg.generic body; supported scalar ops: arith.{addf}}
    %a = math.atan %v : f32
    linalg.yield %a : f32
  } -> tensor<4xf32>
  %c = arith.constant 0 : index
  %l = tensor.extract %s[%c] : tensor<4xf32>
  rnn.yield %s, %l : tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @atan(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A reduction must accumulate as acc = combine(acc, expr).
#id = affine_map<(d0) -> (d0)>
#all = affine_map<(d0) -> ()>
// expected-note @below {{cell @prod is here}}
rnn.cell @prod state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %one = arith.constant 1.0 : f32
  %t = tensor.empty() : tensor<f32>
  %init = linalg.fill ins(%one : f32) outs(%t : tensor<f32>) -> tensor<f32>
  // expected-error @below {{'linalg.generic' op in cell @prod is not supported by rnn-differentiate: a reduction must accumulate each output as `acc = combine(acc, expr)` with combine one of arith.addf, maximumf, maxnumf, minimumf, minnumf}}
  %p = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction"]}
      ins(%h : tensor<4xf32>) outs(%init : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %m = arith.mulf %acc, %v : f32
    linalg.yield %m : f32
  } -> tensor<f32>
  %l = tensor.extract %p[] : tensor<f32>
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @prod(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A generic body may not capture a differentiable value.
#id = affine_map<(d0) -> (d0)>
// expected-note @below {{cell @capture is here}}
rnn.cell @capture state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %s = tensor.extract %h[%c] : tensor<4xf32>
  %e = tensor.empty() : tensor<4xf32>
  // expected-error @below {{'linalg.generic' op in cell @capture is not supported by rnn-differentiate: its body uses a differentiable value defined outside it; pass that value as an input operand instead}}
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.mulf %v, %s : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  rnn.yield %r, %s : tensor<4xf32>, f32
}
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @capture(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

// -----

// A matrix product may transpose its operands but not broadcast them.
// expected-note @below {{cell @bcast is here}}
rnn.cell @bcast state(%h: tensor<2x3xf32>) input(%x: tensor<3xf32>)
    params(%w: tensor<3x3xf32>) -> (tensor<2x3xf32>, f32) {
  // expected-error @below {{'linalg.matmul' op in cell @bcast is not supported by rnn-differentiate: operands may be transposed but not broadcast}}
  %m = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2)>,
                                      affine_map<(d0, d1, d2) -> (d2, d1)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
      ins(%x, %w : tensor<3xf32>, tensor<3x3xf32>) outs(%h : tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = arith.constant 0 : index
  %l = tensor.extract %m[%c, %c] : tensor<2x3xf32>
  rnn.yield %m, %l : tensor<2x3xf32>, f32
}
func.func @f(%h: tensor<2x3xf32>, %xs: tensor<3x3xf32>, %w: tensor<3x3xf32>) -> f32 {
  %r:4 = rnn.bptt @bcast(%h) over %xs params(%w) {memory_budget = 4096 : i64}
      : (tensor<2x3xf32>, tensor<3x3xf32>, tensor<3x3xf32>) -> (f32, tensor<2x3xf32>, tensor<3x3xf32>, tensor<3x3xf32>)
  return %r#0 : f32
}

// -----

// The generated names must be free.
// expected-error @below {{rnn-differentiate cannot create @taken_forward for cell @taken: a symbol of that name already exists}}
rnn.cell @taken state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %c = arith.constant 0 : index
  %l = tensor.extract %h[%c] : tensor<4xf32>
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func private @taken_forward()
func.func @f(%h: tensor<4xf32>, %xs: tensor<3x4xf32>) -> f32 {
  %r:3 = rnn.bptt @taken(%h) over %xs {memory_budget = 4096 : i64}
      : (tensor<4xf32>, tensor<3x4xf32>) -> (f32, tensor<4xf32>, tensor<3x4xf32>)
  return %r#0 : f32
}

