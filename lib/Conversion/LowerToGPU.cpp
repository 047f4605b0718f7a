//===- LowerToGPU.cpp - rnn-remat programs onto NVIDIA GPUs --------------===//
//
// The passes of `bptt-lower-to-gpu`. They take the buffer-level programs that
// rnn-remat emits (a host driver that calls one forward and one backward
// kernel function per step, over a pool of slots) and place them on a GPU:
//
//   bptt-gpu-select-programs  keep the rnn-remat programs, drop the rest;
//   bptt-gpu-scalar-results   scalar results of kernel functions (the loss)
//                             become device out-parameters;
//   bptt-gpu-library-calls    matrix products become calls of the runtime's
//                             cuBLAS product; copies become linalg.copy;
//                             reductions become warp-cooperative kernels
//                             (WarpReductions.cpp); loops of the remaining
//                             linalg ops are ordered with the parallel ones
//                             outermost;
//   bptt-gpu-tile-loops       parallel loops tiled into blocks of threads;
//   bptt-gpu-host-islands     what still touches device memory on the host
//                             (scalar code, reductions to a scalar) runs as a
//                             one-thread kernel;
//   bptt-gpu-async            device allocation, and every launch, allocation
//                             and free enqueued on the program stream.
//
// Device or host memory: every memref is device memory except those made by
// memref.alloca (the driver's byte counter) and the program's statistics
// argument (the last argument of a function with an `rnn.plan`), followed
// through views and calls. Generated host code therefore never reads device
// memory, and never has to wait for the GPU: a program is one stream of
// work, which is what lets the runtime capture it as a CUDA graph.
//
//===----------------------------------------------------------------------===//

#include "bptt/Conversion/Pipelines.h"

#include "GPUProgram.h"
#include "PipelineSteps.h"
#include "SmallProducts.h"
#include "WarpReductions.h"

#include "mlir/Transforms/RegionUtils.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/SetVector.h"

#include <array>
#include <functional>

using namespace mlir;
using bptt::callSites;
using bptt::isProgram;
using bptt::kMatmulBiasFn;
using bptt::kMatmulFn;
using bptt::kPlanAttr;
using bptt::kScheduleAttr;
using bptt::MemoryProvenance;
using bptt::viewRoot;

DenseMap<func::FuncOp, SmallVector<func::CallOp>>
bptt::callSites(ModuleOp module, SymbolTable &symbols) {
  DenseMap<func::FuncOp, SmallVector<func::CallOp>> callers;
  module.walk([&](func::CallOp call) {
    if (auto callee = symbols.lookup<func::FuncOp>(call.getCallee()))
      callers[callee].push_back(call);
  });
  return callers;
}

Value bptt::viewRoot(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto view = dyn_cast<ViewLikeOpInterface>(def)) {
      v = view.getViewSource();
      continue;
    }
    if (auto cast = dyn_cast<memref::CastOp>(def)) {
      v = cast.getSource();
      continue;
    }
    if (auto transpose = dyn_cast<memref::TransposeOp>(def)) {
      v = transpose.getIn();
      continue;
    }
    break;
  }
  return v;
}

Value bptt::hasUnitInnerStride(OpBuilder &b, Location loc,
                               memref::ExtractStridedMetadataOp meta) {
  OpFoldResult stride = meta.getConstifiedMixedStrides().back();
  if (std::optional<int64_t> known = getConstantIntValue(stride))
    return arith::ConstantIntOp::create(b, loc, *known == 1, 1);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                               cast<Value>(stride), one);
}

Value bptt::startsAligned(OpBuilder &b, Location loc, Value v,
                          memref::ExtractStridedMetadataOp meta,
                          int64_t bytes) {
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, v);
  Value elementBytes = arith::ConstantIndexOp::create(
      b, loc, cast<MemRefType>(v.getType()).getElementTypeBitWidth() / 8);
  Value alignment = arith::ConstantIndexOp::create(b, loc, bytes);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value offsetBytes = arith::MulIOp::create(
      b, loc,
      getValueOrCreateConstantIndexOp(b, loc, meta.getConstifiedMixedOffset()),
      elementBytes);
  Value address = arith::AddIOp::create(b, loc, base, offsetBytes);
  Value rem = arith::RemUIOp::create(b, loc, address, alignment);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, rem, zero);
}

namespace {

//===----------------------------------------------------------------------===//
// Where memory lives
//===----------------------------------------------------------------------===//

/// The host memrefs of a module: allocas, the programs' statistics
/// arguments, the programs' schedule tables (globals rnn-remat marks with
/// `rnn.schedule`), and block arguments of private functions that every call
/// site feeds with host memory.
class MemoryPlacement {
public:
  explicit MemoryPlacement(ModuleOp module) {
    SymbolTable symbols(module);
    for (auto global : module.getOps<memref::GlobalOp>())
      if (global->hasAttr(kScheduleAttr))
        hostGlobals.insert(global.getSymNameAttr());
    DenseMap<func::FuncOp, SmallVector<func::CallOp>> callers =
        callSites(module, symbols);
    for (func::FuncOp f : module.getOps<func::FuncOp>())
      if (isProgram(f) && !f.isExternal() && f.getNumArguments() > 0)
        hostArgs.insert(f.getArgument(f.getNumArguments() - 1));
    // Fixed point: an argument is host memory when every caller passes host
    // memory for it.
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto &[callee, calls] : callers) {
        if (callee.isExternal() || callee.isPublic())
          continue;
        for (BlockArgument arg : callee.getArguments()) {
          if (!isa<MemRefType>(arg.getType()) || hostArgs.contains(arg))
            continue;
          bool allHost = llvm::all_of(calls, [&](func::CallOp call) {
            return isHost(call.getOperand(arg.getArgNumber()));
          });
          if (allHost) {
            hostArgs.insert(arg);
            changed = true;
          }
        }
      }
    }
  }

  bool isHost(Value memref) const {
    Value root = viewRoot(memref);
    if (root.getDefiningOp<memref::AllocaOp>())
      return true;
    if (auto global = root.getDefiningOp<memref::GetGlobalOp>())
      return hostGlobals.contains(global.getNameAttr().getAttr());
    return hostArgs.contains(root);
  }
  bool isDevice(Value memref) const {
    return isa<MemRefType>(memref.getType()) && !isHost(memref);
  }

private:
  llvm::DenseSet<Value> hostArgs;
  llvm::DenseSet<StringAttr> hostGlobals;
};

//===----------------------------------------------------------------------===//
// bptt-gpu-select-programs
//===----------------------------------------------------------------------===//

struct SelectProgramsPass
    : PassWrapper<SelectProgramsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SelectProgramsPass)
  StringRef getArgument() const override { return "bptt-gpu-select-programs"; }
  StringRef getDescription() const override {
    return "Keep the rnn-remat programs for the GPU, drop other functions";
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool any = false;
    for (func::FuncOp f : module.getOps<func::FuncOp>()) {
      if (isProgram(f)) {
        any = true;
        // The runner calls programs through MLIR's C interface.
        f->setAttr("llvm.emit_c_interface", UnitAttr::get(&getContext()));
        continue;
      }
      if (f.isPublic() && !f.isExternal()) {
        f.emitWarning() << "@" << f.getSymName()
                        << " is not compiled for the GPU: only the BPTT "
                           "programs of rnn-remat (functions with an "
                           "rnn.plan) are; it is dropped";
        f.setPrivate();
      }
    }
    if (!any) {
      module.emitError()
          << "no BPTT program to compile for the GPU: the GPU pipeline takes "
             "the output of rnn-differentiate and rnn-remat (functions with "
             "an rnn.plan attribute), and this module has none";
      return signalPassFailure();
    }
  }
};

//===----------------------------------------------------------------------===//
// bptt-gpu-scalar-results
//===----------------------------------------------------------------------===//

/// A private function's float results become rank-0 out-parameters; each
/// caller allocates one, and every use of the old result reads it right where
/// it is used, so the read lands in the same device code as its user.
struct ScalarResultsPass
    : PassWrapper<ScalarResultsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ScalarResultsPass)
  StringRef getArgument() const override { return "bptt-gpu-scalar-results"; }
  StringRef getDescription() const override {
    return "Scalar float results of private functions become device "
           "out-parameters";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<memref::MemRefDialect>();
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    DenseMap<func::FuncOp, SmallVector<func::CallOp>> callers =
        callSites(module, symbols);
    for (func::FuncOp f : llvm::to_vector(module.getOps<func::FuncOp>())) {
      if (f.isExternal() || f.isPublic())
        continue;
      FunctionType type = f.getFunctionType();
      SmallVector<unsigned> scalars;
      for (auto [i, t] : llvm::enumerate(type.getResults()))
        if (isa<FloatType>(t))
          scalars.push_back(i);
      if (scalars.empty())
        continue;
      if (auto uses = symbols.getSymbolUses(f, module)) {
        for (const SymbolTable::SymbolUse &use : *uses)
          if (!isa<func::CallOp>(use.getUser())) {
            use.getUser()->emitError()
                << "the GPU pipeline needs every use of @" << f.getSymName()
                << " to be a call (its scalar results become out-parameters)";
            return signalPassFailure();
          }
      }
      rewrite(f, scalars, callers[f]);
    }
  }

  static void rewrite(func::FuncOp f, ArrayRef<unsigned> scalars,
                      ArrayRef<func::CallOp> calls) {
    FunctionType type = f.getFunctionType();
    llvm::SmallBitVector isScalar(type.getNumResults());
    for (unsigned i : scalars)
      isScalar.set(i);
    SmallVector<Type> outTypes, keptResults;
    for (auto [i, t] : llvm::enumerate(type.getResults())) {
      if (isScalar[i])
        outTypes.push_back(MemRefType::get({}, t));
      else
        keptResults.push_back(t);
    }
    // Callee: new trailing arguments, stores at every return.
    unsigned firstOut = f.getNumArguments();
    Block &entry = f.getBody().front();
    for (Type t : outTypes)
      entry.addArgument(t, f.getLoc());
    SmallVector<Type> argTypes(type.getInputs());
    argTypes.append(outTypes);
    f.setType(FunctionType::get(f.getContext(), argTypes, keptResults));
    f.walk([&](func::ReturnOp ret) {
      OpBuilder b(ret);
      SmallVector<Value> kept;
      unsigned out = firstOut;
      for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
        if (!isScalar[i]) {
          kept.push_back(v);
          continue;
        }
        // Stored as soon as it is computed: nothing else in the function
        // touches the new out-parameter, and a store next to the code that
        // computes the value joins its one-thread kernel (bptt-gpu-host-
        // islands) instead of being a kernel of its own at the return.
        OpBuilder at = b;
        if (Operation *def = v.getDefiningOp();
            def && def->getBlock() == ret->getBlock())
          at.setInsertionPointAfter(def);
        memref::StoreOp::create(at, ret.getLoc(), v, entry.getArgument(out++));
      }
      func::ReturnOp::create(b, ret.getLoc(), kept);
      ret.erase();
    });
    // Callers: an out-buffer per scalar, read where the result was used.
    for (func::CallOp call : calls) {
      OpBuilder b(call);
      SmallVector<Value> operands(call.getOperands());
      SmallVector<Value> buffers;
      for (Type t : outTypes) {
        buffers.push_back(
            memref::AllocOp::create(b, call.getLoc(), cast<MemRefType>(t)));
        operands.push_back(buffers.back());
      }
      auto newCall = func::CallOp::create(b, call.getLoc(), f.getSymName(),
                                          keptResults, operands);
      unsigned kept = 0, out = 0;
      for (auto [i, result] : llvm::enumerate(call.getResults())) {
        if (!isScalar[i]) {
          result.replaceAllUsesWith(newCall.getResult(kept++));
          continue;
        }
        Value buffer = buffers[out++];
        for (OpOperand &use : llvm::make_early_inc_range(result.getUses())) {
          OpBuilder ub(use.getOwner());
          use.set(memref::LoadOp::create(ub, call.getLoc(), buffer));
        }
      }
      call.erase();
    }
  }
};

//===----------------------------------------------------------------------===//
// bptt-gpu-library-calls
//===----------------------------------------------------------------------===//

/// Precision of matrix products, bit 0 of the runtime's `mode` argument.
enum class MatmulMode : int32_t { F32 = 0, TF32 = 1 };
/// Bit 1 of `mode`: C = A·B instead of C += A·B (cuBLAS's beta = 0), for a
/// product whose accumulator was just filled with zeros: the fill goes. For
/// bpttMatmulBiasF32 the same bit says there is no addend S.
static constexpr int32_t kMatmulOverwrite = 2;

/// What a product's accumulator was set to right before it, by an
/// elementwise op the product can absorb: `bias` broadcast over the rows,
/// plus `addend` (a matrix of the accumulator's shape) or not.
struct ProductSeed {
  linalg::GenericOp op;
  Value bias;
  Value addend; // null: the seed is the bias alone
};

struct LibraryCallsPass
    : PassWrapper<LibraryCallsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(LibraryCallsPass)
  LibraryCallsPass() = default;
  LibraryCallsPass(const LibraryCallsPass &other) : PassWrapper(other) {}
  explicit LibraryCallsPass(StringRef precision) { this->precision = precision.str(); }
  StringRef getArgument() const override { return "bptt-gpu-library-calls"; }
  StringRef getDescription() const override {
    return "Matrix products to the runtime's cuBLAS product, copies to "
           "linalg.copy, parallel loops outermost";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<memref::MemRefDialect, linalg::LinalgDialect,
                    arith::ArithDialect, func::FuncDialect, gpu::GPUDialect,
                    scf::SCFDialect, affine::AffineDialect,
                    vector::VectorDialect>();
  }
  Option<std::string> precision{*this, "precision",
                                llvm::cl::desc("f32 or tf32 products"),
                                llvm::cl::init("f32")};

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MatmulMode mode;
    if (precision == "f32")
      mode = MatmulMode::F32;
    else if (precision == "tf32")
      mode = MatmulMode::TF32;
    else {
      module.emitError() << "unknown precision '" << precision
                         << "': the GPU pipeline supports f32 and tf32";
      return signalPassFailure();
    }
    IRRewriter rewriter(&getContext());

    SmallVector<memref::CopyOp> copies;
    module.walk([&](memref::CopyOp c) { copies.push_back(c); });
    for (memref::CopyOp c : copies) {
      rewriter.setInsertionPoint(c);
      // A copy of a buffer that holds one filled value is that fill (which
      // a reduction into the target may then absorb).
      if (linalg::FillOp fill = fillReaching(c, c.getSource())) {
        rewriter.replaceOpWithNewOp<linalg::FillOp>(c, fill.getInputs()[0],
                                                    c.getTarget());
        continue;
      }
      rewriter.replaceOpWithNewOp<linalg::CopyOp>(c, c.getSource(),
                                                  c.getTarget());
    }

    MemoryPlacement placement(module);
    auto onHost = [&](linalg::LinalgOp op) {
      return llvm::any_of(op->getOperands(), [&](Value v) {
        return isa<MemRefType>(v.getType()) && placement.isHost(v);
      });
    };
    // Products first, while the zero fills before them are still fills.
    SmallVector<linalg::LinalgOp> products;
    module.walk([&](linalg::LinalgOp op) {
      if (isMatrixProduct(op) && !onHost(op))
        products.push_back(op);
    });
    // Short contractions become generated kernels, each group of
    // independent ones one kernel, with the products themselves kept for
    // operands of another layout (the library calls below).
    {
      MemoryProvenance provenance(module);
      SmallVector<linalg::LinalgOp> small;
      for (linalg::LinalgOp op : products)
        if (bptt::isSmallProduct(op, provenance))
          small.push_back(op);
      for (const SmallVector<linalg::LinalgOp> &group :
           bptt::smallProductGroups(small, provenance))
        bptt::lowerSmallProducts(rewriter, group);
    }
    for (linalg::LinalgOp op : products) {
      if (std::optional<ProductSeed> seed = seedJustBefore(op)) {
        if (failed(toBiasCall(rewriter, module, op, *seed, mode)))
          return signalPassFailure();
        continue;
      }
      if (failed(toLibraryCall(rewriter, module, op, mode)))
        return signalPassFailure();
    }
    SmallVector<linalg::LinalgOp> ops;
    module.walk([&](linalg::LinalgOp op) { ops.push_back(op); });
    MemoryProvenance provenance(module);
    llvm::DenseSet<Operation *> lowered; // erased with a row chain
    for (linalg::LinalgOp op : ops) {
      if (lowered.contains(op))
        continue;
      // Host memory (the statistics) stays with host loops.
      if (onHost(op)) {
        rewriter.setInsertionPoint(op);
        if (failed(linalg::linalgOpToLoops(rewriter, op)))
          return signalPassFailure();
        rewriter.eraseOp(op);
        continue;
      }
      if (auto generic = dyn_cast<linalg::GenericOp>(op.getOperation())) {
        SmallVector<linalg::FillOp> fills = outputFills(generic);
        // The longest start of the chain that one kernel can run.
        SmallVector<bptt::RowChainLink> chain =
            rowChain(generic, fills, provenance, onHost);
        while (chain.size() > 1 &&
               failed(bptt::lowerRowChain(rewriter, chain)))
          chain.pop_back();
        if (chain.size() > 1) {
          // Erased with the chain: its later links and the fills they
          // absorbed, which come after the lead.
          for (const bptt::RowChainLink &link : llvm::drop_begin(chain)) {
            lowered.insert(link.op);
            for (linalg::FillOp fill : link.fills)
              if (fill)
                lowered.insert(fill);
          }
          continue;
        }
        if (succeeded(bptt::lowerToWarpReduction(rewriter, generic, fills)))
          continue;
      }
      parallelLoopsOutermost(rewriter, op);
    }
  }

  /// The fills that `generic`'s outputs still hold when it runs (null where
  /// none), as lowerToWarpReduction takes them.
  static SmallVector<linalg::FillOp> outputFills(linalg::GenericOp generic) {
    SmallVector<linalg::FillOp> fills;
    for (Value init : generic.getDpsInits())
      fills.push_back(fillReaching(generic, init));
    // Two outputs filled by the same fill (one buffer) cannot both absorb
    // it.
    for (unsigned i = 0; i < fills.size(); ++i)
      for (unsigned j = 0; j < i; ++j)
        if (fills[i] && fills[i] == fills[j])
          fills[i] = fills[j] = nullptr;
    return fills;
  }

  /// The row chain that reduction `lead` starts (bptt::lowerRowChain): the
  /// generics after it in its block, up to the first op that is neither a
  /// generic, a fill nor free of memory effects, each of which the chain
  /// can take. The kernel runs where the last link was, so every fill
  /// skipped on the way is either absorbed by a later link or touches no
  /// memory of the links before it, and no two memrefs of the chain that
  /// are not the same buffer may overlap (`provenance`). Just `lead` when no
  /// later op can join.
  template <typename OnHost>
  static SmallVector<bptt::RowChainLink>
  rowChain(linalg::GenericOp lead, ArrayRef<linalg::FillOp> leadFills,
           MemoryProvenance &provenance, OnHost onHost) {
    SmallVector<bptt::RowChainLink> chain{
        {lead, SmallVector<linalg::FillOp>(leadFills)}};
    if (lead.getNumReductionLoops() == 0)
      return chain;
    auto memrefsOf = [](Operation *op) {
      SmallVector<Value> memrefs;
      for (Value v : op->getOperands())
        if (isa<MemRefType>(v.getType()))
          memrefs.push_back(v);
      return memrefs;
    };
    // Distinct buffers of the chain so far, and fills skipped on the way.
    SmallVector<Value> touched = memrefsOf(lead);
    SmallVector<linalg::FillOp> skippedFills;
    auto overlaps = [&](Value v, ArrayRef<Value> others) {
      return llvm::any_of(others, [&](Value o) {
        return viewRoot(o) != viewRoot(v) && provenance.mayAlias(o, v);
      });
    };
    for (Operation *next = lead->getNextNode(); next;
         next = next->getNextNode()) {
      if (next->getNumRegions() == 0 && isMemoryEffectFree(next))
        continue;
      if (auto fill = dyn_cast<linalg::FillOp>(next)) {
        if (!fill.hasPureBufferSemantics())
          break;
        skippedFills.push_back(fill);
        continue;
      }
      auto generic = dyn_cast<linalg::GenericOp>(next);
      if (!generic || onHost(cast<linalg::LinalgOp>(next)))
        break;
      SmallVector<linalg::FillOp> fills = outputFills(generic);
      SmallVector<Value> own = memrefsOf(generic);
      if (llvm::any_of(own, [&](Value v) { return overlaps(v, touched); }) ||
          llvm::any_of(own, [&](Value v) { return overlaps(v, own); }))
        break;
      // A fill skipped so far runs before the kernel: it may not touch what
      // the links before it touch, unless this link absorbs it.
      bool movable = true;
      for (linalg::FillOp fill : skippedFills) {
        if (llvm::is_contained(fills, fill))
          continue;
        Value buffer = fill.getDpsInits()[0];
        if (provenance.mayOverlap(touched, buffer) ||
            provenance.mayOverlap(own, buffer))
          movable = false;
      }
      if (!movable)
        break;
      chain.push_back({generic, fills});
      touched.append(own);
      skippedFills.clear();
    }
    // The lead alone may have overlapping memrefs of its own: it then runs
    // alone, as it would have.
    SmallVector<Value> leadMemrefs = memrefsOf(lead);
    if (chain.size() > 1 && llvm::any_of(leadMemrefs, [&](Value v) {
          return overlaps(v, leadMemrefs);
        }))
      chain.resize(1);
    return chain;
  }

  static bool isMatrixProduct(linalg::LinalgOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
        op.getNumDpsInits() != 1 || !linalg::isaContractionOpInterface(op))
      return false;
    FailureOr<linalg::ContractionDimensions> dims =
        linalg::inferContractionDims(op);
    if (failed(dims) || !dims->batch.empty() || dims->m.size() != 1 ||
        dims->n.size() != 1 || dims->k.size() != 1)
      return false;
    for (OpOperand &operand : op->getOpOperands()) {
      auto t = dyn_cast<MemRefType>(operand.get().getType());
      if (!t || t.getRank() != 2)
        return false;
      if (!op.getMatchingIndexingMap(&operand).isProjectedPermutation())
        return false;
    }
    return true;
  }

  static LogicalResult checkF32(linalg::LinalgOp op) {
    for (Value v : op->getOperands())
      if (!cast<MemRefType>(v.getType()).getElementType().isF32())
        return op->emitError()
               << "the GPU pipeline supports f32 matrix products; this one "
                  "has element type "
               << cast<MemRefType>(v.getType()).getElementType();
    return success();
  }

  /// memref<?x?xf32, strided<[?, ?], offset: ?>>, the runtime's 2-D view.
  static MemRefType dynamicMatrixType(MLIRContext *ctx) {
    return MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic}, Float32Type::get(ctx),
        StridedLayoutAttr::get(ctx, ShapedType::kDynamic,
                               {ShapedType::kDynamic, ShapedType::kDynamic}));
  }

  /// A, B and C of a product, each viewed (transposed where its map says
  /// so) as the M x K, K x N and M x N matrix and cast to the runtime's
  /// view type, at the rewriter's insertion point.
  static std::array<Value, 3> orientedOperands(IRRewriter &rewriter,
                                               linalg::LinalgOp op) {
    linalg::ContractionDimensions dims = *linalg::inferContractionDims(op);
    Location loc = op.getLoc();
    MLIRContext *ctx = op->getContext();
    MemRefType dynamic = dynamicMatrixType(ctx);
    auto oriented = [&](OpOperand &operand, unsigned row, unsigned col) {
      AffineMap map = op.getMatchingIndexingMap(&operand);
      Value v = operand.get();
      auto pos = [&](unsigned i) {
        return cast<AffineDimExpr>(map.getResult(i)).getPosition();
      };
      if (pos(0) == col && pos(1) == row) {
        AffineMap perm = AffineMap::getPermutationMap(ArrayRef<unsigned>{1, 0}, ctx);
        v = memref::TransposeOp::create(rewriter, loc, v,
                                        AffineMapAttr::get(perm));
      } else {
        assert(pos(0) == row && pos(1) == col && "not a matrix operand");
      }
      return memref::CastOp::create(rewriter, loc, dynamic, v).getResult();
    };
    unsigned m = dims.m[0], n = dims.n[0], k = dims.k[0];
    return {oriented(*op.getDpsInputOperand(0), m, k),
            oriented(*op.getDpsInputOperand(1), k, n),
            oriented(*op.getDpsInitOperand(0), m, n)};
  }

  /// C[m, n] += A[m, k] B[k, n] as `bpttMatmulF32(A, B, C, mode)`, each
  /// operand viewed (transposed where its map says so) in that orientation;
  /// the runtime reads the orientation from the strides.
  static LogicalResult toLibraryCall(IRRewriter &rewriter, ModuleOp module,
                                     linalg::LinalgOp op, MatmulMode mode) {
    if (failed(checkF32(op)))
      return failure();
    int32_t modeBits = static_cast<int32_t>(mode);
    if (linalg::FillOp zeroing = zeroFillJustBefore(op)) {
      rewriter.eraseOp(zeroing);
      modeBits |= kMatmulOverwrite;
    }
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);
    auto [a, b, c] = orientedOperands(rewriter, op);
    Value modeValue = arith::ConstantIntOp::create(rewriter, loc, modeBits, 32);
    MemRefType dynamic = dynamicMatrixType(op->getContext());
    declareRuntimeFn(rewriter, module, kMatmulFn,
                     {dynamic, dynamic, dynamic, rewriter.getI32Type()});
    func::CallOp::create(rewriter, loc, kMatmulFn, TypeRange{},
                         ValueRange{a, b, c, modeValue});
    rewriter.eraseOp(op);
    return success();
  }

  /// The elementwise op right before `op` that sets `op`'s whole
  /// accumulator C to bias[j] or S[i, j] + bias[j] (the forward step's
  /// projections, seeded with their biases, and the logits), if any: the
  /// product then adds it in its epilogue (bpttMatmulBiasF32) and the
  /// op's kernel goes. Only where C is written in full by that op alone,
  /// nothing else reads it, and every extent is known non-zero (as for a
  /// zero fill).
  static std::optional<ProductSeed> seedJustBefore(linalg::LinalgOp op) {
    auto generic = dyn_cast_or_null<linalg::GenericOp>(op->getPrevNode());
    Value c = op.getDpsInitOperand(0)->get();
    if (!generic || !generic.hasPureBufferSemantics() ||
        generic.getNumDpsInits() != 1 || generic.getDpsInits()[0] != c ||
        generic.getNumLoops() != 2 ||
        generic.getNumParallelLoops() != 2 ||
        !generic.getMatchingIndexingMap(generic.getDpsInitOperand(0))
             .isIdentity())
      return std::nullopt;
    for (Value v : op->getOperands()) {
      auto t = cast<MemRefType>(v.getType());
      if (!t.hasStaticShape() || t.getNumElements() == 0)
        return std::nullopt;
    }
    Block &body = generic.getRegion().front();
    BlockArgument old = body.getArgument(generic.getNumDpsInputs());
    auto yield = cast<linalg::YieldOp>(body.getTerminator());
    Value yielded = yield.getValues()[0];
    // The yielded value: one input, or the sum of two, read directly.
    SmallVector<BlockArgument> terms;
    if (auto arg = dyn_cast<BlockArgument>(yielded)) {
      terms.push_back(arg);
    } else if (auto add = yielded.getDefiningOp<arith::AddFOp>()) {
      if (&body.front() != add.getOperation() ||
          add->getNextNode() != yield.getOperation())
        return std::nullopt;
      for (Value v : add->getOperands()) {
        auto arg = dyn_cast<BlockArgument>(v);
        if (!arg)
          return std::nullopt;
        terms.push_back(arg);
      }
    } else {
      return std::nullopt;
    }
    if (terms.size() == 2 && terms[0] == terms[1])
      return std::nullopt;
    ProductSeed seed{generic, Value(), Value()};
    MLIRContext *ctx = op->getContext();
    AffineMap rowBroadcast = AffineMap::get(
        2, 0, {getAffineDimExpr(1, ctx)}, ctx);
    for (BlockArgument arg : terms) {
      // C's old value: the addend is C itself.
      if (arg == old && !seed.addend) {
        seed.addend = c;
        continue;
      }
      if (arg.getOwner() != &body ||
          arg.getArgNumber() >= generic.getNumDpsInputs())
        return std::nullopt;
      OpOperand *operand = generic.getDpsInputOperand(arg.getArgNumber());
      AffineMap map = generic.getMatchingIndexingMap(operand);
      auto type = dyn_cast<MemRefType>(operand->get().getType());
      if (!type || !type.getElementType().isF32())
        return std::nullopt;
      if (map == rowBroadcast && !seed.bias) {
        seed.bias = operand->get();
      } else if (map.isIdentity() && !seed.addend) {
        // The addend is read while C is written: it must be C itself or
        // memory C does not view.
        Value addend = operand->get();
        if (addend != c && viewRoot(addend) == viewRoot(c))
          return std::nullopt;
        seed.addend = addend;
      } else {
        return std::nullopt;
      }
    }
    if (!seed.bias)
      return std::nullopt;
    return seed;
  }

  /// The product and its seed as
  ///   scf.if (C and S row-major, the bias contiguous and 16-byte aligned)
  ///     bpttMatmulBiasF32(A, B, S or C, bias, C, mode)
  ///   else
  ///     the seed op, then bpttMatmulF32(A, B, C, mode)
  /// The layouts are checked on the host from the views' metadata, since
  /// the step functions take their buffers with dynamic strides; in the
  /// programs the test is always true and costs a few host instructions.
  static LogicalResult toBiasCall(IRRewriter &rewriter, ModuleOp module,
                                  linalg::LinalgOp op,
                                  const ProductSeed &seed, MatmulMode mode) {
    if (failed(checkF32(op)))
      return failure();
    Location loc = op.getLoc();
    MLIRContext *ctx = op->getContext();
    rewriter.setInsertionPoint(seed.op);
    Value c = op.getDpsInitOperand(0)->get();
    auto metadata = [&](Value v) {
      return memref::ExtractStridedMetadataOp::create(rewriter, loc, v);
    };
    // Stride 1 along the last dimension (C and S row-major, the bias
    // contiguous), constant where the type says (the canonicalizer then
    // drops the unused metadata), and the bias 16-byte aligned.
    // (An addend that is C itself, its old value, is C's view.)
    bool addendIsC = seed.addend == c;
    Value ok = bptt::hasUnitInnerStride(rewriter, loc, metadata(c));
    if (seed.addend && !addendIsC)
      ok = arith::AndIOp::create(
          rewriter, loc, ok,
          bptt::hasUnitInnerStride(rewriter, loc, metadata(seed.addend)));
    {
      auto meta = metadata(seed.bias);
      ok = arith::AndIOp::create(rewriter, loc, ok,
                                 bptt::hasUnitInnerStride(rewriter, loc, meta));
      ok = arith::AndIOp::create(
          rewriter, loc, ok,
          bptt::startsAligned(rewriter, loc, seed.bias, meta, 16));
    }
    auto branch = scf::IfOp::create(rewriter, loc, ok, /*withElseRegion=*/true);

    // Then: the one call.
    rewriter.setInsertionPointToStart(branch.thenBlock());
    auto [a, b, cView] = orientedOperands(rewriter, op);
    MemRefType dynamic = dynamicMatrixType(ctx);
    Value s = seed.addend && !addendIsC
                  ? memref::CastOp::create(rewriter, loc, dynamic, seed.addend)
                        .getResult()
                  : cView;
    auto vectorType = MemRefType::get(
        {ShapedType::kDynamic}, rewriter.getF32Type(),
        StridedLayoutAttr::get(ctx, ShapedType::kDynamic,
                               {ShapedType::kDynamic}));
    Value bias = memref::CastOp::create(rewriter, loc, vectorType, seed.bias);
    int32_t modeBits =
        static_cast<int32_t>(mode) | (seed.addend ? 0 : kMatmulOverwrite);
    Value modeValue = arith::ConstantIntOp::create(rewriter, loc, modeBits, 32);
    declareRuntimeFn(rewriter, module, kMatmulBiasFn,
                     {dynamic, dynamic, dynamic, vectorType, dynamic,
                      rewriter.getI32Type()});
    func::CallOp::create(rewriter, loc, kMatmulBiasFn, TypeRange{},
                         ValueRange{a, b, s, bias, cView, modeValue});

    // Else: what there was.
    Block *otherwise = branch.elseBlock();
    seed.op->moveBefore(otherwise->getTerminator());
    op->moveBefore(otherwise->getTerminator());
    return toLibraryCall(rewriter, module, op, mode);
  }

  /// The linalg.fill whose value `buffer` (the whole of it) still holds when
  /// `user` runs. For a fresh allocation (which nothing but its own views can
  /// alias): the latest one before `user` with nothing in between touching
  /// the buffer. For any other buffer, which may alias others: the latest
  /// one with only memory-free ops (views, constants) and fills of the same
  /// value in between, which leave it holding that value whatever they
  /// alias (a step's loss statistics: three fills, then their reduction).
  /// Null if there is none.
  static linalg::FillOp fillReaching(Operation *user, Value buffer) {
    bool fresh = buffer.getDefiningOp<memref::AllocOp>() != nullptr;
    SmallVector<Value> skippedValues;
    auto sameValue = [](Value a, Value b) {
      if (a == b)
        return true;
      Attribute x, y;
      return matchPattern(a, m_Constant(&x)) &&
             matchPattern(b, m_Constant(&y)) && x == y;
    };
    for (Operation *op = user->getPrevNode(); op; op = op->getPrevNode()) {
      auto fill = dyn_cast<linalg::FillOp>(op);
      if (fill && fill.hasPureBufferSemantics() &&
          fill.getDpsInits()[0] == buffer) {
        Value value = fill.getInputs()[0];
        if (llvm::all_of(skippedValues,
                         [&](Value v) { return sameValue(v, value); }))
          return fill;
        return nullptr;
      }
      if (!fresh) {
        if (fill && fill.hasPureBufferSemantics()) {
          skippedValues.push_back(fill.getInputs()[0]);
          continue;
        }
        if (op->getNumRegions() == 0 && isMemoryEffectFree(op))
          continue;
        return nullptr;
      }
      WalkResult touches = op->walk([&](Operation *inner) {
        for (Value v : inner->getOperands())
          if (isa<MemRefType>(v.getType()) && viewRoot(v) == buffer)
            return WalkResult::interrupt();
        return WalkResult::advance();
      });
      if (touches.wasInterrupted())
        return nullptr;
    }
    return nullptr;
  }

  /// The fill with zero of `op`'s accumulator right before it, if any
  /// (rnn-differentiate seeds every fresh product with one).
  static linalg::FillOp zeroFillJustBefore(linalg::LinalgOp op) {
    auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
    if (!fill || !fill.hasPureBufferSemantics() ||
        fill.getDpsInits()[0] != op.getDpsInitOperand(0)->get() ||
        !matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
      return nullptr;
    // With an empty contraction the runtime makes no call, so C would keep
    // what it held: the fill stays unless every extent is known non-zero.
    for (Value v : op->getOperands()) {
      auto t = cast<MemRefType>(v.getType());
      if (!t.hasStaticShape() || t.getNumElements() == 0)
        return nullptr;
    }
    return fill;
  }

  static void declareRuntimeFn(OpBuilder &builder, ModuleOp module,
                               StringRef name, ArrayRef<Type> arguments) {
    if (module.lookupSymbol(name))
      return;
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(module.getBody());
    auto type = builder.getFunctionType(arguments, {});
    auto fn = func::FuncOp::create(builder, module.getLoc(), name, type);
    fn.setPrivate();
    fn->setAttr("llvm.emit_c_interface", builder.getUnitAttr());
  }

  /// Reorders a generic's loops so the parallel ones come first: lowered to
  /// loops, they form one scf.parallel (a kernel) with the reductions
  /// running sequentially inside each thread, instead of a host loop that
  /// launches a kernel per reduction index.
  static void parallelLoopsOutermost(IRRewriter &rewriter, linalg::LinalgOp op) {
    SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
    SmallVector<unsigned> order;
    for (unsigned d = 0; d < iters.size(); ++d)
      if (iters[d] == utils::IteratorType::parallel)
        order.push_back(d);
    for (unsigned d = 0; d < iters.size(); ++d)
      if (iters[d] != utils::IteratorType::parallel)
        order.push_back(d);
    bool identity = true;
    for (unsigned d = 0; d < order.size(); ++d)
      identity &= order[d] == d;
    if (identity)
      return;
    bptt::reorderLoops(rewriter, op, order);
  }
};

//===----------------------------------------------------------------------===//
// bptt-gpu-tile-loops
//===----------------------------------------------------------------------===//

/// Tiles each outermost scf.parallel so that its innermost dimension is
/// split into blocks of up to `kThreads` threads and every other dimension
/// spans blocks, and maps both loops to the hardware itself (the greedy
/// mapper would put a rank-3 loop's threads on blockDim.z, which holds at
/// most 64, and a dimension's blocks on gridDim.y or z whatever its size):
///
///   - the block's threads are the innermost dimension, on x; the tile's
///     other dimensions are one iteration each, run in place;
///   - of the grid, the dimension with the most blocks (or an unknown
///     number) goes on x, which holds 2^31 - 1; the next two, in loop order,
///     on y and z when they are known to fit in 65535; any other runs as a
///     loop inside the kernel.
struct TileLoopsPass : PassWrapper<TileLoopsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(TileLoopsPass)
  static constexpr int64_t kThreads = 256;
  static constexpr int64_t kMaxGridYZ = 65535;
  StringRef getArgument() const override { return "bptt-gpu-tile-loops"; }
  StringRef getDescription() const override {
    return "Tile outermost parallel loops into blocks of threads and map "
           "them to the grid and the block";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<affine::AffineDialect, arith::ArithDialect,
                    scf::SCFDialect, gpu::GPUDialect>();
  }
  void runOnOperation() override {
    SmallVector<scf::ParallelOp> outermost;
    getOperation().walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>() &&
          !loop->getParentOfType<gpu::LaunchOp>())
        outermost.push_back(loop);
    });
    for (scf::ParallelOp loop : outermost) {
      unsigned rank = loop.getNumLoops();
      SmallVector<std::optional<int64_t>> trips;
      for (unsigned d = 0; d < rank; ++d)
        trips.push_back(constantTripCount(loop, d));
      SmallVector<int64_t> sizes(rank, 1);
      int64_t extent = kThreads;
      if (trips.back())
        extent = std::min<int64_t>(kThreads, std::max<int64_t>(*trips.back(), 1));
      sizes[rank - 1] = extent;
      SmallVector<std::optional<int64_t>> blocks = trips;
      if (blocks.back())
        blocks.back() = (*blocks.back() + extent - 1) / extent;
      auto [grid, block] =
          scf::tileParallelLoop(loop, sizes, /*noMinMaxBounds=*/true);
      SmallVector<gpu::Processor> threads(rank, gpu::Processor::Sequential);
      threads[rank - 1] = gpu::Processor::ThreadX;
      if (failed(setMapping(block, threads)) ||
          failed(setMapping(grid, gridProcessors(blocks))))
        return signalPassFailure();
    }
  }

  /// Grid x for the dimension with the most blocks (an unknown count counts
  /// as the most), y and z for the next two that fit, in loop order.
  static SmallVector<gpu::Processor>
  gridProcessors(ArrayRef<std::optional<int64_t>> blocks) {
    unsigned x = 0;
    for (unsigned d = 1; d < blocks.size(); ++d)
      if (blocks[x] && (!blocks[d] || *blocks[d] > *blocks[x]))
        x = d;
    SmallVector<gpu::Processor> processors(blocks.size(),
                                           gpu::Processor::Sequential);
    processors[x] = gpu::Processor::BlockX;
    std::array<gpu::Processor, 2> rest = {gpu::Processor::BlockY,
                                          gpu::Processor::BlockZ};
    unsigned next = 0;
    for (unsigned d = 0; d < blocks.size() && next < rest.size(); ++d)
      if (d != x && blocks[d] && *blocks[d] <= kMaxGridYZ)
        processors[d] = rest[next++];
    return processors;
  }

  static LogicalResult setMapping(scf::ParallelOp loop,
                                  ArrayRef<gpu::Processor> processors) {
    MLIRContext *ctx = loop.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(1, ctx);
    SmallVector<gpu::ParallelLoopDimMappingAttr> mapping;
    for (gpu::Processor p : processors)
      mapping.push_back(
          gpu::ParallelLoopDimMappingAttr::get(ctx, p, identity, identity));
    return gpu::setMappingAttr(loop, mapping);
  }
  static std::optional<int64_t> constantTripCount(scf::ParallelOp loop,
                                                  unsigned d) {
    auto lb = getConstantIntValue(loop.getLowerBound()[d]);
    auto ub = getConstantIntValue(loop.getUpperBound()[d]);
    auto step = getConstantIntValue(loop.getStep()[d]);
    if (!lb || !ub || !step || *step <= 0)
      return std::nullopt;
    return (*ub - *lb + *step - 1) / *step;
  }
};

//===----------------------------------------------------------------------===//
// bptt-gpu-host-islands
//===----------------------------------------------------------------------===//

struct HostIslandsPass
    : PassWrapper<HostIslandsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(HostIslandsPass)
  StringRef getArgument() const override { return "bptt-gpu-host-islands"; }
  StringRef getDescription() const override {
    return "Host code that touches device memory runs as one-thread kernels";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<gpu::GPUDialect, arith::ArithDialect>();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MemoryPlacement placement(module);
    // Outer blocks first, so that a host loop over device memory becomes one
    // kernel rather than a kernel per iteration.
    SmallVector<Block *> blocks;
    module.walk<WalkOrder::PreOrder>([&](Block *block) {
      blocks.push_back(block);
    });
    for (Block *block : blocks) {
      Operation *parent = block->getParentOp();
      if (isa<ModuleOp, gpu::LaunchOp, gpu::GPUModuleOp>(parent) ||
          parent->getParentOfType<gpu::LaunchOp>() ||
          parent->getParentOfType<gpu::GPUModuleOp>())
        continue;
      if (failed(isolate(*block, placement)))
        return signalPassFailure();
    }
    SmallVector<gpu::LaunchOp> islands;
    module.walk([&](gpu::LaunchOp l) {
      if (l->hasAttr(kIslandAttr))
        islands.push_back(l);
    });
    for (gpu::LaunchOp island : islands)
      appendToOneWriter(island);
    // The markers have served.
    module.walk([&](gpu::LaunchOp l) {
      l->removeAttr(kIslandAttr);
      l->removeAttr(bptt::kOneWriterAttr);
    });
  }

  static constexpr char kIslandAttr[] = "bptt.island";

  /// The memrefs `op` loads from, stores to or otherwise uses (`written`,
  /// if given, gets those it may write: all but loads').
  static void accessedMemrefs(Operation *op, DenseSet<Value> &accessed,
                              DenseSet<Value> *written = nullptr) {
    op->walk([&](Operation *inner) {
      for (Value v : inner->getOperands())
        if (isa<MemRefType>(v.getType())) {
          accessed.insert(v);
          if (written && !isa<memref::LoadOp>(inner))
            written->insert(v);
        }
    });
  }

  /// A one-thread kernel right after a reduction whose single writing
  /// thread ends it (a loss summed over the batch, then scaled and added to
  /// the running total) runs in that thread instead, after its stores: one
  /// kernel less. Only when the island reads nothing the reduction's other
  /// threads write and touches nothing the reduction reads.
  static void appendToOneWriter(gpu::LaunchOp island) {
    Operation *prev = island->getPrevNode();
    SmallVector<Operation *> between;
    while (prev && !isa<gpu::LaunchOp>(prev) && isMemoryEffectFree(prev) &&
           prev->getNumRegions() == 0) {
      between.push_back(prev);
      prev = prev->getPrevNode();
    }
    auto writer = dyn_cast_or_null<gpu::LaunchOp>(prev);
    if (!writer || !writer->hasAttr(bptt::kOneWriterAttr))
      return;
    Block &writerBody = writer.getBody().front();
    auto last = dyn_cast_or_null<scf::IfOp>(
        writerBody.getTerminator()->getPrevNode());
    if (!last || !last.getElseRegion().empty())
      return;
    Block &islandBody = island.getBody().front();
    if (llvm::any_of(islandBody.getArguments(),
                     [](BlockArgument a) { return !a.use_empty(); }))
      return;
    DenseSet<Value> writerAccessed, islandAccessed, islandWritten, results;
    accessedMemrefs(writer, writerAccessed);
    accessedMemrefs(island, islandAccessed, &islandWritten);
    accessedMemrefs(last, results);
    for (Value v : islandAccessed) {
      if (!writerAccessed.contains(v))
        continue;
      // Shared: only what the writing thread itself stores, read back.
      if (islandWritten.contains(v) || !results.contains(v))
        return;
    }
    // Values the island uses from outside must be there before the writer.
    SetVector<Value> used;
    getUsedValuesDefinedAbove(island.getBody(), used);
    for (Value v : used) {
      Operation *def = v.getDefiningOp();
      if (def && def->getBlock() == island->getBlock() &&
          writer->isBeforeInBlock(def) && !llvm::is_contained(between, def))
        return;
    }
    for (Operation *op : llvm::reverse(between))
      op->moveBefore(writer);
    Operation *yield = last.getThenRegion().front().getTerminator();
    for (Operation &op : llvm::make_early_inc_range(islandBody))
      if (!isa<gpu::TerminatorOp>(op))
        op.moveBefore(yield);
    island->erase();
  }

  /// Whether `op` reads or writes device memory from the host.
  static bool touchesDevice(Operation *op, const MemoryPlacement &placement) {
    if (isa<gpu::LaunchOp, func::CallOp>(op))
      return false;
    bool touches = false;
    op->walk<WalkOrder::PreOrder>([&](Operation *inner) {
      if (isa<gpu::LaunchOp>(inner))
        return WalkResult::skip();
      if (auto load = dyn_cast<memref::LoadOp>(inner))
        touches |= placement.isDevice(load.getMemRef());
      else if (auto store = dyn_cast<memref::StoreOp>(inner))
        touches |= placement.isDevice(store.getMemRef());
      else if (auto rmw = dyn_cast<memref::AtomicRMWOp>(inner))
        touches |= placement.isDevice(rmw.getMemref());
      else if (isa<linalg::LinalgOp, memref::CopyOp>(inner) &&
               llvm::any_of(inner->getOperands(), [&](Value v) {
                 return placement.isDevice(v);
               }))
        touches = true;
      return WalkResult::advance();
    });
    return touches;
  }

  static LogicalResult isolate(Block &block, const MemoryPlacement &placement) {
    llvm::SmallPtrSet<Operation *, 8> reloads;
    Operation *op = block.empty() ? nullptr : &block.front();
    while (op && op != block.getTerminator()) {
      if (!touchesDevice(op, placement)) {
        op = op->getNextNode();
        continue;
      }
      // Grow the island over device accesses and the pure scalar code that
      // computes with what they read.
      SmallVector<Operation *> candidates{op};
      // Ops that read device memory, directly or through their operands.
      llvm::SmallPtrSet<Operation *, 16> tainted{op};
      size_t last = 0;
      for (Operation *next = op->getNextNode();
           next && next != block.getTerminator(); next = next->getNextNode()) {
        bool device = touchesDevice(next, placement);
        if (!device &&
            (!isMemoryEffectFree(next) || next->getNumRegions() != 0))
          break;
        candidates.push_back(next);
        bool dependent = llvm::any_of(next->getOperands(), [&](Value v) {
          Operation *def = v.getDefiningOp();
          return def && tainted.contains(def);
        });
        if (device || dependent) {
          tainted.insert(next);
          last = candidates.size() - 1;
        }
      }
      candidates.resize(last + 1);
      FailureOr<gpu::LaunchOp> launch = launchIsland(candidates, reloads);
      if (failed(launch))
        return failure();
      op = (*launch)->getNextNode();
    }
    return success();
  }

  /// Moves `island` into a one-thread gpu.launch. Results the host still
  /// needs are either recomputed in front of it (pure ops that do not depend
  /// on the island) or passed on through a rank-0 device buffer, read again
  /// right where they are used, so that the read joins the user's island.
  static FailureOr<gpu::LaunchOp>
  launchIsland(ArrayRef<Operation *> island,
               llvm::SmallPtrSetImpl<Operation *> &reloads) {
    llvm::SmallPtrSet<Operation *, 16> inside(island.begin(), island.end());
    Operation *first = island.front();
    Block *block = first->getBlock();
    auto isOutside = [&](Operation *user) {
      Operation *owner = user;
      while (owner && owner->getBlock() != block)
        owner = owner->getParentOp();
      return !owner || !inside.contains(owner);
    };
    SmallVector<Operation *> staying;
    SmallVector<Value> escaping;
    for (Operation *op : island) {
      bool escapes = llvm::any_of(op->getUsers(), isOutside);
      bool independent = isMemoryEffectFree(op) &&
                         llvm::none_of(op->getOperands(), [&](Value v) {
                           Operation *def = v.getDefiningOp();
                           return def && inside.contains(def);
                         });
      if (escapes && independent) {
        op->moveBefore(first);
        inside.erase(op);
        continue;
      }
      staying.push_back(op);
      for (Value r : op->getResults())
        if (llvm::any_of(r.getUsers(), isOutside))
          escaping.push_back(r);
    }
    // A value read back from device memory can only be used by device code.
    if (!escaping.empty() && llvm::all_of(staying, [&](Operation *op) {
          return reloads.contains(op);
        })) {
      Operation *user = *llvm::find_if(escaping.front().getUsers(), isOutside);
      return user->emitError()
             << "the GPU pipeline cannot run this on the host: it uses a "
                "value computed in device memory";
    }
    Location loc = staying.front()->getLoc();
    OpBuilder b(staying.front());
    SmallVector<Value> buffers;
    for (Value v : escaping) {
      if (!v.getType().isIntOrIndexOrFloat())
        return v.getDefiningOp()->emitError()
               << "the GPU pipeline cannot pass this value from device code "
                  "to the host (type "
               << v.getType() << ")";
      buffers.push_back(
          memref::AllocOp::create(b, loc, MemRefType::get({}, v.getType())));
    }
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    auto launch = gpu::LaunchOp::create(b, loc, one, one, one, one, one, one);
    launch->setAttr(kIslandAttr, b.getUnitAttr());
    Block &body = launch.getBody().front();
    OpBuilder inner = OpBuilder::atBlockEnd(&body);
    auto terminator = gpu::TerminatorOp::create(inner, loc);
    for (Operation *op : staying)
      op->moveBefore(terminator);
    inner.setInsertionPoint(terminator);
    for (auto [v, buffer] : llvm::zip(escaping, buffers)) {
      for (OpOperand &use : llvm::make_early_inc_range(v.getUses())) {
        if (use.getOwner()->getParentOfType<gpu::LaunchOp>() == launch)
          continue;
        OpBuilder ub(use.getOwner());
        auto reload = memref::LoadOp::create(ub, loc, buffer);
        reloads.insert(reload);
        use.set(reload);
      }
      memref::StoreOp::create(inner, loc, v, buffer);
      OpBuilder end(block->getTerminator());
      memref::DeallocOp::create(end, loc, buffer);
    }
    return launch;
  }
};

//===----------------------------------------------------------------------===//
// bptt-gpu-async
//===----------------------------------------------------------------------===//

/// Device allocations become gpu.alloc/gpu.dealloc and every launch,
/// allocation and free becomes asynchronous, all depending on one token per
/// function: with the runtime's single program stream, that orders all work
/// without the host ever waiting.
struct AsyncPass : PassWrapper<AsyncPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(AsyncPass)
  StringRef getArgument() const override { return "bptt-gpu-async"; }
  StringRef getDescription() const override {
    return "Device allocations and asynchronous launches on the program "
           "stream";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<gpu::GPUDialect>();
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MemoryPlacement placement(module);
    for (func::FuncOp f : module.getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      SmallVector<Operation *> work;
      f.walk([&](Operation *op) {
        if (isa<gpu::LaunchOp>(op)) {
          work.push_back(op);
          return WalkResult::skip();
        }
        if (auto alloc = dyn_cast<memref::AllocOp>(op))
          if (!placement.isHost(alloc.getResult()))
            work.push_back(op);
        if (auto dealloc = dyn_cast<memref::DeallocOp>(op))
          if (!placement.isHost(dealloc.getMemref()))
            work.push_back(op);
        return WalkResult::advance();
      });
      if (work.empty())
        continue;
      OpBuilder b = OpBuilder::atBlockBegin(&f.getBody().front());
      Type tokenType = gpu::AsyncTokenType::get(&getContext());
      Value token =
          gpu::WaitOp::create(b, f.getLoc(), tokenType, ValueRange{})
              .getAsyncToken();
      for (Operation *op : work) {
        b.setInsertionPoint(op);
        if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
          if (!alloc.getSymbolOperands().empty()) {
            alloc.emitError("the GPU pipeline does not support allocations "
                            "with symbol operands");
            return signalPassFailure();
          }
          auto gpuAlloc = gpu::AllocOp::create(
              b, alloc.getLoc(), alloc.getType(), tokenType,
              ValueRange{token}, alloc.getDynamicSizes(), ValueRange{},
              /*hostShared=*/false);
          alloc.getResult().replaceAllUsesWith(gpuAlloc.getMemref());
          alloc.erase();
        } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
          gpu::DeallocOp::create(b, dealloc.getLoc(), tokenType,
                                 ValueRange{token}, dealloc.getMemref());
          dealloc.erase();
        } else {
          auto launch = cast<gpu::LaunchOp>(op);
          if (launch.getAsyncToken())
            continue;
          gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
          gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
          SmallVector<Type> workgroup;
          for (BlockArgument arg : launch.getWorkgroupAttributions())
            workgroup.push_back(arg.getType());
          SmallVector<Type> priv;
          for (BlockArgument arg : launch.getPrivateAttributions())
            priv.push_back(arg.getType());
          auto async = gpu::LaunchOp::create(
              b, launch.getLoc(), grid.x, grid.y, grid.z, block.x, block.y,
              block.z, launch.getDynamicSharedMemorySize(), tokenType,
              ValueRange{token}, workgroup, priv);
          async.getBody().front().erase();
          async.getBody().takeBody(launch.getBody());
          launch.erase();
        }
      }
    }
  }
};

} // namespace

std::string bptt::defaultCUDARoot() {
  if (const char *root = std::getenv("CUDA_ROOT"))
    return root;
  return "/usr/local/cuda";
}

/// The GPU pipeline up to device placement: what runs on the device and
/// what the host enqueues, with device memory still memref.alloc/dealloc.
static void buildPlacementPipeline(OpPassManager &pm, StringRef precision) {
  pm.addPass(std::make_unique<SelectProgramsPass>());
  pm.addPass(createSymbolDCEPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(std::make_unique<ScalarResultsPass>());
  bptt::addBufferizationPasses(pm);
  pm.addPass(std::make_unique<LibraryCallsPass>(precision));
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(std::make_unique<TileLoopsPass>());
  pm.addNestedPass<func::FuncOp>(createGpuMapParallelLoopsPass());
  pm.addPass(createConvertParallelLoopToGpuPass());
  pm.addPass(std::make_unique<HostIslandsPass>());
  // Grid sizes computed from constants become constants.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(bptt::createFuseLaunchesPass());
}

/// Bytes of a static allocation.
static std::optional<int64_t> allocationBytes(MemRefType t) {
  if (!t.hasStaticShape())
    return std::nullopt;
  unsigned bits = t.getElementTypeBitWidth();
  return t.getNumElements() * ((bits + 7) / 8);
}

FailureOr<int64_t> bptt::gpuScratchBytes(ModuleOp module,
                                         StringRef precision) {
  OwningOpRef<ModuleOp> copy(module.clone());
  PassManager pm(module.getContext());
  buildPlacementPipeline(pm, precision);
  if (failed(pm.run(*copy)))
    return failure();
  // scratch(f) = f's own allocations + the largest scratch of what it calls:
  // an upper bound of the device bytes live below f, since nothing
  // allocates in a loop below a program.
  SymbolTable symbols(*copy);
  DenseMap<Operation *, int64_t> memo;
  std::function<FailureOr<int64_t>(func::FuncOp, bool)> scratch =
      [&](func::FuncOp f, bool countOwn) -> FailureOr<int64_t> {
    if (f.isExternal())
      return int64_t(0);
    if (countOwn)
      if (auto it = memo.find(f); it != memo.end())
        return it->second;
    int64_t own = 0, callees = 0;
    WalkResult walked = f.walk([&](Operation *op) {
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        if (!countOwn)
          return WalkResult::advance();
        if (alloc->getParentOfType<LoopLikeOpInterface>()) {
          alloc.emitError("an allocation in a loop below a program: its "
                          "device memory cannot be bounded");
          return WalkResult::interrupt();
        }
        std::optional<int64_t> bytes = allocationBytes(alloc.getType());
        if (!bytes) {
          alloc.emitError("a dynamically sized allocation below a program: "
                          "its device memory cannot be bounded");
          return WalkResult::interrupt();
        }
        own += *bytes;
      } else if (auto call = dyn_cast<func::CallOp>(op)) {
        auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
        if (!callee)
          return WalkResult::advance();
        FailureOr<int64_t> below = scratch(callee, true);
        if (failed(below))
          return WalkResult::interrupt();
        callees = std::max(callees, *below);
      }
      return WalkResult::advance();
    });
    if (walked.wasInterrupted())
      return failure();
    if (countOwn)
      memo[f] = own + callees;
    return own + callees;
  };
  int64_t bytes = 0;
  for (func::FuncOp f : copy->getOps<func::FuncOp>())
    if (isProgram(f)) {
      // The program's own allocations are the pool and the working set,
      // which the plan counts.
      FailureOr<int64_t> below = scratch(f, false);
      if (failed(below))
        return failure();
      bytes = std::max(bytes, *below);
    }
  return bytes;
}

void bptt::buildLowerToGPUPipeline(OpPassManager &pm,
                                   const GPUPipelineOptions &options) {
  buildPlacementPipeline(pm, options.precision);
  if (options.sideStream)
    pm.addPass(bptt::createSideStreamPass());
  pm.addPass(std::make_unique<AsyncPass>());
  pm.addPass(createCanonicalizerPass());

  // Kernels to NVVM and a binary, the host to LLVM. This is upstream's
  // gpu-lower-to-nvvm-pipeline with the CUDA toolkit named explicitly, so
  // that ptxas and libdevice (math functions in kernels) are found without
  // relying on the environment. The canonicalizer hoists constants out of
  // the launches; sunk back in before outlining, they stay constants in the
  // kernels (folded into addresses and strength-reduced divisions) instead
  // of becoming kernel parameters.
  pm.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.format;
  binary.toolkitPath = options.cudaRoot;
  pm.addPass(createGpuModuleToBinaryPass(binary));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void bptt::registerGPUPasses() {
  PassRegistration<SelectProgramsPass>();
  PassRegistration<ScalarResultsPass>();
  PassRegistration<LibraryCallsPass>();
  PassRegistration<TileLoopsPass>();
  PassRegistration<HostIslandsPass>();
  registerPass([] { return bptt::createFuseLaunchesPass(); });
  registerPass([] { return bptt::createSideStreamPass(); });
  PassRegistration<AsyncPass>();
}
