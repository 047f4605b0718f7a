//===- RNNAttrs.td - rnn dialect attributes ----------------*- tablegen -*-===//

#ifndef BPTT_DIALECT_RNN_RNNATTRS_TD
#define BPTT_DIALECT_RNN_RNNATTRS_TD

include "bptt/Dialect/RNN/RNNDialect.td"

def RNN_StrategyAll : I32EnumAttrCase<"All", 0, "all">;
def RNN_StrategyChen : I32EnumAttrCase<"Chen", 1, "chen">;
def RNN_StrategyRevolve : I32EnumAttrCase<"Revolve", 2, "revolve">;
def RNN_StrategyHSM : I32EnumAttrCase<"HSM", 3, "hsm">;
def RNN_StrategyISM : I32EnumAttrCase<"ISM", 4, "ism">;
def RNN_StrategyMSM : I32EnumAttrCase<"MSM", 5, "msm">;

def RNN_Strategy : I32EnumAttr<"Strategy",
    "checkpointing strategy used to plan backpropagation through time",
    [RNN_StrategyAll, RNN_StrategyChen, RNN_StrategyRevolve, RNN_StrategyHSM,
     RNN_StrategyISM, RNN_StrategyMSM]> {
  let cppNamespace = "::bptt::rnn";
  let genSpecializedAttr = 0;
}

def RNN_StrategyAttr : EnumAttr<RNN_Dialect, RNN_Strategy, "strategy"> {
  let summary = "Which family of checkpointing schedules the planner may use";
  let description = [{
    Selects the schedules the planner searches when it turns an `rnn.bptt`
    request into a program:

    - `all`: standard BPTT, every internal state is kept (the most memory);
    - `chen`: Chen et al.'s √T segments: store segment boundaries, recompute a
      segment at a time;
    - `revolve`: binomial checkpointing of hidden states (Griewank's Revolve),
      the closed form of `hsm` under uniform costs;
    - `hsm`, `ism`, `msm`: the hidden-state, internal-state and mixed-state
      dynamic programs of Gruslys et al. (NeurIPS 2016). `msm` dominates all
      the others and is the default.

    Example: `strategy = #rnn.strategy<msm>`.
  }];
  let assemblyFormat = "`<` $value `>`";
}

#endif // BPTT_DIALECT_RNN_RNNATTRS_TD
