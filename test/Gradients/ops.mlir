// Every op rnn-differentiate supports, each in a small f64 cell whose
// gradients bptt-gradcheck compares with fourth-order central differences
// (relative error at most 1e-6; it is about 1e-12 in practice).
// RUN: bptt-gradcheck %s | FileCheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#all = affine_map<(d0, d1) -> ()>

// CHECK-DAG: @matmul: PASS
// linalg.matmul plain, with a transposed right operand and with a transposed
// left operand, chained through the accumulator.
rnn.cell @matmul state(%h: tensor<2x3xf64>) input(%x: tensor<2x4xf64>)
    params(%w: tensor<4x3xf64>, %u: tensor<3x3xf64>, %v: tensor<2x2xf64>)
    -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %z = linalg.fill ins(%zero : f64) outs(%e : tensor<2x3xf64>) -> tensor<2x3xf64>
  %a = linalg.matmul ins(%x, %w : tensor<2x4xf64>, tensor<4x3xf64>)
      outs(%z : tensor<2x3xf64>) -> tensor<2x3xf64>
  %b = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>,
                                      affine_map<(d0, d1, d2) -> (d1, d2)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
      ins(%h, %u : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%a : tensor<2x3xf64>) -> tensor<2x3xf64>
  %c = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>,
                                      affine_map<(d0, d1, d2) -> (d2, d1)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
      ins(%v, %b : tensor<2x2xf64>, tensor<2x3xf64>)
      outs(%b : tensor<2x3xf64>) -> tensor<2x3xf64>
  %i1 = arith.constant 1 : index
  %i2 = arith.constant 2 : index
  %s = tensor.extract %c[%i1, %i2] : tensor<2x3xf64>
  rnn.yield %c, %s : tensor<2x3xf64>, f64
}

// CHECK-DAG: @batch_matmul: PASS
rnn.cell @batch_matmul state(%h: tensor<2x2x3xf64>) input(%x: tensor<2x3x3xf64>)
    params(%w: tensor<2x3x3xf64>) -> (tensor<2x2x3xf64>, f64) {
  %a = linalg.batch_matmul ins(%h, %w : tensor<2x2x3xf64>, tensor<2x3x3xf64>)
      outs(%h : tensor<2x2x3xf64>) -> tensor<2x2x3xf64>
  %b = linalg.batch_matmul
      indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>,
                       affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>,
                       affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]
      ins(%a, %x : tensor<2x2x3xf64>, tensor<2x3x3xf64>)
      outs(%a : tensor<2x2x3xf64>) -> tensor<2x2x3xf64>
  %i0 = arith.constant 0 : index
  %s = tensor.extract %b[%i0, %i0, %i0] : tensor<2x2x3xf64>
  rnn.yield %b, %s : tensor<2x2x3xf64>, f64
}

// CHECK-DAG: @arith: PASS
// add, sub, mul, div, neg, and an operand read twice.
rnn.cell @arith state(%h: tensor<2x3xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<2x3xf64>) -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h, %x, %w, %h : tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>)
      outs(%e : tensor<2x3xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64, %a2: f64, %o: f64):
    %two = arith.constant 2.0 : f64
    %s = arith.addf %a, %b : f64
    %d = arith.subf %s, %c : f64
    %m = arith.mulf %d, %a2 : f64
    %cc = arith.mulf %c, %c : f64
    %den = arith.addf %cc, %two : f64
    %q = arith.divf %m, %den : f64
    %n = arith.negf %q : f64
    linalg.yield %n : f64
  } -> tensor<2x3xf64>
  %i0 = arith.constant 0 : index
  %s = tensor.extract %r[%i0, %i0] : tensor<2x3xf64>
  rnn.yield %r, %s : tensor<2x3xf64>, f64
}

// CHECK-DAG: @select: PASS
// maximumf, minimumf, maxnumf, minnumf, cmpf + select, and an
// integer-to-float cast of linalg.index (no derivative).
rnn.cell @select state(%h: tensor<2x3xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<2x3xf64>) -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h, %x, %w : tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>)
      outs(%e : tensor<2x3xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64, %o: f64):
    %mx = arith.maximumf %a, %b : f64
    %mn = arith.minimumf %b, %c : f64
    %mx2 = arith.maxnumf %mx, %c : f64
    %mn2 = arith.minnumf %mn, %a : f64
    %gt = arith.cmpf ogt, %a, %b : f64
    %sel = arith.select %gt, %mx2, %mn2 : f64
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i64
    %jf = arith.sitofp %ji : i64 to f64
    %one = arith.constant 1.0 : f64
    %scale = arith.addf %jf, %one : f64
    %r = arith.mulf %sel, %scale : f64
    %r2 = arith.addf %r, %mx : f64
    linalg.yield %r2 : f64
  } -> tensor<2x3xf64>
  %i0 = arith.constant 0 : index
  %s = tensor.extract %r[%i0, %i0] : tensor<2x3xf64>
  rnn.yield %r, %s : tensor<2x3xf64>, f64
}

// CHECK-DAG: @math: PASS
// exp, exp2, expm1, log, log2, log1p, tanh, sqrt, rsqrt, powf, fpowi, absf,
// sin, cos, erf, and a round trip through f32 (extf/truncf are exact here).
rnn.cell @math state(%h: tensor<2x3xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<2x3xf64>) -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h, %x, %w : tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>)
      outs(%e : tensor<2x3xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64, %o: f64):
    %one = arith.constant 1.0 : f64
    %aa = arith.mulf %a, %a : f64
    %pos = arith.addf %aa, %one : f64
    %e1 = math.exp %b : f64
    %e2 = math.exp2 %c : f64
    %e3 = math.expm1 %a : f64
    %l1 = math.log %pos : f64
    %l2 = math.log2 %pos : f64
    %l3 = math.log1p %aa : f64
    %t = math.tanh %b : f64
    %sq = math.sqrt %pos : f64
    %rs = math.rsqrt %pos : f64
    %pw = math.powf %pos, %c : f64
    %three = arith.constant 3 : i32
    %pi = math.fpowi %b, %three : f64, i32
    %ab = math.absf %c : f64
    %sn = math.sin %a : f64
    %cs = math.cos %b : f64
    %er = math.erf %c : f64
    %s1 = arith.addf %e1, %e2 : f64
    %s2 = arith.addf %s1, %e3 : f64
    %s3 = arith.addf %s2, %l1 : f64
    %s4 = arith.addf %s3, %l2 : f64
    %s5 = arith.addf %s4, %l3 : f64
    %s6 = arith.addf %s5, %t : f64
    %s7 = arith.addf %s6, %sq : f64
    %s8 = arith.addf %s7, %rs : f64
    %s9 = arith.addf %s8, %pw : f64
    %s10 = arith.addf %s9, %pi : f64
    %s11 = arith.addf %s10, %ab : f64
    %s12 = arith.addf %s11, %sn : f64
    %s13 = arith.mulf %s12, %cs : f64
    %s14 = arith.addf %s13, %er : f64
    linalg.yield %s14 : f64
  } -> tensor<2x3xf64>
  %i0 = arith.constant 0 : index
  %s = tensor.extract %r[%i0, %i0] : tensor<2x3xf64>
  rnn.yield %r, %s : tensor<2x3xf64>, f64
}

// CHECK-DAG: @broadcast_reads: PASS
// A generic that reads a row vector, a column vector and a transposed
// operand: their adjoints are reductions and a transposed write.
rnn.cell @broadcast_reads state(%h: tensor<2x3xf64>) input(%x: tensor<3x2xf64>)
    params(%b: tensor<3xf64>, %s: tensor<2xf64>) -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #tr, #col, #row, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%h, %x, %b, %s : tensor<2x3xf64>, tensor<3x2xf64>, tensor<3xf64>, tensor<2xf64>)
      outs(%e : tensor<2x3xf64>) {
  ^bb0(%a: f64, %xt: f64, %bb: f64, %ss: f64, %o: f64):
    %m = arith.mulf %a, %xt : f64
    %p = arith.addf %m, %bb : f64
    %q = arith.mulf %p, %ss : f64
    %t = math.tanh %q : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %i0 = arith.constant 0 : index
  %v = tensor.extract %r[%i0, %i0] : tensor<2x3xf64>
  rnn.yield %r, %v : tensor<2x3xf64>, f64
}

// CHECK-DAG: @reductions: PASS
// Sum, max and min reductions (row-wise and to a scalar), a reduction that
// starts from a differentiable value, and a parallel generic that reads its
// output operand.
rnn.cell @reductions state(%h: tensor<2x3xf64>) input(%x: tensor<2xf64>)
    params(%w: tensor<2x3xf64>) -> (tensor<2x3xf64>, f64) {
  %e = tensor.empty() : tensor<2x3xf64>
  %rows = tensor.empty() : tensor<2xf64>
  %ninf = arith.constant 0xFFF0000000000000 : f64
  %pinf = arith.constant 0x7FF0000000000000 : f64
  %mx0 = linalg.fill ins(%ninf : f64) outs(%rows : tensor<2xf64>) -> tensor<2xf64>
  %mn0 = linalg.fill ins(%pinf : f64) outs(%rows : tensor<2xf64>) -> tensor<2xf64>
  %mx = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%h : tensor<2x3xf64>) outs(%mx0 : tensor<2xf64>) {
  ^bb0(%v: f64, %acc: f64):
    %m = arith.maximumf %acc, %v : f64
    linalg.yield %m : f64
  } -> tensor<2xf64>
  %mn = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%w : tensor<2x3xf64>) outs(%mn0 : tensor<2xf64>) {
  ^bb0(%v: f64, %acc: f64):
    %m = arith.minnumf %v, %acc : f64
    linalg.yield %m : f64
  } -> tensor<2xf64>
  // Row sums of h * w, accumulated onto x.
  %sum = linalg.generic {indexing_maps = [#id, #id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%h, %w : tensor<2x3xf64>, tensor<2x3xf64>) outs(%x : tensor<2xf64>) {
  ^bb0(%a: f64, %b: f64, %acc: f64):
    %p = arith.mulf %a, %b : f64
    %s = arith.addf %acc, %p : f64
    linalg.yield %s : f64
  } -> tensor<2xf64>
  // h' = h * max + min + sum, reading the initial value of its output (h).
  %r = linalg.generic {indexing_maps = [#row, #row, #row, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%mx, %mn, %sum : tensor<2xf64>, tensor<2xf64>, tensor<2xf64>)
      outs(%h : tensor<2x3xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64, %o: f64):
    %m = arith.mulf %o, %a : f64
    %p = arith.addf %m, %b : f64
    %q = arith.addf %p, %c : f64
    linalg.yield %q : f64
  } -> tensor<2x3xf64>
  %zero = arith.constant 0.0 : f64
  %t0 = tensor.empty() : tensor<f64>
  %tz = linalg.fill ins(%zero : f64) outs(%t0 : tensor<f64>) -> tensor<f64>
  %total = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%r : tensor<2x3xf64>) outs(%tz : tensor<f64>) {
  ^bb0(%v: f64, %acc: f64):
    %sq = arith.mulf %v, %v : f64
    %s = arith.addf %acc, %sq : f64
    linalg.yield %s : f64
  } -> tensor<f64>
  %l = tensor.extract %total[] : tensor<f64>
  rnn.yield %r, %l : tensor<2x3xf64>, f64
}

// CHECK-DAG: @structure: PASS
// linalg.fill of a differentiable scalar, linalg.broadcast,
// linalg.transpose, tensor.insert_slice, tensor.concat,
// tensor.collapse_shape and tensor.expand_shape.
rnn.cell @structure state(%h: tensor<2x3xf64>) input(%x: tensor<3xf64>)
    params(%w: tensor<1x3xf64>) -> (tensor<2x3xf64>, f64) {
  %i0 = arith.constant 0 : index
  %i1 = arith.constant 1 : index
  %s = tensor.extract %h[%i1, %i0] : tensor<2x3xf64>
  %e23 = tensor.empty() : tensor<2x3xf64>
  %filled = linalg.fill ins(%s : f64) outs(%e23 : tensor<2x3xf64>) -> tensor<2x3xf64>
  %bx = linalg.broadcast ins(%x : tensor<3xf64>) outs(%e23 : tensor<2x3xf64>) dimensions = [0]
  %e32 = tensor.empty() : tensor<3x2xf64>
  %ht = linalg.transpose ins(%h : tensor<2x3xf64>) outs(%e32 : tensor<3x2xf64>) permutation = [1, 0]
  %htt = linalg.transpose ins(%ht : tensor<3x2xf64>) outs(%e23 : tensor<2x3xf64>) permutation = [1, 0]
  %ins = tensor.insert_slice %w into %filled[1, 0] [1, 3] [1, 1] : tensor<1x3xf64> into tensor<2x3xf64>
  %top = tensor.extract_slice %htt[0, 0] [1, 3] [1, 1] : tensor<2x3xf64> to tensor<1x3xf64>
  %cat = tensor.concat dim(0) %top, %w : (tensor<1x3xf64>, tensor<1x3xf64>) -> tensor<2x3xf64>
  %flat = tensor.collapse_shape %cat [[0, 1]] : tensor<2x3xf64> into tensor<6xf64>
  %back = tensor.expand_shape %flat [[0, 1]] output_shape [2, 3] : tensor<6xf64> into tensor<2x3xf64>
  %r = linalg.generic {indexing_maps = [#id, #id, #id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%ins, %bx, %back : tensor<2x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>)
      outs(%e23 : tensor<2x3xf64>) {
  ^bb0(%a: f64, %b: f64, %c: f64, %o: f64):
    %m = arith.mulf %a, %b : f64
    %p = arith.mulf %m, %c : f64
    %t = math.tanh %p : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  %v = tensor.extract %r[%i0, %i1] : tensor<2x3xf64>
  rnn.yield %r, %v : tensor<2x3xf64>, f64
}

// CHECK-DAG: @scalar_loss: PASS
// Scalar arith and math ops on the loss, outside any generic.
rnn.cell @scalar_loss state(%h: tensor<2xf64>) input(%x: tensor<2xf64>)
    params(%w: tensor<2xf64>) -> (tensor<2xf64>, f64) {
  %i0 = arith.constant 0 : index
  %i1 = arith.constant 1 : index
  %a = tensor.extract %h[%i0] : tensor<2xf64>
  %b = tensor.extract %x[%i1] : tensor<2xf64>
  %c = tensor.extract %w[%i0] : tensor<2xf64>
  %p = arith.mulf %a, %b : f64
  %q = arith.divf %p, %c : f64
  %t = math.tanh %q : f64
  %ex = math.exp %t : f64
  %mx = arith.maximumf %ex, %a : f64
  %l = arith.subf %mx, %b : f64
  rnn.yield %w, %l : tensor<2xf64>, f64
}

// CHECK-DAG: @stop_gradient: PASS
// rnn.stop_gradient on a shift that cancels: loss = Σ_i (log Σ_j exp(a_ij -
// m_i) + m_i) with m = the row maximum, stopped. The loss does not depend on
// m, so the gradient without the path through m is exact (finite
// differences agree); so is a stopped scalar subtracted and added back.
rnn.cell @stop_gradient state(%h: tensor<2x3xf64>) input(%x: tensor<2x3xf64>)
    params(%w: tensor<3x3xf64>) -> (tensor<2x3xf64>, f64) {
  %a = linalg.matmul ins(%h, %w : tensor<2x3xf64>, tensor<3x3xf64>)
      outs(%x : tensor<2x3xf64>) -> tensor<2x3xf64>
  %rows = tensor.empty() : tensor<2xf64>
  %ninf = arith.constant 0xFFF0000000000000 : f64
  %zero = arith.constant 0.0 : f64
  %mi = linalg.fill ins(%ninf : f64) outs(%rows : tensor<2xf64>) -> tensor<2xf64>
  %m = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%a : tensor<2x3xf64>) outs(%mi : tensor<2xf64>) {
  ^bb0(%v: f64, %acc: f64):
    %n = arith.maximumf %acc, %v : f64
    linalg.yield %n : f64
  } -> tensor<2xf64>
  %ms = rnn.stop_gradient %m : tensor<2xf64>
  %si = linalg.fill ins(%zero : f64) outs(%rows : tensor<2xf64>) -> tensor<2xf64>
  %se = linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%a, %ms : tensor<2x3xf64>, tensor<2xf64>) outs(%si : tensor<2xf64>) {
  ^bb0(%v: f64, %mm: f64, %acc: f64):
    %d = arith.subf %v, %mm : f64
    %ex = math.exp %d : f64
    %n = arith.addf %acc, %ex : f64
    linalg.yield %n : f64
  } -> tensor<2xf64>
  %i0 = arith.constant 0 : index
  %i1 = arith.constant 1 : index
  %s0 = tensor.extract %se[%i0] : tensor<2xf64>
  %s1 = tensor.extract %se[%i1] : tensor<2xf64>
  %m0 = tensor.extract %ms[%i0] : tensor<2xf64>
  %m1 = tensor.extract %ms[%i1] : tensor<2xf64>
  %l0 = math.log %s0 : f64
  %l1 = math.log %s1 : f64
  %k0 = arith.addf %l0, %m0 : f64
  %k1 = arith.addf %l1, %m1 : f64
  %sum = arith.addf %k0, %k1 : f64
  %c = rnn.stop_gradient %k0 : f64
  %shifted = arith.subf %sum, %c : f64
  %loss = arith.addf %shifted, %c : f64
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<2x3xf64>) outs(%x : tensor<2x3xf64>) {
  ^bb0(%v: f64, %o: f64):
    %t = math.tanh %v : f64
    linalg.yield %t : f64
  } -> tensor<2x3xf64>
  rnn.yield %hn, %loss : tensor<2x3xf64>, f64
}

// CHECK-NOT: FAIL
