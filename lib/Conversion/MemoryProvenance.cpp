//===- MemoryProvenance.cpp - which buffers a memref may be part of -------===//
//
// Internal to lib/Conversion (the GPU pipeline); GPUProgram.h says what it
// answers.
//
//===----------------------------------------------------------------------===//

#include "GPUProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

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
