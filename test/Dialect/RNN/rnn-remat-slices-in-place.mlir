// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=grad-chunk=4 | FileCheck %s
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=grad-chunk=4 -bptt-lower-to-cpu > /dev/null

// Slices written in place into an out-parameter (docs/remat.md, "Parameter
// gradients over chunks of steps"): this cell's pre-activation a (2 x 4) is
// used as two slices, so its gradient dA is assembled from two slices too.
// With grad-chunk=4 the backward step's dA is an out-parameter, the step's
// block of the chunk buffer, and the elementwise op writes both slices
// straight into views of it (as the LSTM's four gate gradients go into its
// dgates block): no temporary, no copy, and the dh product reads it there.
#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @gated state(%h: tensor<2x2xf64>) input(%x: tensor<2x3xf64>)
    params(%wx: tensor<3x4xf64>, %wh: tensor<2x4xf64>)
    -> (tensor<2x2xf64>, f64) {
  %e = tensor.empty() : tensor<2x2xf64>
  %e4 = tensor.empty() : tensor<2x4xf64>
  %z = arith.constant 0.0 : f64
  %z4 = linalg.fill ins(%z : f64) outs(%e4 : tensor<2x4xf64>) -> tensor<2x4xf64>
  %p = linalg.matmul ins(%x, %wx : tensor<2x3xf64>, tensor<3x4xf64>)
      outs(%z4 : tensor<2x4xf64>) -> tensor<2x4xf64>
  %a = linalg.matmul ins(%h, %wh : tensor<2x2xf64>, tensor<2x4xf64>)
      outs(%p : tensor<2x4xf64>) -> tensor<2x4xf64>
  %a0 = tensor.extract_slice %a[0, 0] [2, 2] [1, 1] : tensor<2x4xf64> to tensor<2x2xf64>
  %a1 = tensor.extract_slice %a[0, 2] [2, 2] [1, 1] : tensor<2x4xf64> to tensor<2x2xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a0, %a1 : tensor<2x2xf64>, tensor<2x2xf64>) outs(%e : tensor<2x2xf64>) {
  ^bb0(%u: f64, %v: f64, %o: f64):
    %t = math.tanh %u : f64
    %g = math.tanh %v : f64
    %m = arith.mulf %t, %g : f64
    linalg.yield %m : f64
  } -> tensor<2x2xf64>
  %s0 = tensor.empty() : tensor<f64>
  %sf = linalg.fill ins(%z : f64) outs(%s0 : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x2xf64>) outs(%sf : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %l = tensor.extract %s[] : tensor<f64>
  rnn.yield %hn, %l : tensor<2x2xf64>, f64
}

func.func @train(%h0: tensor<2x2xf64>, %xs: tensor<8x2x3xf64>, %wx: tensor<3x4xf64>,
                 %wh: tensor<2x4xf64>) -> f64 {
  %r:5 = rnn.bptt @gated(%h0) over %xs params(%wx, %wh)
      {memory_budget = 8192 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x2xf64>, tensor<8x2x3xf64>, tensor<3x4xf64>, tensor<2x4xf64>)
      -> (f64, tensor<2x2xf64>, tensor<8x2x3xf64>, tensor<3x4xf64>, tensor<2x4xf64>)
  return %r#0 : f64
}

// CHECK-LABEL: func.func private @gated_backward_kernel(
// CHECK-SAME:      %[[DHT:arg6]]: memref<2x2xf64, {{.*}}, %[[HOUT:arg13]]: memref<2x2xf64, {{[^%]*}}, %[[DAOUT:arg14]]: memref<2x4xf64, {{[^%]*}}, %arg15: memref<f64>)
// CHECK-NOT:     memref.copy
// CHECK-NOT:     memref.alloc() {{.*}} : memref<2x
// CHECK-DAG:     %[[DA1:.*]] = memref.subview %[[DAOUT]][0, 2] [2, 2] [1, 1]
// CHECK-DAG:     %[[DA0:.*]] = memref.subview %[[DAOUT]][0, 0] [2, 2] [1, 1]
// CHECK:         linalg.generic {{.*}} outs(%[[DHT]], %[[DA0]], %[[DA1]], %[[HOUT]] :
// CHECK-NOT:     memref.copy
// CHECK:         linalg.matmul {{.*}} ins(%[[DAOUT]], %arg2 :
// CHECK:         return
