// RUN: bptt-opt %s -bptt-gpu-fuse-launches -split-input-file | FileCheck %s

// Independent kernels next to each other run as one launch
// (FuseLaunches.cpp): the blocks of the first kernel come first, then
// those of the second, each block running the body it came from with its
// own block and thread numbers; threads past a kernel's own block size do
// nothing. The program's arguments are distinct buffers (the last one, the
// statistics, is host memory), so the kernels touch different memory, and
// the product between them touches neither kernel's memory: the first
// kernel moves down past it.
// CHECK-LABEL: func.func @independent(
// CHECK-SAME:    %[[A:[^:]*]]: memref<64xf32>, %[[B:[^:]*]]: memref<4x256xf32>,
// CHECK:         call @bpttMatmulF32
// CHECK:         gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c9, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c128
// The first kernel: block 0, threads below 32 (the fused block has 128).
// CHECK:           %[[LO:.*]] = arith.cmpi uge, %[[BX]], %c0
// CHECK:           %[[HI:.*]] = arith.cmpi ult, %[[BX]], %c1
// CHECK:           %[[MINE:.*]] = arith.andi %[[LO]], %[[HI]]
// CHECK:           %[[FEW:.*]] = arith.cmpi ult, %[[TX]], %c32
// CHECK:           arith.andi %[[MINE]], %[[FEW]]
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %[[A]][
// The second kernel: blocks 1 to 8, its grid of 4 x 2 blocks.
// CHECK:           arith.cmpi uge, %[[BX]], %c1
// CHECK:           arith.cmpi ult, %[[BX]], %c9
// CHECK:           scf.if
// CHECK:             arith.subi %[[BX]], %c1
// CHECK:             arith.remui %{{.*}}, %c4
// CHECK:             memref.store %{{.*}}, %[[B]][
// CHECK:           gpu.terminator
// CHECK-NOT:     gpu.launch
// CHECK:         return
func.func private @bpttMatmulF32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i32)
func.func @independent(%a: memref<64xf32>, %b: memref<4x256xf32>,
                       %x: memref<?x?xf32, strided<[?, ?], offset: ?>>,
                       %y: memref<?x?xf32, strided<[?, ?], offset: ?>>,
                       %z: memref<?x?xf32, strided<[?, ?], offset: ?>>,
                       %stats: memref<2xi64>) attributes {rnn.plan = {}} {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c32 = arith.constant 32 : index
  %c128 = arith.constant 128 : index
  %one = arith.constant 1.0 : f32
  %mode = arith.constant 0 : i32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    memref.store %one, %a[%tx] : memref<64xf32>
    gpu.terminator
  }
  call @bpttMatmulF32(%x, %y, %z, %mode) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i32) -> ()
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c4, %gy = %c2, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    %col = arith.muli %by, %c128 : index
    %j = arith.addi %col, %tx : index
    memref.store %one, %b[%bx, %j] : memref<4x256xf32>
    gpu.terminator
  }
  return
}

// -----

// Three independent kernels are one launch with three parts side by side,
// blocks 0, 1 and 2, not a fused pair fused again.
// CHECK-LABEL: func.func @three(
// CHECK:         gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c3,
// CHECK:           arith.cmpi uge, %[[BX]], %c0
// CHECK:           arith.cmpi ult, %[[BX]], %c1
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %arg0[
// CHECK:           arith.cmpi uge, %[[BX]], %c1
// CHECK:           arith.cmpi ult, %[[BX]], %c2
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %arg1[
// CHECK:           arith.cmpi uge, %[[BX]], %c2
// CHECK:           arith.cmpi ult, %[[BX]], %c3
// CHECK:           scf.if
// CHECK:             memref.store %{{.*}}, %arg2[
// CHECK:           gpu.terminator
// CHECK-NOT:     gpu.launch
func.func @three(%a: memref<64xf32>, %b: memref<64xf32>, %c: memref<64xf32>,
                 %stats: memref<2xi64>) attributes {rnn.plan = {}} {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %a[%tx] : memref<64xf32>
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %b[%tx] : memref<64xf32>
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %c[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// The second kernel reads what the first writes: they stay two launches,
// in their order.
// CHECK-LABEL: func.func @dependent(
// CHECK:         gpu.launch
// CHECK:           memref.store
// CHECK:         gpu.launch
// CHECK:           memref.load
func.func @dependent(%a: memref<64xf32>, %b: memref<64xf32>, %stats: memref<2xi64>)
    attributes {rnn.plan = {}} {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %a[%tx] : memref<64xf32>
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %v = memref.load %a[%tx] : memref<64xf32>
    memref.store %v, %b[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// The product between them writes what the first kernel reads: the first
// kernel may not move past it.
// CHECK-LABEL: func.func @product_in_the_way(
// CHECK:         gpu.launch
// CHECK:         call @bpttMatmulF32
// CHECK:         gpu.launch
func.func private @bpttMatmulF32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i32)
func.func @product_in_the_way(%a: memref<64x64xf32>, %b: memref<64xf32>,
                              %c: memref<64xf32>, %x: memref<64x64xf32>,
                              %stats: memref<2xi64>) attributes {rnn.plan = {}} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  %mode = arith.constant 0 : i32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %v = memref.load %a[%c0, %tx] : memref<64x64xf32>
    memref.store %v, %b[%tx] : memref<64xf32>
    gpu.terminator
  }
  %ca = memref.cast %a : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %cx = memref.cast %x : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @bpttMatmulF32(%cx, %cx, %ca, %mode) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i32) -> ()
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %c[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// Buffers that may overlap (a public function's arguments), a kernel with
// a barrier (threads that skip its body would not reach it) and a block of
// a size that is not a whole number of warps all stay apart.
// CHECK-LABEL: func.func @left_apart(
// CHECK-COUNT-4: gpu.launch
func.func @left_apart(%a: memref<64xf32>, %b: memref<64xf32>, %c: memref<64xf32>,
                      %d: memref<64xf32>) {
  %c1 = arith.constant 1 : index
  %c48 = arith.constant 48 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %a[%tx] : memref<64xf32>
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %b[%tx] : memref<64xf32>
    gpu.barrier
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c48, %sy = %c1, %sz = %c1) {
    memref.store %one, %c[%tx] : memref<64xf32>
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    memref.store %one, %d[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}
