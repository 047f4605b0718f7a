// RUN: %python %bptt_src_root/examples/generate.py --emit lstm --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.lstm.mlir
// RUN: %python %bptt_src_root/examples/generate.py --emit gru --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.gru.mlir
// RUN: %python %bptt_src_root/examples/generate.py --emit elman --batch 2 --hidden 3 --vocab 4 --dtype f32 -o %t.elman.mlir
// RUN: bptt-opt %t.lstm.mlir -rnn-differentiate=cells=lstm | FileCheck %s --check-prefix=LSTM
// RUN: bptt-opt %t.gru.mlir -rnn-differentiate=cells=gru | FileCheck %s --check-prefix=GRU
// RUN: bptt-opt %t.elman.mlir -rnn-differentiate=cells=elman | FileCheck %s --check-prefix=ELMAN

// Where a cell's new states follow from its saved values (and x and the
// parameters) without a matrix product, rnn-differentiate also generates
// @<cell>_states(x, params..., saved...) -> new states, and records its size
// of saved values alone (rnn.saved_bytes) beside the full internal state.

// An LSTM (B = 2, H = 3) saves h, c and its gates (24 + 24 + 96 bytes); c'
// and h' are elementwise in the gates and c: 144 bytes without them, 192
// with.
// LSTM: rnn.cell @lstm
// LSTM-SAME: rnn.internal_state_bytes = 192 : i64, rnn.saved_bytes = 144 : i64, rnn.states = @lstm_states
// LSTM-LABEL: func.func private @lstm_states(
// LSTM-SAME:  %arg7: tensor<2x3xf32>, %arg8: tensor<2x3xf32>, %arg9: tensor<2x12xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)
// LSTM-NOT:   linalg.matmul
// LSTM:       %[[C:.*]] = linalg.generic {{.*}} ins({{.*}}, %arg7 :
// LSTM:       %[[H:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %[[C]] :
// LSTM-NOT:   linalg.matmul
// LSTM:       return %[[H]], %[[C]]

// A GRU's h' = (1 - z) * n + z * h from its saved pre-activations and h.
// GRU: rnn.cell @gru
// GRU-SAME: rnn.internal_state_bytes = 144 : i64, rnn.saved_bytes = 120 : i64, rnn.states = @gru_states
// GRU-LABEL: func.func private @gru_states(
// GRU-NOT:   linalg.matmul
// GRU:       return

// An Elman cell keeps h' itself (tanh's derivative reads it): nothing to
// recompute it from without the product.
// ELMAN: rnn.cell @elman
// ELMAN-NOT: rnn.saved_bytes
// ELMAN-NOT: rnn.states
// ELMAN-NOT: @elman_states
