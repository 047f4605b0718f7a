// RUN: bptt-opt %s -rnn-differentiate -rnn-remat -bptt-lower-to-gpu="format=isa" 2>&1 | FileCheck %s
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat -bptt-lower-to-gpu="format=isa precision=tf32" 2>&1 | FileCheck %s --check-prefix=TF32
// RUN: bptt-opt %s -rnn-differentiate -rnn-remat=max-unrolled-runs=0 -bptt-lower-to-gpu="format=isa" 2>&1 | FileCheck %s --check-prefix=TABLE

// The GPU pipeline to PTX (no ptxas needed): an f32 Elman cell whose loss is
// half the squared norm of the new state, over T = 4 steps.

#id = affine_map<(d0, d1) -> (d0, d1)>
#all = affine_map<(d0, d1) -> ()>

rnn.cell @elman state(%h: tensor<2x3xf32>) input(%x: tensor<2x4xf32>)
    params(%wx: tensor<4x3xf32>, %wh: tensor<3x3xf32>, %b: tensor<3xf32>)
    -> (tensor<2x3xf32>, f32) {
  %e = tensor.empty() : tensor<2x3xf32>
  %bb = linalg.broadcast ins(%b : tensor<3xf32>) outs(%e : tensor<2x3xf32>) dimensions = [0]
  %a = linalg.matmul ins(%x, %wx : tensor<2x4xf32>, tensor<4x3xf32>)
      outs(%bb : tensor<2x3xf32>) -> tensor<2x3xf32>
  %a2 = linalg.matmul ins(%h, %wh : tensor<2x3xf32>, tensor<3x3xf32>)
      outs(%a : tensor<2x3xf32>) -> tensor<2x3xf32>
  %hn = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a2 : tensor<2x3xf32>) outs(%e : tensor<2x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    %t = math.tanh %v : f32
    linalg.yield %t : f32
  } -> tensor<2x3xf32>
  %zero = arith.constant 0.0 : f32
  %z = tensor.empty() : tensor<f32>
  %zf = linalg.fill ins(%zero : f32) outs(%z : tensor<f32>) -> tensor<f32>
  %s = linalg.generic {indexing_maps = [#id, #all], iterator_types = ["reduction", "reduction"]}
      ins(%hn : tensor<2x3xf32>) outs(%zf : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %n = arith.addf %acc, %sq : f32
    linalg.yield %n : f32
  } -> tensor<f32>
  %l = tensor.extract %s[] : tensor<f32>
  %c = arith.constant 0.5 : f32
  %loss = arith.mulf %l, %c : f32
  rnn.yield %hn, %loss : tensor<2x3xf32>, f32
}

func.func @train(%h0: tensor<2x3xf32>, %xs: tensor<4x2x4xf32>, %wx: tensor<4x3xf32>,
                 %wh: tensor<3x3xf32>, %b: tensor<3xf32>)
    -> (f32, tensor<2x3xf32>, tensor<4x2x4xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>) {
  %loss, %dh0, %dxs, %dwx, %dwh, %db = rnn.bptt @elman(%h0) over %xs params(%wx, %wh, %b)
      {memory_budget = 384 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<2x3xf32>, tensor<4x2x4xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>)
      -> (f32, tensor<2x3xf32>, tensor<4x2x4xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>)
  return %loss, %dh0, %dxs, %dwx, %dwh, %db
      : f32, tensor<2x3xf32>, tensor<4x2x4xf32>, tensor<4x3xf32>, tensor<3x3xf32>, tensor<3xf32>
}

// The tensor-level wrapper is not a GPU program.
// CHECK: warning: @train is not compiled for the GPU

// Matrix products call the runtime's cuBLAS product through MLIR's C
// interface, with mode 0 (fp32).
// CHECK: llvm.func private @bpttMatmulF32(
// CHECK: llvm.call @_mlir_ciface_bpttMatmulF32(

// A cell body's elementwise and reduction ops are kernels; device memory
// comes from the runtime's pool on the program stream, and every kernel is
// launched on it: the host never synchronises.
// CHECK-LABEL: llvm.func @elman_forward_kernel(
// CHECK-DAG: %[[MODE:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-DAG: %[[STREAM:.*]] = llvm.call @mgpuStreamCreate()
// CHECK: llvm.call @mgpuMemAlloc({{.*}}, %[[STREAM]], {{.*}})
// CHECK: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @elman_forward_kernel_kernel::@elman_forward_kernel_kernel
// CHECK: llvm.call @bpttMatmulF32({{.*}}, %[[MODE]])
// CHECK: llvm.call @mgpuMemFree({{.*}}, %[[STREAM]])
// CHECK-NOT: mgpuStreamSynchronize
// CHECK: llvm.return

// The kernels are PTX for sm_90.
// CHECK: gpu.binary @elman_forward_kernel_kernel
// CHECK-SAME: .target sm_90
// CHECK-SAME: .visible .entry elman_forward_kernel_kernel(

// A product into an accumulator that was just zeroed overwrites it instead
// (mode bit 2, cuBLAS's beta = 0): the zero fill is no kernel of its own.
// CHECK-LABEL: llvm.func @elman_backward_kernel(
// CHECK-DAG: %[[ACC:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-DAG: %[[OVERWRITE:.*]] = llvm.mlir.constant(2 : i32) : i32
// CHECK: llvm.call @bpttMatmulF32({{.*}}, %[[OVERWRITE]])
// CHECK: llvm.call @bpttMatmulF32({{.*}}, %[[ACC]])
// CHECK: llvm.return
// The backward step recomputes the loss (a sum over the state's six
// elements; rnn-differentiate's loss part), reduced by two threads that
// combine their partial sums with a warp shuffle (WarpReductions.cpp).
// CHECK: gpu.binary @elman_backward_kernel_kernel{{(_[0-9]+)?}} {{.*}}shfl.sync.bfly.b32

// CHECK-LABEL: llvm.func @train_bptt(
// CHECK-NOT: mgpuStreamSynchronize
// CHECK: llvm.func @_mlir_ciface_train_bptt(

// TF32-LABEL: llvm.func @elman_forward_kernel(
// TF32: llvm.mlir.constant(1 : i32) : i32
// TF32: llvm.call @bpttMatmulF32(
// TF32-LABEL: llvm.func @elman_backward_kernel(
// TF32: llvm.mlir.constant(3 : i32) : i32

// A schedule emitted as a table: the table is host memory and the dispatch
// loop runs on the host, enqueueing the steps.
// TABLE: llvm.mlir.global private constant @train_bptt_schedule(dense<
// TABLE-LABEL: llvm.func @train_bptt(
// TABLE: llvm.mlir.addressof @train_bptt_schedule
// TABLE: llvm.switch
// TABLE: llvm.call @train_bptt_forward_step(
// TABLE-NOT: mgpuStreamSynchronize
// TABLE: llvm.func @_mlir_ciface_train_bptt(

