// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=grad-chunk=4 | FileCheck %s
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=grad-chunk=4 -bptt-lower-to-cpu > /dev/null

// Parameter gradients over chunks of steps (docs/remat.md, "Parameter
// gradients over chunks of steps"): this Elman cell's backward step
// accumulates dW_x += x^T·dA, dW_h += h^T·dA and db += Σ_rows dA, each a
// reduction over the step's two batch rows. With grad-chunk=4 the step only
// writes its dA and h (x is read from xs) into its block of two buffers of
// 4 x 2 rows, and the step that completes a chunk (backward steps run
// T..1: steps 9, 5 and 1 of T = 10) sums the chunk's 8 rows at once; the
// chunk holding T = 10 is the shorter [9, 10].
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @elman state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%wx: tensor<4x3xf64>, %wh: tensor<3x3xf64>, %bias: tensor<3xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %z = arith.constant 0.0 : f64
  %b = linalg.generic {indexing_maps = [#row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%bias : tensor<3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    linalg.yield %v : f64
  } -> tensor<2x3xf64>
  %p = linalg.matmul ins(%x, %wx : tensor<2x4xf64>, tensor<4x3xf64>)
      outs(%b : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a = linalg.matmul ins(%h, %wh : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%p : tensor<2x3xf64>) -> tensor<2x3xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %s0 = tensor.empty() : tensor<f64>
  %sf = linalg.fill ins(%z : f64) outs(%s0 : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x3xf64>) outs(%sf : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %l = tensor.extract %s[] : tensor<f64>
  rnn.yield %hn, %l : tensor<2x3xf64>, f64
}

// Store-all over 10 steps; the buffers (2 x 8 x 3 f64) join the working set.
func.func @train(%h0: tensor<2x3xf64>, %xs: tensor<10x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %bias: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %bias)
      {memory_budget = 8192 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf64>, tensor<10x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<10x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// The step: no accumulation left, dA and h_{t-1} written into its rows.
// CHECK-LABEL: func.func private @elman_backward_kernel(
// CHECK-SAME:      %[[H:arg5]]: memref<2x3xf64, {{.*}}, %[[HOUT:arg15]]: memref<2x3xf64, {{[^%]*}}, %[[DAOUT:arg16]]: memref<2x3xf64, {{[^%]*}}, %arg17: memref<f64>)
// CHECK-NOT:     linalg.matmul {{.*}} outs(%arg{{(12|13|14)}} :
// CHECK:         linalg.generic {{.*}} ins(%{{.*}}, %[[H]] : {{.*}}) outs(%{{.*}}, %[[DAOUT]], %[[HOUT]] :
// CHECK:         linalg.matmul {{.*}} ins(%[[DAOUT]], %arg2 :
// CHECK-NOT:     linalg.matmul
// CHECK:         return
// The shorter chunk: 2 steps, 4 rows.
// CHECK-LABEL: func.func private @elman_backward_kernel_grads_2(
// CHECK-SAME:      %arg0: memref<4x4xf64, {{[^%]*}}, %arg1: memref<4x3xf64, {{[^%]*}}, %arg2: memref<4x3xf64,
// CHECK:         linalg.matmul {{.*}} ins(%arg1, %arg2 : {{.*}}) outs(%arg4 :
// CHECK:         linalg.matmul {{.*}} ins(%arg0, %arg2 : {{.*}}) outs(%arg3 :
// CHECK:         linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%arg2 : {{.*}}) outs(%arg5 :
// A whole chunk: x of 4 steps (8 x 4, a view of xs), h and dA (8 x 3).
// CHECK-LABEL: func.func private @elman_backward_kernel_grads_4(
// CHECK-SAME:      %arg0: memref<8x4xf64, {{[^%]*}}, %arg1: memref<8x3xf64, {{[^%]*}}, %arg2: memref<8x3xf64,
// CHECK:         linalg.matmul {{.*}} ins(%arg1, %arg2 : {{.*}}) outs(%arg4 :
// CHECK:         linalg.matmul {{.*}} ins(%arg0, %arg2 : {{.*}}) outs(%arg3 :
// CHECK:         linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%arg2 : {{.*}}) outs(%arg5 :
// The step writes block (t - 1) mod 4; step 9 ends the short chunk, any
// other step 4k + 1 a whole one.
// CHECK-LABEL: func.func private @train_bptt_backward_step(
// CHECK-SAME:      %[[STEP:arg8]]: index, %[[HBUF:arg9]]: memref<8x3xf64>, %[[DABUF:arg10]]: memref<8x3xf64>
// CHECK:         %[[BLOCK:.*]] = arith.remui %{{.*}}, %c4
// CHECK:         %[[ROW:.*]] = arith.muli %[[BLOCK]], %c2
// CHECK:         memref.subview %[[HBUF]][%[[ROW]], 0] [2, 3]
// CHECK:         memref.subview %[[DABUF]][%[[ROW]], 0] [2, 3]
// CHECK:         call @elman_backward_kernel(
// CHECK:         %[[TAIL:.*]] = arith.cmpi eq, %[[STEP]], %c9
// CHECK:         scf.if
// CHECK:           memref.subview %arg0[%{{.*}}, 0, 0] [4, 2, 4]
// CHECK:           func.call @elman_backward_kernel_grads_4(
// CHECK:         scf.if %[[TAIL]]
// CHECK:           memref.subview %arg0[%{{.*}}, 0, 0] [2, 2, 4]
// CHECK:           memref.subview %[[HBUF]][%{{.*}}, 0] [4, 3]
// CHECK:           func.call @elman_backward_kernel_grads_2(
// The buffers count in the working set: 672 = 4|h| + |s| + 2 x 8 x 3 x 8.
// CHECK-LABEL: func.func @train_bptt(
// CHECK-SAME:      rnn.plan = {exact = true, forward_steps = 10 : i64, {{.*}} working_set_bytes = 672 : i64
