// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=loss-chunk=4 | FileCheck %s
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=loss-chunk=4 -bptt-lower-to-cpu > /dev/null

// The loss part of backward steps (docs/remat.md, "Loss parts"): the output
// layer of this Elman cell, y = h'·W_o, its loss 0.5 Σ (y - x)² and their
// adjoint down to dL/dh' read neither the incoming state gradient nor the
// parameter-gradient accumulators, so a backward run computes them for four
// steps at once: one 8-row product y and one 8-row product dY·W_o^T, from
// the four steps' h' gathered out of their slots. The batch sum of the loss
// reduces over rows, so it stays in each step, which reads the rows it needs.
#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @elman state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%wh: tensor<3x3xf64>, %wo: tensor<3x4xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %z3 = arith.constant 0.0 : f64
  %f = linalg.fill ins(%z3 : f64) outs(%e : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a = linalg.matmul ins(%h, %wh : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%f : tensor<2x3xf64>) -> tensor<2x3xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  // The output layer: y = h'·W_o, loss = 0.5 Σ (y - x)².
  %ey = tensor.empty() : tensor<2x4xf64>
  %fy = linalg.fill ins(%z3 : f64) outs(%ey : tensor<2x4xf64>) -> tensor<2x4xf64>
  %y = linalg.matmul ins(%hn, %wo : tensor<2x3xf64>, tensor<3x4xf64>)
      outs(%fy : tensor<2x4xf64>) -> tensor<2x4xf64>
  %z = tensor.empty() : tensor<f64>
  %zf = linalg.fill ins(%z3 : f64) outs(%z : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%y, %x : tensor<2x4xf64>, tensor<2x4xf64>) outs(%zf : tensor<f64>) {
  ^bb0(%v: f64, %t: f64, %acc: f64):
    %d = arith.subf %v, %t : f64
    %sq = arith.mulf %d, %d : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %l = tensor.extract %s[] : tensor<f64>
  %c = arith.constant 0.5 : f64
  %loss = arith.mulf %l, %c : f64
  rnn.yield %hn, %loss : tensor<2x3xf64>, f64
}

// Store-all over 10 steps: step 10 goes into the working set and computes
// its own loss part; steps 9..1 are one backward run from slots.
func.func @train(%h0: tensor<2x3xf64>, %xs: tensor<10x2x4xf64>, %wh: tensor<3x3xf64>,
                 %wo: tensor<3x4xf64>) -> f64 {
  %r:5 = rnn.bptt @elman(%h0) over %xs params(%wh, %wo)
      {memory_budget = 8192 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf64>, tensor<10x2x4xf64>, tensor<3x3xf64>, tensor<3x4xf64>)
      -> (f64, tensor<2x3xf64>, tensor<10x2x4xf64>, tensor<3x3xf64>, tensor<3x4xf64>)
  return %r#0 : f64
}

// The loss part of four steps, stacked row-wise: x (8 x 4) and h' (8 x 3)
// in; y, dY and dY·W_o^T (a product into zeros: the product that
// accumulated onto dL/dh' was split off) out.
// CHECK-LABEL: func.func private @elman_backward_kernel(
// CHECK-SAME:      %[[DH:arg5]]: memref<2x3xf64, {{[^%]*}}, %arg6: f64, %arg7: memref<3x3xf64, {{[^%]*}}, %[[DWO:arg8]]: memref<3x4xf64, {{[^%]*}}, %[[Y:arg9]]: memref<2x4xf64, {{[^%]*}}, %[[DY:arg10]]: memref<2x4xf64, {{[^%]*}}, %[[DHL:arg11]]: memref<2x3xf64,
// The step's loss, from its rows of y and x.
// CHECK:         linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]} ins(%[[Y]], %arg0 :
// CHECK:         linalg.matmul {{.*}} ins(%arg3, %[[DY]] : {{.*}}) outs(%[[DWO]] :
// dL/dh' = the incoming gradient plus the loss part's, inside tanh's adjoint.
// CHECK:         linalg.generic {{.*}} ins(%[[DH]], %[[DHL]], %arg3 :
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      arith.addf
// CHECK-LABEL: func.func private @elman_backward_kernel_loss_4(
// CHECK-SAME:      %[[X4:arg0]]: memref<8x4xf64, {{[^%]*}}, %[[H4:arg1]]: memref<8x3xf64, {{[^%]*}}, %arg2: memref<3x3xf64, {{[^%]*}}, %[[WO:arg3]]: memref<3x4xf64, {{[^%]*}}, %arg4: f64, %[[Y4:arg5]]: memref<8x4xf64, {{[^%]*}}, %[[DY4:arg6]]: memref<8x4xf64, {{[^%]*}}, %[[DH4:arg7]]: memref<8x3xf64,
// CHECK:         linalg.matmul ins(%[[H4]], %[[WO]] : {{.*}}) outs(%[[Y4]] :
// CHECK:         linalg.generic {{.*}} ins(%[[Y4]], %[[X4]] : {{.*}}) outs(%[[DY4]] :
// CHECK:         linalg.fill {{.*}} outs(%[[DH4]] :
// CHECK:         linalg.matmul {{.*}} ins(%[[DY4]], %[[WO]] : {{.*}}) outs(%[[DH4]] :
// CHECK-LABEL: func.func private @elman_backward_kernel_loss_1(
// CHECK-SAME:      memref<2x4xf64, {{[^%]*}}, %arg1: memref<2x3xf64,

// A step outside a chunk (row -1) computes its own loss part into the
// buffers' first rows.
// CHECK-LABEL: func.func private @train_bptt_backward_step(
// CHECK:         %[[OWN:.*]] = arith.cmpi slt, %{{.*}}, %c0
// CHECK:         scf.if %[[OWN]] {
// CHECK:           func.call @elman_backward_kernel_loss_1(
// CHECK:         }
// CHECK:         call @elman_backward_kernel(

// Four steps' inputs are one slice of xs; their h' are in four slots 96
// bytes (12 f64) apart, gathered by one copy of a strided view of the pool,
// one row per step.
// CHECK-LABEL: func.func private @train_bptt_loss_part(
// CHECK-SAME:      %[[POOL:arg3]]: memref<864xi8>, %[[STEP:arg4]]: index, %[[LOWEST:arg5]]: index, {{.*}}, %[[GATHER:arg9]]: memref<8x3xf64>)
// CHECK:         memref.subview %arg0[%{{.*}}, 0, 0] [4, 2, 4] [1, 1, 1]
// CHECK:         %[[FLATG:.*]] = memref.collapse_shape %[[GATHER]] {{\[}}[0, 1]] : memref<8x3xf64> into memref<24xf64>
// CHECK:         %[[STEPS:.*]] = memref.expand_shape %[[FLATG]] {{\[}}[0, 1]] output_shape [4, 6]
// CHECK:         %[[FLAT:.*]] = memref.view %[[POOL]][%c0{{.*}}][] : memref<864xi8> to memref<108xf64>
// CHECK:         %[[AT:.*]] = arith.divui %[[LOWEST]], %c8
// CHECK:         %[[SLOTS:.*]] = memref.reinterpret_cast %[[FLAT]] to offset: [%[[AT]]], sizes: [4, 6], strides: [12, 1]
// CHECK:         memref.copy %[[SLOTS]], %[[STEPS]]
// CHECK:         call @elman_backward_kernel_loss_4(

// Steps 9..1: chunks at run positions 0 and 4 and, ending with the run, 5
// (min(j - j mod 4, 9 - 4)); position j reads row start + 3 - j, the
// buffers holding the chunk's steps in increasing order.
// CHECK-LABEL: func.func @train_bptt(
// CHECK:         call @train_bptt_backward_step({{.*}}, %c10, %c-1,
// CHECK:         scf.for %[[J:.*]] = %c0 to %c9 step %c1 {
// CHECK:           %[[OFF:.*]] = arith.remui %[[J]], %c4
// CHECK:           %[[BASE:.*]] = arith.subi %[[J]], %[[OFF]]
// CHECK:           %[[START:.*]] = arith.minsi %[[BASE]], %c5
// CHECK:           %[[STARTS:.*]] = arith.cmpi eq, %[[OFF]], %c0
// CHECK:           %[[LAST:.*]] = arith.addi %[[START]], %c3
// CHECK:           scf.if %[[STARTS]] {
// CHECK:             %[[FIRST:.*]] = arith.subi %c6, %[[START]]
// CHECK:             func.call @train_bptt_loss_part({{.*}}, %[[FIRST]],
// CHECK:           }
// CHECK:           %[[ROW:.*]] = arith.subi %[[LAST]], %[[J]]
// CHECK:           func.call @train_bptt_backward_step({{.*}}, %[[ROW]],
// CHECK:         }
