// RUN: bptt-opt %s --convert-linalg-to-parallel-loops --bptt-gpu-tile-loops --gpu-map-parallel-loops --convert-parallel-loops-to-gpu --canonicalize | FileCheck %s

// bptt-gpu-tile-loops maps the loops itself: a block's threads are the
// innermost dimension, on x (blockDim.z holds at most 64 threads, blockDim.y
// 1024); the grid's x takes the dimension with the most blocks, y and z the
// next ones that fit in 65535, and the rest runs as loops in the kernel.

#id2 = affine_map<(d0, d1) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>

// Rank 2: rows on grid x, 256-thread blocks of the columns on grid y.
// CHECK-LABEL: func.func @rank2
// CHECK-DAG:     %[[C64:.*]] = arith.constant 64 : index
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C256:.*]] = arith.constant 256 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C64]], {{.*}} = %[[C8]], {{.*}} = %[[C1]]) threads({{.*}}) in ({{.*}} = %[[C256]], {{.*}} = %[[C1]], {{.*}} = %[[C1]])
func.func @rank2(%a: memref<64x2048xf32>, %b: memref<64x2048xf32>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<64x2048xf32>) outs(%b : memref<64x2048xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}

// Rank 3: the threads on x, not z; dimension 1 (8 blocks) on grid x.
// CHECK-LABEL: func.func @rank3
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C256:.*]] = arith.constant 256 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C8]], {{.*}} = %[[C4]], {{.*}} = %[[C4]]) threads({{.*}}) in ({{.*}} = %[[C256]], {{.*}} = %[[C1]], {{.*}} = %[[C1]])
func.func @rank3(%a: memref<4x8x1000xf32>, %b: memref<4x8x1000xf32>) {
  linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : memref<4x8x1000xf32>) outs(%b : memref<4x8x1000xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}

// 100,000 blocks go on grid x, where they fit; a fourth dimension runs as a
// loop inside the kernel.
// CHECK-LABEL: func.func @rank4
// CHECK-DAG:     %[[C100000:.*]] = arith.constant 100000 : index
// CHECK-DAG:     %[[C3:.*]] = arith.constant 3 : index
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C16:.*]] = arith.constant 16 : index
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[C100000]], {{.*}} = %[[C3]], {{.*}} = %[[C2]]) threads({{.*}}) in ({{.*}} = %[[C16]], {{.*}} = %[[C1]], {{.*}} = %[[C1]])
// CHECK:           scf.for
// CHECK:         gpu.terminator
func.func @rank4(%a: memref<3x100000x2x5x16xf32>, %b: memref<3x100000x2x5x16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%a : memref<3x100000x2x5x16xf32>) outs(%b : memref<3x100000x2x5x16xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}

// A dimension of unknown size goes on grid x; a known one of more than
// 65535 blocks is not put on y or z and runs as a loop in the kernel.
// CHECK-LABEL: func.func @dynamic
// CHECK:         %[[N:.*]] = memref.dim
// CHECK:         gpu.launch blocks({{.*}}) in ({{.*}} = %[[N]], {{.*}} = %{{.*}}, {{.*}} = %{{.*}}) threads({{.*}}) in ({{.*}} = %{{.*}}, {{.*}} = %{{.*}}, {{.*}} = %{{.*}})
// CHECK:           scf.for
// CHECK:         gpu.terminator
func.func @dynamic(%a: memref<?x70000x32xf32>, %b: memref<?x70000x32xf32>) {
  linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : memref<?x70000x32xf32>) outs(%b : memref<?x70000x32xf32>) {
  ^bb0(%x: f32, %y: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}
