// REQUIRES: ptxas
// RUN: bptt-opt %S/lower-to-gpu.mlir -rnn-differentiate -rnn-remat -bptt-lower-to-gpu="format=bin" 2>/dev/null | FileCheck %s
// RUN: bptt-opt %S/lower-to-gpu.mlir -rnn-differentiate -rnn-remat -bptt-lower-to-gpu="format=fatbin" 2>/dev/null | FileCheck %s --check-prefix=FATBIN

// The same program as lower-to-gpu.mlir, assembled by ptxas into sm_90
// machine code (a cubin: an ELF image) and into a fat binary.

// CHECK: gpu.binary @elman_forward_kernel_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, {{.*}}bin = "\7FELF
// The fat binary's magic number is 0xBA55ED50.
// FATBIN: gpu.binary @elman_forward_kernel_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {{{.*}}}, "P\EDU\BA
