//===- RNNOps.cpp - rnn dialect operations --------------------------------===//

#include "bptt/Dialect/RNN/RNNOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/FunctionImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace bptt::rnn;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Prints a list of types as "(t0, t1)" for diagnostics.
static std::string typeListString(TypeRange types) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << '(';
  llvm::interleaveComma(types, os);
  os << ')';
  return s;
}

/// Checks that `actual` equals `expected` element by element; `what` names
/// one element in diagnostics ("initial state", "parameter gradient", ...).
static LogicalResult verifyTypeGroup(Operation *op, StringRef what,
                                     TypeRange actual, TypeRange expected,
                                     StringRef expectation) {
  if (actual.size() != expected.size())
    return op->emitOpError() << "expects " << expected.size() << " " << what
                             << "(s) " << expectation << ", got "
                             << actual.size();
  for (auto [i, pair] : llvm::enumerate(llvm::zip(actual, expected))) {
    auto [a, e] = pair;
    if (a != e)
      return op->emitOpError() << what << " #" << i << " has type " << a
                               << ", but " << expectation << " it must be "
                               << e;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// CellOp
//===----------------------------------------------------------------------===//

void CellOp::build(OpBuilder &builder, OperationState &state, StringRef name,
                   TypeRange stateTypes, Type inputType, TypeRange paramTypes,
                   Type lossType) {
  SmallVector<Type> argTypes(stateTypes);
  argTypes.push_back(inputType);
  llvm::append_range(argTypes, paramTypes);
  SmallVector<Type> resultTypes(stateTypes);
  resultTypes.push_back(lossType);

  state.addAttribute(SymbolTable::getSymbolAttrName(),
                     builder.getStringAttr(name));
  state.addAttribute(getFunctionTypeAttrName(state.name),
                     TypeAttr::get(builder.getFunctionType(argTypes,
                                                           resultTypes)));
  state.addAttribute(getNumStatesAttrName(state.name),
                     builder.getI64IntegerAttr(stateTypes.size()));
  Region *body = state.addRegion();
  Block *entry = new Block();
  body->push_back(entry);
  for (Type t : argTypes)
    entry->addArgument(t, state.location);
}

std::optional<int64_t> bptt::rnn::storageBytes(Type type) {
  if (auto shaped = dyn_cast<ShapedType>(type)) {
    if (!isa<RankedTensorType, MemRefType>(type) || !shaped.hasStaticShape() ||
        !shaped.getElementType().isIntOrFloat())
      return std::nullopt;
    return shaped.getNumElements() *
           llvm::divideCeil(shaped.getElementTypeBitWidth(), 8);
  }
  if (!type.isIntOrFloat())
    return std::nullopt;
  return llvm::divideCeil(type.getIntOrFloatBitWidth(), 8);
}

int64_t CellOp::getStateBytes() {
  int64_t bytes = 0;
  for (Type t : getStateTypes())
    bytes += *storageBytes(t); // the verifier requires static tensors
  return bytes;
}

void CellOp::cloneBodyInto(OpBuilder &b, IRMapping &mapping) {
  for (Operation &op : getBody().front().without_terminator()) {
    if (auto stop = dyn_cast<StopGradientOp>(op))
      mapping.map(stop.getResult(), mapping.lookupOrDefault(stop.getInput()));
    else
      b.clone(op, mapping);
  }
}

ParseResult CellOp::parse(OpAsmParser &parser, OperationState &result) {
  StringAttr name;
  if (parser.parseSymbolName(name, SymbolTable::getSymbolAttrName(),
                             result.attributes))
    return failure();

  // state(...) input(...) [params(...)] -> (results)
  auto parseGroup = [&](StringRef keyword,
                        SmallVectorImpl<OpAsmParser::Argument> &args) {
    return failure(parser.parseKeyword(keyword) ||
                   parser.parseArgumentList(args, OpAsmParser::Delimiter::Paren,
                                            /*allowType=*/true,
                                            /*allowAttrs=*/true));
  };
  SmallVector<OpAsmParser::Argument> states, inputs, params;
  if (failed(parseGroup("state", states)))
    return failure();
  SMLoc inputLoc = parser.getCurrentLocation();
  if (failed(parseGroup("input", inputs)))
    return failure();
  if (inputs.size() != 1)
    return parser.emitError(inputLoc)
           << "a cell takes exactly one per-step input in 'input(...)', got "
           << inputs.size();
  if (succeeded(parser.parseOptionalKeyword("params")) &&
      failed(parser.parseArgumentList(params, OpAsmParser::Delimiter::Paren,
                                      /*allowType=*/true,
                                      /*allowAttrs=*/true)))
    return failure();

  SmallVector<Type> resultTypes;
  if (parser.parseArrow() ||
      parser.parseCommaSeparatedList(
          OpAsmParser::Delimiter::Paren,
          [&] { return parser.parseType(resultTypes.emplace_back()); }))
    return failure();

  SmallVector<OpAsmParser::Argument> args(states);
  llvm::append_range(args, inputs);
  llvm::append_range(args, params);
  SmallVector<Type> argTypes;
  for (auto &arg : args)
    argTypes.push_back(arg.type);

  Builder &builder = parser.getBuilder();
  result.addAttribute(getFunctionTypeAttrName(result.name),
                      TypeAttr::get(builder.getFunctionType(argTypes,
                                                            resultTypes)));
  result.addAttribute(getNumStatesAttrName(result.name),
                      builder.getI64IntegerAttr(states.size()));
  call_interface_impl::addArgAndResultAttrs(
      builder, result, args, /*resultAttrs=*/{},
      getArgAttrsAttrName(result.name), getResAttrsAttrName(result.name));

  if (parser.parseOptionalAttrDictWithKeyword(result.attributes))
    return failure();
  Region *body = result.addRegion();
  return parser.parseRegion(*body, args);
}

void CellOp::print(OpAsmPrinter &p) {
  p << ' ';
  p.printSymbolName(getSymName());
  Block &entry = getBody().front();
  ArrayAttr argAttrs = getArgAttrsAttr();
  auto printGroup = [&](StringRef keyword, unsigned begin, unsigned end) {
    p << ' ' << keyword << '(';
    llvm::interleaveComma(llvm::seq(begin, end), p, [&](unsigned i) {
      ArrayRef<NamedAttribute> attrs;
      if (argAttrs)
        attrs = cast<DictionaryAttr>(argAttrs[i]).getValue();
      p.printRegionArgument(entry.getArgument(i), attrs);
    });
    p << ')';
  };
  unsigned numStates = getNumStates();
  unsigned numArgs = entry.getNumArguments();
  printGroup("state", 0, numStates);
  printGroup("input", numStates, numStates + 1);
  if (numArgs > numStates + 1)
    printGroup("params", numStates + 1, numArgs);
  p << " -> " << typeListString(getResultTypes());
  p.printOptionalAttrDictWithKeyword(
      (*this)->getAttrs(),
      {SymbolTable::getSymbolAttrName(), getFunctionTypeAttrName(),
       getNumStatesAttrName(), getArgAttrsAttrName(), getResAttrsAttrName()});
  p << ' ';
  p.printRegion(getBody(), /*printEntryBlockArgs=*/false,
                /*printBlockTerminators=*/true);
}

LogicalResult CellOp::verify() {
  ArrayRef<Type> args = getArgumentTypes();
  ArrayRef<Type> results = getResultTypes();
  int64_t numStates = getNumStatesAttr().getInt();

  if (static_cast<int64_t>(args.size()) < numStates + 1)
    return emitOpError() << "has " << args.size()
                         << " argument(s) but num_states = " << numStates
                         << "; expected " << numStates
                         << " state argument(s), then exactly one per-step "
                            "input, then the parameters";
  if (static_cast<int64_t>(results.size()) != numStates + 1)
    return emitOpError() << "returns " << results.size()
                         << " value(s); expected the " << numStates
                         << " new state(s) followed by the step's loss";

  for (int64_t i = 0; i < numStates; ++i) {
    auto tensor = dyn_cast<RankedTensorType>(args[i]);
    if (!tensor || !tensor.hasStaticShape() ||
        !tensor.getElementType().isIntOrFloat())
      return emitOpError() << "state #" << i << " has type " << args[i]
                           << "; a state must be a statically shaped tensor "
                              "of numbers so that its size in bytes is known "
                              "to the planner";
    if (results[i] != args[i])
      return emitOpError() << "new state #" << i << " has type " << results[i]
                           << " but the state it replaces has type " << args[i]
                           << "; a step must preserve every state's type";
  }
  if (!isa<RankedTensorType>(args[numStates]))
    return emitOpError() << "per-step input has type " << args[numStates]
                         << "; expected a ranked tensor";
  for (auto [i, t] : llvm::enumerate(args.drop_front(numStates + 1)))
    if (!isa<RankedTensorType>(t))
      return emitOpError() << "parameter #" << i << " has type " << t
                           << "; expected a ranked tensor";
  if (!isa<FloatType>(results.back()))
    return emitOpError() << "last result (the step's loss) has type "
                         << results.back() << "; expected a scalar float type "
                         << "such as f32";
  return success();
}

LogicalResult CellOp::verifyRegions() {
  // FunctionOpInterface has already checked the entry block's arguments.
  Block &entry = getBody().front();
  if (!isa<YieldOp>(entry.getTerminator()))
    return emitOpError() << "body must end with rnn.yield, found "
                         << entry.getTerminator()->getName();
  return success();
}

//===----------------------------------------------------------------------===//
// YieldOp
//===----------------------------------------------------------------------===//

LogicalResult YieldOp::verify() {
  auto cell = cast<CellOp>((*this)->getParentOp());
  if (getOperandTypes() != cell.getResultTypes())
    return emitOpError() << "yields " << typeListString(getOperandTypes())
                         << " but cell @" << cell.getSymName()
                         << " returns " << typeListString(cell.getResultTypes());
  return success();
}

//===----------------------------------------------------------------------===//
// ApplyOp and BPTTOp: uses of a cell
//===----------------------------------------------------------------------===//

/// Resolves `cellRef` to an rnn.cell and checks the operands against its
/// signature. Shared by rnn.apply and rnn.bptt, which take the same operands.
static FailureOr<CellOp> verifyCellOperands(Operation *op,
                                            SymbolTableCollection &symbolTable,
                                            FlatSymbolRefAttr cellRef,
                                            ValueRange initialStates,
                                            Value inputs, ValueRange params) {
  Operation *symbol = symbolTable.lookupNearestSymbolFrom(op, cellRef);
  if (!symbol)
    return op->emitOpError() << "refers to " << cellRef
                             << ", which is not defined; expected the name of "
                                "an rnn.cell";
  auto cell = dyn_cast<CellOp>(symbol);
  if (!cell)
    return op->emitOpError() << "refers to " << cellRef << ", which is a '"
                             << symbol->getName()
                             << "'; expected an rnn.cell";

  std::string forCell = ("for cell @" + cell.getSymName()).str();
  if (failed(verifyTypeGroup(op, "initial state", initialStates.getTypes(),
                             cell.getStateTypes(), forCell)))
    return failure();

  // inputs : tensor<T x (per-step input shape) x elt>, T static or dynamic.
  auto stepType = cast<RankedTensorType>(cell.getInputType());
  auto seqType = cast<RankedTensorType>(inputs.getType());
  if (seqType.getRank() != stepType.getRank() + 1 ||
      seqType.getShape().drop_front() != stepType.getShape() ||
      seqType.getElementType() != stepType.getElementType()) {
    SmallVector<int64_t> expected{ShapedType::kDynamic};
    llvm::append_range(expected, stepType.getShape());
    return op->emitOpError()
           << "inputs have type " << seqType
           << "; expected the per-step input type " << stepType
           << " of cell @" << cell.getSymName()
           << " stacked along a leading time dimension, i.e. "
           << RankedTensorType::get(expected, stepType.getElementType())
           << " with T static or dynamic";
  }

  if (failed(verifyTypeGroup(op, "parameter", params.getTypes(),
                             cell.getParamTypes(), forCell)))
    return failure();
  return cell;
}

/// The summed loss has the type of the cell's per-step loss.
static LogicalResult verifyLossType(Operation *op, Type loss, CellOp cell) {
  if (loss != cell.getLossType())
    return op->emitOpError() << "loss has type " << loss << ", but cell @"
                             << cell.getSymName() << " returns a loss of type "
                             << cell.getLossType();
  return success();
}

LogicalResult ApplyOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FailureOr<CellOp> cell =
      verifyCellOperands(*this, symbolTable, getCellAttr(), getInitialStates(),
                         getInputs(), getParams());
  if (failed(cell))
    return failure();
  std::string forCell = ("for cell @" + cell->getSymName()).str();
  if (failed(verifyTypeGroup(*this, "final state", getFinalStates().getTypes(),
                             cell->getStateTypes(), forCell)))
    return failure();
  return verifyLossType(*this, getLoss().getType(), *cell);
}

LogicalResult BPTTOp::verify() {
  if (getMemoryBudget() <= 0)
    return emitOpError() << "memory_budget must be a positive number of "
                            "bytes, got "
                         << getMemoryBudget();
  // Every gradient has the type of the value it differentiates, in operand
  // order: initial states, inputs, parameters.
  SmallVector<Type> expected(getInitialStates().getTypes());
  expected.push_back(getInputs().getType());
  llvm::append_range(expected, getParams().getTypes());
  return verifyTypeGroup(*this, "gradient", getGradients().getTypes(),
                         expected,
                         "(one per initial state, one for the inputs, one per "
                         "parameter, each of the differentiated value's type)");
}

LogicalResult BPTTOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  FailureOr<CellOp> cell =
      verifyCellOperands(*this, symbolTable, getCellAttr(), getInitialStates(),
                         getInputs(), getParams());
  if (failed(cell))
    return failure();
  return verifyLossType(*this, getLoss().getType(), *cell);
}

#define GET_OP_CLASSES
#include "bptt/Dialect/RNN/RNNOps.cpp.inc"
