// RUN: bptt-opt %s -rnn-differentiate=cells=readout | FileCheck %s

// An Elman cell. Its backward step needs h_{t-1} (for dW_hh) and h_t (tanh'
// is read from tanh's output, the new state): the internal state is those two
// tensors, 2 x 48 bytes. The bias broadcast is recomputed, not saved.

#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

// CHECK-LABEL: rnn.cell @elman
// CHECK-SAME:    rnn.backward = @elman_backward
// CHECK-SAME:    rnn.forward = @elman_forward
// CHECK-SAME:    rnn.internal_state_bytes = 96 : i64
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

// The forward function is the cell, also returning the saved h_{t-1}.
// CHECK-LABEL: func.func private @elman_forward
// CHECK-SAME:    (%[[H:.*]]: tensor<2x3xf64>, %{{.*}}: tensor<2x4xf64>, %{{.*}}: tensor<4x3xf64>, %{{.*}}: tensor<3x3xf64>, %{{.*}}: tensor<3xf64>)
// CHECK-SAME:    -> (tensor<2x3xf64>, f64, tensor<2x3xf64>)
// CHECK:         %[[HN:.*]] = linalg.generic
// CHECK:           math.tanh
// CHECK:         return %[[HN]], %{{.*}}, %[[H]] : tensor<2x3xf64>, f64, tensor<2x3xf64>

// The backward function: (x, params, new state, saved h_{t-1}, dh', dloss,
// running parameter gradients) -> (dh, dx, updated parameter gradients, the
// step's loss). The loss part (the sum of squares) reads only the new state:
// the backward function recomputes it, loss included.
// CHECK-LABEL: func.func private @elman_backward
// CHECK-SAME:    (%[[X:[^:]*]]: tensor<2x4xf64>, %[[WX:[^:]*]]: tensor<4x3xf64>, %[[WH:[^:]*]]: tensor<3x3xf64>, %{{[^:]*}}: tensor<3xf64>,
// CHECK-SAME:     %[[HNEW:[^:]*]]: tensor<2x3xf64>, %[[HPREV:[^:]*]]: tensor<2x3xf64>, %[[DHN:[^:]*]]: tensor<2x3xf64>, %[[DL:[^:]*]]: f64,
// CHECK-SAME:     %[[DWX:[^:]*]]: tensor<4x3xf64>, %[[DWH:[^:]*]]: tensor<3x3xf64>, %[[DB:[^:]*]]: tensor<3xf64>)
// CHECK-SAME:    -> (tensor<2x3xf64>, tensor<2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>, f64)
// CHECK:         %[[SUMSQ:.*]] = linalg.generic {{.*}} ins(%[[HNEW]] : tensor<2x3xf64>)
// CHECK:         %[[L:.*]] = tensor.extract %[[SUMSQ]][]
// CHECK:         %[[LOSS:.*]] = arith.mulf %[[L]], %{{.*}} : f64
// d loss / d s = 0.5 dl; the reduction's adjoint adds 2 h' d s into dh'.
// CHECK:         %[[DS:.*]] = arith.mulf %[[DL]], %{{.*}} : f64
// CHECK:         %[[DSUM:.*]] = tensor.insert %[[DS]]
// CHECK:         %[[DH1:.*]] = linalg.generic {{.*}} ins(%[[DSUM]], %[[HNEW]] : tensor<f64>, tensor<2x3xf64>) outs(%[[DHN]] : tensor<2x3xf64>)
// tanh' = 1 - h'^2, from the new state: no saved pre-activation.
// CHECK:         %[[DA:.*]] = linalg.generic {{.*}} ins(%[[DH1]], %[[HNEW]] : tensor<2x3xf64>, tensor<2x3xf64>)
// CHECK:           arith.mulf
// CHECK:           arith.subf
// The products: dh = dA W_hh^T, dW_hh += h^T dA (into the accumulator).
// CHECK:         %[[DHPREV:.*]] = linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%[[DA]], %[[WH]] : {{.*}}) outs(%{{.*}} : tensor<2x3xf64>)
// CHECK:         %[[DWH2:.*]] = linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%[[HPREV]], %[[DA]] : {{.*}}) outs(%[[DWH]] : tensor<3x3xf64>)
// CHECK:         %[[DX:.*]] = linalg.matmul {{.*}} ins(%[[DA]], %[[WX]] : {{.*}})
// CHECK:         %[[DWX2:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[DA]] : {{.*}}) outs(%[[DWX]] : tensor<4x3xf64>)
// The bias gradient sums dA over the batch into its accumulator.
// CHECK:         %[[DB2:.*]] = linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]{{.*}} ins(%[[DA]] : tensor<2x3xf64>) outs(%[[DB]] : tensor<3xf64>)
// CHECK:         return %[[DHPREV]], %[[DX]], %[[DWX2]], %[[DWH2]], %[[DB2]], %[[LOSS]]


// Cells are differentiated when an rnn.bptt needs them (or when the `cells`
// option names them); a second run leaves them alone.
// RUN: bptt-opt %s -rnn-differentiate -rnn-differentiate | FileCheck %s --check-prefix=TWICE
// TWICE-COUNT-1: func.func private @elman_backward
// TWICE-NOT: func.func private @elman_backward
func.func @train(%h0: tensor<2x3xf64>, %xs: tensor<5x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b) {memory_budget = 4096 : i64}
      : (tensor<2x3xf64>, tensor<5x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<5x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// An output layer (logits = h'·W_out, loss = half their sum of squares)
// reads only the new state: it is the loss part. Nothing of it is saved
// (the internal state is h' and h_{t-1}, 2 x 48 bytes, as without it); the
// backward function recomputes the product and returns the step's loss.
// CHECK-LABEL: rnn.cell @readout
// CHECK-SAME:    rnn.internal_state_bytes = 96 : i64
rnn.cell @readout state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%wx: tensor<4x3xf64>, %wh: tensor<3x3xf64>, %wo: tensor<3x5xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %z = linalg.fill ins(%zero : f64) outs(%e : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a = linalg.matmul ins(%x, %wx : tensor<2x4xf64>, tensor<4x3xf64>)
      outs(%z : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a2 = linalg.matmul ins(%h, %wh : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%a : tensor<2x3xf64>) -> tensor<2x3xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a2 : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %le = tensor.empty() : tensor<2x5xf64>
  %lz = linalg.fill ins(%zero : f64) outs(%le : tensor<2x5xf64>) -> tensor<2x5xf64>
  %logits = linalg.matmul ins(%hn, %wo : tensor<2x3xf64>, tensor<3x5xf64>)
      outs(%lz : tensor<2x5xf64>) -> tensor<2x5xf64>
  %z0 = tensor.empty() : tensor<f64>
  %zf = linalg.fill ins(%zero : f64) outs(%z0 : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%logits : tensor<2x5xf64>) outs(%zf : tensor<f64>) {
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

// CHECK-LABEL: func.func private @readout_forward
// CHECK-SAME:    -> (tensor<2x3xf64>, f64, tensor<2x3xf64>)
// CHECK-LABEL: func.func private @readout_backward
// CHECK-SAME:    %[[WO:[^:]*]]: tensor<3x5xf64>, %[[HNEW:[^:]*]]: tensor<2x3xf64>, %{{[^:]*}}: tensor<2x3xf64>, %{{[^:]*}}: tensor<2x3xf64>, %{{[^:]*}}: f64,
// CHECK-SAME:    -> (tensor<2x3xf64>, tensor<2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3x5xf64>, f64)
// CHECK:         %[[LOGITS:.*]] = linalg.matmul ins(%[[HNEW]], %[[WO]] : tensor<2x3xf64>, tensor<3x5xf64>)
// CHECK:         %[[SUMSQ:.*]] = linalg.generic {{.*}} ins(%[[LOGITS]] : tensor<2x5xf64>)
// CHECK:         %[[L:.*]] = tensor.extract %[[SUMSQ]][]
// CHECK:         %[[LOSS:.*]] = arith.mulf %[[L]], %{{.*}} : f64
// CHECK:         return {{.*}}, %[[LOSS]] : {{.*}}, f64
