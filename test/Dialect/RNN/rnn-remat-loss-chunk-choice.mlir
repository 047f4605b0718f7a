// RUN: %python %bptt_src_root/examples/generate.py --emit lstm --batch 128 --hidden 1024 --vocab 128 --dtype f32 -o %t.cell.mlir
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=loss-chunk=16 2>&1 | FileCheck %s

// How many steps' loss parts run together, and what kept internal states
// hold, are chosen together (docs/remat.md, "Loss parts"): for the
// benchmark's LSTM (B = 128, H = 1024, V = 128) at T = 100, loss-chunk=16
// is cut to 2 by the budget's room, and each of full states and saved values
// alone is planned with chunks of 2 and of 1. A chunk of 2 saves a tenth of
// a forward step for each step it batches, but its buffers (a second step's
// loss values, and under saved values one more row of h' beside cursor
// buffer A's) take 1.2 MB from the schedule.
//
// In 21.4 MB (5% of store-all) that costs 6 forward steps (265 against 259
// under saved values), more than the batching saves: chunks of 1.
// CHECK: remark: planned msm for T = 100: 259 forward steps (2.590 per step), peak 20514304 of 21420518 bytes, kept internal states without their new states
// In 34.3 MB (8%) it costs 1 (195 against 194): chunks of 2.
// CHECK: remark: planned msm for T = 100: 195 forward steps (1.950 per step), peak 34212864 of 34272829 bytes, kept internal states without their new states
// CHECK-LABEL: func.func @small_bptt(
// CHECK-NOT:     call @small_bptt_loss_part
// CHECK-LABEL: func.func @large_bptt(
// CHECK:         call @large_bptt_loss_part
// CHECK-SAME:      memref<256x1024xf32>

func.func @small(%h0: tensor<128x1024xf32>, %c0: tensor<128x1024xf32>, %xs: tensor<100x128x256xf32>,
                 %w_ih_t: tensor<128x4096xf32>, %w_hh_t: tensor<1024x4096xf32>, %b_ih: tensor<4096xf32>,
                 %b_hh: tensor<4096xf32>, %w_out_t: tensor<1024x128xf32>, %b_out: tensor<128xf32>) -> f32 {
  %r:10 = rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 21420518 : i64}
      : (tensor<128x1024xf32>, tensor<128x1024xf32>, tensor<100x128x256xf32>, tensor<128x4096xf32>, tensor<1024x4096xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<1024x128xf32>, tensor<128xf32>)
      -> (f32, tensor<128x1024xf32>, tensor<128x1024xf32>, tensor<100x128x256xf32>, tensor<128x4096xf32>, tensor<1024x4096xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<1024x128xf32>, tensor<128xf32>)
  return %r#0 : f32
}

func.func @large(%h0: tensor<128x1024xf32>, %c0: tensor<128x1024xf32>, %xs: tensor<100x128x256xf32>,
                 %w_ih_t: tensor<128x4096xf32>, %w_hh_t: tensor<1024x4096xf32>, %b_ih: tensor<4096xf32>,
                 %b_hh: tensor<4096xf32>, %w_out_t: tensor<1024x128xf32>, %b_out: tensor<128xf32>) -> f32 {
  %r:10 = rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 34272829 : i64}
      : (tensor<128x1024xf32>, tensor<128x1024xf32>, tensor<100x128x256xf32>, tensor<128x4096xf32>, tensor<1024x4096xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<1024x128xf32>, tensor<128xf32>)
      -> (f32, tensor<128x1024xf32>, tensor<128x1024xf32>, tensor<100x128x256xf32>, tensor<128x4096xf32>, tensor<1024x4096xf32>, tensor<4096xf32>, tensor<4096xf32>, tensor<1024x128xf32>, tensor<128xf32>)
  return %r#0 : f32
}
