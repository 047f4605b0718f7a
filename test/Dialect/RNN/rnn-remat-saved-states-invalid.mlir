// RUN: %python %bptt_src_root/examples/generate.py --emit elman --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.cell.mlir
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=internal-state=saved -verify-diagnostics
// RUN: cat %t.cell.mlir %s | not bptt-opt -rnn-differentiate -rnn-remat=internal-state=some 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: cat %t.cell.mlir %s | bptt-opt -rnn-differentiate -rnn-remat=internal-state=auto > /dev/null

// An Elman cell's new state h' = tanh(x·W_ih + b_ih + h·W_hh + b_hh) keeps
// what its backward step reads of it (tanh's derivative is 1 - h'^2): it
// does not follow from the saved values (h) without a product, so its kept
// internal states cannot drop it (internal-state=saved is an error; auto
// keeps h' and plans as before).

func.func @train(%h0: tensor<2x3xf32>, %xs: tensor<5x2x8xf32>,
                 %w_ih_t: tensor<4x3xf32>, %w_hh_t: tensor<3x3xf32>, %b_ih: tensor<3xf32>,
                 %b_hh: tensor<3xf32>, %w_out_t: tensor<3x4xf32>, %b_out: tensor<4xf32>) -> f32 {
  // expected-error @below {{'rnn.bptt' op cannot keep internal states of saved values alone (internal-state=saved): the new states of cell @elman do not follow from its saved values without a matrix product; use internal-state=full or auto}}
  %r:9 = rnn.bptt @elman(%h0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh, %w_out_t, %b_out)
      {memory_budget = 4096 : i64}
      : (tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3x4xf32>, tensor<4xf32>)
      -> (f32, tensor<2x3xf32>, tensor<5x2x8xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3x4xf32>, tensor<4xf32>)
  return %r#0 : f32
}

// UNKNOWN: error: 'rnn.bptt' op unknown internal-state 'some'; expected auto, full or saved
