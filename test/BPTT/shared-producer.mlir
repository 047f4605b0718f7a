// RUN: bptt-run %s --steps 16 --check-exact | FileCheck %s
// RUN: bptt-run %s --steps 16 --check-fd | FileCheck %s
// RUN: bptt-gradcheck %s | FileCheck %s --check-prefix=GRAD

// Elementwise ops whose results are new states and are read again by the
// next op: p (a new state), q = p * p (a new state, reading p), r = q - p
// (reading both). KernelPreparation fuses q into p's op, which then yields
// both, and must leave r apart, since it reads two results of that op (a
// fusion of one operand would leave the other reading the erased producer:
// that crashed the compiler once). The schedules stay exact.
// CHECK: PASS
// GRAD: @twice: PASS

#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @twice state(%h: tensor<2x3xf64>, %g: tensor<2x3xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<3x3xf64>) -> (tensor<2x3xf64>, tensor<2x3xf64>, f64) {
  %a = linalg.matmul ins(%h, %w : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%x : tensor<2x3xf64>) -> tensor<2x3xf64>
  %e = tensor.empty() : tensor<2x3xf64>
  %p = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %g : tensor<2x3xf64>, tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %u: f64, %o: f64):
    %t = math.tanh %v : f64
    %s = arith.addf %t, %u : f64
    %r = math.tanh %s : f64
    linalg.yield %r : f64
  } -> tensor<2x3xf64>
  %q = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %m = arith.mulf %v, %v : f64
    linalg.yield %m : f64
  } -> tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p, %q : tensor<2x3xf64>, tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %u: f64, %o: f64):
    %m = arith.subf %u, %v : f64
    linalg.yield %m : f64
  } -> tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %z = tensor.empty() : tensor<f64>
  %zf = linalg.fill ins(%zero : f64) outs(%z : tensor<f64>) -> tensor<f64>
  %sum = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%r : tensor<2x3xf64>) outs(%zf : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %n = arith.addf %acc, %v : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %loss = tensor.extract %sum[] : tensor<f64>
  rnn.yield %p, %q, %loss : tensor<2x3xf64>, tensor<2x3xf64>, f64
}
