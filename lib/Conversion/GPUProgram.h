//===- GPUProgram.h - what the GPU passes know of a program -----*- C++ -*-===//
//
// Internal to lib/Conversion (the GPU pipeline): the names the planner and
// the library calls give a program, and how its memrefs relate.
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_LIB_CONVERSION_GPUPROGRAM_H
#define BPTT_LIB_CONVERSION_GPUPROGRAM_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallVector.h"

#include <memory>
#include <optional>

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

/// Host tests of a memref's layout, as i1 values built at `b`'s insertion
/// point from its metadata `meta`: the step functions take their buffers
/// with dynamic strides, so a library call or kernel that needs a layout
/// tests it at run time (in the programs the tests hold).
/// Whether the innermost stride is 1 (a constant where the type says).
mlir::Value hasUnitInnerStride(mlir::OpBuilder &b, mlir::Location loc,
                               mlir::memref::ExtractStridedMetadataOp meta);
/// Whether `v`'s first element is at an address that is a multiple of
/// `bytes`.
mlir::Value startsAligned(mlir::OpBuilder &b, mlir::Location loc,
                          mlir::Value v,
                          mlir::memref::ExtractStridedMetadataOp meta,
                          int64_t bytes);

/// The memory an op of a host function reads and writes, as the view roots
/// of memrefs: a kernel's loads and stores (its own local buffers left
/// out), the runtime products' operands (bpttMatmulF32 reads A, B and C and
/// writes C; bpttMatmulBiasF32 reads A, B, the addend, the bias and C and
/// writes C), a linalg op on buffers reads its operands and writes its
/// outputs (in nested ops too), and any other op's declared effects. `known` is false where
/// that cannot be told: an op without declared effects, a call into other
/// code, an effect on no particular value outside a kernel.
struct MemoryAccess {
  llvm::SmallVector<mlir::Value> reads, writes;
  bool known = true;
};
MemoryAccess memoryAccess(mlir::Operation *op);

/// Which buffers a memref may be part of. A memref's bases are the
/// allocations and the program arguments it views, followed through views,
/// selects, and the arguments of private functions at all their call sites.
/// A program's arguments are distinct buffers (docs/gpu-abi.md), distinct
/// from every allocation. Two memrefs with no base in common do not overlap;
/// two views of one allocation (a pool's) are taken to overlap.
/// (MemoryProvenance.cpp; used by the side stream and the row chains of
/// the warp reductions.)
class MemoryProvenance {
public:
  explicit MemoryProvenance(mlir::ModuleOp module);

  /// False only when `a` and `b` are known not to overlap.
  bool mayAlias(mlir::Value a, mlir::Value b);
  /// Whether some memref of `xs` may overlap some memref of `ys`.
  bool mayOverlap(llvm::ArrayRef<mlir::Value> xs,
                  llvm::ArrayRef<mlir::Value> ys);
  /// Whether running `a` and `b` in the other order, or at the same time,
  /// may change what either does: one writes what the other reads or
  /// writes, or the memory of either is not known.
  bool mayConflict(const MemoryAccess &a, const MemoryAccess &b);

private:
  using Bases = llvm::SmallSetVector<mlir::Value, 4>;

  /// The bases of `v`, or nullopt when they cannot be known.
  std::optional<Bases> bases(mlir::Value v);
  std::optional<Bases> compute(mlir::Value v);

  llvm::DenseMap<mlir::func::FuncOp, llvm::SmallVector<mlir::func::CallOp>>
      callers;
  // Functions called only directly, and at least once.
  llvm::DenseSet<mlir::func::FuncOp> onlyCalledDirectly;
  llvm::DenseMap<mlir::Value, std::optional<Bases>> memo;
};


/// bptt-gpu-fuse-launches (FuseLaunches.cpp).
std::unique_ptr<mlir::Pass> createFuseLaunchesPass();

/// bptt-gpu-side-stream (SideStream.cpp).
std::unique_ptr<mlir::Pass> createSideStreamPass();

} // namespace bptt

#endif // BPTT_LIB_CONVERSION_GPUPROGRAM_H
