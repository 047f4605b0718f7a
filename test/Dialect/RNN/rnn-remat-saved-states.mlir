// RUN: %python %bptt_src_root/examples/generate.py --emit lstm --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.cell.mlir
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=internal-state=saved 2>&1 | FileCheck %s
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate "-rnn-remat=internal-state=saved max-unrolled-runs=0" | FileCheck %s --check-prefix=TABLE
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=internal-state=full 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=internal-state=saved -bptt-lower-to-cpu > /dev/null
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate "-rnn-remat=internal-state=saved max-unrolled-runs=0" -bptt-lower-to-cpu > /dev/null

// Kept internal states of saved values alone (rnn-remat internal-state=saved,
// docs/remat.md). An LSTM's new states c' and h' follow from its saved gates
// and c without a product (rnn-differentiate's @lstm_states), so a kept step
// keeps its gates, h and c (144 bytes here, against 240 with h' and c'), its
// new states go to the cursor buffers, and they are recomputed where a
// backward step or a restore needs them.

func.func @train(%h0: tensor<2x3xf32>, %c0: tensor<2x3xf32>, %xs: tensor<5x2x8xf32>,
                 %w_ih_t: tensor<4x12xf32>, %w_hh_t: tensor<3x12xf32>, %b_ih: tensor<12xf32>,
                 %b_hh: tensor<12xf32>, %w_out_t: tensor<3x4xf32>, %b_out: tensor<4xf32>)
    -> (f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>,
        tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>) {
  %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh, %dw_out_t, %db_out =
      rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 650 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
      -> (f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
  return %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh, %dw_out_t, %db_out
      : f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>
}

// The plan: 7 forward steps in 650 bytes (R0 F1 H1 x K2 F3 H3 x K4 W5 B5 B4
// x R2 W3 B3 B2 x R0 W1 B1); with h' and c' in every kept state, 8.
// CHECK: remark: planned msm for T = 5: 7 forward steps (1.400 per step), peak 624 of 650 bytes, kept internal states without their new states
// FULL:  remark: planned msm for T = 5: 8 forward steps (1.600 per step), peak 624 of 650 bytes{{$}}
// FULL-NOT: @lstm_states_kernel

// The states kernel: one elementwise op from the saved gates and c to c' and
// h', written into its out-parameters.
// CHECK-LABEL: func.func private @lstm_states_kernel(
// CHECK-NOT:   linalg.matmul
// CHECK:       linalg.generic
// CHECK-SAME:  outs(%arg{{[0-9]+}}, %arg{{[0-9]+}} :
// CHECK:         linalg.yield %{{.*}}, %{{.*}} : f32, f32
// CHECK-NOT:   linalg.generic
// CHECK:       return

// The working set: two cursor buffers and two state-gradient buffers for h
// and c, and the internal-state buffer of saved values (h, c, gates): no
// buffer for a step's new states beside the cursors.
// CHECK-LABEL: func.func @train_bptt(
// CHECK-COUNT-10: memref.alloc() : memref<2x3xf32>
// CHECK-NEXT:  memref.alloc() : memref<2x12xf32>
// CHECK-NEXT:  memref.alloc() : memref<288xi8>
// Steps 1-5 forward (2 and 4 kept, their new states in the cursors), then
// backward 5 from the internal-state buffer, then 4 from its slot after its
// new states are recomputed.
// CHECK:       call @train_bptt_forward_step({{.*}}, %c5,
// CHECK-NEXT:  call @train_bptt_backward_step(
// CHECK:       call @lstm_states_kernel(
// CHECK-NEXT:  call @train_bptt_backward_step(
// The restore of kept step 2 recomputes its new states into a cursor buffer,
// from which step 3 runs; backward 3, then 2 (its new states recomputed
// again), then 1.
// CHECK:       call @lstm_states_kernel(
// CHECK-NEXT:  call @train_bptt_forward_step({{.*}}, %c3,
// CHECK-NEXT:  call @train_bptt_backward_step(
// CHECK-NEXT:  call @lstm_states_kernel(
// CHECK-NEXT:  call @train_bptt_backward_step(
// CHECK:       call @train_bptt_forward_step({{.*}}, %c1,
// CHECK-NEXT:  call @train_bptt_backward_step(
// CHECK-NOT:   call @
// CHECK:       return
// The tensor-level states function goes with the cell.
// CHECK-NOT:   func.func private @lstm_states(

// As a table: kept steps are runs of kind 2 of 144-byte slots; the restore
// of kept step 2 from offset 0 is a run of kind 8 (RestoreKept).
// TABLE: memref.global "private" constant @train_bptt_schedule : memref<19x5xi64> = dense<{{\[}}[0, 0, 1, -1, 0], [1, 1, 1, 0, 0], [4, 1, 1, 0, 48], [7, 0, 1, 0, 48], [2, 2, 1, 0, 144], [1, 3, 1, 0, 0], [4, 3, 1, 144, 48], [7, 0, 1, 144, 48], [2, 4, 1, 144, 144], [3, 5, 1, 0, 0], [6, 5, 1, -1, 0], [5, 4, 1, 144, 144], [8, 2, 1, 0, 0], [3, 3, 1, 0, 0], [6, 3, 1, -1, 0], [5, 2, 1, 0, 144], [0, 0, 1, -1, 0], [3, 1, 1, 0, 0], [6, 1, 1, -1, 0]]>
