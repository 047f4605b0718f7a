//===- RNNOpsTest.cpp - building rnn IR from C++ --------------------------===//

#include "bptt/Dialect/RNN/RNNDialect.h"
#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace bptt::rnn;

namespace {

class RNNOpsTest : public ::testing::Test {
protected:
  RNNOpsTest() {
    context.loadDialect<RNNDialect, arith::ArithDialect, func::FuncDialect,
                        linalg::LinalgDialect, math::MathDialect,
                        tensor::TensorDialect>();
    // Capture diagnostics so tests can assert on them.
    handler.emplace(&context, [this](Diagnostic &diag) {
      messages.push_back(diag.str());
      return success();
    });
  }

  /// Builds `h' = tanh(h·W + x)`, loss = 0, as an Elman-like cell with the
  /// given state/result types, inside `module`.
  CellOp buildCell(ModuleOp module, Type stateType, Type newStateType) {
    OpBuilder b(module.getBodyRegion());
    Location loc = b.getUnknownLoc();
    auto f32 = b.getF32Type();
    auto w = RankedTensorType::get({4, 4}, f32);
    auto cell = CellOp::create(b, loc, "elman", TypeRange{stateType},
                               /*inputType=*/stateType, TypeRange{w}, f32);
    // The builder types results after the states; override to test the
    // verifier on a cell whose step changes the state type.
    cell.setFunctionTypeAttr(TypeAttr::get(b.getFunctionType(
        cell.getArgumentTypes(), {newStateType, f32})));

    Block &entry = cell.getBody().front();
    b.setInsertionPointToStart(&entry);
    Value h = entry.getArgument(0), x = entry.getArgument(1),
          wArg = entry.getArgument(2);
    Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
    Value init = tensor::EmptyOp::create(b, loc, {2, 4}, f32);
    Value filled =
        linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{init})
            .getResult(0);
    Value prod = linalg::MatmulOp::create(b, loc, TypeRange{init.getType()},
                                          ValueRange{h, wArg},
                                          ValueRange{filled})
                     .getResult(0);
    Value sum = arith::AddFOp::create(b, loc, prod, x);
    Value next = math::TanhOp::create(b, loc, sum);
    YieldOp::create(b, loc, ValueRange{next, zero});
    return cell;
  }

  /// Appends `func.func @step` that requests rnn.bptt over @elman with
  /// inputs of type `seq` and the given budget; returns the op.
  BPTTOp buildBPTT(ModuleOp module, Type state, RankedTensorType seq,
                   int64_t budget) {
    OpBuilder mb(module.getBodyRegion());
    mb.setInsertionPointToEnd(module.getBody());
    auto w = RankedTensorType::get({4, 4}, mb.getF32Type());
    auto func = func::FuncOp::create(mb, mb.getUnknownLoc(), "step",
                                     mb.getFunctionType({state, seq, w}, {}));
    Block *body = func.addEntryBlock();
    mb.setInsertionPointToStart(body);
    auto bptt = BPTTOp::create(
        mb, mb.getUnknownLoc(), mb.getF32Type(), TypeRange{state, seq, w},
        "elman", ValueRange{body->getArgument(0)}, body->getArgument(1),
        ValueRange{body->getArgument(2)}, budget, /*strategy=*/nullptr);
    func::ReturnOp::create(mb, mb.getUnknownLoc());
    return bptt;
  }

  MLIRContext context;
  std::optional<ScopedDiagnosticHandler> handler;
  std::vector<std::string> messages;
};

TEST_F(RNNOpsTest, BuildsAndVerifiesACell) {
  OpBuilder b(&context);
  auto module = ModuleOp::create(b.getUnknownLoc());
  auto state = RankedTensorType::get({2, 4}, b.getF32Type());
  CellOp cell = buildCell(module, state, state);

  ASSERT_TRUE(succeeded(verify(module))) << (messages.empty() ? "" : messages[0]);
  EXPECT_EQ(cell.getNumStates(), 1u);
  EXPECT_EQ(cell.getNumParams(), 1u);
  EXPECT_EQ(cell.getInputType(), state);
  EXPECT_EQ(cell.getLossType(), b.getF32Type());
  EXPECT_EQ(cell.getStateBytes(), 2 * 4 * 4);

  // An rnn.bptt over the cell verifies too, and its gradient groups line up
  // with the operands.
  auto seq = RankedTensorType::get({ShapedType::kDynamic, 2, 4}, b.getF32Type());
  auto w = RankedTensorType::get({4, 4}, b.getF32Type());
  BPTTOp bptt = buildBPTT(module, state, seq, /*budget=*/4096);
  ASSERT_TRUE(succeeded(verify(module))) << (messages.empty() ? "" : messages[0]);
  EXPECT_EQ(bptt.getStrategyOrDefault(), Strategy::MSM);
  EXPECT_EQ(bptt.getStateGrads().size(), 1u);
  EXPECT_EQ(bptt.getInputGrads().getType(), seq);
  EXPECT_EQ(bptt.getParamGrads().size(), 1u);
  EXPECT_EQ(bptt.getParamGrads()[0].getType(), w);
  module->destroy();
}

TEST_F(RNNOpsTest, RejectsACellThatChangesTheStateType) {
  OpBuilder b(&context);
  auto module = ModuleOp::create(b.getUnknownLoc());
  auto state = RankedTensorType::get({2, 4}, b.getF32Type());
  auto wider = RankedTensorType::get({2, 8}, b.getF32Type());
  buildCell(module, state, wider);

  EXPECT_TRUE(failed(verify(module)));
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find("must preserve every state's type"),
            std::string::npos)
      << messages[0];
  module->destroy();
}

TEST_F(RNNOpsTest, RejectsANonPositiveBudget) {
  OpBuilder b(&context);
  auto module = ModuleOp::create(b.getUnknownLoc());
  auto state = RankedTensorType::get({2, 4}, b.getF32Type());
  buildCell(module, state, state);
  buildBPTT(module, state, RankedTensorType::get({3, 2, 4}, b.getF32Type()),
            /*budget=*/0);

  EXPECT_TRUE(failed(verify(module)));
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find("memory_budget must be a positive number of bytes"),
            std::string::npos)
      << messages[0];
  module->destroy();
}

} // namespace
