// RUN: %python %bptt_src_root/examples/generate.py --emit lstm --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.cell.mlir
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate "-rnn-remat=internal-state=saved loss-chunk=4" 2>&1 | FileCheck %s
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate "-rnn-remat=internal-state=saved loss-chunk=4" -bptt-lower-to-cpu > /dev/null

// The loss part batched under kept internal states of saved values alone
// (docs/remat.md, "Kept internal states of saved values alone"). A slot then
// holds no new states, but an LSTM saves its incoming h and c as they are,
// so step t's h' is the h saved in the slot of step t + 1: a chunk's h' but
// its last step's are gathered from the slots one step above theirs. The
// gather buffer's last row is cursor buffer A's h, where the states kernel
// has just recomputed the last step's h' when the chunk is computed (at its
// first backward step).

func.func @train(%h0: tensor<2x3xf32>, %c0: tensor<2x3xf32>, %xs: tensor<10x2x8xf32>,
                 %w_ih_t: tensor<4x12xf32>, %w_hh_t: tensor<3x12xf32>, %b_ih: tensor<12xf32>,
                 %b_hh: tensor<12xf32>, %w_out_t: tensor<3x4xf32>, %b_out: tensor<4xf32>) -> f32 {
  %r:10 = rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 100000 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf32>, tensor<2x3xf32>, tensor<10x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
      -> (f32, tensor<2x3xf32>, tensor<2x3xf32>, tensor<10x2x8xf32>, tensor<4x12xf32>, tensor<3x12xf32>, tensor<12xf32>, tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>)
  return %r#0 : f32
}

// CHECK: remark: planned all for T = 10: 10 forward steps {{.*}}, kept internal states without their new states

// A slot is 144 bytes: c (24), h (24), the gates (96). The chunk's slots
// start at %LOWEST; the h of the slots above its first three steps start
// 144 + 24 bytes on: one copy of three rows.
// CHECK-LABEL: func.func private @train_bptt_loss_part(
// CHECK-SAME:      %[[POOL:arg7]]: memref<1296xi8>, %[[STEP:arg8]]: index, %[[LOWEST:arg9]]: index,
// CHECK-SAME:      %[[GATHER:arg[0-9]+]]: memref<8x3xf32>) {
// CHECK:         %[[FLATG:.*]] = memref.collapse_shape %[[GATHER]]
// CHECK:         %[[ROWS:.*]] = memref.expand_shape %[[FLATG]] {{\[}}[0, 1]] output_shape [4, 6]
// CHECK:         %[[FIRST3:.*]] = memref.subview %[[ROWS]][%c0{{.*}}, 0] [3, 6] [1, 1]
// CHECK:         %[[NEXT:.*]] = arith.addi %[[LOWEST]], %c144
// CHECK:         %[[H:.*]] = arith.addi %[[NEXT]], %c24
// CHECK:         %[[AT:.*]] = arith.divui %[[H]], %c4
// CHECK:         %[[SLOTS:.*]] = memref.reinterpret_cast %{{.*}} to offset: [%[[AT]]], sizes: [3, 6], strides: [36, 1]
// CHECK:         memref.copy %[[SLOTS]], %[[FIRST3]]
// CHECK-NOT:     memref.copy
// CHECK:         call @lstm_backward_kernel_loss_4(

// Store-all: step 10 into the working set, steps 9..1 one backward run of
// nine from slots; each recomputes its new states into cursor buffer A
// first, whose h is the gather buffer's last 24 bytes. Chunks start at run
// positions 0, 4 and 5 (min(8, 9 - 4): ending with the run, called at
// position 8, where A holds position 8's h' rather than position 5's: the
// row of a step whose backward step is done, which nothing reads).
// CHECK-LABEL: func.func @train_bptt(
// CHECK:         %[[BYTES:.*]] = memref.alloc() : memref<96xi8>
// CHECK:         %[[GATHERED:.*]] = memref.view %[[BYTES]][%c0{{.*}}][] : memref<96xi8> to memref<8x3xf32>
// CHECK:         %[[CURH:.*]] = memref.view %[[BYTES]][%c72{{.*}}][] : memref<96xi8> to memref<2x3xf32>
// CHECK:         scf.for %[[J:.*]] = %c0 to %c9 step %c1 {
// CHECK:           %[[INTOH:.*]] = memref.cast %[[CURH]]
// CHECK:           func.call @lstm_states_kernel({{.*}}, %[[INTOH]], %{{.*}})
// CHECK:           %[[OFF:.*]] = arith.remui %[[J]], %c4
// CHECK:           %[[STARTS:.*]] = arith.cmpi eq, %[[OFF]], %c0
// CHECK:           scf.if %[[STARTS]] {
// CHECK:             func.call @train_bptt_loss_part({{.*}}, %[[GATHERED]])
// CHECK:           }
// CHECK:           func.call @train_bptt_backward_step(
// CHECK:         }
