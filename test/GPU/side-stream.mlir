// RUN: bptt-opt %s -bptt-gpu-side-stream=region-micros=0.5 -split-input-file | FileCheck %s
// RUN: bptt-opt %s -bptt-gpu-side-stream -split-input-file | FileCheck %s --check-prefix=CALIBRATED

// Device work that nothing later in its function waits for runs on the side
// stream (bptt-gpu-side-stream): bracketed by bpttSideBegin/End, moved up to
// just after what it depends on, joined before the function returns, and
// nothing is freed before the join. The cases below test those mechanics
// with side regions as cheap as the first cost model had them (0.5 us);
// at the calibrated 6 us (the default) only the first case's weight
// gradient hides enough work to be worth a region.
// CALIBRATED-LABEL: func.func private @step(
// CALIBRATED:         call @bpttSideBegin()
// CALIBRATED-NEXT:    call @bpttMatmulF32(
// CALIBRATED-NEXT:    call @bpttSideEnd()

// A backward step in miniature: a kernel makes the gate gradient %dg; the
// recurrence's product (dh = dg·W, 64x512x2048) and the weight gradient's
// (dW += h^T·dg, 512x64x2048) both read it. Equal in the model, one of
// them (the first, dh) runs on the side stream beside the other: hiding a
// product's 7.5 us is worth even a calibrated 6 us region.

// CHECK-LABEL: func.func private @bpttSideBegin()
// CHECK:       func.func private @bpttSideEnd()
// CHECK:       func.func private @bpttSideJoin()
// CHECK-LABEL: func.func private @step(
// CHECK-SAME:    %[[H:[^:]*]]: memref<64x512xf32>, %[[W:[^:]*]]: memref<2048x512xf32>, %[[DH:[^:]*]]: memref<64x512xf32>, %[[DW:[^:]*]]: memref<512x2048xf32>)
// CHECK:         %[[DG:.*]] = memref.alloc() : memref<64x2048xf32>
// CHECK:         gpu.launch
// CHECK:           memref.store %{{.*}}, %[[DG]]
// CHECK:         %[[DHC:.*]] = memref.cast %[[DH]]
// CHECK:         call @bpttSideBegin()
// CHECK-NEXT:    call @bpttMatmulF32(%{{.*}}, %{{.*}}, %[[DHC]], %{{.*}})
// CHECK-NEXT:    call @bpttSideEnd()
// CHECK:         %[[DWC:.*]] = memref.cast %[[DW]]
// CHECK-NEXT:    call @bpttMatmulF32(%{{.*}}, %{{.*}}, %[[DWC]], %{{.*}})
// CHECK-NEXT:    call @bpttSideJoin()
// CHECK-NEXT:    memref.dealloc %[[DG]]
// CHECK-NEXT:    return
!dyn = memref<?x?xf32, strided<[?, ?], offset: ?>>

func.func private @bpttMatmulF32(!dyn, !dyn, !dyn, i32)

func.func private @step(%h: memref<64x512xf32>, %w: memref<2048x512xf32>,
                        %dh: memref<64x512xf32>, %dw: memref<512x2048xf32>) {
  %c1 = arith.constant 1 : index
  %mode = arith.constant 0 : i32
  %dg = memref.alloc() : memref<64x2048xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    %v = memref.load %h[%tx, %ty] : memref<64x512xf32>
    memref.store %v, %dg[%tx, %ty] : memref<64x2048xf32>
    gpu.terminator
  }
  %a = memref.cast %dg : memref<64x2048xf32> to !dyn
  %b = memref.cast %w : memref<2048x512xf32> to !dyn
  %c = memref.cast %dh : memref<64x512xf32> to !dyn
  func.call @bpttMatmulF32(%a, %b, %c, %mode) : (!dyn, !dyn, !dyn, i32) -> ()
  %ht = memref.transpose %h (d0, d1) -> (d1, d0) : memref<64x512xf32> to memref<512x64xf32, strided<[1, 512]>>
  %a2 = memref.cast %ht : memref<512x64xf32, strided<[1, 512]>> to !dyn
  %b2 = memref.cast %dg : memref<64x2048xf32> to !dyn
  %c2 = memref.cast %dw : memref<512x2048xf32> to !dyn
  func.call @bpttMatmulF32(%a2, %b2, %c2, %mode) : (!dyn, !dyn, !dyn, i32) -> ()
  memref.dealloc %dg : memref<64x2048xf32>
  return
}

// The program's arguments are distinct buffers, so @step's are.
// CHECK-LABEL: func.func @program(
// CHECK-NOT:     bpttSide
// CHECK:         return
func.func @program(%h: memref<64x512xf32>, %w: memref<2048x512xf32>,
                   %dh: memref<64x512xf32>, %dw: memref<512x2048xf32>)
    attributes {rnn.plan = {}} {
  func.call @step(%h, %w, %dh, %dw) : (memref<64x512xf32>, memref<2048x512xf32>, memref<64x512xf32>, memref<512x2048xf32>) -> ()
  return
}

// -----

// The same step, called once with the weight gradient and the state
// gradient in one buffer: the two products write the same memory, so
// neither may run beside the other.

// CHECK-LABEL: func.func private @step(
// CHECK-NOT:     bpttSide
// CHECK:         return
func.func private @bpttMatmulF32(memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32)

func.func private @step(%x: memref<64x64xf32>, %w: memref<64x64xf32>,
                        %dh: memref<64x64xf32>, %dw: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %b = memref.cast %w : memref<64x64xf32> to memref<?x?xf32>
  %c = memref.cast %dh : memref<64x64xf32> to memref<?x?xf32>
  %d = memref.cast %dw : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %b, %c, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%b, %a, %d, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func @program(%x: memref<64x64xf32>, %w: memref<64x64xf32>,
                   %dh: memref<64x64xf32>, %dw: memref<64x64xf32>)
    attributes {rnn.plan = {}} {
  func.call @step(%x, %w, %dh, %dw) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  func.call @step(%x, %w, %dh, %dh) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  return
}

// -----

// Two views of one pool may overlap (their offsets are not known), and so
// may the two arms of a select: the products stay on one stream. Called with
// distinct allocations, they run side by side.

// CHECK-LABEL: func.func private @pooled(
// CHECK-NOT:     bpttSide
// CHECK:         return
// CHECK-LABEL: func.func private @selected(
// CHECK-NOT:     bpttSide
// CHECK:         return
// CHECK-LABEL: func.func private @distinct(
// CHECK:         call @bpttSideBegin()
// CHECK:         call @bpttSideJoin()
// CHECK-NEXT:    return
func.func private @bpttMatmulF32(memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32)

func.func private @pooled(%x: memref<64x64xf32>, %c: memref<64x64xf32>,
                          %d: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %cc = memref.cast %c : memref<64x64xf32> to memref<?x?xf32>
  %dd = memref.cast %d : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %cc, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%a, %a, %dd, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func private @selected(%x: memref<64x64xf32>, %c: memref<64x64xf32>,
                            %d: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %cc = memref.cast %c : memref<64x64xf32> to memref<?x?xf32>
  %dd = memref.cast %d : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %cc, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%a, %a, %dd, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func private @distinct(%x: memref<64x64xf32>, %c: memref<64x64xf32>,
                            %d: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %cc = memref.cast %c : memref<64x64xf32> to memref<?x?xf32>
  %dd = memref.cast %d : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %cc, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%a, %a, %dd, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func @program(%x: memref<64x64xf32>, %which: i1) attributes {rnn.plan = {}} {
  %c0 = arith.constant 0 : index
  %c16384 = arith.constant 16384 : index
  %pool = memref.alloc() : memref<32768xi8>
  %v0 = memref.view %pool[%c0][] : memref<32768xi8> to memref<64x64xf32>
  %v1 = memref.view %pool[%c16384][] : memref<32768xi8> to memref<64x64xf32>
  func.call @pooled(%x, %v0, %v1) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  %m0 = memref.alloc() : memref<64x64xf32>
  %m1 = memref.alloc() : memref<64x64xf32>
  %m2 = memref.alloc() : memref<64x64xf32>
  %s0 = arith.select %which, %m0, %m1 : memref<64x64xf32>
  %s1 = arith.select %which, %m1, %m2 : memref<64x64xf32>
  func.call @selected(%x, %s0, %s1) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  func.call @distinct(%x, %m0, %m2) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  memref.dealloc %m0 : memref<64x64xf32>
  memref.dealloc %m1 : memref<64x64xf32>
  memref.dealloc %m2 : memref<64x64xf32>
  memref.dealloc %pool : memref<32768xi8>
  return
}

// -----

// Two products that each fill the GPU (2.1 GFLOP) gain nothing side by side
// (they would share it): the function stays on one stream. At 64x64x64
// (@distinct above) they overlap.

// CHECK-LABEL: func.func private @large(
// CHECK-NOT:     bpttSide
// CHECK:         return
!dyn = memref<?x?xf32, strided<[?, ?], offset: ?>>

func.func private @bpttMatmulF32(!dyn, !dyn, !dyn, i32)

func.func private @large(%x: memref<1024x1024xf32>, %c: memref<1024x1024xf32>,
                         %d: memref<1024x1024xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<1024x1024xf32> to !dyn
  %cc = memref.cast %c : memref<1024x1024xf32> to !dyn
  %dd = memref.cast %d : memref<1024x1024xf32> to !dyn
  func.call @bpttMatmulF32(%a, %a, %cc, %mode) : (!dyn, !dyn, !dyn, i32) -> ()
  func.call @bpttMatmulF32(%a, %a, %dd, %mode) : (!dyn, !dyn, !dyn, i32) -> ()
  return
}

func.func @program(%x: memref<1024x1024xf32>, %c: memref<1024x1024xf32>,
                   %d: memref<1024x1024xf32>) attributes {rnn.plan = {}} {
  func.call @large(%x, %c, %d) : (memref<1024x1024xf32>, memref<1024x1024xf32>, memref<1024x1024xf32>) -> ()
  return
}

// -----

// More than 16 candidates: the choice is greedy (add the one that helps most
// while one helps). Eighteen independent products: about half go to the side
// stream, moved up to the function's start.

// CHECK-LABEL: func.func private @many(
// CHECK-NOT:     call @bpttMatmulF32
// CHECK:         call @bpttSideBegin()
// CHECK-COUNT-9: call @bpttMatmulF32
// CHECK-NOT:     call @bpttMatmulF32
// CHECK:         call @bpttSideEnd()
// CHECK-COUNT-9: call @bpttMatmulF32
// CHECK-NEXT:    call @bpttSideJoin()
// CHECK-NEXT:    return
func.func private @bpttMatmulF32(memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32)

func.func private @many(%x: memref<64x64xf32>, %o0: memref<64x64xf32>, %o1: memref<64x64xf32>, %o2: memref<64x64xf32>, %o3: memref<64x64xf32>, %o4: memref<64x64xf32>, %o5: memref<64x64xf32>, %o6: memref<64x64xf32>, %o7: memref<64x64xf32>, %o8: memref<64x64xf32>, %o9: memref<64x64xf32>, %o10: memref<64x64xf32>, %o11: memref<64x64xf32>, %o12: memref<64x64xf32>, %o13: memref<64x64xf32>, %o14: memref<64x64xf32>, %o15: memref<64x64xf32>, %o16: memref<64x64xf32>, %o17: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %c0 = memref.cast %o0 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c0, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c1 = memref.cast %o1 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c1, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c2 = memref.cast %o2 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c2, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c3 = memref.cast %o3 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c3, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c4 = memref.cast %o4 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c4, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c5 = memref.cast %o5 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c5, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c6 = memref.cast %o6 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c6, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c7 = memref.cast %o7 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c7, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c8 = memref.cast %o8 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c8, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c9 = memref.cast %o9 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c9, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c10 = memref.cast %o10 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c10, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c11 = memref.cast %o11 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c11, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c12 = memref.cast %o12 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c12, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c13 = memref.cast %o13 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c13, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c14 = memref.cast %o14 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c14, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c15 = memref.cast %o15 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c15, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c16 = memref.cast %o16 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c16, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  %c17 = memref.cast %o17 : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %c17, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func @program(%x: memref<64x64xf32>, %o0: memref<64x64xf32>, %o1: memref<64x64xf32>, %o2: memref<64x64xf32>, %o3: memref<64x64xf32>, %o4: memref<64x64xf32>, %o5: memref<64x64xf32>, %o6: memref<64x64xf32>, %o7: memref<64x64xf32>, %o8: memref<64x64xf32>, %o9: memref<64x64xf32>, %o10: memref<64x64xf32>, %o11: memref<64x64xf32>, %o12: memref<64x64xf32>, %o13: memref<64x64xf32>, %o14: memref<64x64xf32>, %o15: memref<64x64xf32>, %o16: memref<64x64xf32>, %o17: memref<64x64xf32>) attributes {rnn.plan = {}} {
  func.call @many(%x, %o0, %o1, %o2, %o3, %o4, %o5, %o6, %o7, %o8, %o9, %o10, %o11, %o12, %o13, %o14, %o15, %o16, %o17) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  return
}

// -----

// Left as they are: a chain (each op reads what the one before wrote); a
// function that calls other code; a loop; a public function, whose
// arguments may be anything.

// CHECK-NOT:   bpttSide
func.func private @bpttMatmulF32(memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32)
func.func private @other()

func.func private @chain(%x: memref<64x64xf32>, %y: memref<64x64xf32>,
                         %z: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %b = memref.cast %y : memref<64x64xf32> to memref<?x?xf32>
  %c = memref.cast %z : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %b, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%b, %a, %c, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func private @calls(%x: memref<64x64xf32>, %y: memref<64x64xf32>,
                         %z: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %b = memref.cast %y : memref<64x64xf32> to memref<?x?xf32>
  %c = memref.cast %z : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %b, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @other() : () -> ()
  func.call @bpttMatmulF32(%a, %a, %c, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func private @loop(%x: memref<64x64xf32>, %y: memref<64x64xf32>,
                        %z: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %c1 = arith.constant 1 : index
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %b = memref.cast %y : memref<64x64xf32> to memref<?x?xf32>
  %c = memref.cast %z : memref<64x64xf32> to memref<?x?xf32>
  scf.for %i = %c0 to %c2 step %c1 {
    func.call @bpttMatmulF32(%a, %a, %b, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  }
  func.call @bpttMatmulF32(%a, %a, %c, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func @public(%x: memref<64x64xf32>, %y: memref<64x64xf32>,
                  %z: memref<64x64xf32>) {
  %mode = arith.constant 0 : i32
  %a = memref.cast %x : memref<64x64xf32> to memref<?x?xf32>
  %b = memref.cast %y : memref<64x64xf32> to memref<?x?xf32>
  %c = memref.cast %z : memref<64x64xf32> to memref<?x?xf32>
  func.call @bpttMatmulF32(%a, %a, %b, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  func.call @bpttMatmulF32(%a, %a, %c, %mode) : (memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>, i32) -> ()
  return
}

func.func @program(%x: memref<64x64xf32>, %y: memref<64x64xf32>,
                   %z: memref<64x64xf32>) attributes {rnn.plan = {}} {
  func.call @chain(%x, %y, %z) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  func.call @calls(%x, %y, %z) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  func.call @loop(%x, %y, %z) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  func.call @public(%x, %y, %z) : (memref<64x64xf32>, memref<64x64xf32>, memref<64x64xf32>) -> ()
  return
}
