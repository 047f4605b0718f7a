// RUN: bptt-opt %s -rnn-differentiate -rnn-remat | FileCheck %s
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=max-unrolled-runs=0 | FileCheck %s --check-prefix=TABLE
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat -bptt-lower-to-cpu > /dev/null
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=max-unrolled-runs=0 -bptt-lower-to-cpu > /dev/null

// The Elman cell of rnn-differentiate.mlir: |h| = 48 bytes, |s| = 96 bytes
// (h' and the saved h). The working set is 4|h| + |s| = 288 bytes.


#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @elman state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%wx: tensor<4x3xf64>, %wh: tensor<3x3xf64>, %b: tensor<3xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %bb = linalg.broadcast ins(%b : tensor<3xf64>) outs(%e : tensor<2x3xf64>) dimensions = [0]
  %a = linalg.matmul ins(%x, %wx : tensor<2x4xf64>, tensor<4x3xf64>)
      outs(%bb : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a2 = linalg.matmul ins(%h, %wh : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%a : tensor<2x3xf64>) -> tensor<2x3xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a2 : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %z = tensor.empty() : tensor<f64>
  %zf = linalg.fill ins(%zero : f64) outs(%z : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x3xf64>) outs(%zf : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %l = tensor.extract %s[] : tensor<f64>
  %c = arith.constant 0.5 : f64
  %loss = arith.mulf %l, %c : f64
  rnn.yield %hn, %loss : tensor<2x3xf64>, f64
}





// T = 4 in 384 bytes: a 96-byte pool. MSM's plan is
//   R0 F1 H1 x K2 F3 W4 B4 R2 W3 B3 B2 x R0 W1 B1
// (6 forward steps): the cursor after step 1 is stored as h_1 at offset 0,
// the segment frees it at once and keeps s_2 in its place.
func.func @train(%h0: tensor<2x3xf64>, %xs: tensor<4x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 384 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf64>, tensor<4x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<4x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}


// T = 16 with store-all: the kept steps and the backward steps are loops.
func.func @train_all(%h0: tensor<2x3xf64>, %xs: tensor<16x2x4xf64>, %wx: tensor<4x3xf64>,
                     %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 100000 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// The cell and its tensor-level functions are gone; the bufferized kernels
// write their results into out-parameters. The forward kernel computes the
// step proper, without the loss: the backward kernel recomputes the loss part
// from the new state and adds the step's loss to the running total (its last
// argument) where it computes it.
// CHECK-NOT:   rnn.cell
// CHECK-LABEL: func.func private @elman_forward_kernel(
// CHECK-SAME:    memref<2x3xf64, strided<[?, ?], offset: ?>>) {
// CHECK-NOT:     arith.mulf
// CHECK:         return{{$}}
// CHECK-LABEL: func.func private @elman_backward_kernel(
// CHECK-SAME:    %[[TOTAL:[^:]*]]: memref<f64>) {
// CHECK:         %[[STEP:.*]] = arith.mulf %{{.*}}, %cst{{.*}} : f64
// CHECK-NEXT:    %[[OLD:.*]] = memref.load %[[TOTAL]][] : memref<f64>
// CHECK-NEXT:    %[[NEW:.*]] = arith.addf %[[OLD]], %[[STEP]] : f64
// CHECK-NEXT:    memref.store %[[NEW]], %[[TOTAL]][] : memref<f64>
// CHECK:         return{{$}}

// The request becomes a call on buffers of its tensors.
// CHECK-LABEL: func.func @train(
// CHECK-NOT:     rnn.bptt
// CHECK:         call @train_bptt(
// CHECK:         memref.load

// Each step of a schedule is one call of a wrapper that slices x_t and calls
// the kernel; a forward step is counted, a backward step passes the loss
// total to the kernel.
// CHECK-LABEL: func.func private @train_bptt_forward_step(
// CHECK:         memref.subview
// CHECK:         call @elman_forward_kernel(
// CHECK-NOT:     arith.addf
// CHECK:         return
// CHECK-LABEL: func.func private @train_bptt_backward_step(
// CHECK-SAME:    %[[LOSS:[^:]*]]: memref<f64>, %{{[^:]*}}: index,
// CHECK:         call @elman_backward_kernel({{.*}}, %[[LOSS]]) :
// CHECK-NOT:     arith.addf
// CHECK:         return

// CHECK-LABEL: func.func @train_bptt(
// CHECK-SAME:    %[[H0:[^:]*]]: memref<2x3xf64>, %[[XS:[^:]*]]: memref<4x2x4xf64>,
// CHECK-SAME:    %[[LOSS:[^:]*]]: memref<f64>, %[[STATS:[^:]*]]: memref<2xi64>)
// CHECK-SAME:    rnn.plan = {exact = true, forward_steps = 6 : i64, {{.*}}peak_bytes = 384 : i64, pool_bytes = 96 : i64, strategy = "msm", working_set_bytes = 288 : i64}
// Working set: two cursors (A, B), two state gradients, the internal-state
// buffer W; then the pool.
// CHECK:         %[[A:.*]] = memref.alloc() : memref<2x3xf64>
// CHECK:         %[[DA:.*]] = memref.alloc() : memref<2x3xf64>
// CHECK:         %[[DB:.*]] = memref.alloc() : memref<2x3xf64>
// CHECK:         %[[W:.*]] = memref.alloc() : memref<2x3xf64>
// CHECK:         %[[WS:.*]] = memref.alloc() : memref<2x3xf64>
// CHECK:         %[[POOL:.*]] = memref.alloc() : memref<96xi8>
// F1: from h0 into A.
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c1, %[[H0]], %[[A]], %[[WS]])
// H1: A copied into the slot at offset 0 (and freed again at once).
// CHECK:         %[[SLOT0:.*]] = memref.view %[[POOL]][%c0][] : memref<96xi8> to memref<2x3xf64>
// CHECK:         memref.copy %[[A]], %[[SLOT0]]
// K2: from A, kept in the slot at offset 0 (h_2 at 0, the saved h_1 at 48).
// CHECK:         %[[SAVED0:.*]] = memref.view %[[POOL]][%c48][]
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c2, %[[A]], %[[SLOT0]], %[[SAVED0]])
// F3 from the slot into A, W4 into the internal-state buffer, B4 from it.
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c3, %[[SLOT0]], %[[A]], %[[WS]])
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c4, %[[A]], %[[W]], %[[WS]])
// CHECK:         call @train_bptt_backward_step(%[[XS]], {{.*}}, %[[LOSS]], %c4, %[[W]], %[[WS]], %[[DA]], %[[DB]])
// R2 W3 B3: recomputed from the slot.
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c3, %[[SLOT0]], %[[W]], %[[WS]])
// CHECK:         call @train_bptt_backward_step(%[[XS]], {{.*}}, %[[LOSS]], %c3, %[[W]], %[[WS]], %[[DB]], %[[DA]])
// B2 from the slot.
// CHECK:         call @train_bptt_backward_step(%[[XS]], {{.*}}, %[[LOSS]], %c2, %[[SLOT0]], %[[SAVED0]], %[[DA]], %[[DB]])
// R0 W1 B1, then dL/dh0 copied out.
// CHECK:         call @train_bptt_forward_step(%[[XS]], {{.*}}, %c1, %[[H0]], %[[W]], %[[WS]])
// CHECK:         call @train_bptt_backward_step(%[[XS]], {{.*}}, %[[LOSS]], %c1, %[[W]], %[[WS]], %[[DB]], %[[DA]])
// CHECK:         memref.copy %[[DA]]
// CHECK:         return

// CHECK-LABEL: func.func @train_all_bptt(
// CHECK:         memref.alloc() : memref<1440xi8>
// CHECK:         call @train_all_bptt_forward_step(
// CHECK:         scf.for %{{.*}} = %c1 to %c15 step %c1 {
// CHECK:           memref.view
// CHECK:           func.call @train_all_bptt_forward_step(
// CHECK:         }
// CHECK:         call @train_all_bptt_forward_step(
// CHECK:         call @train_all_bptt_backward_step(
// CHECK:         scf.for %{{.*}} = %c0 to %c15 step %c1 {
// CHECK:           func.call @train_all_bptt_backward_step(
// CHECK:         }

// A longer schedule (more runs than max-unrolled-runs) is a table with one
// row per run (kind, step, count, offset, bytes) and one loop that
// dispatches on the kind; the program's size no longer depends on T. The
// same T = 4 plan: R0, F1, H1 at 0 (48 bytes), x0 (48 bytes), K2 at 0 (96
// bytes), F3, W4, B4 from W, R at 0, W3 again, ...
// TABLE:       memref.global "private" constant @train_bptt_schedule : memref<15x5xi64> = dense<{{\[}}[0, 0, 1, -1, 0], [1, 1, 1, 0, 0], [4, 1, 1, 0, 48], [7, 0, 1, 0, 48], [2, 2, 1, 0, 96], [1, 3, 1, 0, 0], [3, 4, 1, 0, 0], [6, 4, 1, -1, 0], [0, 2, 1, 0, 0], [3, 3, 1, 0, 0], [6, 3, 1, -1, 0], [5, 2, 1, 0, 96], [0, 0, 1, -1, 0], [3, 1, 1, 0, 0], [6, 1, 1, -1, 0]]>
// TABLE-LABEL: func.func @train_bptt(
// TABLE:         %[[TABLE:.*]] = memref.get_global @train_bptt_schedule
// The machine: the row, where the cursor is (-1: h0), whether the incoming
// state gradient is in dA.
// TABLE:         scf.while (%[[ROW:.*]] = %c0, %{{.*}} = %c-1, %{{.*}} = %true)
// TABLE:           memref.load %[[TABLE]][%[[ROW]], %c0]
// TABLE:           scf.index_switch
// TABLE-COUNT-5:     call @train_bptt_forward_step(
// TABLE:             memref.copy
// TABLE:             call @train_bptt_backward_step(
// TABLE:             call @train_bptt_backward_step(
// TABLE:             scf.if
// TABLE:               memref.copy

