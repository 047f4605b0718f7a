// RUN: bptt-opt %s -bptt-gpu-library-calls -bptt-gpu-host-islands -split-input-file | FileCheck %s

// Host code that touches device memory runs as one-thread kernels
// (bptt-gpu-host-islands). Right after a reduction to a scalar, whose single
// writing thread ends its kernel, that work runs in the writing thread
// instead: the step's loss, summed over the batch, scaled by 1/B and added
// to the running total, is one kernel, not two.

#vec = affine_map<(d0) -> (d0)>
#all = affine_map<(d0) -> ()>

// CHECK-LABEL: func.func @loss_into_total(
// CHECK-SAME:    %[[X:[^:]*]]: memref<64xf32>, %[[TOTAL:[^:]*]]: memref<f32>)
// CHECK:         %[[SUM:.*]] = memref.alloc() : memref<f32>
// CHECK:         gpu.launch
// CHECK:           gpu.shuffle
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[SUM]][]
// CHECK:             %[[S:.*]] = memref.load %[[SUM]][]
// CHECK:             %[[SCALED:.*]] = arith.mulf %[[S]], %{{.*}} : f32
// CHECK:             %[[OLD:.*]] = memref.load %[[TOTAL]][]
// CHECK:             %[[NEW:.*]] = arith.addf %[[OLD]], %[[SCALED]] : f32
// CHECK:             memref.store %[[NEW]], %[[TOTAL]][]
// CHECK:           gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK:         return
func.func @loss_into_total(%x: memref<64xf32>, %total: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  %inv = arith.constant 1.562500e-02 : f32
  %sum = memref.alloc() : memref<f32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<f32>)
  linalg.generic {indexing_maps = [#vec, #all], iterator_types = ["reduction"]}
      ins(%x : memref<64xf32>) outs(%sum : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  %s = memref.load %sum[] : memref<f32>
  %scaled = arith.mulf %s, %inv : f32
  %old = memref.load %total[] : memref<f32>
  %new = arith.addf %old, %scaled : f32
  memref.store %new, %total[] : memref<f32>
  memref.dealloc %sum : memref<f32>
  return
}

// -----

#vec = affine_map<(d0) -> (d0)>
#all = affine_map<(d0) -> ()>

// Not when the one-thread work writes what the reduction's other threads
// read (it could run before they are done): here it overwrites the input.
// CHECK-LABEL: func.func @island_writes_the_input(
// CHECK:         gpu.launch
// CHECK:           gpu.shuffle
// CHECK:           gpu.terminator
// CHECK:         gpu.launch
// CHECK:           memref.store %{{.*}}, %arg0[
// CHECK:           gpu.terminator
func.func @island_writes_the_input(%x: memref<64xf32>, %total: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %sum = memref.alloc() : memref<f32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<f32>)
  linalg.generic {indexing_maps = [#vec, #all], iterator_types = ["reduction"]}
      ins(%x : memref<64xf32>) outs(%sum : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  %s = memref.load %sum[] : memref<f32>
  memref.store %s, %x[%c0] : memref<64xf32>
  memref.dealloc %sum : memref<f32>
  return
}
