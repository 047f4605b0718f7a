// The shipped examples parse, verify and round-trip through the generic form.
// RUN: bptt-opt %bptt_src_root/examples/lstm.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=LSTM
// RUN: bptt-opt %bptt_src_root/examples/gru.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=GRU
// RUN: bptt-opt %bptt_src_root/examples/elman.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=ELMAN

// LSTM-LABEL: rnn.cell @lstm state(%{{.*}}: tensor<64x512xf32>, %{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x256xf32>)
// LSTM:         linalg.matmul
// LSTM:         math.tanh
// LSTM:         rnn.yield {{.*}} : tensor<64x512xf32>, tensor<64x512xf32>, f32
// LSTM-LABEL: func.func @train_step
// LSTM:         rnn.bptt @lstm({{.*}}) over
// LSTM-SAME:    memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>
// LSTM-LABEL: func.func @forward
// LSTM:         rnn.apply @lstm

// GRU-LABEL: rnn.cell @gru state(%{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x256xf32>)
// GRU:         rnn.yield {{.*}} : tensor<64x512xf32>, f32
// GRU-LABEL: func.func @train_step
// GRU:         rnn.bptt @gru
// GRU-LABEL: func.func @forward
// GRU:         rnn.apply @gru

// ELMAN-LABEL: rnn.cell @elman state(%{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x256xf32>)
// ELMAN:         math.tanh
// ELMAN:         rnn.yield {{.*}} : tensor<64x512xf32>, f32
// ELMAN-LABEL: func.func @train_step
// ELMAN:         rnn.bptt @elman
// ELMAN-LABEL: func.func @forward
// ELMAN:         rnn.apply @elman

// rnn-differentiate derives every example's backward step; the internal
// state it records is what the planner then budgets (bytes, f32). The output
// layer and the softmax read only h', so the backward step recomputes them
// and nothing of them is saved:
//   LSTM  h', c' + gate pre-activations + h, c = (2 + 4 + 2) * 64*512*4 = 1048576
//   GRU   h' + r, z pre-activations, gx_n, gh_n, h = (1 + 5) * 64*512*4 = 786432
//   Elman h' + h = 2 * 64*512*4 = 262144
// RUN: bptt-opt %bptt_src_root/examples/lstm.mlir -rnn-differentiate -rnn-plan | FileCheck %s --check-prefix=DIFF-LSTM
// RUN: bptt-opt %bptt_src_root/examples/gru.mlir -rnn-differentiate -rnn-plan | FileCheck %s --check-prefix=DIFF-GRU
// RUN: bptt-opt %bptt_src_root/examples/elman.mlir -rnn-differentiate -rnn-plan | FileCheck %s --check-prefix=DIFF-ELMAN
// DIFF-LSTM: rnn.cell @lstm{{.*}}rnn.internal_state_bytes = 1048576
// DIFF-LSTM: func.func private @lstm_forward
// DIFF-LSTM: func.func private @lstm_backward
// DIFF-LSTM: rnn.bptt @lstm{{.*}}internal_state_bytes = 1048576 : i64
// DIFF-GRU: rnn.cell @gru{{.*}}rnn.internal_state_bytes = 786432
// DIFF-ELMAN: rnn.cell @elman{{.*}}rnn.internal_state_bytes = 262144
