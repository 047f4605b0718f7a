// A cell none of the built-in recurrences has: an IndRNN step (elementwise
// recurrent weights) followed by layer normalisation and a leaky ReLU, with
// a mean-squared loss. rnn-differentiate derives its backward step like any
// other; bptt-gradcheck checks it against finite differences.
// RUN: bptt-gradcheck %s | FileCheck %s
// CHECK: @indrnn_layernorm: internal state {{[0-9]+}} bytes
// CHECK: @indrnn_layernorm: PASS

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @indrnn_layernorm state(%h: tensor<2x4xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<3x4xf64>, %b: tensor<4xf64>, %u: tensor<4xf64>,
           %gamma: tensor<4xf64>, %beta: tensor<4xf64>)
    -> (tensor<2x4xf64>, f64) {
  %e = tensor.empty() : tensor<2x4xf64>
  %bb = linalg.broadcast ins(%b : tensor<4xf64>) outs(%e : tensor<2x4xf64>) dimensions = [0]
  %a = linalg.matmul ins(%x, %w : tensor<2x3xf64>, tensor<3x4xf64>)
      outs(%bb : tensor<2x4xf64>) -> tensor<2x4xf64>
  // pre = a + u * h   (u: one recurrent weight per unit)
  %pre = linalg.generic {indexing_maps = [#id, #col, #id, #id],
                         iterator_types = ["parallel", "parallel"]}
      ins(%a, %u, %h : tensor<2x4xf64>, tensor<4xf64>, tensor<2x4xf64>)
      outs(%e : tensor<2x4xf64>) {
  ^bb0(%av: f64, %uv: f64, %hv: f64, %o: f64):
    %m = arith.mulf %uv, %hv : f64
    %s = arith.addf %av, %m : f64
    linalg.yield %s : f64
  } -> tensor<2x4xf64>
  // Row mean and variance.
  %zero = arith.constant 0.0 : f64
  %rows = tensor.empty() : tensor<2xf64>
  %rz = linalg.fill ins(%zero : f64) outs(%rows : tensor<2xf64>) -> tensor<2xf64>
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%pre : tensor<2x4xf64>) outs(%rz : tensor<2xf64>) {
  ^bb0(%v: f64, %acc: f64):
    %s = arith.addf %acc, %v : f64
    linalg.yield %s : f64
  } -> tensor<2xf64>
  %sqdev = linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%pre, %sum : tensor<2x4xf64>, tensor<2xf64>) outs(%rz : tensor<2xf64>) {
  ^bb0(%v: f64, %s: f64, %acc: f64):
    %quarter = arith.constant 0.25 : f64
    %mean = arith.mulf %s, %quarter : f64
    %d = arith.subf %v, %mean : f64
    %dd = arith.mulf %d, %d : f64
    %n = arith.addf %acc, %dd : f64
    linalg.yield %n : f64
  } -> tensor<2xf64>
  // h' = leaky_relu(gamma * (pre - mean) / sqrt(var + eps) + beta)
  %hn = linalg.generic {indexing_maps = [#id, #row, #row, #col, #col, #id],
                        iterator_types = ["parallel", "parallel"]}
      ins(%pre, %sum, %sqdev, %gamma, %beta
          : tensor<2x4xf64>, tensor<2xf64>, tensor<2xf64>, tensor<4xf64>, tensor<4xf64>)
      outs(%e : tensor<2x4xf64>) {
  ^bb0(%v: f64, %s: f64, %q: f64, %g: f64, %bt: f64, %o: f64):
    %quarter = arith.constant 0.25 : f64
    %eps = arith.constant 1.0e-5 : f64
    %slope = arith.constant 0.01 : f64
    %mean = arith.mulf %s, %quarter : f64
    %var = arith.mulf %q, %quarter : f64
    %ve = arith.addf %var, %eps : f64
    %inv = math.rsqrt %ve : f64
    %d = arith.subf %v, %mean : f64
    %norm = arith.mulf %d, %inv : f64
    %scaled = arith.mulf %norm, %g : f64
    %shifted = arith.addf %scaled, %bt : f64
    %leak = arith.mulf %shifted, %slope : f64
    %act = arith.maximumf %shifted, %leak : f64
    linalg.yield %act : f64
  } -> tensor<2x4xf64>
  // loss = mean(h'^2)
  %t0 = tensor.empty() : tensor<f64>
  %tz = linalg.fill ins(%zero : f64) outs(%t0 : tensor<f64>) -> tensor<f64>
  %ss = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x4xf64>) outs(%tz : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %total = tensor.extract %ss[] : tensor<f64>
  %eighth = arith.constant 0.125 : f64
  %loss = arith.mulf %total, %eighth : f64
  rnn.yield %hn, %loss : tensor<2x4xf64>, f64
}
