// RUN: bptt-opt %s -split-input-file -rnn-differentiate -rnn-remat=input-chunk=4 | FileCheck %s
// RUN: bptt-opt %s -split-input-file -rnn-differentiate -rnn-remat=input-chunk=4 -bptt-lower-to-cpu > /dev/null

// Input projections (docs/remat.md): the part of the Elman step that reads
// only x_t and the parameters, b + x_t·W_x, runs for 4 steps at once as one
// 8 x 4 by 4 x 3 product; the rest of the step adds h·W_h to its row. Every
// step reads its row from the projection buffer (48 bytes a step), which the
// working set counts. Where the budget leaves no room for two rows, no
// buffer: each step runs the one-step kernel (288 bytes at least).

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


// Store-all over 16 steps, with room for a 4-step chunk: its 3 rows beyond
// the first (144 bytes) take at most an eighth of the 2,128 bytes above
// store-all's 1,968.
func.func @train(%h0: tensor<2x3xf64>, %xs: tensor<16x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 4096 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// The input part, for four steps stacked row-wise and for one.
// CHECK-LABEL: func.func private @elman_forward_kernel_input_4(
// CHECK-SAME:      %[[X:.*]]: memref<8x4xf64, {{.*}}>, %[[WX:.*]]: memref<4x3xf64, {{.*}}>, {{.*}}, %[[B:.*]]: memref<3xf64, {{.*}}>, %[[P:.*]]: memref<8x3xf64, {{.*}}>)
// CHECK:         linalg.generic {{.*}} ins(%[[B]] : {{.*}}) outs(%[[P]] : memref<8x3xf64,
// CHECK:         linalg.matmul ins(%[[X]], %[[WX]] : memref<8x4xf64, {{.*}}>, memref<4x3xf64, {{.*}}>) outs(%[[P]] : memref<8x3xf64,
// CHECK-LABEL: func.func private @elman_forward_kernel_input_1(
// CHECK:         linalg.matmul ins(%{{.*}}, %{{.*}} : memref<2x4xf64, {{.*}}>, memref<4x3xf64, {{.*}}>) outs(%{{.*}} : memref<2x3xf64,
// The rest of the step accumulates h·W_h onto its projected row, in place.
// CHECK-LABEL: func.func private @elman_forward_kernel_projected(
// CHECK-SAME:      %arg0: memref<2x3xf64, {{[^%]*}}, %arg1: memref<2x4xf64, {{[^%]*}}, %arg2: memref<4x3xf64, {{[^%]*}}, %arg3: memref<3x3xf64, {{[^%]*}}, %arg4: memref<3xf64, {{[^%]*}}, %arg5: memref<2x3xf64,
// CHECK-NOT:     memref.copy %arg5
// CHECK:         linalg.matmul ins(%arg0, %arg3 : {{.*}}) outs(%arg5 :
// The one-step kernel is gone: every step runs the split kernels, so that
// every schedule computes the same bits.
// CHECK-NOT:   func.func private @elman_forward_kernel(

// A step outside a chunk (row -1) projects its own input into the first row.
// CHECK-LABEL: func.func private @train_bptt_forward_step(
// CHECK-SAME:      %[[ROWARG:arg[0-9]+]]: index, %[[BUF:arg[0-9]+]]: memref<8x3xf64>
// CHECK:         %[[OWN:.*]] = arith.cmpi slt, %[[ROWARG]], %c0
// CHECK:         scf.if %[[OWN]] {
// CHECK:           func.call @elman_forward_kernel_input_1(
// CHECK:         }
// CHECK:         %[[AT:.*]] = arith.select %[[OWN]], %{{.*}}, %[[ROWARG]]
// CHECK:         %[[FIRST:.*]] = arith.muli %[[AT]], %c2
// CHECK:         memref.subview %[[BUF]][%[[FIRST]], 0] [2, 3] [1, 1]
// CHECK:         call @elman_forward_kernel_projected(

// Four steps' inputs are one contiguous slice of xs, two rows each.
// CHECK-LABEL: func.func private @train_bptt_input_projection(
// CHECK:         %[[CHUNK:.*]] = memref.subview %arg0[%{{.*}}, 0, 0] [4, 2, 4] [1, 1, 1] : memref<16x2x4xf64>
// CHECK:         %[[STACKED:.*]] = memref.collapse_shape %[[CHUNK]] {{\[}}[0, 1], [2]] {{.*}} into memref<8x4xf64,
// CHECK:         call @elman_forward_kernel_input_4(

// The kept run of steps 1..15: a chunk at steps 1, 5, 9 and, ending with
// the run, 12 (min(j - j mod 4, 15 - 4) = 11 steps past its start); step 16
// goes into the working set on its own.
// CHECK-LABEL: func.func @train_bptt(
// CHECK:         %[[PROJ:.*]] = memref.alloc() : memref<8x3xf64>
// CHECK:         call @train_bptt_input_projection(%{{.*}}, %c1, %[[PROJ]])
// CHECK:         call @train_bptt_forward_step({{.*}}, %c1, %c0, %[[PROJ]],
// CHECK:         scf.for %[[J:.*]] = %c1 to %c15 step %c1 {
// CHECK:           %[[OFF:.*]] = arith.remui %[[J]], %c4
// CHECK:           %[[BASE:.*]] = arith.subi %[[J]], %[[OFF]]
// CHECK:           %[[START:.*]] = arith.minsi %[[BASE]], %c11
// CHECK:           %[[STARTS:.*]] = arith.cmpi eq, %[[OFF]], %c0
// CHECK:           scf.if %[[STARTS]] {
// CHECK:             %[[STEP:.*]] = arith.addi %[[START]], %c1
// CHECK:             func.call @train_bptt_input_projection(%{{.*}}, %[[STEP]], %[[PROJ]])
// CHECK:           }
// CHECK:           %[[ROW:.*]] = arith.subi %[[J]], %[[START]]
// CHECK:           func.call @train_bptt_forward_step({{.*}}, %[[ROW]], %[[PROJ]],
// CHECK:         }
// CHECK:         call @train_bptt_forward_step({{.*}}, %c16, %c-1, %[[PROJ]],

// -----

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


// A tight budget halves the chunk: 1,200 bytes leave 912 above the working
// set, an eighth of it 114 bytes: room for a buffer of two rows, not four.
func.func @tight(%h0: tensor<2x3xf64>, %xs: tensor<16x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 1200 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// CHECK-LABEL: func.func private @elman_forward_kernel_input_2(
// CHECK-SAME:      memref<4x4xf64
// CHECK-LABEL: func.func @tight_bptt(
// CHECK:         memref.alloc() : memref<4x3xf64>

// -----

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


// The smallest feasible budget leaves no room for two rows: no projection
// buffer, each step runs the one-step kernel (which computes the same values
// in the same order as a projected step).
func.func @smallest(%h0: tensor<2x3xf64>, %xs: tensor<16x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>, %b: tensor<3xf64>) -> f64 {
  %r:6 = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 336 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>, tensor<3xf64>)
  return %r#0 : f64
}

// CHECK-LABEL: // -----
// CHECK-NOT:   _input_
// CHECK-NOT:   _projected
// CHECK:       func.func private @elman_forward_kernel(
// CHECK-NOT:   _input_
// CHECK-NOT:   _projected
// CHECK-LABEL: func.func @smallest_bptt(
// CHECK-NOT:   _input_
// CHECK-NOT:   _projected
// CHECK:       // -----

// -----

// The input part reduces over the rows of x_t (a batch mean): stacking the
// rows of several steps would mix them, so it is not batched.
#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>


rnn.cell @mixing state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%wx: tensor<4x3xf64>, %wh: tensor<3x3xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %z = linalg.fill ins(%zero : f64) outs(%e : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a = linalg.matmul ins(%x, %wx : tensor<2x4xf64>, tensor<4x3xf64>)
      outs(%z : tensor<2x3xf64>) -> tensor<2x3xf64>
  %e3 = tensor.empty() : tensor<3xf64>
  %z3 = linalg.fill ins(%zero : f64) outs(%e3 : tensor<3xf64>) -> tensor<3xf64>
  %sum = linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d1)>],
                        iterator_types = ["reduction", "parallel"]}
      ins(%a : tensor<2x3xf64>) outs(%z3 : tensor<3xf64>) {
  ^bb0(%in: f64, %acc: f64):
    %s = arith.addf %in, %acc : f64
    linalg.yield %s : f64
  } -> tensor<3xf64>
  %mean = linalg.broadcast ins(%sum : tensor<3xf64>) outs(%e : tensor<2x3xf64>) dimensions = [0]
  %a2 = linalg.matmul ins(%h, %wh : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%mean : tensor<2x3xf64>) -> tensor<2x3xf64>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a2 : tensor<2x3xf64>) outs(%e : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %ze = tensor.empty() : tensor<f64>
  %zf = linalg.fill ins(%zero : f64) outs(%ze : tensor<f64>) -> tensor<f64>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x3xf64>) outs(%zf : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %n = arith.addf %acc, %sq : f64
    linalg.yield %n : f64
  } -> tensor<f64>
  %loss = tensor.extract %s[] : tensor<f64>
  rnn.yield %hn, %loss : tensor<2x3xf64>, f64
}

func.func @mixed(%h0: tensor<2x3xf64>, %xs: tensor<16x2x4xf64>, %wx: tensor<4x3xf64>,
                 %wh: tensor<3x3xf64>) -> f64 {
  %r:5 = rnn.bptt @mixing(%h0) over %xs params(%wx, %wh)
      {memory_budget = 4096 : i64, strategy = #rnn.strategy<all>}
      : (tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>)
      -> (f64, tensor<2x3xf64>, tensor<16x2x4xf64>, tensor<4x3xf64>, tensor<3x3xf64>)
  return %r#0 : f64
}
// CHECK-NOT:   _input_
// CHECK:       func.func private @mixing_forward_kernel(
// CHECK-NOT:   _input_
