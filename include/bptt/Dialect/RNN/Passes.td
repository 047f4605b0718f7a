//===- Passes.td - rnn dialect passes ----------------------*- tablegen -*-===//

#ifndef BPTT_DIALECT_RNN_PASSES_TD
#define BPTT_DIALECT_RNN_PASSES_TD

include "mlir/Pass/PassBase.td"

def RNNDifferentiate : Pass<"rnn-differentiate", "mlir::ModuleOp"> {
  let summary = "Generate the forward (with saved values) and backward "
                "functions of every cell that BPTT needs";
  let description = [{
    Reverse-mode differentiation of a cell body, at the tensor level. For
    every `rnn.cell` that an `rnn.bptt` refers to (and every cell named in
    `cells`), generates two private functions next to the cell:

    ```mlir
    // The cell, also returning what its backward step needs.
    func.func private @c_forward(states..., x, params...)
        -> (new states..., loss, saved...)
    // One backward step. Parameter adjoints are accumulated: the function
    // takes the running sums and returns them updated.
    func.func private @c_backward(x, params..., new states..., saved...,
                                  d new states..., d loss, d params...)
        -> (d states..., d x, d params...)
    ```

    and records them on the cell as `rnn.forward` and `rnn.backward`, with
    `rnn.internal_state_bytes`: the bytes of the new states plus the saved
    values, the internal state s_t that `rnn-plan` budgets.

    Where every new state follows from x, the parameters and the saved
    values without a matrix product (an LSTM's c' and h' from its gates and
    c, a GRU's h'), it also generates

    ```mlir
    func.func private @c_states(x, params..., saved...) -> (new states...)
    ```

    and records it as `rnn.states`, with `rnn.saved_bytes`: a schedule may
    then keep a step's saved values alone and recompute its new states
    (rnn-remat's `internal-state` option).

    What is saved is the least the adjoint rules read: a value that depends
    only on x, the parameters and constants (without a matrix product) is
    recomputed in the backward function; a `linalg.generic` saves its tensor
    operands and its adjoint recomputes the scalar body; a matrix product
    saves the operand the other one's adjoint needs. docs/differentiation.md
    lists what LSTM, GRU and Elman cells save.

    Supported ops: `linalg.matmul` and `linalg.batch_matmul` (operands may be
    transposed through `indexing_maps`), `linalg.generic` (elementwise, with
    broadcast or transposed operands, or a reduction that accumulates with
    `arith.addf`/`maximumf`/`maxnumf`/`minimumf`/`minnumf`), `linalg.fill`,
    `linalg.broadcast`, `linalg.transpose`, `tensor.empty`,
    `tensor.extract_slice`, `tensor.insert_slice`, `tensor.concat`,
    `tensor.extract`, `tensor.collapse_shape`, `tensor.expand_shape`, and
    scalar `arith`/`math` ops (add, sub, mul, div, neg, max, min, cmp/select,
    exp, exp2, expm1, log, log2, log1p, tanh, sqrt, rsqrt, powf, fpowi, abs,
    sin, cos, erf) in generic bodies and on scalars. Any other op is an error
    that names the op and the cell.
  }];
  let options = [
    ListOption<"cells", "cells", "std::string",
               "Cells to differentiate besides those rnn.bptt refers to">,
  ];
  let statistics = [
    Statistic<"numDifferentiated", "num-differentiated",
              "Number of cells differentiated">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::math::MathDialect"];
}

def RNNRemat : Pass<"rnn-remat", "mlir::ModuleOp"> {
  let summary = "Materialise every rnn.bptt's checkpointing schedule as a "
                "buffer-level program";
  let description = [{
    For each `rnn.bptt` (whose cell `rnn-differentiate` has differentiated),
    asks the planner for the schedule of its strategy within its budget
    (recorded as `rnn.plan` and a remark, as `rnn-plan` does; a budget that
    is too small is an error naming the smallest feasible one) and writes it
    out as a function on caller buffers:

    ```mlir
    func.func @train_step_bptt(%h0: memref<...>, %xs: memref<Tx...>,
        %params: memref<...>...,                    // inputs
        %dh0: memref<...>, %dxs: memref<Tx...>,
        %dparams: memref<...>..., %loss: memref<f32>, // outputs
        %stats: memref<2xi64>)                       // forward steps, peak bytes
    ```

    Its body allocates the working set (two cursor buffers, two
    state-gradient buffers, one internal-state buffer) and one slot pool of
    the plan's size, and calls the cell's forward and backward functions,
    bufferized with out-parameters (`@c_forward_kernel`,
    `@c_backward_kernel`) so that kept internal states are written straight
    into their slots (`memref.view` of the pool at the planned byte offset).
    Runs of forward steps, of kept steps into consecutive slots and of
    backward steps from consecutive slots are `scf.for` loops. A schedule of
    at most `max-unrolled-runs` runs is straight-line code; a longer one is a
    constant table of runs (`@<entry>_schedule`, marked `rnn.schedule`) read
    by one dispatch loop, so the program's size does not depend on T. It
    counts executed forward steps in `stats[0]` and
    tracks the peak of working set plus live slot bytes in `stats[1]`.

    The `rnn.bptt` itself becomes a call of that function on buffers of its
    tensors; `rnn.apply` becomes a loop over the inlined cell body. The cells
    and their tensor-level functions are then dropped, so the module can be
    lowered with `bptt-lower-to-cpu`.
  }];
  let options = [
    Option<"workspaceBytes", "workspace-bytes", "int64_t", /*default=*/"0",
           "Scratch bytes one step needs beyond its state buffers">,
    Option<"maxUnrolledRuns", "max-unrolled-runs", "int64_t",
           /*default=*/"32",
           "Schedules of at most this many runs are emitted as straight-line "
           "code; longer ones as a table of runs and one dispatch loop">,
    Option<"inputChunk", "input-chunk", "int64_t", /*default=*/"0",
           "Split off the part of a step that reads only x_t and the "
           "parameters (its input projection) and compute it for this many "
           "steps of a forward run as one batched call, into a buffer in the "
           "working set; fewer where the budget is tight. 0 or 1: each step "
           "runs one fused kernel">,
    Option<"lossChunk", "loss-chunk", "int64_t", /*default=*/"0",
           "Split off the loss part of a backward step (the output layer, "
           "softmax and cross-entropy and their adjoint down to dL/dh', "
           "which read neither the incoming state gradient nor the "
           "parameter-gradient accumulators) and compute it for this many "
           "steps of a backward run as one batched call, into buffers in the "
           "working set; fewer where the budget is tight, and (T <= 10,000) "
           "one where the buffers would cost the schedule more forward steps "
           "than batching saves. 1: each step calls the split function for "
           "itself; 0: the backward step is one function">,
    Option<"gradChunk", "grad-chunk", "int64_t", /*default=*/"0",
           "Accumulate the parameter gradients (dW += h^T·dgates and the "
           "like: reductions over a step's batch rows) of this many steps "
           "at once, one reduction over their rows stacked, in fixed chunks "
           "of steps whatever the schedule; each backward step writes its "
           "operands into buffers in the working set. Capped at T; the same "
           "for every budget, so every budget sums the same chunks. 0 or 1: "
           "each backward step accumulates its own">,
    Option<"internalState", "internal-state", "std::string",
           /*default=*/"\"auto\"",
           "What a kept internal state holds: 'full' (the new states and the "
           "saved values), 'saved' (the saved values alone: the new states "
           "are recomputed from them, one elementwise kernel, where a "
           "backward step or a restore needs them; only for cells whose new "
           "states follow from their saved values without a matrix product, "
           "such as LSTM and GRU), or 'auto' (the plan with the fewer forward "
           "steps, counting each recomputation of the new states as a tenth "
           "of one, less (1 - 1/c)/5 of one for each step whose loss part "
           "is batched in chunks of c)">,
  ];
  let statistics = [
    Statistic<"numMaterialized", "num-materialized",
              "Number of rnn.bptt ops materialised">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::bufferization::BufferizationDialect",
                           "mlir::func::FuncDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::tensor::TensorDialect"];
}

def RNNPlan : Pass<"rnn-plan", "mlir::ModuleOp"> {
  let summary = "Plan every rnn.bptt's checkpointing schedule within its budget";
  let description = [{
    For each `rnn.bptt`, asks the planner (lib/Planner, docs/planner.md) for
    the least-recomputation schedule of the requested strategy (MSM by
    default) within `memory_budget` bytes, and records the prediction as an
    `rnn.plan` dictionary attribute and an optimisation remark:

    ```mlir
    %r:4 = rnn.bptt @elman(%h0) over %xs params(%w)
        {memory_budget = 65536 : i64,
         rnn.plan = {exact = true, forward_steps = 143 : i64,
                     hidden_state_bytes = 32 : i64, internal_state = "full",
                     internal_state_bytes = 160 : i64,
                     peak_bytes = 65536 : i64, pool_bytes = ... : i64,
                     strategy = "msm", working_set_bytes = ... : i64}} ...
    ```

    State sizes: the hidden state is the cell's state tensors. The internal
    state s_t is what the backward step needs; a cell differentiated by
    rnn-differentiate records it exactly in `rnn.internal_state_bytes`.
    Until then this pass uses a safe upper bound: the previous state plus every
    tensor the step computes.

    Errors: a dynamic sequence length (the plan needs T), and a budget below
    the smallest feasible one, which the error names.
  }];
  let options = [
    Option<"workspaceBytes", "workspace-bytes", "int64_t", /*default=*/"0",
           "Scratch bytes one step needs beyond its state buffers">,
  ];
  let statistics = [
    Statistic<"numPlanned", "num-planned", "Number of rnn.bptt ops planned">,
  ];
}

#endif // BPTT_DIALECT_RNN_PASSES_TD
