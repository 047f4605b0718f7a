//===- FuseLaunches.cpp - independent kernels as one launch ---------------===//
//
// bptt-gpu-fuse-launches: a kernel that nothing between it and the next
// kernel waits for, and that touches none of that next kernel's memory,
// runs in the same launch: the blocks of the fused launch are the blocks of
// the first kernel followed by those of the second, each block running the
// body it came from. A small kernel costs its launch and the drain of the
// one before it (2.4-3.9 us on an H100 however little it does), so the
// three small kernels at the start of an LSTM backward step (the step's
// loss, the output bias gradient, the cell's backward) become one.
//
//===----------------------------------------------------------------------===//

#include "GPUProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace bptt;

namespace {

constexpr int64_t kWarp = 32;

/// A launch the pass can fuse: static sizes, threads along x only (a
/// multiple of a warp, so that threads a fused block does not use are whole
/// warps and a warp's shuffles keep all their threads), a body of one block
/// with no barrier (threads that skip the body would not reach it) and no
/// memory attributions.
struct Shape {
  int64_t grid[3];
  int64_t threads;
  int64_t blocks() const { return grid[0] * grid[1] * grid[2]; }
};

std::optional<Shape> fusibleShape(gpu::LaunchOp launch) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty() ||
      launch.getDynamicSharedMemorySize() ||
      !launch.getWorkgroupAttributions().empty() ||
      !launch.getPrivateAttributions().empty() ||
      !launch.getBody().hasOneBlock() || launch->getNumResults() != 0)
    return std::nullopt;
  gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
  gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
  Shape shape;
  Value gridValues[3] = {grid.x, grid.y, grid.z};
  for (int d = 0; d < 3; ++d) {
    std::optional<int64_t> size = getConstantIntValue(gridValues[d]);
    if (!size || *size < 1)
      return std::nullopt;
    shape.grid[d] = *size;
  }
  std::optional<int64_t> x = getConstantIntValue(block.x),
                         y = getConstantIntValue(block.y),
                         z = getConstantIntValue(block.z);
  if (!x || !y || !z || *y != 1 || *z != 1 || *x < 1 || *x % kWarp != 0)
    return std::nullopt;
  shape.threads = *x;
  WalkResult barrier = launch.getBody().walk([](Operation *op) {
    return isa<gpu::BarrierOp>(op) ? WalkResult::interrupt()
                                   : WalkResult::advance();
  });
  if (barrier.wasInterrupted())
    return std::nullopt;
  return shape;
}

struct FuseLaunchesPass
    : PassWrapper<FuseLaunchesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(FuseLaunchesPass)
  StringRef getArgument() const override { return "bptt-gpu-fuse-launches"; }
  StringRef getDescription() const override {
    return "Independent kernels next to each other run as one launch";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<gpu::GPUDialect, arith::ArithDialect, scf::SCFDialect>();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MemoryProvenance provenance(module);
    SmallVector<Block *> blocks;
    module.walk([&](Block *block) {
      Operation *parent = block->getParentOp();
      if (!isa<ModuleOp, gpu::GPUModuleOp>(parent) &&
          !parent->getParentOfType<gpu::LaunchOp>() &&
          !isa<gpu::LaunchOp>(parent) &&
          !parent->getParentOfType<gpu::GPUModuleOp>())
        blocks.push_back(block);
    });
    for (Block *block : blocks)
      fuseIn(*block, provenance);
  }

  /// The next launch after `last` in its block that the launches before it
  /// (whose memory is `access`) may move down to: everything in between is
  /// free of memory effects, an allocation, or touches none of that
  /// memory. Null if there is none.
  static gpu::LaunchOp nextReachable(gpu::LaunchOp last,
                                     const MemoryAccess &access,
                                     MemoryProvenance &provenance) {
    for (Operation *op = last->getNextNode(); op; op = op->getNextNode()) {
      if (auto launch = dyn_cast<gpu::LaunchOp>(op))
        return launch;
      if (op->getNumRegions() == 0 && isMemoryEffectFree(op))
        continue;
      if (isa<memref::AllocOp>(op))
        continue;
      if (op->getNumRegions() != 0 ||
          provenance.mayConflict(access, memoryAccess(op)))
        return nullptr;
    }
    return nullptr;
  }

  /// From each fusible launch on, the launches it reaches one after
  /// another, each touching none of the memory of those before it, become
  /// one launch where the last of them was.
  void fuseIn(Block &block, MemoryProvenance &provenance) {
    for (Operation *op = &block.front(); op;) {
      auto first = dyn_cast<gpu::LaunchOp>(op);
      op = op->getNextNode();
      if (!first)
        continue;
      std::optional<Shape> firstShape = fusibleShape(first);
      MemoryAccess access = memoryAccess(first);
      if (!firstShape || !access.known)
        continue;
      SmallVector<std::pair<gpu::LaunchOp, Shape>> group{{first, *firstShape}};
      while (gpu::LaunchOp next =
                 nextReachable(group.back().first, access, provenance)) {
        std::optional<Shape> shape = fusibleShape(next);
        MemoryAccess nextAccess = memoryAccess(next);
        if (!shape || provenance.mayConflict(access, nextAccess))
          break;
        group.push_back({next, *shape});
        access.reads.append(nextAccess.reads);
        access.writes.append(nextAccess.writes);
      }
      if (group.size() > 1)
        op = fuse(group)->getNextNode();
    }
  }

  /// One launch in place of the last of `group`, whose blocks are those of
  /// the group's launches one after another, each running the body it came
  /// from.
  static gpu::LaunchOp fuse(ArrayRef<std::pair<gpu::LaunchOp, Shape>> group) {
    gpu::LaunchOp last = group.back().first;
    Location loc = last.getLoc();
    OpBuilder b(last);
    auto index = [&](OpBuilder &nb, int64_t v) -> Value {
      return arith::ConstantIndexOp::create(nb, loc, v);
    };
    int64_t threads = 0, blocks = 0;
    for (const auto &[launch, shape] : group) {
      threads = std::max(threads, shape.threads);
      blocks += shape.blocks();
    }
    auto fused = gpu::LaunchOp::create(b, loc, index(b, blocks), index(b, 1),
                                       index(b, 1), index(b, threads),
                                       index(b, 1), index(b, 1));
    Block &body = fused.getBody().front();
    OpBuilder nb = OpBuilder::atBlockEnd(&body);
    Value linear = fused.getBlockIds().x;
    Value tid = fused.getThreadIds().x;
    int64_t offset = 0;
    for (auto [launch, shape] : group) {
      // Blocks offset .. offset + blocks - 1, threads below its own count.
      Value from = index(nb, offset);
      Value to = index(nb, offset + shape.blocks());
      // (One op a statement: the order of arguments' evaluation is not
      // C++'s to fix, and the IR should not depend on the compiler.)
      Value atLeast = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::uge,
                                            linear, from);
      Value below = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult,
                                          linear, to);
      Value mine = arith::AndIOp::create(nb, loc, atLeast, below);
      if (shape.threads < threads) {
        Value count = index(nb, shape.threads);
        Value used = arith::CmpIOp::create(nb, loc, arith::CmpIPredicate::ult,
                                           tid, count);
        mine = arith::AndIOp::create(nb, loc, mine, used);
      }
      scf::IfOp::create(nb, loc, mine, [&](OpBuilder &ib, Location l) {
        Value local = arith::SubIOp::create(ib, l, linear, from);
        Value gx = index(ib, shape.grid[0]), gy = index(ib, shape.grid[1]);
        Value bx = arith::RemUIOp::create(ib, l, local, gx);
        Value rest = arith::DivUIOp::create(ib, l, local, gx);
        Value by = arith::RemUIOp::create(ib, l, rest, gy);
        Value bz = arith::DivUIOp::create(ib, l, rest, gy);
        IRMapping map;
        gpu::KernelDim3 ids = launch.getBlockIds();
        map.map(ids.x, bx);
        map.map(ids.y, by);
        map.map(ids.z, bz);
        gpu::KernelDim3 tids = launch.getThreadIds();
        map.map(tids.x, tid);
        map.map(tids.y, index(ib, 0));
        map.map(tids.z, index(ib, 0));
        gpu::KernelDim3 grid = launch.getGridSize();
        map.map(grid.x, gx);
        map.map(grid.y, gy);
        map.map(grid.z, index(ib, shape.grid[2]));
        gpu::KernelDim3 block = launch.getBlockSize();
        map.map(block.x, index(ib, shape.threads));
        map.map(block.y, index(ib, 1));
        map.map(block.z, index(ib, 1));
        for (Operation &inner : launch.getBody().front().without_terminator())
          ib.clone(inner, map);
        scf::YieldOp::create(ib, l);
      });
      offset += shape.blocks();
    }
    gpu::TerminatorOp::create(nb, loc);
    for (auto [launch, shape] : group)
      launch.erase();
    return fused;
  }
};

} // namespace

std::unique_ptr<Pass> bptt::createFuseLaunchesPass() {
  return std::make_unique<FuseLaunchesPass>();
}
