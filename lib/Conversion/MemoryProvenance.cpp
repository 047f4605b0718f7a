//===- MemoryProvenance.cpp - which buffers a memref may be part of -------===//
//
// Internal to lib/Conversion (the GPU pipeline); GPUProgram.h says what
// MemoryProvenance and memoryAccess answer.
//
//===----------------------------------------------------------------------===//

#include "GPUProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace bptt;

MemoryProvenance::MemoryProvenance(ModuleOp module) {
  SymbolTable symbols(module);
  callers = callSites(module, symbols);
  // Only direct calls tell what a function's arguments are: a function
  // whose address is taken may be called with anything.
  for (auto &[f, calls] : callers) {
    std::optional<SymbolTable::UseRange> uses =
        symbols.getSymbolUses(f, module);
    if (uses &&
        size_t(std::distance(uses->begin(), uses->end())) == calls.size())
      onlyCalledDirectly.insert(f);
  }
}

bool MemoryProvenance::mayAlias(Value a, Value b) {
  std::optional<Bases> basesA = bases(a), basesB = bases(b);
  if (!basesA || !basesB)
    return true;
  return llvm::any_of(*basesA,
                      [&](Value base) { return basesB->contains(base); });
}

bool MemoryProvenance::mayOverlap(ArrayRef<Value> xs, ArrayRef<Value> ys) {
  return llvm::any_of(
      xs, [&](Value x) { return llvm::any_of(ys, [&](Value y) {
                           return mayAlias(x, y);
                         }); });
}

bool MemoryProvenance::mayConflict(const MemoryAccess &a,
                                   const MemoryAccess &b) {
  return !a.known || !b.known || mayOverlap(a.writes, b.reads) ||
         mayOverlap(a.writes, b.writes) || mayOverlap(a.reads, b.writes);
}

std::optional<MemoryProvenance::Bases> MemoryProvenance::bases(Value v) {
  v = viewRoot(v);
  if (auto it = memo.find(v); it != memo.end())
    return it->second;
  memo[v] = std::nullopt; // a cycle (recursion): unknown
  std::optional<Bases> result = compute(v);
  memo[v] = result;
  return result;
}

std::optional<MemoryProvenance::Bases> MemoryProvenance::compute(Value v) {
  Bases result;
  auto add = [&](Value operand) {
    std::optional<Bases> more = bases(operand);
    if (more)
      result.insert(more->begin(), more->end());
    return more.has_value();
  };
  if (v.getDefiningOp<memref::AllocOp>() ||
      v.getDefiningOp<memref::AllocaOp>()) {
    result.insert(v);
    return result;
  }
  if (auto select = v.getDefiningOp<arith::SelectOp>()) {
    if (!add(select.getTrueValue()) || !add(select.getFalseValue()))
      return std::nullopt;
    return result;
  }
  auto arg = dyn_cast<BlockArgument>(v);
  if (!arg)
    return std::nullopt; // a global, a call's result, ...
  auto f = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
  if (!f || arg.getOwner() != &f.getBody().front())
    return std::nullopt; // a loop's or a branch's argument
  if (isProgram(f)) {
    result.insert(v);
    return result;
  }
  if (!f.isPrivate() || !onlyCalledDirectly.contains(f))
    return std::nullopt; // callable with anything
  for (func::CallOp call : callers.lookup(f))
    if (!add(call.getOperand(arg.getArgNumber())))
      return std::nullopt;
  return result;
}

MemoryAccess bptt::memoryAccess(Operation *op) {
  MemoryAccess access;
  if (auto call = dyn_cast<func::CallOp>(op)) {
    unsigned result;
    if (call.getCallee() == kMatmulFn && call.getNumOperands() == 4)
      result = 2;
    else if (call.getCallee() == kMatmulBiasFn && call.getNumOperands() == 6)
      result = 4;
    else {
      access.known = false; // a call into other code
      return access;
    }
    for (unsigned i = 0; i <= result; ++i)
      access.reads.push_back(viewRoot(call.getOperand(i)));
    access.writes.push_back(viewRoot(call.getOperand(result)));
    return access;
  }
  // A root of `op`'s own memory (a kernel's local buffers) is left out.
  auto record = [&](Value v, bool write) {
    Value root = viewRoot(v);
    if (Operation *def = root.getDefiningOp();
        def && op != def && op->isAncestor(def))
      return;
    if (auto arg = dyn_cast<BlockArgument>(root);
        arg && op->isAncestor(arg.getOwner()->getParentOp()))
      return;
    (write ? access.writes : access.reads).push_back(root);
  };
  op->walk<WalkOrder::PreOrder>([&](Operation *inner) {
    // A structured op on buffers reads its inputs and outputs and writes
    // its outputs (linalg declares its effects as its body's, recursively).
    if (auto structured = dyn_cast<linalg::LinalgOp>(inner)) {
      if (!structured.hasPureBufferSemantics()) {
        access.known = false;
        return WalkResult::skip();
      }
      for (Value v : structured->getOperands()) {
        if (!isa<MemRefType>(v.getType()))
          continue;
        record(v, /*write=*/false);
      }
      for (Value v : structured.getDpsInits())
        record(v, /*write=*/true);
      return WalkResult::skip();
    }
    if (inner->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
      return WalkResult::advance(); // its nested ops are visited on their own
    auto effects = dyn_cast<MemoryEffectOpInterface>(inner);
    if (!effects) {
      access.known = false;
      return WalkResult::advance();
    }
    SmallVector<MemoryEffects::EffectInstance> instances;
    effects.getEffects(instances);
    for (const MemoryEffects::EffectInstance &e : instances) {
      Value v = e.getValue();
      if (!v) {
        // An effect on no particular value (a barrier's): inside a kernel
        // it touches the kernel's own memory only.
        if (inner != op && isa<gpu::LaunchOp>(op))
          continue;
        access.known = false;
        continue;
      }
      record(v, !isa<MemoryEffects::Read>(e.getEffect()));
    }
    return WalkResult::advance();
  });
  return access;
}
