//===- SideStream.cpp - device work off the critical path -----------------===//
//
// bptt-gpu-side-stream: in a straight-line function of device work, the
// work that nothing later in the function waits for runs on the runtime's
// side stream (bpttSideBegin/End/Join, docs/gpu-abi.md), beside the rest.
//
//===----------------------------------------------------------------------===//

#include "GPUProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"

#include <limits>
#include <optional>
#include <vector>

using namespace mlir;
using namespace bptt;

namespace {

/// Runs device work that nothing later in its function waits for on the
/// runtime's side stream, so that it overlaps the function's remaining
/// work: in a backward step, the weight-gradient products and the bias
/// reductions (accumulations that only the next step's accumulations read)
/// run beside the products that carry the recurrence (dh_{t-1} =
/// dgates·W_hh^T, the input gradient) and the loss part before them.
///
/// Each top-level op of a straight-line function gets the memory it reads
/// and writes (a kernel's loads and stores; a product reads A, B and C and
/// writes C). Work X may go to the side stream when no later op left on the
/// program stream reads what X writes or writes what X reads or writes. The
/// side stream starts X after everything enqueued on the program stream
/// before it, keeps side work in program order, and the function joins it
/// before it returns and before it frees anything (deallocations move after
/// the join). Side work moves up to just after the last op it depends on, so
/// that it starts as early as it can. Every value is the same, bit for bit,
/// as on one stream.
///
/// Among the valid choices the pass takes the one with the shortest
/// estimated time (two streams on one GPU, below), exhaustively for up to 16
/// candidates, greedily beyond, and only when it saves 5% of the function's
/// one-stream time. Functions with loops, branches or calls other than
/// products are left as they are.
struct SideStreamPass : PassWrapper<SideStreamPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(SideStreamPass)
  SideStreamPass() = default;
  SideStreamPass(const SideStreamPass &other) : PassWrapper(other) {}
  StringRef getArgument() const override { return "bptt-gpu-side-stream"; }
  StringRef getDescription() const override {
    return "Run device work off a function's critical path on the side "
           "stream";
  }

  /// What one top-level op of a function does.
  struct Step {
    Operation *op;
    MemoryAccess access;              // not known: conflicts with all
    bool work = false;                // device work a stream runs
    double cost = 0;                  // estimated microseconds, alone
    double fill = 1;                  // the share of the GPU it keeps busy
  };

  // The cost model (an H100; what matters is which side of 1 the fills of
  // two concurrent ops add up to). A product costs a launch plus its flops
  // at the sustained fp32 rate of small products, and fills the GPU in
  // proportion to its flops: products of 1.07 GFLOP (B = 128, H = 1024)
  // ran slower side by side than one after the other, products of
  // 134 MFLOP (B = 64, H = 512) overlapped (benchmarks/results/gpu/
  // side-stream-2026-11-23.txt). A kernel costs a constant and fills the GPU
  // in proportion to its threads (132 SMs of 2048).
  static constexpr double kKernelMicros = 2.0;
  static constexpr double kProductMicros = 3.0;
  static constexpr double kProductFlopsPerMicro = 30e6;
  static constexpr double kSaturatingFlops = 1e9;
  static constexpr double kSaturatingThreads = 132.0 * 2048.0;
  // What a side region costs the function beyond its work, on its critical
  // path: the fork's and the join's events and edges. Measured in graph
  // replays once the weight gradients had left the steps (docs/gpu.md): the
  // LSTM backward step's one region, a loss reduction and a copy beside the
  // gate kernel and dh·W_hh^T, made T = 1000 programs 5-11% slower, about
  // 6 us a region; as cheap as the first model's 0.5 us, it kept them.
  Option<double> regionMicros{
      *this, "region-micros",
      llvm::cl::desc("Estimated microseconds a side region costs the "
                     "function's critical path (fork and join)"),
      llvm::cl::init(6.0)};
  // A function changes only for an estimated gain of at least this share
  // of its one-stream time: the model is coarse.
  static constexpr double kMinimumGain = 0.05;
  static constexpr size_t kExhaustiveCandidates = 16;

  static void costProduct(func::CallOp call, Step &step) {
    auto shape = [](Value v) -> std::optional<std::pair<int64_t, int64_t>> {
      while (auto cast = v.getDefiningOp<memref::CastOp>())
        v = cast.getSource();
      auto type = dyn_cast<MemRefType>(v.getType());
      if (!type || type.getRank() != 2 || !type.hasStaticShape())
        return std::nullopt;
      return std::make_pair(type.getDimSize(0), type.getDimSize(1));
    };
    auto a = shape(call.getOperand(0)), b = shape(call.getOperand(1));
    double flops = a && b ? 2.0 * double(a->first) * double(a->second) *
                                double(b->second)
                          : kSaturatingFlops; // unknown: assume it is large
    step.cost = kProductMicros + flops / kProductFlopsPerMicro;
    step.fill = std::min(1.0, flops / kSaturatingFlops);
  }

  /// `v` as a constant integer: a constant, or what folding pure ops of
  /// constants (affine.apply, arith.muli, ...) gives.
  static std::optional<int64_t> constantIndex(Value v, unsigned depth = 0) {
    if (std::optional<int64_t> c = getConstantIntValue(v))
      return c;
    Operation *def = v.getDefiningOp();
    if (!def || depth > 8 || def->getNumResults() != 1 ||
        def->getNumRegions() != 0 || !isMemoryEffectFree(def))
      return std::nullopt;
    SmallVector<Attribute> operands;
    for (Value operand : def->getOperands()) {
      std::optional<int64_t> c = constantIndex(operand, depth + 1);
      if (!c || !operand.getType().isIntOrIndex())
        return std::nullopt;
      operands.push_back(IntegerAttr::get(operand.getType(), *c));
    }
    SmallVector<OpFoldResult> results;
    if (failed(def->fold(operands, results)) || results.size() != 1)
      return std::nullopt;
    return getConstantIntValue(results.front());
  }

  static void costKernel(gpu::LaunchOp launch, Step &step) {
    step.cost = kKernelMicros;
    double threads = 1;
    for (Value size : {launch.getGridSizeX(), launch.getGridSizeY(),
                       launch.getGridSizeZ(), launch.getBlockSizeX(),
                       launch.getBlockSizeY(), launch.getBlockSizeZ()}) {
      std::optional<int64_t> c = constantIndex(size);
      if (!c) {
        threads = kSaturatingThreads;
        break;
      }
      threads *= double(*c);
    }
    step.fill = std::min(1.0, threads / kSaturatingThreads);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MemoryProvenance provenance(module);
    bool changed = false;
    for (func::FuncOp f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && !isProgram(f))
        changed |= planFunction(f, provenance);
    if (!changed)
      return;
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToStart(module.getBody());
    for (StringRef name : {"bpttSideBegin", "bpttSideEnd", "bpttSideJoin"})
      if (!module.lookupSymbol(name))
        func::FuncOp::create(b, module.getLoc(), name,
                             b.getFunctionType({}, {}))
            .setPrivate();
  }

  /// The steps of `body`, or nullopt when it is not a straight line of
  /// device work.
  static std::optional<std::vector<Step>> collectSteps(Block &body) {
    std::vector<Step> steps;
    for (Operation &op : body.without_terminator()) {
      if (isa<memref::DeallocOp, memref::AllocOp, memref::AllocaOp>(op) ||
          isMemoryEffectFree(&op))
        continue;
      Step step{&op};
      if (auto launch = dyn_cast<gpu::LaunchOp>(op)) {
        step.work = true;
        costKernel(launch, step);
        step.access = memoryAccess(&op);
      } else if (auto call = dyn_cast<func::CallOp>(op)) {
        if (call.getCallee() != kMatmulFn || call.getNumOperands() != 4)
          return std::nullopt; // calls into other code
        step.work = true;
        costProduct(call, step);
        step.access = memoryAccess(call);
      } else if (op.getNumRegions() > 0) {
        return std::nullopt; // loops and branches
      } else {
        step.access = memoryAccess(&op);
      }
      steps.push_back(std::move(step));
    }
    return steps;
  }

  /// The ops of `body` that are not steps and that `op` needs defined
  /// before it (the producers of its operands and of the values its regions
  /// use), transitively; the steps among the producers go to `stepDeps`.
  static void collectProducers(Operation *op, Block &body,
                               const DenseMap<Operation *, size_t> &stepIndex,
                               llvm::SetVector<Operation *> &producers,
                               SmallVectorImpl<size_t> &stepDeps) {
    SmallVector<Operation *> work{op};
    while (!work.empty()) {
      Operation *next = work.pop_back_val();
      next->walk([&](Operation *inner) {
        for (Value v : inner->getOperands()) {
          Operation *def = v.getDefiningOp();
          if (!def || def->getBlock() != &body)
            continue;
          if (auto it = stepIndex.find(def); it != stepIndex.end()) {
            stepDeps.push_back(it->second);
            continue;
          }
          if (producers.insert(def))
            work.push_back(def);
        }
      });
    }
  }

  bool planFunction(func::FuncOp f, MemoryProvenance &provenance) {
    if (!f.getBody().hasOneBlock())
      return false;
    Block &body = f.getBody().front();
    std::optional<std::vector<Step>> collected = collectSteps(body);
    if (!collected)
      return false;
    std::vector<Step> &steps = *collected;
    size_t n = steps.size();
    SmallVector<size_t> candidates;
    for (size_t i = 0; i < n; ++i)
      if (steps[i].work && steps[i].access.known)
        candidates.push_back(i);
    if (candidates.empty())
      return false;

    // conflict[i][j] (i < j): j must not run while i might.
    // depends[i][j] (i < j): j must stay after i (a conflict, or i defines
    // a value j uses).
    std::vector<std::vector<bool>> conflict(n, std::vector<bool>(n, false));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j)
        conflict[i][j] =
            provenance.mayConflict(steps[i].access, steps[j].access);
    std::vector<std::vector<bool>> depends = conflict;
    DenseMap<Operation *, size_t> stepIndex;
    for (size_t i = 0; i < n; ++i)
      stepIndex[steps[i].op] = i;
    std::vector<llvm::SetVector<Operation *>> producers(n);
    for (size_t j = 0; j < n; ++j) {
      SmallVector<size_t> stepDeps;
      collectProducers(steps[j].op, body, stepIndex, producers[j], stepDeps);
      for (size_t i : stepDeps)
        depends[i][j] = true;
    }

    auto valid = [&](const std::vector<bool> &side) {
      for (size_t i = 0; i < n; ++i)
        if (side[i])
          for (size_t j = i + 1; j < n; ++j)
            if (!side[j] && depends[i][j])
              return false;
      return true;
    };
    // The order in which the steps are enqueued: program-stream steps as
    // they are, each side step just after the last step it depends on and
    // after the side steps before it.
    auto enqueueOrder = [&](const std::vector<bool> &side) {
      std::vector<size_t> order;
      order.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        size_t at = order.size();
        if (side[i]) {
          at = 0;
          for (size_t k = 0; k < order.size(); ++k)
            if (side[order[k]] || depends[order[k]][i])
              at = k + 1;
        }
        order.insert(order.begin() + at, i);
      }
      return order;
    };
    // Estimated time: the program stream runs its steps in order; a side
    // region starts when the side stream is free and the program stream has
    // done what was enqueued before it; the function ends at the join. Two
    // steps that run at once share the GPU: when their fills add up to more
    // than 1, each runs slower by that sum.
    auto estimate = [&](const std::vector<bool> &side) {
      struct Queued {
        double cost, fill;
        size_t after; // program-stream steps that must be done first
      };
      std::vector<Queued> onMain, onSide;
      bool inRegion = false;
      unsigned regions = 0;
      for (size_t i : enqueueOrder(side)) {
        if (!side[i]) {
          onMain.push_back({steps[i].cost, steps[i].fill, 0});
          inRegion = false;
          continue;
        }
        regions += inRegion ? 0 : 1;
        size_t after = inRegion ? onSide.back().after : onMain.size();
        onSide.push_back({steps[i].cost, steps[i].fill, after});
        inRegion = true;
      }
      double now = regions * regionMicros;
      size_t mainAt = 0, sideAt = 0;
      double mainLeft = onMain.empty() ? 0 : onMain[0].cost;
      double sideLeft = onSide.empty() ? 0 : onSide[0].cost;
      while (mainAt < onMain.size() || sideAt < onSide.size()) {
        bool mainRuns = mainAt < onMain.size();
        bool sideRuns = sideAt < onSide.size() && onSide[sideAt].after <= mainAt;
        double rate = 1;
        if (mainRuns && sideRuns)
          rate = 1 / std::max(1.0, onMain[mainAt].fill + onSide[sideAt].fill);
        double step = std::numeric_limits<double>::infinity();
        if (mainRuns)
          step = std::min(step, mainLeft / rate);
        if (sideRuns)
          step = std::min(step, sideLeft / rate);
        now += step;
        if (mainRuns && (mainLeft -= step * rate) <= 1e-9 &&
            ++mainAt < onMain.size())
          mainLeft = onMain[mainAt].cost;
        if (sideRuns && (sideLeft -= step * rate) <= 1e-9 &&
            ++sideAt < onSide.size())
          sideLeft = onSide[sideAt].cost;
      }
      return now;
    };

    std::vector<bool> best(n, false);
    double oneStream = estimate(best), bestTime = oneStream;
    auto consider = [&](const std::vector<bool> &side) {
      if (!valid(side))
        return false;
      double time = estimate(side);
      if (time >= bestTime - 1e-9)
        return false;
      bestTime = time;
      best = side;
      return true;
    };
    if (candidates.size() <= kExhaustiveCandidates) {
      std::vector<bool> side(n, false);
      for (uint32_t mask = 1; mask < (uint32_t(1) << candidates.size());
           ++mask) {
        for (size_t c = 0; c < candidates.size(); ++c)
          side[candidates[c]] = mask >> c & 1;
        consider(side);
      }
    } else {
      // Greedy: add the candidate that helps most while one helps.
      for (bool improved = true; improved;) {
        improved = false;
        std::vector<bool> from = best;
        for (size_t c : candidates) {
          if (from[c])
            continue;
          std::vector<bool> side = from;
          side[c] = true;
          improved |= consider(side);
        }
      }
    }
    if (llvm::none_of(best, [](bool s) { return s; }) ||
        bestTime > oneStream * (1 - kMinimumGain))
      return false;
    apply(body, steps, best, enqueueOrder(best), producers);
    return true;
  }

  /// Moves the side steps up to their places in `order`, brackets runs of
  /// them with bpttSideBegin/End, joins before the return and frees after
  /// the join.
  static void apply(Block &body, ArrayRef<Step> steps,
                    const std::vector<bool> &side, ArrayRef<size_t> order,
                    ArrayRef<llvm::SetVector<Operation *>> producers) {
    // A side step goes just before the first program-stream step that
    // follows it in `order`, if that step is now before it; what it uses
    // goes with it.
    for (size_t k = 0; k < order.size(); ++k) {
      size_t i = order[k];
      if (!side[i])
        continue;
      const size_t *nextMain = llvm::find_if(
          order.drop_front(k + 1), [&](size_t j) { return !side[j]; });
      if (nextMain == order.end())
        continue;
      Operation *anchor = steps[*nextMain].op;
      Operation *op = steps[i].op;
      if (!anchor->isBeforeInBlock(op))
        continue;
      SmallVector<Operation *> moved;
      for (Operation *p : producers[i])
        if (anchor->isBeforeInBlock(p))
          moved.push_back(p);
      llvm::sort(moved, [](Operation *a, Operation *b) {
        return a->isBeforeInBlock(b);
      });
      for (Operation *p : moved)
        p->moveBefore(anchor);
      op->moveBefore(anchor);
    }

    OpBuilder b(body.getParent()->getContext());
    Location loc = body.getParentOp()->getLoc();
    auto call = [&](StringRef name) {
      func::CallOp::create(b, loc, name, TypeRange{}, ValueRange{});
    };
    DenseMap<Operation *, bool> isSide;
    for (size_t i = 0; i < steps.size(); ++i)
      isSide[steps[i].op] = side[i];
    Operation *firstSide = nullptr, *lastSide = nullptr;
    auto close = [&] {
      b.setInsertionPointAfter(lastSide);
      call("bpttSideEnd");
      lastSide = nullptr;
    };
    for (Operation &op : llvm::make_early_inc_range(body.without_terminator())) {
      auto it = isSide.find(&op);
      if (it == isSide.end())
        continue;
      if (!it->second) {
        if (lastSide)
          close();
        continue;
      }
      if (!lastSide) {
        b.setInsertionPoint(&op);
        call("bpttSideBegin");
      }
      if (!firstSide)
        firstSide = &op;
      lastSide = &op;
    }
    if (lastSide)
      close();

    Operation *terminator = body.getTerminator();
    b.setInsertionPoint(terminator);
    call("bpttSideJoin");
    SmallVector<Operation *> frees;
    for (Operation &op : llvm::make_range(firstSide->getIterator(),
                                          terminator->getIterator()))
      if (isa<memref::DeallocOp>(op))
        frees.push_back(&op);
    for (Operation *op : frees)
      op->moveBefore(terminator);
  }
};

} // namespace

std::unique_ptr<Pass> bptt::createSideStreamPass() {
  return std::make_unique<SideStreamPass>();
}
