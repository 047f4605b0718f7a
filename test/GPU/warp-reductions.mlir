// RUN: bptt-opt %s -bptt-gpu-library-calls -split-input-file | FileCheck %s

// Reductions become kernels in which a group of threads of one warp shares
// each output (WarpReductions.cpp).

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// A row sum along the fastest dimension (a softmax denominator): 32 threads
// per row, 4 elements each, eight rows per block of 256 threads. A thread's
// four elements are straight-line code, not a loop, so that their loads are
// in flight together; the partial sums meet in five xor shuffles, and the
// first thread of each row adds the total to the output. Threads past the
// last row read row 0 (the select) and write nothing.
// CHECK-LABEL: func.func @row_sum(
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[C256:.*]] = arith.constant 256 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C8]], {{.*}}) threads({{.*}}) in ({{.*}} = %[[C256]],
// CHECK:           %[[ROW:.*]] = arith.select %{{.*}}, %{{.*}}, %c0 : index
// CHECK-NOT:       scf.for
// CHECK:           memref.load %arg0
// CHECK:           math.exp
// CHECK:           arith.addf %cst
// CHECK-COUNT-3:   memref.load %arg0
// CHECK-NOT:       scf.for
// CHECK-COUNT-5:   gpu.shuffle  xor
// CHECK:           scf.if
// CHECK:             memref.load %arg1[
// CHECK:             memref.store
// CHECK-NOT:     linalg.generic
func.func @row_sum(%x: memref<64x128xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %e = math.exp %in : f32
    %s = arith.addf %acc, %e : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

// A column sum (a bias gradient over the batch): 8 threads per column, 8
// rows each (eight loads in a row, no loop), 32 columns per block, three
// shuffles.
// CHECK-LABEL: func.func @column_sum(
// CHECK-DAG:     %[[C64:.*]] = arith.constant 64 : index
// CHECK-DAG:     %[[C256:.*]] = arith.constant 256 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C64]], {{.*}}) threads({{.*}}) in ({{.*}} = %[[C256]],
// CHECK-NOT:       scf.for
// CHECK-COUNT-8:   memref.load %arg0
// CHECK-NOT:       scf.for
// CHECK-NOT:       memref.load %arg0
// CHECK-COUNT-3:   gpu.shuffle  xor
// CHECK-NOT:       gpu.shuffle
func.func @column_sum(%x: memref<64x2048xf32>, %out: memref<2048xf32>) {
  linalg.generic {indexing_maps = [#rows, #col], iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<64x2048xf32>) outs(%out : memref<2048xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#vec = affine_map<(d0) -> (d0)>
#all = affine_map<(d0) -> ()>

// A maximum to a scalar starts from the maximum's neutral element, -inf.
// 100 elements over 32 threads: the first three of a thread's four are
// always there; the fourth exists for threads 0-3 only, so it is read at
// a valid index (the thread's first element) and kept only where it exists.
// CHECK-LABEL: func.func @max_to_scalar(
// CHECK:         gpu.launch
// CHECK:           %[[NEG_INF:.*]] = arith.constant 0xFF800000 : f32
// CHECK-NOT:       scf.for
// CHECK:           %[[M0:.*]] = arith.maximumf %[[NEG_INF]], %{{.*}} : f32
// CHECK:           %[[M1:.*]] = arith.maximumf %[[M0]], %{{.*}} : f32
// CHECK:           %[[M2:.*]] = arith.maximumf %[[M1]], %{{.*}} : f32
// CHECK:           %[[PAST:.*]] = arith.cmpi ult, %{{.*}}, %c100
// CHECK:           %[[AT:.*]] = arith.select %[[PAST]], %{{.*}}, %[[LANE:.*]] : index
// CHECK:           %[[IDX:.*]] = arith.remui %[[AT]], %{{.*}} : index
// CHECK:           memref.load %arg0[%[[IDX]]]
// CHECK:           %[[M3:.*]] = arith.maximumf %[[M2]], %{{.*}} : f32
// CHECK:           %[[KEPT:.*]] = arith.select %[[PAST]], %[[M3]], %[[M2]] : f32
// CHECK:           gpu.shuffle  xor %[[KEPT]]
// CHECK:           arith.maximumf
func.func @max_to_scalar(%x: memref<100xf32>, %out: memref<f32>) {
  linalg.generic {indexing_maps = [#vec, #all], iterator_types = ["reduction"]}
      ins(%x : memref<100xf32>) outs(%out : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %acc, %in : f32
    linalg.yield %m : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

// A long column sum (a bias gradient over a chunk of 16 steps' rows): 32
// threads per column, 32 rows each, in a loop of four trips of eight loads.
// CHECK-LABEL: func.func @long_column_sum(
// CHECK:         gpu.launch
// CHECK-DAG:       %[[C1024:.*]] = arith.constant 1024 : index
// CHECK-DAG:       %[[C256:.*]] = arith.constant 256 : index
// CHECK:           scf.for %{{.*}} = %{{.*}} to %[[C1024]] step %[[C256]] iter_args
// CHECK-COUNT-8:     memref.load %arg0
// CHECK:             scf.yield
// CHECK-COUNT-5:   gpu.shuffle  xor
func.func @long_column_sum(%x: memref<1024x512xf32>, %out: memref<512xf32>) {
  linalg.generic {indexing_maps = [#rows, #col], iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<1024x512xf32>) outs(%out : memref<512xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// Left as they are (one thread per output): a reduction too short to share,
// and one whose update is not a single commutative operation (a difference).
// CHECK-LABEL: func.func @left_alone(
// CHECK-NOT:     gpu.launch
// CHECK:         linalg.generic
// CHECK:         linalg.generic
// CHECK-NOT:     gpu.launch
func.func @left_alone(%short: memref<64x4xf32>, %x: memref<64x128xf32>,
                      %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%short : memref<64x4xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.subf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// A fill of the output right before a reduction (here after a copy of a
// buffer that holds only that fill) is absorbed: the kernel stores
// fill value + total without reading the output. The fresh buffer's own fill
// reaches its reduction past ops that do not touch the buffer; the last copy
// reads what the reduction wrote and stays a copy.
// CHECK-LABEL: func.func @absorbed_fills(
// CHECK-SAME:    %[[X:[^:]*]]: memref<64x128xf32>, %[[OUT:[^:]*]]: memref<64xf32>, %[[OUT2:[^:]*]]: memref<64xf32>)
// CHECK-NOT:     linalg.fill
// CHECK:         %[[BUF:.*]] = memref.alloc() : memref<64xf32>
// CHECK-NOT:     linalg.fill
// CHECK:         gpu.launch
// CHECK:           scf.if
// CHECK-NOT:         memref.load
// CHECK:             memref.store %{{.*}}, %[[OUT]][
// CHECK:         gpu.launch
// CHECK:           scf.if
// CHECK-NOT:         memref.load
// CHECK:             memref.store %{{.*}}, %[[BUF]][
// CHECK:         linalg.copy ins(%[[BUF]] : memref<64xf32>) outs(%[[OUT2]] : memref<64xf32>)
func.func @absorbed_fills(%x: memref<64x128xf32>, %out: memref<64xf32>, %out2: memref<64xf32>) {
  %zero = arith.constant 0.0 : f32
  %buf = memref.alloc() : memref<64xf32>
  linalg.fill ins(%zero : f32) outs(%buf : memref<64xf32>)
  memref.copy %buf, %out : memref<64xf32> to memref<64xf32>
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %e = math.exp %in : f32
    %s = arith.addf %acc, %e : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%buf : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  memref.copy %buf, %out2 : memref<64xf32> to memref<64xf32>
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// Two outputs over the same iterations (sibling reductions that
// KernelPreparation merged: a row's maximum and a dot product with the
// target) are reduced side by side in one kernel: each thread carries two
// partial results, each meets its group in five shuffles, and the first
// thread stores both totals, the first onto its absorbed -inf fill.
// CHECK-LABEL: func.func @two_outputs(
// CHECK-SAME:    %[[X:[^:]*]]: memref<64x128xf32>, %[[Y:[^:]*]]: memref<64x128xf32>, %[[MAX:[^:]*]]: memref<64xf32>, %[[DOT:[^:]*]]: memref<64xf32>)
// CHECK-NOT:     linalg.fill
// CHECK:         gpu.launch
// CHECK-DAG:       %[[NEG_INF:.*]] = arith.constant 0xFF800000 : f32
// CHECK-DAG:       %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NOT:       scf.for
// CHECK:           arith.mulf
// CHECK:           arith.maximumf %[[NEG_INF]]
// CHECK:           arith.addf %[[ZERO]]
// CHECK-NOT:       scf.for
// CHECK-COUNT-10:  gpu.shuffle  xor
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[MAX]][
// CHECK:             memref.load %[[DOT]][
// CHECK:             memref.store %{{.*}}, %[[DOT]][
// CHECK-NOT:     linalg.generic
func.func @two_outputs(%x: memref<64x128xf32>, %y: memref<64x128xf32>,
                       %max: memref<64xf32>, %dot: memref<64xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #rows, #row, #row],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x, %y : memref<64x128xf32>, memref<64x128xf32>)
      outs(%max, %dot : memref<64xf32>, memref<64xf32>) {
  ^bb0(%a: f32, %b: f32, %m: f32, %d: f32):
    %nm = arith.maximumf %m, %a : f32
    %p = arith.mulf %a, %b : f32
    %nd = arith.addf %d, %p : f32
    linalg.yield %nm, %nd : f32, f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// Buffers that may alias (function arguments): a fill still reaches the
// reduction past views and past fills of other buffers with the same value,
// which leave the output holding that value whatever they alias (a step's
// loss statistics: fills of the maximum and of two sums, a view of the
// targets, then the reductions). Both outputs' fills are absorbed, and the
// -inf fill reaches the maximum past the view.
// CHECK-LABEL: func.func @fills_past_views_and_equal_fills(
// CHECK-SAME:    %[[X:[^:]*]]: memref<64x256xf32>, %[[MAX:[^:]*]]: memref<64xf32>, %[[S1:[^:]*]]: memref<64xf32>, %[[S2:[^:]*]]: memref<64xf32>)
// CHECK-NOT:     linalg.fill
// CHECK:         gpu.launch
// CHECK:           scf.if
// CHECK-NOT:         memref.load
// CHECK:             memref.store %{{.*}}, %[[MAX]][
// CHECK:         gpu.launch
// CHECK:           scf.if
// CHECK-NOT:         memref.load
// CHECK:             memref.store %{{.*}}, %[[S1]][
// CHECK-NOT:         memref.load
// CHECK:             memref.store %{{.*}}, %[[S2]][
func.func @fills_past_views_and_equal_fills(%x: memref<64x256xf32>, %max: memref<64xf32>,
                                            %s1: memref<64xf32>, %s2: memref<64xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0.0 : f32
  %zero2 = arith.constant 0.0 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<64xf32>)
  %v = memref.subview %x[0, 0] [64, 128] [1, 1] : memref<64x256xf32> to memref<64x128xf32, strided<[256, 1]>>
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%v : memref<64x128xf32, strided<[256, 1]>>) outs(%max : memref<64xf32>) {
  ^bb0(%in: f32, %m: f32):
    %nm = arith.maximumf %m, %in : f32
    linalg.yield %nm : f32
  }
  linalg.fill ins(%zero : f32) outs(%s1 : memref<64xf32>)
  linalg.fill ins(%zero2 : f32) outs(%s2 : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%v : memref<64x128xf32, strided<[256, 1]>>) outs(%s1, %s2 : memref<64xf32>, memref<64xf32>) {
  ^bb0(%in: f32, %a: f32, %b: f32):
    %na = arith.addf %a, %in : f32
    %e = math.exp %in : f32
    %nb = arith.addf %b, %e : f32
    linalg.yield %na, %nb : f32, f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// A fill of another buffer with another value in between may overwrite the
// output (they may alias): the output's fill is not absorbed, and the kernel
// reads the output.
// CHECK-LABEL: func.func @fill_of_other_value_between(
// CHECK-SAME:    %[[X:[^:]*]]: memref<64x128xf32>, %[[OUT:[^:]*]]: memref<64xf32>, %[[OTHER:[^:]*]]: memref<64xf32>)
// CHECK:         linalg.fill ins(%{{.*}} : f32) outs(%[[OUT]]
// CHECK:         linalg.fill ins(%{{.*}} : f32) outs(%[[OTHER]]
// CHECK:         gpu.launch
// CHECK:           scf.if
// CHECK:             memref.load %[[OUT]][
// CHECK:             memref.store %{{.*}}, %[[OUT]][
func.func @fill_of_other_value_between(%x: memref<64x128xf32>, %out: memref<64xf32>,
                                       %other: memref<64xf32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<64xf32>)
  linalg.fill ins(%one : f32) outs(%other : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// A softmax cross-entropy's row chain (WarpReductions.h, lowerRowChain) in a
// program, whose arguments are distinct buffers (the last one, the
// statistics, is host memory): the row maximum, the sum of
// exponentials and the target's logit that read it, and the logits'
// gradient that reads both, are one kernel, not two reductions and an
// elementwise kernel. The maximum and the sum reach the later links in
// registers (every thread of a row's group holds the total after the xor
// tree), never through memory that another thread writes; each link still
// stores its outputs.
// CHECK-LABEL: func.func @softmax_chain(
// CHECK-SAME:    %[[L:[^:]*]]: memref<64x128xf32>, %[[T:[^:]*]]: memref<64x128xf32>, %[[MAX:[^:]*]]: memref<64xf32>, %[[SUM:[^:]*]]: memref<64xf32>, %[[DOT:[^:]*]]: memref<64xf32>, %[[DL:[^:]*]]: memref<64x128xf32>, %{{.*}}: memref<2xi64>)
// CHECK-NOT:     linalg.fill
// CHECK:         gpu.launch
// CHECK-NOT:       memref.load %[[MAX]]
// CHECK-COUNT-5:   gpu.shuffle  xor
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[MAX]][
// CHECK-NOT:       memref.load %[[MAX]]
// CHECK:           math.exp
// CHECK-COUNT-10:  gpu.shuffle  xor
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[SUM]][
// CHECK:             memref.store %{{.*}}, %[[DOT]][
// CHECK-NOT:       memref.load %[[SUM]]
// CHECK-NOT:       memref.load %[[MAX]]
// CHECK:           arith.divf
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[DL]][
// CHECK-COUNT-3:     memref.store %{{.*}}, %[[DL]][
// CHECK:           gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK-NOT:     linalg.generic
// CHECK:         return
func.func @softmax_chain(%logits: memref<64x128xf32>, %target: memref<64x128xf32>,
                         %max: memref<64xf32>, %sum: memref<64xf32>,
                         %dot: memref<64xf32>, %dl: memref<64x128xf32>,
                         %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  %ninf = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits : memref<64x128xf32>) outs(%max : memref<64xf32>) {
  ^bb0(%in: f32, %m: f32):
    %nm = arith.maximumf %m, %in : f32
    linalg.yield %nm : f32
  }
  linalg.fill ins(%zero : f32) outs(%sum : memref<64xf32>)
  linalg.fill ins(%zero : f32) outs(%dot : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row, #rows, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits, %max, %target : memref<64x128xf32>, memref<64xf32>, memref<64x128xf32>)
      outs(%sum, %dot : memref<64xf32>, memref<64xf32>) {
  ^bb0(%l: f32, %m: f32, %t: f32, %s: f32, %d: f32):
    %shifted = arith.subf %l, %m : f32
    %e = math.exp %shifted : f32
    %ns = arith.addf %s, %e : f32
    %lt = arith.mulf %l, %t : f32
    %nd = arith.addf %d, %lt : f32
    linalg.yield %ns, %nd : f32, f32
  }
  linalg.generic {indexing_maps = [#row, #rows, #row, #rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%sum, %logits, %max, %target : memref<64xf32>, memref<64x128xf32>, memref<64xf32>, memref<64x128xf32>)
      outs(%dl : memref<64x128xf32>) {
  ^bb0(%s: f32, %l: f32, %m: f32, %t: f32, %out: f32):
    %shifted = arith.subf %l, %m : f32
    %e = math.exp %shifted : f32
    %p = arith.divf %e, %s : f32
    %g = arith.subf %p, %t : f32
    linalg.yield %g : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// The same chain where the buffers may overlap (a public function's
// arguments): a later link could overwrite what an earlier one reads for
// another row, so each reduction is its own kernel and the elementwise op
// stays for the parallel loops.
// CHECK-LABEL: func.func @softmax_chain_may_alias(
// CHECK:         gpu.launch
// CHECK:         gpu.terminator
// CHECK:         gpu.launch
// CHECK:           memref.load %arg2
// CHECK:         gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK:         linalg.generic
func.func @softmax_chain_may_alias(%logits: memref<64x128xf32>, %target: memref<64x128xf32>,
                                   %max: memref<64xf32>, %sum: memref<64xf32>,
                                   %dl: memref<64x128xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits : memref<64x128xf32>) outs(%max : memref<64xf32>) {
  ^bb0(%in: f32, %m: f32):
    %nm = arith.maximumf %m, %in : f32
    linalg.yield %nm : f32
  }
  linalg.fill ins(%zero : f32) outs(%sum : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits, %max : memref<64x128xf32>, memref<64xf32>) outs(%sum : memref<64xf32>) {
  ^bb0(%l: f32, %m: f32, %s: f32):
    %shifted = arith.subf %l, %m : f32
    %e = math.exp %shifted : f32
    %ns = arith.addf %s, %e : f32
    linalg.yield %ns : f32
  }
  linalg.generic {indexing_maps = [#row, #rows, #rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%sum, %logits, %target : memref<64xf32>, memref<64x128xf32>, memref<64x128xf32>)
      outs(%dl : memref<64x128xf32>) {
  ^bb0(%s: f32, %l: f32, %t: f32, %out: f32):
    %e = math.exp %l : f32
    %p = arith.divf %e, %s : f32
    %g = arith.subf %p, %t : f32
    linalg.yield %g : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>

// In a program, but the sum is not filled before its reduction (it adds to
// what the buffer held), so only the row's first thread knows its final
// value: the maximum and the sum share a kernel, and the elementwise op,
// which reads the sum from memory, runs after it, as its own loops.
// CHECK-LABEL: func.func @chain_stops_at_unfilled_output(
// CHECK:         gpu.launch
// CHECK-COUNT-10:  gpu.shuffle  xor
// CHECK:           memref.load %arg2
// CHECK:           memref.store
// CHECK:         gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK:         linalg.generic
func.func @chain_stops_at_unfilled_output(%logits: memref<64x128xf32>, %max: memref<64xf32>,
                                          %sum: memref<64xf32>, %dl: memref<64x128xf32>,
                                          %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  %ninf = arith.constant 0xFF800000 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<64xf32>)
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits : memref<64x128xf32>) outs(%max : memref<64xf32>) {
  ^bb0(%in: f32, %m: f32):
    %nm = arith.maximumf %m, %in : f32
    linalg.yield %nm : f32
  }
  linalg.generic {indexing_maps = [#rows, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits, %max : memref<64x128xf32>, memref<64xf32>) outs(%sum : memref<64xf32>) {
  ^bb0(%l: f32, %m: f32, %s: f32):
    %shifted = arith.subf %l, %m : f32
    %e = math.exp %shifted : f32
    %ns = arith.addf %s, %e : f32
    linalg.yield %ns : f32
  }
  linalg.generic {indexing_maps = [#row, #rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%sum, %logits : memref<64xf32>, memref<64x128xf32>) outs(%dl : memref<64x128xf32>) {
  ^bb0(%s: f32, %l: f32, %out: f32):
    %p = arith.divf %l, %s : f32
    linalg.yield %p : f32
  }
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1, d0)>

// The elementwise op overwrites the buffer the maximum reads, and the
// maximum reads it by columns, across rows: in one kernel a row's write
// could come before another row's read, so the two stay apart.
// CHECK-LABEL: func.func @chain_stops_at_write_of_earlier_input(
// CHECK:         gpu.launch
// CHECK:         gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK:         linalg.generic
func.func @chain_stops_at_write_of_earlier_input(%x: memref<128x128xf32>, %max: memref<128xf32>,
                                                 %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  %ninf = arith.constant 0xFF800000 : f32
  linalg.fill ins(%ninf : f32) outs(%max : memref<128xf32>)
  linalg.generic {indexing_maps = [#col, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<128x128xf32>) outs(%max : memref<128xf32>) {
  ^bb0(%in: f32, %m: f32):
    %nm = arith.maximumf %m, %in : f32
    linalg.yield %nm : f32
  }
  linalg.generic {indexing_maps = [#row, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%max : memref<128xf32>) outs(%x : memref<128x128xf32>) {
  ^bb0(%m: f32, %out: f32):
    %d = arith.subf %out, %m : f32
    linalg.yield %d : f32
  }
  return
}
