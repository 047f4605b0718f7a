//===- GPUProgram.h - what the GPU passes know of a program -----*- C++ -*-===//
//
// Internal to lib/Conversion (the GPU pipeline): the names the planner and
// the library calls give a program, and how its memrefs relate.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_CONVERSION_GPUPROGRAM_H
#define BPTT_LIB_CONVERSION_GPUPROGRAM_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

#include <memory>

namespace bptt {

/// The attribute rnn-remat puts on a program (a function the runtime calls).
inline constexpr llvm::StringLiteral kPlanAttr = "rnn.plan";
/// The attribute of a schedule table (a global that lives on the host).
inline constexpr llvm::StringLiteral kScheduleAttr = "rnn.schedule";
/// The runtime's matrix product: (A, B, C, mode), docs/gpu-abi.md.
inline constexpr llvm::StringLiteral kMatmulFn = "bpttMatmulF32";
/// The runtime's product with an addend and a bias epilogue: (A, B, S, bias,
/// C, mode), docs/gpu-abi.md.
inline constexpr llvm::StringLiteral kMatmulBiasFn = "bpttMatmulBiasF32";

inline bool isProgram(mlir::func::FuncOp f) { return f->hasAttr(kPlanAttr); }

/// Every func.call of each function of `module`.
llvm::DenseMap<mlir::func::FuncOp, llvm::SmallVector<mlir::func::CallOp>>
callSites(mlir::ModuleOp module, mlir::SymbolTable &symbols);

/// Follows view-like ops and casts back to the memref they view.
mlir::Value viewRoot(mlir::Value v);

/// bptt-gpu-side-stream (SideStream.cpp).
std::unique_ptr<mlir::Pass> createSideStreamPass();

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_GPUPROGRAM_H
