//===- ScalarDerivatives.cpp - reverse-mode rules of scalar ops -----------===//

#include "ScalarDerivatives.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace bptt::rnn;

StringRef bptt::rnn::supportedScalarOps() {
  return "arith.{addf, subf, mulf, divf, negf, maximumf, minimumf, maxnumf, "
         "minnumf, select, extf, truncf, cmpf, constant, integer and index "
         "ops, sitofp, uitofp}, math.{exp, exp2, expm1, log, log2, log1p, "
         "tanh, sqrt, rsqrt, powf, fpowi, absf, sin, cos, erf}, linalg.index";
}

ScalarOpClass bptt::rnn::classifyScalarOp(Operation *op) {
  bool floatResult = op->getNumResults() == 1 &&
                     isa<FloatType>(op->getResult(0).getType());
  if (isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp,
          arith::NegFOp, arith::MaximumFOp, arith::MinimumFOp,
          arith::MaxNumFOp, arith::MinNumFOp, arith::ExtFOp, arith::TruncFOp,
          math::ExpOp, math::Exp2Op, math::ExpM1Op, math::LogOp, math::Log2Op,
          math::Log1pOp, math::TanhOp, math::SqrtOp, math::RsqrtOp,
          math::PowFOp, math::FPowIOp, math::AbsFOp, math::SinOp, math::CosOp,
          math::ErfOp>(op))
    return ScalarOpClass::Differentiable;
  if (isa<arith::SelectOp>(op))
    return floatResult ? ScalarOpClass::Differentiable
                       : ScalarOpClass::Inactive;
  // Integer-to-float casts produce floats whose derivative is zero.
  if (isa<arith::ConstantOp, arith::CmpFOp, arith::SIToFPOp, arith::UIToFPOp,
          linalg::IndexOp>(op))
    return ScalarOpClass::Inactive;
  // Integer and index arithmetic of any kind: nothing flows through it.
  if (op->getDialect() && op->getDialect()->getNamespace() == "arith" &&
      llvm::none_of(op->getResultTypes(),
                    [](Type t) { return isa<FloatType>(t); }))
    return ScalarOpClass::Inactive;
  return ScalarOpClass::Unsupported;
}

static Value constantLike(OpBuilder &b, Location loc, Value like, double v) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(like.getType(), v));
}

SmallVector<Value> bptt::rnn::scalarAdjoints(
    OpBuilder &b, Location loc, Operation *op,
    function_ref<Value(unsigned)> operand, function_ref<Value()> result,
    Value d, function_ref<bool(unsigned)> wanted) {
  auto mul = [&](Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y).getResult();
  };
  auto div = [&](Value x, Value y) {
    return arith::DivFOp::create(b, loc, x, y).getResult();
  };
  auto neg = [&](Value x) { return arith::NegFOp::create(b, loc, x).getResult(); };
  auto add = [&](Value x, Value y) {
    return arith::AddFOp::create(b, loc, x, y).getResult();
  };
  auto sub = [&](Value x, Value y) {
    return arith::SubFOp::create(b, loc, x, y).getResult();
  };
  auto constant = [&](double v) { return constantLike(b, loc, d, v); };
  auto select = [&](Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y).getResult();
  };

  // Each rule fills `grads[i]` only where `wanted(i)`: the operands and
  // result a rule reads are recomputed or saved on demand, so a rule must not
  // touch what an unwanted entry alone would need.
  SmallVector<Value> grads(op->getNumOperands());
  auto set = [&](unsigned i, function_ref<Value()> rule) {
    if (wanted(i))
      grads[i] = rule();
  };
  // Routes d to the operand that max/min selected (ties: the first).
  auto route = [&](arith::CmpFPredicate pred) {
    if (!wanted(0) && !wanted(1))
      return;
    Value takesFirst =
        arith::CmpFOp::create(b, loc, pred, operand(0), operand(1));
    set(0, [&] { return select(takesFirst, d, constant(0.0)); });
    set(1, [&] { return select(takesFirst, constant(0.0), d); });
  };

  TypeSwitch<Operation *>(op)
      .Case<arith::AddFOp>([&](auto) {
        set(0, [&] { return d; });
        set(1, [&] { return d; });
      })
      .Case<arith::SubFOp>([&](auto) {
        set(0, [&] { return d; });
        set(1, [&] { return neg(d); });
      })
      .Case<arith::MulFOp>([&](auto) {
        set(0, [&] { return mul(d, operand(1)); });
        set(1, [&] { return mul(d, operand(0)); });
      })
      .Case<arith::DivFOp>([&](auto) {
        // d(a/b) = da/b - (a/b) db/b
        set(0, [&] { return div(d, operand(1)); });
        set(1, [&] { return neg(mul(div(d, operand(1)), result())); });
      })
      .Case<arith::NegFOp>([&](auto) { set(0, [&] { return neg(d); }); })
      .Case<arith::MaximumFOp, arith::MaxNumFOp>(
          [&](auto) { route(arith::CmpFPredicate::OGE); })
      .Case<arith::MinimumFOp, arith::MinNumFOp>(
          [&](auto) { route(arith::CmpFPredicate::OLE); })
      .Case<arith::SelectOp>([&](auto) {
        set(1, [&] { return select(operand(0), d, constant(0.0)); });
        set(2, [&] { return select(operand(0), constant(0.0), d); });
      })
      .Case<arith::ExtFOp>([&](arith::ExtFOp ext) {
        set(0, [&] {
          return arith::TruncFOp::create(b, loc, ext.getIn().getType(), d)
              .getResult();
        });
      })
      .Case<arith::TruncFOp>([&](arith::TruncFOp trunc) {
        set(0, [&] {
          return arith::ExtFOp::create(b, loc, trunc.getIn().getType(), d)
              .getResult();
        });
      })
      .Case<math::ExpOp>([&](auto) { set(0, [&] { return mul(d, result()); }); })
      .Case<math::Exp2Op>([&](auto) {
        set(0, [&] { return mul(d, mul(result(), constant(M_LN2))); });
      })
      .Case<math::ExpM1Op>([&](auto) {
        set(0, [&] { return mul(d, add(result(), constant(1.0))); });
      })
      .Case<math::LogOp>([&](auto) { set(0, [&] { return div(d, operand(0)); }); })
      .Case<math::Log2Op>([&](auto) {
        set(0, [&] { return div(d, mul(operand(0), constant(M_LN2))); });
      })
      .Case<math::Log1pOp>([&](auto) {
        set(0, [&] { return div(d, add(operand(0), constant(1.0))); });
      })
      .Case<math::TanhOp>([&](auto) {
        set(0, [&] {
          Value r = result();
          return mul(d, sub(constant(1.0), mul(r, r)));
        });
      })
      .Case<math::SqrtOp>([&](auto) {
        set(0, [&] { return div(d, mul(result(), constant(2.0))); });
      })
      .Case<math::RsqrtOp>([&](auto) {
        // d(a^-1/2) = -1/2 a^-3/2 da = -1/2 r^3 da
        set(0, [&] {
          Value r = result();
          return mul(d, mul(constant(-0.5), mul(r, mul(r, r))));
        });
      })
      .Case<math::PowFOp>([&](auto) {
        // d(a^p) = p a^(p-1) da + a^p log(a) dp
        set(0, [&] {
          Value a = operand(0), p = operand(1);
          Value lower = math::PowFOp::create(b, loc, a, sub(p, constant(1.0)));
          return mul(d, mul(p, lower));
        });
        set(1, [&] {
          return mul(d, mul(result(), math::LogOp::create(b, loc, operand(0))));
        });
      })
      .Case<math::FPowIOp>([&](auto) {
        set(0, [&] {
          Value a = operand(0), n = operand(1);
          Value one =
              arith::ConstantOp::create(b, loc, b.getIntegerAttr(n.getType(), 1));
          Value lower = math::FPowIOp::create(
              b, loc, a, arith::SubIOp::create(b, loc, n, one));
          Value nf = arith::SIToFPOp::create(b, loc, d.getType(), n);
          return mul(d, mul(nf, lower));
        });
      })
      .Case<math::AbsFOp>([&](auto) {
        set(0, [&] {
          Value negative = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OLT, operand(0), constant(0.0));
          return select(negative, neg(d), d);
        });
      })
      .Case<math::SinOp>([&](auto) {
        set(0, [&] {
          return mul(d, math::CosOp::create(b, loc, operand(0)).getResult());
        });
      })
      .Case<math::CosOp>([&](auto) {
        set(0, [&] {
          return neg(mul(d, math::SinOp::create(b, loc, operand(0)).getResult()));
        });
      })
      .Case<math::ErfOp>([&](auto) {
        // d erf(a) = 2/sqrt(pi) exp(-a^2) da
        set(0, [&] {
          Value a = operand(0);
          Value gauss = math::ExpOp::create(b, loc, neg(mul(a, a)));
          return mul(d, mul(constant(2.0 / std::sqrt(M_PI)), gauss));
        });
      });
  return grads;
}
