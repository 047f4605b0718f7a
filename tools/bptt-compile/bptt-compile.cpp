//===- bptt-compile.cpp - compile a BPTT request into a GPU program -------===//
//
// Takes a module with an rnn.bptt (or a file of cells and --steps, from
// which it builds one), plans and materialises it (rnn-differentiate,
// rnn-remat), lowers it with `bptt-lower-to-gpu`, and writes a shared object
// that bptt-gpu-run loads (docs/gpu-abi.md):
//
//   const char *bptt_program_manifest(void);   the arguments, the plan
//   void bptt_program_entry(void **args);     one BPTT step
//
// The object leaves the runtime's functions (mgpu*, bpttMatmulF32) undefined:
// they resolve against libbptt_cuda_runtime.so, which the loader of the
// program (the runner) has loaded.
//
//===----------------------------------------------------------------------===//

#include "bptt/Conversion/Pipelines.h"
#include "bptt/Dialect/RNN/Passes.h"
#include "bptt/Dialect/RNN/RNNDialect.h"
#include "bptt/Dialect/RNN/RNNOps.h"
#include "bptt/Execution/Request.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

#include <chrono>

using namespace bptt;
namespace cl = llvm::cl;

static RequestOptions requestOptions;
static cl::opt<std::string> outputFile("o", cl::desc("Output program (.so)"),
                                       cl::value_desc("file"), cl::Required);
static cl::opt<std::string> chipOpt("chip", cl::desc("GPU architecture"),
                                    cl::init("sm_90"));
static cl::opt<std::string> featuresOpt("features", cl::desc("PTX features"),
                                        cl::init("+ptx80"));
static cl::opt<std::string>
    precisionOpt("precision", cl::desc("Matrix products: f32 or tf32"),
                 cl::init("f32"));
static cl::opt<bool> printManifestOpt(
    "print-manifest", cl::desc("Print the program's manifest"));
static cl::opt<bool> inputGradientOpt(
    "input-gradient",
    cl::desc("Compute the gradient of xs (default); "
             "--input-gradient=false: the program has no dxs argument and "
             "its backward steps skip what computes it (an LSTM's "
             "dgates·W_ih), as a model whose inputs are data needs"),
    cl::init(true));
static cl::opt<bool> sideStreamOpt(
    "side-stream",
    cl::desc("Run work off each function's critical path on the runtime's "
             "side stream (off by default: measured slower or the same on "
             "the LSTM benchmark, docs/gpu.md)"),
    cl::init(false));
static cl::opt<bool> emitLLVMOpt(
    "emit-llvm", cl::desc("Also write the host LLVM IR next to the output "
                          "(<output>.ll), for inspection"));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "bptt-compile: " << message << "\n";
  return 1;
}

namespace {
/// One argument of the program, as the manifest lists it.
struct Argument {
  std::string name, role, dtype, shape;
};
} // namespace

static std::string shapeOf(mlir::MemRefType t) {
  if (t.getRank() == 0)
    return "scalar";
  std::string s;
  for (auto [i, d] : llvm::enumerate(t.getShape()))
    s += (i ? "x" : "") + std::to_string(d);
  return s;
}

/// The program's arguments in order: states, xs, params, their gradients,
/// the loss and the statistics (see rnn-remat's generated signature).
static llvm::Expected<std::vector<Argument>>
describeArguments(mlir::func::FuncOp entry, const RequestFacts &facts) {
  unsigned n = facts.numStates, p = facts.numParams;
  unsigned expected = 2 * (n + 1 + p) + 2 - (facts.inputGradient ? 0 : 1);
  if (entry.getNumArguments() != expected)
    return llvm::createStringError(llvm::formatv(
        "@{0} has {1} arguments, expected {2}", entry.getSymName(),
        entry.getNumArguments(), expected));
  std::vector<Argument> args;
  auto push = [&](std::string name, std::string role, unsigned i) {
    auto t = llvm::cast<mlir::MemRefType>(entry.getArgumentTypes()[i]);
    std::string dtype;
    llvm::raw_string_ostream os(dtype);
    os << t.getElementType();
    args.push_back({std::move(name), std::move(role), dtype, shapeOf(t)});
  };
  unsigned i = 0;
  for (unsigned s = 0; s < n; ++s)
    push("state" + std::to_string(s), "state", i++);
  push("xs", "input", i++);
  for (unsigned q = 0; q < p; ++q)
    push("param" + std::to_string(q), "param", i++);
  for (unsigned s = 0; s < n; ++s)
    push("dstate" + std::to_string(s), "dstate", i++);
  if (facts.inputGradient)
    push("dxs", "dinput", i++);
  for (unsigned q = 0; q < p; ++q)
    push("dparam" + std::to_string(q), "dparam", i++);
  push("loss", "loss", i++);
  push("stats", "stats", i++);
  return args;
}

/// Adds `bptt_program_entry(void **args)`, calling the C interface of the
/// entry with each argument's descriptor, and `bptt_program_manifest()`.
static void addProgramInterface(llvm::Module &module, llvm::StringRef entry,
                                unsigned numArgs, llvm::StringRef manifest) {
  llvm::LLVMContext &ctx = module.getContext();
  llvm::IRBuilder<> b(ctx);
  llvm::Type *ptr = llvm::PointerType::get(ctx, 0);
  llvm::Function *ciface =
      module.getFunction(("_mlir_ciface_" + entry).str());
  auto *entryType =
      llvm::FunctionType::get(b.getVoidTy(), {ptr}, /*isVarArg=*/false);
  auto *wrapper = llvm::Function::Create(
      entryType, llvm::GlobalValue::ExternalLinkage, "bptt_program_entry",
      module);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", wrapper));
  llvm::SmallVector<llvm::Value *> descriptors;
  for (unsigned i = 0; i < numArgs; ++i) {
    llvm::Value *slot =
        b.CreateConstGEP1_64(ptr, wrapper->getArg(0), i, "slot");
    descriptors.push_back(b.CreateLoad(ptr, slot));
  }
  b.CreateCall(ciface, descriptors);
  b.CreateRetVoid();

  llvm::Constant *text = b.CreateGlobalString(manifest, "bptt_manifest_text",
                                              0, &module);
  auto *getter = llvm::Function::Create(
      llvm::FunctionType::get(ptr, {}, false),
      llvm::GlobalValue::ExternalLinkage, "bptt_program_manifest", module);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", getter));
  b.CreateRet(text);
}

static llvm::Error emitObject(llvm::Module &module, llvm::StringRef path) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError("no target for " + triple.str() + ": " +
                                   error);
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, "x86-64", "", llvm::TargetOptions(), llvm::Reloc::PIC_));
  module.setTargetTriple(triple);
  module.setDataLayout(machine->createDataLayout());
  std::error_code ec;
  llvm::ToolOutputFile out(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError("cannot write " + path.str() + ": " +
                                   ec.message());
  llvm::legacy::PassManager pm;
  if (machine->addPassesToEmitFile(pm, out.os(), nullptr,
                                   llvm::CodeGenFileType::ObjectFile))
    return llvm::createStringError("the host target cannot emit objects");
  pm.run(module);
  out.keep();
  return llvm::Error::success();
}

static llvm::Error linkShared(llvm::StringRef object, llvm::StringRef output) {
  llvm::ErrorOr<std::string> cc = llvm::sys::findProgramByName("cc");
  if (!cc)
    return llvm::createStringError(
        "no C compiler driver 'cc' on PATH to link the program");
  llvm::SmallVector<llvm::StringRef> args{*cc, "-shared", "-o", output,
                                          object};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0)
    return llvm::createStringError("linking " + output.str() +
                                   " failed: " + message);
  return llvm::Error::success();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // --mlir-print-ir-before/after=<pass> and the like, for the final
  // lowering (the passes a user inspects when a kernel looks wrong).
  registerGPUPasses();
  mlir::registerPassManagerCLOptions();
  cl::ParseCommandLineOptions(
      argc, argv,
      "bptt-compile: plan a BPTT request and compile it into a GPU program\n");
  auto started = std::chrono::steady_clock::now();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  registry.insert<rnn::RNNDialect>();
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  auto loaded = loadRequest(requestOptions, sourceMgr, context);
  if (!loaded)
    return fail(llvm::toString(loaded.takeError()));
  mlir::OwningOpRef<mlir::ModuleOp> module = std::move(*loaded);
  if (!inputGradientOpt)
    if (llvm::Error e = dropInputGradient(*module))
      return fail(llvm::toString(std::move(e)));
  llvm::Expected<RequestFacts> facts = inspectBPTTRequest(
      *module, requestOptions.inputChunk, requestOptions.lossChunk,
      requestOptions.gradChunk);
  if (!facts)
    return fail(llvm::toString(facts.takeError()));

  // The kernels' temporaries live in device memory next to the plan's pool
  // and working set: measure them on a store-all copy (the kernels do not
  // depend on the schedule or T) and plan with them as workspace, so that the
  // plan's peak bounds all device memory of a step.
  int64_t scratch = 0;
  {
    // Only errors of the probe are the user's business.
    mlir::ScopedDiagnosticHandler quiet(&context, [](mlir::Diagnostic &d) {
      return mlir::success(d.getSeverity() != mlir::DiagnosticSeverity::Error);
    });
    // The kernels depend on the cell alone: a two-step request over it
    // yields the same kernels at a fraction of the cost at large T.
    mlir::OwningOpRef<mlir::ModuleOp> copy(module->clone());
    findBPTTRequest(*copy)->getParentOfType<mlir::func::FuncOp>().erase();
    // As many steps as a chunk of input projections or of loss parts,
    // whose batched kernels are measured too.
    if (llvm::Error e = addBPTTRequest(
            *copy, facts->cell,
            std::max<int64_t>({2, requestOptions.inputChunk,
                               requestOptions.lossChunk, facts->gradChunk})))
      return fail(llvm::toString(std::move(e)));
    if (!inputGradientOpt)
      if (llvm::Error e = dropInputGradient(*copy))
        return fail(llvm::toString(std::move(e)));
    rnn::BPTTOp probe = findBPTTRequest(*copy);
    probe.setMemoryBudget(int64_t(1) << 50);
    probe.setStrategyAttr(
        rnn::StrategyAttr::get(&context, rnn::Strategy::All));
    mlir::PassManager pm(&context);
    pm.addPass(rnn::createRNNDifferentiate());
    rnn::RNNRematOptions probeRemat;
    probeRemat.inputChunk = requestOptions.inputChunk;
    probeRemat.lossChunk = requestOptions.lossChunk;
    probeRemat.gradChunk = facts->gradChunk;
    probeRemat.internalState = requestOptions.internalState;
    pm.addPass(rnn::createRNNRemat(probeRemat));
    mlir::FailureOr<int64_t> bytes = mlir::failure();
    if (mlir::succeeded(pm.run(*copy)))
      bytes = gpuScratchBytes(*copy, precisionOpt);
    if (mlir::failed(bytes))
      return fail("measuring the kernels' device memory failed");
    scratch = *bytes;
  }
  facts->workspaceBytes = scratch;

  rnn::BPTTOp request = findBPTTRequest(*module);
  llvm::Expected<int64_t> chosen =
      chosenBudget(requestOptions, request, facts->storeAllBytes());
  if (!chosen)
    return fail(llvm::toString(chosen.takeError()));
  llvm::Expected<rnn::Strategy> chosenStrat =
      chosenStrategy(requestOptions, request);
  if (!chosenStrat)
    return fail(llvm::toString(chosenStrat.takeError()));
  request.setMemoryBudget(*chosen);
  request.setStrategyAttr(rnn::StrategyAttr::get(&context, *chosenStrat));
  int64_t budget = request.getMemoryBudget();
  std::string strategy =
      rnn::stringifyStrategy(request.getStrategyOrDefault()).str();

  // Plan and materialise; read the plan and the signature before lowering.
  {
    mlir::PassManager pm(&context);
    pm.addPass(rnn::createRNNDifferentiate());
    rnn::RNNRematOptions remat;
    remat.workspaceBytes = scratch;
    remat.inputChunk = requestOptions.inputChunk;
    remat.lossChunk = requestOptions.lossChunk;
    remat.gradChunk = facts->gradChunk;
    remat.internalState = requestOptions.internalState;
    pm.addPass(rnn::createRNNRemat(remat));
    if (mlir::failed(pm.run(*module)))
      return fail("planning or materialising the request failed");
  }
  auto entry = module->lookupSymbol<mlir::func::FuncOp>(facts->entry);
  // Only the program runs on the GPU; the tensor-level wrapper of the
  // request is not needed.
  for (auto fn :
       llvm::make_early_inc_range(module->getOps<mlir::func::FuncOp>()))
    if (fn.isPublic() && fn != entry)
      fn.erase();
  auto plan = entry->getAttrOfType<mlir::DictionaryAttr>("rnn.plan");
  llvm::Expected<std::vector<Argument>> args =
      describeArguments(entry, *facts);
  if (!args)
    return fail(llvm::toString(args.takeError()));

  std::string manifest;
  {
    llvm::raw_string_ostream os(manifest);
    os << "bptt-program 1\n"
       << "entry " << facts->entry << "\n"
       << "cell " << facts->cell << "\n"
       << "steps " << facts->steps << "\n"
       << "strategy " << strategy << "\n"
       << "budget " << budget << "\n"
       << "planned_peak "
       << plan.getAs<mlir::IntegerAttr>("peak_bytes").getInt() << "\n"
       << "workspace " << scratch << "\n"
       << "forward_steps "
       << plan.getAs<mlir::IntegerAttr>("forward_steps").getInt() << "\n"
       << "precision " << precisionOpt << "\n"
       << "chip " << chipOpt << "\n";
    for (const Argument &a : *args)
      os << "arg " << a.name << " " << a.role << " " << a.dtype << " "
         << a.shape << "\n";
  }

  if (printManifestOpt)
    llvm::outs() << manifest;

  {
    mlir::PassManager pm(&context);
    if (mlir::failed(mlir::applyPassManagerCLOptions(pm)))
      return fail("invalid pass manager options");
    GPUPipelineOptions options;
    options.chip = chipOpt;
    options.features = featuresOpt;
    options.precision = precisionOpt;
    options.sideStream = sideStreamOpt;
    buildLowerToGPUPipeline(pm, options);
    if (mlir::failed(pm.run(*module)))
      return fail("lowering to the GPU failed");
  }

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      mlir::translateModuleToLLVMIR(*module, llvmContext);
  if (!llvmModule)
    return fail("translating to LLVM IR failed");
  addProgramInterface(*llvmModule, facts->entry, args->size(), manifest);
  if (emitLLVMOpt) {
    std::error_code ec;
    llvm::raw_fd_ostream ll(outputFile + ".ll", ec);
    if (!ec)
      llvmModule->print(ll, nullptr);
  }

  llvm::SmallString<128> object;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("bptt-program", "o", object))
    return fail("cannot create a temporary object file: " + ec.message());
  llvm::FileRemover removeObject(object);
  if (llvm::Error e = emitObject(*llvmModule, object))
    return fail(llvm::toString(std::move(e)));
  if (llvm::Error e = linkShared(object, outputFile))
    return fail(llvm::toString(std::move(e)));

  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - started)
                       .count();
  llvm::outs() << llvm::formatv(
      "bptt-compile: {0} (@{1}, T = {2}, {3}, budget {4} B, planned peak {5} "
      "B, {6} forward steps) in {7:f2} s\n",
      outputFile, facts->cell, facts->steps, strategy, budget,
      plan.getAs<mlir::IntegerAttr>("peak_bytes").getInt(),
      plan.getAs<mlir::IntegerAttr>("forward_steps").getInt(), seconds);
  return 0;
}
