// RUN: bptt-opt %s -bptt-gpu-library-calls -split-input-file | FileCheck %s
// RUN: bptt-opt %s -bptt-gpu-library-calls -split-input-file -canonicalize -gpu-launch-sink-index-computations -gpu-kernel-outlining | FileCheck %s --check-prefix=KERNEL

// Products that contract over a short dimension, both inputs indexed with
// it first (a backward step's parameter gradients, K = B), become one
// generated kernel (SmallProducts.cpp): one block per 64 x 64 tile of every
// product's C, in program order. The operands' layout is checked on the
// host (unit inner stride, rows a multiple of four apart, 16-byte aligned);
// where it fails, the products run as cuBLAS calls, as before. (The
// functions are programs, `rnn.plan`, whose arguments are distinct buffers,
// so a product's C may not overlap its A or B; a program's last argument is
// its statistics, on the host.)
#kt_m = affine_map<(m, n, k) -> (k, m)>
#kt_n = affine_map<(m, n, k) -> (k, n)>
#mn = affine_map<(m, n, k) -> (m, n)>
#rows = affine_map<(d0, d1) -> (d0, d1)>

// dW_hh += h^T·dgates and dW_ih += x^T·dgates share dgates; an unrelated
// kernel between them (it touches none of their memory) lets the first move
// down to the second, and dW_out += h'^T·dlogits joins them: 2 x 4 + 1 x 4
// + 2 x 1 = 14 blocks of 128 threads, each staging 16 x 64 tiles of A and B
// in two shared-memory buffers: the first stage before the loop, the next
// one read from global memory at the top of each trip and stored into the
// other buffer after the multiply-adds, one barrier a trip; C's old values
// are read before all of it and added to the sums at the end.
// CHECK-LABEL: func.func @weight_grads(
// CHECK-SAME:      %[[H:[a-z0-9]+]]: memref<32x128xf32, strided<[?, ?], offset: ?>>, %[[X:[a-z0-9]+]]: memref<32x64xf32, strided<[?, ?], offset: ?>>, %[[DG:[a-z0-9]+]]: memref<32x256xf32, strided<[?, ?], offset: ?>>, %[[HP:[a-z0-9]+]]: memref<32x128xf32, strided<[?, ?], offset: ?>>, %[[DL:[a-z0-9]+]]: memref<32x64xf32, strided<[?, ?], offset: ?>>, %[[DWHH:[a-z0-9]+]]: memref<128x256xf32, strided<[?, ?], offset: ?>>, %[[DWIH:[a-z0-9]+]]: memref<64x256xf32, strided<[?, ?], offset: ?>>, %[[DWOUT:[a-z0-9]+]]: memref<128x64xf32, strided<[?, ?], offset: ?>>,
// CHECK:         linalg.generic
// CHECK:         memref.extract_aligned_pointer_as_index
// CHECK:         scf.if %{{.*}} {
// CHECK-DAG:       %[[C14:.*]] = arith.constant 14 : index
// CHECK-DAG:       %[[C128:.*]] = arith.constant 128 : index
// CHECK:           gpu.launch blocks({{.*}}) in ({{.*}} = %[[C14]], {{.*}}) threads({{.*}}) in ({{.*}} = %[[C128]], {{.*}}) workgroup(%[[AS:.*]] : memref<2x16x64xf32, #gpu.address_space<workgroup>>, %[[BS:.*]] : memref<2x16x64xf32, #gpu.address_space<workgroup>>) {
// CHECK:             scf.index_switch
// CHECK:             case 1 {
// CHECK:               %[[OLD:.*]] = vector.load {{.*}} : memref<64x256xf32, strided<[?, 1], offset: ?>>, vector<4xf32>
// CHECK:               vector.load {{.*}} {alignment = 16 : i64} : memref<32x64xf32, strided<[?, 1], offset: ?>>, vector<4xf32>
// CHECK:               vector.store {{.*}}, %[[AS]][%c0{{.*}}] {{.*}} : memref<2x16x64xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK:               gpu.barrier
// CHECK:               scf.for %[[K0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK:                 %[[BUF:.*]] = arith.remui
// CHECK:                 %[[OTHER:.*]] = arith.subi %{{.*}}, %[[BUF]]
// CHECK:                 arith.minui
// CHECK:                 vector.load {{.*}} {alignment = 16 : i64} : memref<32x64xf32, strided<[?, 1], offset: ?>>, vector<4xf32>
// CHECK:                 scf.for
// CHECK:                   vector.load %[[AS]][%[[BUF]],
// CHECK:                   vector.fma
// CHECK:                 vector.store {{.*}}, %[[AS]][%[[OTHER]],
// CHECK:                 gpu.barrier
// CHECK-NOT:             gpu.barrier
// CHECK:             %[[NEW:.*]] = arith.addf %[[OLD]], %{{.*}} : vector<4xf32>
// CHECK:             vector.store %[[NEW]]
// CHECK:             case 2 {
// CHECK:             default {
// CHECK:           }
// CHECK:         } else {
// CHECK:           func.call @bpttMatmulF32({{.*}}) : (
// CHECK:           func.call @bpttMatmulF32({{.*}}) : (
// CHECK:           func.call @bpttMatmulF32({{.*}}) : (
// CHECK:         }
// CHECK-NEXT:    return
// The outlined kernel keeps its sizes as constants (sunk before outlining).
// KERNEL-LABEL: gpu.func @weight_grads_kernel(
// KERNEL-SAME:      workgroup(
// KERNEL:           arith.constant 16 : index
// KERNEL:           gpu.barrier
func.func @weight_grads(%h: memref<32x128xf32, strided<[?, ?], offset: ?>>,
                        %x: memref<32x64xf32, strided<[?, ?], offset: ?>>,
                        %dg: memref<32x256xf32, strided<[?, ?], offset: ?>>,
                        %hp: memref<32x128xf32, strided<[?, ?], offset: ?>>,
                        %dl: memref<32x64xf32, strided<[?, ?], offset: ?>>,
                        %dwhh: memref<128x256xf32, strided<[?, ?], offset: ?>>,
                        %dwih: memref<64x256xf32, strided<[?, ?], offset: ?>>,
                        %dwout: memref<128x64xf32, strided<[?, ?], offset: ?>>,
                        %other: memref<32x128xf32>, %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%h, %dg : memref<32x128xf32, strided<[?, ?], offset: ?>>, memref<32x256xf32, strided<[?, ?], offset: ?>>)
      outs(%dwhh : memref<128x256xf32, strided<[?, ?], offset: ?>>)
  linalg.generic {indexing_maps = [#rows, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%h : memref<32x128xf32, strided<[?, ?], offset: ?>>) outs(%other : memref<32x128xf32>) {
  ^bb0(%in: f32, %out: f32):
    %twice = arith.addf %in, %in : f32
    linalg.yield %twice : f32
  }
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%x, %dg : memref<32x64xf32, strided<[?, ?], offset: ?>>, memref<32x256xf32, strided<[?, ?], offset: ?>>)
      outs(%dwih : memref<64x256xf32, strided<[?, ?], offset: ?>>)
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%hp, %dl : memref<32x128xf32, strided<[?, ?], offset: ?>>, memref<32x64xf32, strided<[?, ?], offset: ?>>)
      outs(%dwout : memref<128x64xf32, strided<[?, ?], offset: ?>>)
  return
}

// -----

#kt_m = affine_map<(m, n, k) -> (k, m)>
#kt_n = affine_map<(m, n, k) -> (k, n)>
#mn = affine_map<(m, n, k) -> (m, n)>

// The second product reads what the first writes: two kernels, in order.
// CHECK-LABEL: func.func @dependent(
// CHECK:         scf.if
// CHECK:           gpu.launch
// CHECK:         } else {
// CHECK:           func.call @bpttMatmulF32
// CHECK:         }
// CHECK:         scf.if
// CHECK:           gpu.launch
// CHECK:         } else {
// CHECK:           func.call @bpttMatmulF32
// CHECK:         }
func.func @dependent(%a: memref<32x64xf32>, %b: memref<32x64xf32>,
                     %c: memref<64x64xf32>, %e: memref<64x64xf32>,
                     %d: memref<64x64xf32>, %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%a, %b : memref<32x64xf32>, memref<32x64xf32>) outs(%c : memref<64x64xf32>)
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%c, %e : memref<64x64xf32>, memref<64x64xf32>) outs(%d : memref<64x64xf32>)
  return
}

// -----

#kt_m = affine_map<(m, n, k) -> (k, m)>
#kt_n = affine_map<(m, n, k) -> (k, n)>
#mn = affine_map<(m, n, k) -> (m, n)>

// Products the kernel does not take stay cuBLAS calls: a fresh one (its
// accumulator just zeroed: cuBLAS writes C without reading it), a long
// contraction (K = 256: gradients over chunks of steps, where cuBLAS is
// faster), sizes that are not whole tiles, and the forward orientation
// (A indexed [m, k]).
// CHECK-LABEL: func.func @library(
// CHECK-NOT:     gpu.launch
// CHECK:         %[[OVERWRITE:.*]] = arith.constant 2 : i32
// CHECK:         call @bpttMatmulF32({{.*}}, %[[OVERWRITE]])
// CHECK:         call @bpttMatmulF32
// CHECK:         call @bpttMatmulF32
// CHECK:         call @bpttMatmulF32
// CHECK-NOT:     gpu.launch
// CHECK:         return
func.func @library(%a: memref<32x64xf32>, %b: memref<32x64xf32>,
                   %c: memref<64x64xf32>, %long: memref<256x64xf32>,
                   %ragged: memref<32x48xf32>, %c2: memref<48x64xf32>,
                   %rows: memref<64x32xf32>, %c3: memref<64x64xf32>,
                   %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<64x64xf32>)
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%a, %b : memref<32x64xf32>, memref<32x64xf32>) outs(%c : memref<64x64xf32>)
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%long, %long : memref<256x64xf32>, memref<256x64xf32>) outs(%c : memref<64x64xf32>)
  linalg.matmul indexing_maps = [#kt_m, #kt_n, #mn]
      ins(%ragged, %b : memref<32x48xf32>, memref<32x64xf32>) outs(%c2 : memref<48x64xf32>)
  linalg.matmul ins(%rows, %b : memref<64x32xf32>, memref<32x64xf32>) outs(%c3 : memref<64x64xf32>)
  return
}
