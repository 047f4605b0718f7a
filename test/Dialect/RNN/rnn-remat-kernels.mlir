// RUN: %python %bptt_src_root/examples/generate.py --emit lstm --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.cell.mlir
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat | FileCheck %s
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=input-chunk=4 | FileCheck %s --check-prefix=PROJ

// The step kernels that rnn-remat builds for an LSTM (examples/generate.py's
// cell: gates = x·W_ih + b_ih + h·W_hh + b_hh, then an output layer and a
// softmax loss) run few ops and write their results where the schedule keeps
// them, instead of computing into temporaries and copying out at the end.

func.func @train(%h0: tensor<2x3xf32>, %c0: tensor<2x3xf32>, %xs: tensor<5x2x8xf32>,
                 %w_ih_t: tensor<4x12xf32>, %w_hh_t: tensor<3x12xf32>, %b_ih: tensor<12xf32>,
                 %b_hh: tensor<12xf32>, %w_out_t: tensor<3x4xf32>, %b_out: tensor<4xf32>)
    -> (f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>,
        tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>) {
  %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh, %dw_out_t, %db_out =
      rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 4096 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
      -> (f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
  return %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh, %dw_out_t, %db_out
      : f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>
}

// Forward: the gates are computed in the saved gates (an out-parameter: a
// slot of the pool) as a projected step computes them: b_ih broadcast there,
// x·W_ih accumulated onto it, b_hh added in place, h·W_hh accumulated (each
// product seeded by its own bias: on the GPU, two library calls with bias
// epilogues and no kernel); the four gate slices are views of it, not
// copies. c' and
// h' = o * tanh(c') are one op with two results, though c' is also a new
// state (KernelPreparation's shared-producer fusion). The output layer and
// the loss are not here (the backward step recomputes them). The incoming
// state, which the backward step needs, is saved by the same op: it passes
// c_{t-1} (which it reads for c') and h_{t-1} through to the slot, no copies.
// CHECK-LABEL: func.func private @lstm_forward_kernel(
// CHECK:       linalg.generic {{.*}} ins(%arg5 : {{.*}}) outs(%[[GATES:arg[0-9]+]] : memref<2x12xf32
// CHECK:       linalg.matmul ins(%{{.*}}, %arg3 : {{.*}}) outs(%[[GATES]] :
// CHECK-NEXT:  linalg.generic {{.*}} ins(%arg6 : {{.*}}) outs(%[[GATES]] :
// CHECK-NEXT:  ^bb0(%[[B:.*]]: f32, %[[OLD:.*]]: f32):
// CHECK-NEXT:    arith.addf %[[OLD]], %[[B]]
// CHECK:       linalg.matmul ins(%arg0, %arg4 : {{.*}}) outs(%[[GATES]] :
// CHECK-NOT:   memref.copy %{{.*}}, %[[GATES]]
// CHECK-NOT:   linalg.broadcast
// CHECK:       linalg.generic {{.*}} ins({{.*}}, %arg1, %arg0 : {{.*}}) outs(%{{[^,]*}}, %{{[^,]*}}, %arg{{[0-9]+}}, %arg{{[0-9]+}} : memref<2x3xf32, {{.*}}>, memref<2x3xf32, {{.*}}>, memref<2x3xf32, {{.*}}>, memref<2x3xf32, {{.*}}>)
// CHECK-NEXT:  ^bb0(%{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %[[C:[^:]*]]: f32, %[[H:[^:]*]]: f32,
// CHECK:         linalg.yield %{{.*}}, %{{.*}}, %[[C]], %[[H]] : f32, f32, f32, f32
// CHECK-NOT:   linalg.generic
// CHECK-NOT:   linalg.matmul
// CHECK-NOT:   memref.copy
// CHECK:       return

// Backward: the gradient of the gates is assembled slice by slice with no
// zero fill under it, each slice computed in place (one op computes all four
// and dL/dc, writing them into their slices and the out-parameter: no
// copies), the state gradient's product overwrites its out-parameter, and the
// parameter gradients are accumulated in place with no copy onto themselves
// at the end. The loss's adjoint scaled by 1/B stays a host scalar that the
// elementwise bodies read (no one-element buffer filled for it, which on the
// GPU would be a one-thread kernel of its own).
// The softmax's sum of exponentials and the target's logit, two reductions
// over the same rows of which neither reads the other, are one op with two
// outputs (KernelPreparation's sibling reductions: one GPU kernel).
// CHECK-LABEL: func.func private @lstm_backward_kernel(
// CHECK:       linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%{{[^ ]*}} : memref<2x4xf32>)
// CHECK:       linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins({{.*}}) outs(%{{[^,]*}}, %{{[^ ]*}} : memref<2xf32>, memref<2xf32>)
// CHECK:       %[[SEED:.*]] = arith.mulf %arg14, %{{.*}} : f32
// CHECK:       linalg.generic
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    arith.negf %[[SEED]]
// The softmax's row maximum is stopped (rnn.stop_gradient): nothing routes a
// gradient back to the arg-max. The logits' gradient (the target part, onto
// which the softmax part accumulates, and the per-row scale before both) is
// that one op: the next op is the product that takes it back to h'.
// CHECK-NOT:   arith.cmpf
// CHECK-NOT:   linalg.generic
// CHECK:       linalg.matmul
// CHECK:       %[[DGATES:.*]] = memref.alloc() {{.*}} : memref<2x12xf32>
// CHECK-DAG:   %[[D3:.*]] = memref.subview %[[DGATES]][0, 9] [2, 3]
// CHECK-DAG:   %[[D0:.*]] = memref.subview %[[DGATES]][0, 0] [2, 3]
// CHECK-DAG:   %[[D1:.*]] = memref.subview %[[DGATES]][0, 3] [2, 3]
// CHECK-DAG:   %[[D2:.*]] = memref.subview %[[DGATES]][0, 6] [2, 3]
// CHECK:       linalg.generic {{.*}} outs(%[[D3]], %arg{{[0-9]+}}, %[[D0]], %[[D1]], %[[D2]], %arg{{[0-9]+}} :
// CHECK-NOT:   linalg.fill {{.*}} memref<2x12xf32>
// CHECK-NOT:   memref.copy
// The two bias gradients, both the column sums of the gates' gradient, are
// one reduction reading it once and accumulating into both.
// CHECK:       linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]} ins(%[[DGATES]] : memref<2x12xf32>) outs(%arg{{[0-9]+}}, %arg{{[0-9]+}} :
// CHECK-NOT:   memref.copy
// CHECK:       return

// With input projections the forward step reads its row V = x·W_ih + b_ih of
// the projection buffer; V + (h·W_hh + b_hh) is one accumulation: b_hh is
// added to V straight into the saved gates, and the product accumulates
// there (KernelPreparation's V + Q rule). No second product, no copy.
// PROJ-LABEL: func.func private @lstm_forward_kernel_projected(
// PROJ:       linalg.generic {{.*}} ins(%[[ROW:arg[0-9]+]], %arg6 : memref<2x12xf32, {{.*}}>, memref<12xf32, {{.*}}>) outs(%[[GATES:arg[0-9]+]] : memref<2x12xf32
// PROJ-NEXT:  ^bb0
// PROJ-NEXT:    arith.addf
// PROJ:       linalg.matmul ins(%arg0, %arg4 : {{.*}}) outs(%[[GATES]] :
// PROJ-NOT:   linalg.matmul
// PROJ-NOT:   memref.copy %{{.*}}, %[[GATES]]
// PROJ:       return
