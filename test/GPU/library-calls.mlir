// RUN: bptt-opt %s -bptt-gpu-library-calls -split-input-file | FileCheck %s
// RUN: bptt-opt %s -bptt-gpu-library-calls="precision=tf32" -split-input-file | FileCheck %s --check-prefix=TF32

// A product whose accumulator was just set to a bias broadcast over the rows
// (the forward step's input projection, the logits) absorbs it: cuBLASLt
// adds the bias in its epilogue (bpttMatmulBiasF32, mode bit 1: no addend),
// and the broadcast's kernel goes. C is a fresh row-major buffer, so only
// the bias's stride and alignment are checked, on the host; where they fail
// the broadcast and the plain product run as before.
#rows = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>

// CHECK-LABEL: func.func @bias_only(
// CHECK-SAME:      %[[X:.*]]: memref<64x128xf32, strided<[?, ?], offset: ?>>, %[[W:.*]]: memref<128x2048xf32>, %[[B:.*]]: memref<2048xf32, strided<[?], offset: ?>>
// CHECK:         %[[C:.*]] = memref.alloc() : memref<64x2048xf32>
// CHECK:         %[[TRUE:.*]] = arith.constant true
// CHECK:         %{{.*}}, %[[OFF:.*]], %{{.*}}, %[[BSTRIDE:.*]] = memref.extract_strided_metadata %[[B]]
// CHECK:         %[[UNIT:.*]] = arith.cmpi eq, %[[BSTRIDE]], %c1
// CHECK:         %[[OK0:.*]] = arith.andi %[[TRUE]], %[[UNIT]]
// CHECK:         %[[PTR:.*]] = memref.extract_aligned_pointer_as_index %[[B]]
// CHECK:         %[[BYTES:.*]] = arith.muli %[[OFF]], %c4
// CHECK:         %[[ADDR:.*]] = arith.addi %[[PTR]], %[[BYTES]]
// CHECK:         %[[REM:.*]] = arith.remui %[[ADDR]], %c16
// CHECK:         %[[ALIGNED:.*]] = arith.cmpi eq, %[[REM]], %c0
// CHECK:         %[[OK:.*]] = arith.andi %[[OK0]], %[[ALIGNED]]
// CHECK:         scf.if %[[OK]] {
// CHECK:           %[[CC:.*]] = memref.cast %[[C]]
// CHECK:           %[[BC:.*]] = memref.cast %[[B]] : memref<2048xf32, strided<[?], offset: ?>> to memref<?xf32, strided<[?], offset: ?>>
// CHECK:           %[[MODE:.*]] = arith.constant 2 : i32
// CHECK:           func.call @bpttMatmulBiasF32(%{{.*}}, %{{.*}}, %[[CC]], %[[BC]], %[[CC]], %[[MODE]])
// CHECK-NOT:       linalg.generic
// CHECK:         } else {
// CHECK:           linalg.generic
// CHECK:           %[[PLAIN:.*]] = arith.constant 0 : i32
// CHECK:           func.call @bpttMatmulF32(%{{.*}}, %{{.*}}, %{{.*}}, %[[PLAIN]])
// CHECK:         }
// TF32-LABEL: func.func @bias_only(
// TF32:         arith.constant 3 : i32
// TF32:         func.call @bpttMatmulBiasF32(
// TF32:         arith.constant 1 : i32
// TF32:         func.call @bpttMatmulF32(
func.func @bias_only(%x: memref<64x128xf32, strided<[?, ?], offset: ?>>,
                     %w: memref<128x2048xf32>,
                     %b: memref<2048xf32, strided<[?], offset: ?>>)
    -> memref<64x2048xf32> {
  %c = memref.alloc() : memref<64x2048xf32>
  linalg.generic {indexing_maps = [#bcast, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<2048xf32, strided<[?], offset: ?>>) outs(%c : memref<64x2048xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.matmul ins(%x, %w : memref<64x128xf32, strided<[?, ?], offset: ?>>, memref<128x2048xf32>)
      outs(%c : memref<64x2048xf32>)
  return %c : memref<64x2048xf32>
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>

// The recurrent product seeded with the projected input plus its bias:
// C = h·W + S + b in one call (mode 0: S is read). C and S come with dynamic
// strides, so both must be checked row-major as well.
// CHECK-LABEL: func.func @addend_and_bias(
// CHECK-SAME:      %[[H:[^:]*]]: memref<64x512xf32
// CHECK-SAME:      %[[W:[^:]*]]: memref<512x2048xf32
// CHECK-SAME:      %[[S:[^:]*]]: memref<64x2048xf32
// CHECK-SAME:      %[[B:[^:]*]]: memref<2048xf32
// CHECK-SAME:      %[[C:[^:]*]]: memref<64x2048xf32
// CHECK:         %{{.*}}, %{{.*}}, %{{.*}}:2, %[[CSTRIDES:.*]]:2 = memref.extract_strided_metadata %[[C]]
// CHECK:         arith.cmpi eq, %[[CSTRIDES]]#1, %c1
// CHECK:         %{{.*}}, %{{.*}}, %{{.*}}:2, %[[SSTRIDES:.*]]:2 = memref.extract_strided_metadata %[[S]]
// CHECK:         arith.cmpi eq, %[[SSTRIDES]]#1, %c1
// CHECK:         memref.extract_aligned_pointer_as_index %[[B]]
// CHECK:         scf.if
// CHECK:           %[[HC:.*]] = memref.cast %[[H]]
// CHECK:           %[[WC:.*]] = memref.cast %[[W]]
// CHECK:           %[[CC:.*]] = memref.cast %[[C]]
// CHECK:           %[[SC:.*]] = memref.cast %[[S]]
// CHECK:           %[[BC:.*]] = memref.cast %[[B]]
// CHECK:           %[[MODE:.*]] = arith.constant 0 : i32
// CHECK:           func.call @bpttMatmulBiasF32(%[[HC]], %[[WC]], %[[SC]], %[[BC]], %[[CC]], %[[MODE]])
// CHECK:         } else {
// CHECK:           linalg.generic
// CHECK:             arith.addf
// CHECK:           func.call @bpttMatmulF32(
// CHECK:         }
func.func @addend_and_bias(%h: memref<64x512xf32, strided<[?, ?], offset: ?>>,
                           %w: memref<512x2048xf32, strided<[?, ?], offset: ?>>,
                           %s: memref<64x2048xf32, strided<[?, ?], offset: ?>>,
                           %b: memref<2048xf32, strided<[?], offset: ?>>,
                           %c: memref<64x2048xf32, strided<[?, ?], offset: ?>>) {
  linalg.generic {indexing_maps = [#rows, #bcast, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%s, %b : memref<64x2048xf32, strided<[?, ?], offset: ?>>, memref<2048xf32, strided<[?], offset: ?>>)
      outs(%c : memref<64x2048xf32, strided<[?, ?], offset: ?>>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %sum = arith.addf %in, %bias : f32
    linalg.yield %sum : f32
  }
  linalg.matmul ins(%h, %w : memref<64x512xf32, strided<[?, ?], offset: ?>>, memref<512x2048xf32, strided<[?, ?], offset: ?>>)
      outs(%c : memref<64x2048xf32, strided<[?, ?], offset: ?>>)
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>

// The one-step kernel's second product (rnn-remat's KernelPreparation): its
// seed adds the bias to what C already holds (the first product), reading
// C's old value: C = h·W + C + b in one call, C its own addend (its layout
// tested and its view made once).
// CHECK-LABEL: func.func @old_value_and_bias(
// CHECK-SAME:      %[[H:[^:]*]]: memref<64x512xf32
// CHECK-SAME:      %[[W:[^:]*]]: memref<512x2048xf32
// CHECK-SAME:      %[[B:[^:]*]]: memref<2048xf32
// CHECK-SAME:      %[[C:[^:]*]]: memref<64x2048xf32
// CHECK:         memref.extract_strided_metadata %[[C]]
// CHECK-NOT:     memref.extract_strided_metadata %[[C]]
// CHECK:         scf.if
// CHECK:           %[[HC:.*]] = memref.cast %[[H]]
// CHECK:           %[[WC:.*]] = memref.cast %[[W]]
// CHECK:           %[[CC:.*]] = memref.cast %[[C]]
// CHECK-NOT:       memref.cast %[[C]]
// CHECK:           %[[BC:.*]] = memref.cast %[[B]]
// CHECK:           %[[MODE:.*]] = arith.constant 0 : i32
// CHECK:           func.call @bpttMatmulBiasF32(%[[HC]], %[[WC]], %[[CC]], %[[BC]], %[[CC]], %[[MODE]])
// CHECK:         } else {
// CHECK:           linalg.generic
// CHECK:             arith.addf
// CHECK:           func.call @bpttMatmulF32(
// CHECK:         }
func.func @old_value_and_bias(%h: memref<64x512xf32, strided<[?, ?], offset: ?>>,
                              %w: memref<512x2048xf32, strided<[?, ?], offset: ?>>,
                              %b: memref<2048xf32, strided<[?], offset: ?>>,
                              %c: memref<64x2048xf32, strided<[?, ?], offset: ?>>) {
  linalg.generic {indexing_maps = [#bcast, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<2048xf32, strided<[?], offset: ?>>)
      outs(%c : memref<64x2048xf32, strided<[?, ?], offset: ?>>) {
  ^bb0(%bias: f32, %out: f32):
    %sum = arith.addf %out, %bias : f32
    linalg.yield %sum : f32
  }
  linalg.matmul ins(%h, %w : memref<64x512xf32, strided<[?, ?], offset: ?>>, memref<512x2048xf32, strided<[?, ?], offset: ?>>)
      outs(%c : memref<64x2048xf32, strided<[?, ?], offset: ?>>)
  return
}

// -----

#rows = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>

// Seeds the epilogue cannot take stay as they are: a scaled bias, an addend
// that is another part of the accumulator's buffer, and a bias broadcast
// down the columns. (A seed adding a bias to the accumulator's old value is
// one: @old_value_and_bias.)
// CHECK-LABEL: func.func @not_seeds(
// CHECK-NOT:     {{bpttMatmulBiasF32|scf.if}}
// CHECK:         linalg.generic
// CHECK-NOT:     {{bpttMatmulBiasF32|scf.if}}
// CHECK:         linalg.generic
// CHECK-NOT:     {{bpttMatmulBiasF32|scf.if}}
// CHECK:         linalg.generic
// CHECK-NOT:     {{bpttMatmulBiasF32|scf.if|linalg.generic}}
// CHECK:         return
func.func @not_seeds(%x: memref<8x4xf32>, %w: memref<4x16xf32>,
                     %b: memref<16xf32>, %r: memref<8xf32>,
                     %c: memref<8x16xf32>, %big: memref<16x16xf32>) {
  %two = arith.constant 2.0 : f32
  linalg.generic {indexing_maps = [#bcast, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<16xf32>) outs(%c : memref<8x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.mulf %in, %two : f32
    linalg.yield %t : f32
  }
  linalg.matmul ins(%x, %w : memref<8x4xf32>, memref<4x16xf32>) outs(%c : memref<8x16xf32>)
  %top = memref.subview %big[0, 0] [8, 16] [1, 1] : memref<16x16xf32> to memref<8x16xf32, strided<[16, 1]>>
  %bottom = memref.subview %big[8, 0] [8, 16] [1, 1] : memref<16x16xf32> to memref<8x16xf32, strided<[16, 1], offset: 128>>
  linalg.generic {indexing_maps = [#rows, #bcast, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%top, %b : memref<8x16xf32, strided<[16, 1]>>, memref<16xf32>) outs(%bottom : memref<8x16xf32, strided<[16, 1], offset: 128>>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %t = arith.addf %in, %bias : f32
    linalg.yield %t : f32
  }
  linalg.matmul ins(%x, %w : memref<8x4xf32>, memref<4x16xf32>) outs(%bottom : memref<8x16xf32, strided<[16, 1], offset: 128>>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0)>, #rows], iterator_types = ["parallel", "parallel"]}
      ins(%r : memref<8xf32>) outs(%c : memref<8x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.matmul ins(%x, %w : memref<8x4xf32>, memref<4x16xf32>) outs(%c : memref<8x16xf32>)
  return
}
