//===- RNNOps.td - rnn dialect operations ------------------*- tablegen -*-===//

#ifndef BPTT_DIALECT_RNN_RNNOPS_TD
#define BPTT_DIALECT_RNN_RNNOPS_TD

include "bptt/Dialect/RNN/RNNDialect.td"
include "bptt/Dialect/RNN/RNNAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/FunctionInterfaces.td"
include "mlir/Interfaces/CallInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// rnn.cell
//===----------------------------------------------------------------------===//

def RNN_CellOp : RNN_Op<"cell", [
    AutomaticAllocationScope, FunctionOpInterface, IsolatedFromAbove]> {
  let summary = "One step of a recurrence: (states, input, params) -> (states, loss)";
  let description = [{
    Defines a recurrent cell as a function-like symbol. Its arguments are, in
    order, the `N` state values at step t-1 (`num_states` of them, at least one;
    an LSTM has two, h and c), exactly one per-step input x_t, and any number of
    parameters. It returns the `N` new states, each of the same type as the
    state it replaces, followed by the step's scalar floating-point loss. The
    body is a single block terminated by `rnn.yield`.

    States must be statically shaped ranked tensors: their sizes in bytes are
    what the checkpoint planner budgets. The input and the parameters are
    ranked tensors.

    Example (an Elman cell with a squared-output loss; `...` elides the body):

    ```mlir
    rnn.cell @elman state(%h: tensor<64x512xf32>) input(%x: tensor<64x512xf32>)
        params(%wx: tensor<512x512xf32>, %wh: tensor<512x512xf32>,
               %b: tensor<512xf32>) -> (tensor<64x512xf32>, f32) {
      ...
      rnn.yield %h_next, %loss : tensor<64x512xf32>, f32
    }
    ```

    The generic form carries the signature as `function_type` and the number
    of leading state arguments as `num_states`.
  }];

  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<FunctionType>:$function_type,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_states,
                       OptionalAttr<DictArrayAttr>:$arg_attrs,
                       OptionalAttr<DictArrayAttr>:$res_attrs);
  let regions = (region SizedRegion<1>:$body);

  let builders = [
    OpBuilder<(ins "::llvm::StringRef":$name, "::mlir::TypeRange":$stateTypes,
                   "::mlir::Type":$inputType, "::mlir::TypeRange":$paramTypes,
                   "::mlir::Type":$lossType)>
  ];

  let extraClassDeclaration = [{
    //===------------------------------------------------------------------===//
    // FunctionOpInterface
    //===------------------------------------------------------------------===//
    ::llvm::ArrayRef<::mlir::Type> getArgumentTypes() {
      return getFunctionType().getInputs();
    }
    ::llvm::ArrayRef<::mlir::Type> getResultTypes() {
      return getFunctionType().getResults();
    }
    ::mlir::Region *getCallableRegion() { return &getBody(); }
    bool isDeclaration() { return false; }

    //===------------------------------------------------------------------===//
    // Signature groups. Valid only on a verified op.
    //===------------------------------------------------------------------===//
    unsigned getNumParams() {
      return getArgumentTypes().size() - getNumStates() - 1;
    }
    ::mlir::TypeRange getStateTypes() {
      return getArgumentTypes().take_front(getNumStates());
    }
    ::mlir::Type getInputType() { return getArgumentTypes()[getNumStates()]; }
    ::mlir::TypeRange getParamTypes() {
      return getArgumentTypes().drop_front(getNumStates() + 1);
    }
    ::mlir::Type getLossType() { return getResultTypes().back(); }

    /// Bytes of one copy of the hidden state (all state tensors together).
    int64_t getStateBytes();

    /// Clones the body's ops (not the terminator) at `b`'s insertion point,
    /// through `mapping` (which must map the block arguments), as plain code:
    /// an rnn.stop_gradient is not cloned, its result maps to its operand.
    void cloneBodyInto(::mlir::OpBuilder &b, ::mlir::IRMapping &mapping);
  }];

  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
}

//===----------------------------------------------------------------------===//
// rnn.yield
//===----------------------------------------------------------------------===//

def RNN_YieldOp : RNN_Op<"yield", [
    Pure, HasParent<"CellOp">, ReturnLike, Terminator]> {
  let summary = "Returns the new states and the step's loss from a cell";
  let description = [{
    Terminates the body of an `rnn.cell`. Its operands are the new state
    values followed by the step's scalar loss; their types must equal the
    cell's result types.

    Example:

    ```mlir
    rnn.yield %h_next, %c_next, %loss : tensor<64x512xf32>, tensor<64x512xf32>, f32
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$operands);
  let builders = [OpBuilder<(ins), [{ /* nothing to do */ }]>];
  let assemblyFormat = "attr-dict ($operands^ `:` type($operands))?";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// rnn.stop_gradient
//===----------------------------------------------------------------------===//

def RNN_StopGradientOp : RNN_Op<"stop_gradient", [
    Pure, SameOperandsAndResultType, HasParent<"CellOp">]> {
  let summary = "The identity, through which no gradient flows";
  let description = [{
    Returns its operand unchanged; rnn-differentiate treats the result as a
    constant, so no adjoint flows back through it (JAX's
    `lax.stop_gradient`). Valid in a cell body only: the functions that
    rnn-differentiate and rnn-remat generate from the cell hold the operand
    itself.

    Its use is a quantity that changes how a value is computed but not the
    value: the row maximum m that a softmax cross-entropy subtracts for
    stability, `log Σ_v exp(l_v - m) + m`, equals log Σ_v exp(l_v) for every
    m, so its gradient through m is zero in exact arithmetic. Without
    rnn.stop_gradient the backward step still computes that zero, as
    (1 - Σ_v softmax_v) routed to the arg-max (a reduction and an
    elementwise op per step, and rounding noise in the result); with it, the
    gradient of the logits is softmax - target, as PyTorch's cross_entropy
    computes it. Stopping a value that the result does depend on changes
    the gradient: the gradient checks (bptt-gradcheck's finite differences)
    catch that.

    Example:

    ```mlir
    %m = rnn.stop_gradient %row_max : tensor<64xf32>
    ```
  }];
  let arguments = (ins AnyType:$input);
  let results = (outs AnyType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// rnn.apply
//===----------------------------------------------------------------------===//

def RNN_ApplyOp : RNN_Op<"apply", [
    AttrSizedOperandSegments, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Applies a cell over a sequence (the forward pass)";
  let description = [{
    Runs the cell `@cell` for T steps, starting from `initial_states`, feeding
    step t the slice `inputs[t]`, and passing `params` unchanged to every step.
    The leading dimension of `inputs` is T; it may be static or dynamic, and
    T = 0 (the initial states come back unchanged, the loss is zero) and T = 1
    are valid. The results are the final states and the sum of the per-step
    losses.

    Example:

    ```mlir
    %hT, %cT, %loss = rnn.apply @lstm(%h0, %c0) over %xs params(%w, %b)
        : (tensor<64x512xf32>, tensor<64x512xf32>, tensor<?x64x512xf32>,
           tensor<1024x2048xf32>, tensor<2048xf32>)
        -> (tensor<64x512xf32>, tensor<64x512xf32>, f32)
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$cell,
                       Variadic<AnyType>:$initial_states,
                       AnyRankedTensor:$inputs,
                       Variadic<AnyType>:$params);
  let results = (outs Variadic<AnyType>:$final_states, AnyFloat:$loss);
  let assemblyFormat = [{
    $cell `(` $initial_states `)` `over` $inputs (`params` `(` $params^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// rnn.bptt
//===----------------------------------------------------------------------===//

def RNN_BPTTOp : RNN_Op<"bptt", [
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Gradient of a recurrence's summed loss, within a memory budget";
  let description = [{
    Requests backpropagation through time for `rnn.apply` with the same
    operands: the summed per-step loss and its gradient with respect to the
    initial states, every step's input and the parameters. The results are,
    in operand order: the loss, one gradient per initial state (same types),
    the gradient of `inputs` (same type) and one gradient per parameter (same
    types).

    `memory_budget` is a positive number of bytes that bounds everything the
    schedule keeps alive at once (stored states plus the working set of the
    step being run). `strategy` chooses the family of schedules the planner
    may use (see `#rnn.strategy`); it defaults to `msm`, the mixed-state
    dynamic program that dominates the others.

    Example:

    ```mlir
    %loss, %dh0, %dc0, %dxs, %dw, %db = rnn.bptt @lstm(%h0, %c0) over %xs
        params(%w, %b)
        {memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>}
        : (tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
           tensor<1024x2048xf32>, tensor<2048xf32>)
        -> (f32, tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
            tensor<1024x2048xf32>, tensor<2048xf32>)
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$cell,
                       Variadic<AnyType>:$initial_states,
                       AnyRankedTensor:$inputs,
                       Variadic<AnyType>:$params,
                       I64Attr:$memory_budget,
                       OptionalAttr<RNN_StrategyAttr>:$strategy);
  // The gradients are one list so that the generic form needs no result
  // segment sizes; the accessors below split it by the operand groups.
  let results = (outs AnyFloat:$loss, Variadic<AnyType>:$gradients);
  let assemblyFormat = [{
    $cell `(` $initial_states `)` `over` $inputs (`params` `(` $params^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The requested strategy, or the default (MSM) when none is given.
    ::bptt::rnn::Strategy getStrategyOrDefault() {
      return getStrategy().value_or(::bptt::rnn::Strategy::MSM);
    }
    /// Gradient groups, in operand order. Valid only on a verified op.
    ::mlir::ResultRange getStateGrads() {
      return getGradients().take_front(getInitialStates().size());
    }
    ::mlir::Value getInputGrads() {
      return getGradients()[getInitialStates().size()];
    }
    ::mlir::ResultRange getParamGrads() {
      return getGradients().drop_front(getInitialStates().size() + 1);
    }
  }];
  let hasVerifier = 1;
}

#endif // BPTT_DIALECT_RNN_RNNOPS_TD
