//===- JitProgram.cpp - tensor functions JIT-compiled for the CPU ---------===//

#include "bptt/Execution/JitProgram.h"

#include "bptt/Conversion/Pipelines.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/TargetSelect.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

using namespace bptt;

JitProgram::~JitProgram() = default;

static void initializeNativeTarget() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

llvm::Expected<std::unique_ptr<JitProgram>>
JitProgram::compile(mlir::ModuleOp module) {
  initializeNativeTarget();
  mlir::OwningOpRef<mlir::ModuleOp> clone(module.clone());
  std::unique_ptr<JitProgram> program(new JitProgram());

  bool stillUsed = false;
  clone->walk([&](mlir::Operation *op) {
    if (llvm::isa<rnn::ApplyOp, rnn::BPTTOp>(op))
      stillUsed = true;
  });
  if (stillUsed)
    return llvm::createStringError(
        "the module still has rnn.apply or rnn.bptt ops; lower them first");
  for (auto cell : llvm::make_early_inc_range(clone->getOps<rnn::CellOp>()))
    cell.erase();

  for (auto fn : clone->getOps<mlir::func::FuncOp>()) {
    if (fn.isPrivate() || fn.isDeclaration())
      continue;
    Signature sig;
    for (mlir::Type t : fn.getArgumentTypes()) {
      auto shape = ValueShape::of(t);
      if (!shape)
        return llvm::createStringError(
            "@" + fn.getName().str() + ": " + llvm::toString(shape.takeError()));
      sig.inputs.push_back(*shape);
    }
    for (mlir::Type t : fn.getResultTypes()) {
      auto shape = ValueShape::of(t);
      if (!shape)
        return llvm::createStringError(
            "@" + fn.getName().str() + ": " + llvm::toString(shape.takeError()));
      sig.results.push_back(*shape);
    }
    program->signatures[fn.getName()] = std::move(sig);
  }

  mlir::MLIRContext *ctx = clone->getContext();
  mlir::registerBuiltinDialectTranslation(*ctx);
  mlir::registerLLVMDialectTranslation(*ctx);
  mlir::PassManager pm(ctx);
  buildLowerToCPUPipeline(pm);
  std::string diagnostics;
  {
    mlir::ScopedDiagnosticHandler handler(ctx, [&](mlir::Diagnostic &d) {
      llvm::raw_string_ostream os(diagnostics);
      os << d << "\n";
      return mlir::success();
    });
    if (mlir::failed(pm.run(*clone)))
      return llvm::createStringError("lowering to the CPU failed:\n" +
                                     diagnostics);
  }

  mlir::ExecutionEngineOptions options;
  auto transformer = mlir::makeOptimizingTransformer(2, 0, nullptr);
  options.transformer = transformer;
  llvm::StringRef runtimeLibraries[] = {BPTT_C_RUNNER_UTILS};
  options.sharedLibPaths = runtimeLibraries;
  auto engine = mlir::ExecutionEngine::create(*clone, options);
  if (!engine)
    return engine.takeError();
  program->engine = std::move(*engine);
  // Looking the functions up materialises them now, so that a first call
  // does not pay for code generation.
  for (const auto &entry : program->signatures)
    if (auto fn = program->engine->lookupPacked(entry.getKey()); !fn)
      return fn.takeError();
  return program;
}

const JitProgram::Signature *
JitProgram::signature(llvm::StringRef function) const {
  auto it = signatures.find(function);
  return it == signatures.end() ? nullptr : &it->second;
}

namespace {
/// Bytes and alignment of a value as a member of the LLVM struct that a
/// lowered function returns: a memref descriptor {ptr, ptr, i64, [r x i64],
/// [r x i64]} or a float.
struct FieldLayout {
  int64_t size, align;
};
FieldLayout layoutOf(const ValueShape &v) {
  if (v.isTensor)
    return {8 * (3 + 2 * int64_t(v.shape.size())), 8};
  return {v.elementBytes(), v.elementBytes()};
}
int64_t alignTo(int64_t x, int64_t a) { return (x + a - 1) / a * a; }
} // namespace

llvm::Expected<std::vector<HostTensor>>
JitProgram::call(llvm::StringRef function,
                 llvm::ArrayRef<const HostTensor *> args) {
  // Bufferized functions may update their tensor arguments in place.
  std::vector<HostTensor> copies;
  copies.reserve(args.size());
  std::vector<HostTensor *> pointers;
  for (const HostTensor *arg : args) {
    copies.push_back(*arg);
    pointers.push_back(&copies.back());
  }
  return invoke(function, pointers);
}

llvm::Expected<std::vector<HostTensor>>
JitProgram::callInPlace(llvm::StringRef function,
                        llvm::ArrayRef<HostTensor *> args) {
  return invoke(function, args);
}

llvm::Expected<std::vector<HostTensor>>
JitProgram::invoke(llvm::StringRef function, llvm::ArrayRef<HostTensor *> args) {
  const Signature *sig = signature(function);
  if (!sig)
    return llvm::createStringError("no public function @" + function.str());
  if (args.size() != sig->inputs.size())
    return llvm::createStringError("@" + function.str() + " takes " +
                                   std::to_string(sig->inputs.size()) +
                                   " arguments");

  std::vector<std::vector<int64_t>> descriptors;
  descriptors.reserve(args.size());
  std::vector<void *> packed;
  llvm::SmallPtrSet<void *, 8> argumentBuffers;
  for (auto [i, arg] : llvm::enumerate(args)) {
    const ValueShape &want = sig->inputs[i];
    if (arg->shape().kind != want.kind || arg->shape().shape != want.shape ||
        arg->shape().isTensor != want.isTensor)
      return llvm::createStringError("@" + function.str() + ": argument " +
                                     std::to_string(i) +
                                     " does not match the signature");
    HostTensor &copy = *arg;
    if (!want.isTensor) {
      packed.push_back(copy.data());
      continue;
    }
    argumentBuffers.insert(copy.data());
    std::vector<int64_t> d;
    int64_t rank = want.shape.size();
    d.push_back(reinterpret_cast<int64_t>(copy.data()));
    d.push_back(reinterpret_cast<int64_t>(copy.data()));
    d.push_back(0);
    for (int64_t s : want.shape)
      d.push_back(s);
    std::vector<int64_t> strides(rank, 1);
    for (int64_t k = rank - 2; k >= 0; --k)
      strides[k] = strides[k + 1] * want.shape[k + 1];
    d.insert(d.end(), strides.begin(), strides.end());
    descriptors.push_back(std::move(d));
    for (int64_t &field : descriptors.back())
      packed.push_back(&field);
  }

  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const ValueShape &r : sig->results) {
    FieldLayout l = layoutOf(r);
    total = alignTo(total, l.align);
    offsets.push_back(total);
    total += l.size;
  }
  std::vector<int64_t> resultStorage(std::max<int64_t>(1, (total + 7) / 8));
  if (!sig->results.empty())
    packed.push_back(resultStorage.data());

  if (llvm::Error err = engine->invokePacked(function, packed))
    return std::move(err);

  std::vector<HostTensor> results;
  llvm::SmallPtrSet<void *, 8> freed;
  auto *base = reinterpret_cast<unsigned char *>(resultStorage.data());
  for (auto [r, offset] : llvm::zip(sig->results, offsets)) {
    HostTensor out(r);
    if (!r.isTensor) {
      std::memcpy(out.data(), base + offset, r.elementBytes());
      results.push_back(std::move(out));
      continue;
    }
    int64_t rank = r.shape.size();
    int64_t *desc = reinterpret_cast<int64_t *>(base + offset);
    auto *allocated = reinterpret_cast<void *>(desc[0]);
    auto *aligned = reinterpret_cast<unsigned char *>(desc[1]);
    int64_t elementOffset = desc[2];
    const int64_t *strides = desc + 3 + rank;
    // Gather through the strides, whatever layout the callee returned.
    std::vector<int64_t> index(rank, 0);
    for (int64_t linear = 0, n = out.size(); linear < n; ++linear) {
      int64_t at = elementOffset;
      for (int64_t k = 0; k < rank; ++k)
        at += index[k] * strides[k];
      std::memcpy(static_cast<unsigned char *>(out.data()) +
                      linear * r.elementBytes(),
                  aligned + at * r.elementBytes(), r.elementBytes());
      for (int64_t k = rank - 1; k >= 0; --k) {
        if (++index[k] < r.shape[k])
          break;
        index[k] = 0;
      }
    }
    if (!argumentBuffers.contains(allocated) && freed.insert(allocated).second)
      std::free(allocated);
    results.push_back(std::move(out));
  }
  return results;
}
