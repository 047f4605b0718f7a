// The shipped examples parse, verify and round-trip through the generic form.
// RUN: bptt-opt %bptt_src_root/examples/lstm.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=LSTM
// RUN: bptt-opt %bptt_src_root/examples/gru.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=GRU
// RUN: bptt-opt %bptt_src_root/examples/elman.mlir | bptt-opt --mlir-print-op-generic | bptt-opt | FileCheck %s --check-prefix=ELMAN

// LSTM-LABEL: rnn.cell @lstm state(%{{.*}}: tensor<64x512xf32>, %{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x512xf32>)
// LSTM:         linalg.matmul
// LSTM:         math.tanh
// LSTM:         rnn.yield {{.*}} : tensor<64x512xf32>, tensor<64x512xf32>, f32
// LSTM-LABEL: func.func @train_step
// LSTM:         rnn.bptt @lstm({{.*}}) over
// LSTM-SAME:    memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>
// LSTM-LABEL: func.func @forward
// LSTM:         rnn.apply @lstm

// GRU-LABEL: rnn.cell @gru state(%{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x512xf32>)
// GRU:         rnn.yield {{.*}} : tensor<64x512xf32>, f32
// GRU-LABEL: func.func @train_step
// GRU:         rnn.bptt @gru
// GRU-LABEL: func.func @forward
// GRU:         rnn.apply @gru

// ELMAN-LABEL: rnn.cell @elman state(%{{.*}}: tensor<64x512xf32>) input(%{{.*}}: tensor<64x512xf32>)
// ELMAN:         math.tanh
// ELMAN:         rnn.yield {{.*}} : tensor<64x512xf32>, f32
// ELMAN-LABEL: func.func @train_step
// ELMAN:         rnn.bptt @elman
// ELMAN-LABEL: func.func @forward
// ELMAN:         rnn.apply @elman
