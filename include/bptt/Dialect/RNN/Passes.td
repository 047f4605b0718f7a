//===- Passes.td - rnn dialect passes ----------------------*- tablegen -*-===//

#ifndef BPTT_DIALECT_RNN_PASSES_TD
#define BPTT_DIALECT_RNN_PASSES_TD

include "mlir/Pass/PassBase.td"

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
                     hidden_state_bytes = 32 : i64, internal_state_bytes = 160 : i64,
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
