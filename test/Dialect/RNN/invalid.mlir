// RUN: bptt-opt %s -split-input-file -verify-diagnostics --allow-unregistered-dialect

// expected-error @+1 {{a cell takes exactly one per-step input in 'input(...)', got 2}}
rnn.cell @two_inputs state(%h: tensor<4xf32>) input(%x: tensor<4xf32>, %y: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}

// -----

// expected-error @+1 {{'rnn.cell' op attribute 'num_states' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
"rnn.cell"() <{function_type = (tensor<4xf32>) -> f32, num_states = 0 : i64, sym_name = "no_state"}> ({
^bb0(%x: tensor<4xf32>):
  %l = arith.constant 0.0 : f32
  "rnn.yield"(%l) : (f32) -> ()
}) : () -> ()

// -----

// expected-error @+1 {{has 2 argument(s) but num_states = 2; expected 2 state argument(s), then exactly one per-step input, then the parameters}}
"rnn.cell"() <{function_type = (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, f32), num_states = 2 : i64, sym_name = "no_input"}> ({
^bb0(%h: tensor<4xf32>, %c: tensor<4xf32>):
  %l = arith.constant 0.0 : f32
  "rnn.yield"(%h, %c, %l) : (tensor<4xf32>, tensor<4xf32>, f32) -> ()
}) : () -> ()

// -----

// expected-error @+1 {{returns 1 value(s); expected the 1 new state(s) followed by the step's loss}}
rnn.cell @no_loss state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>) {
  rnn.yield %h : tensor<4xf32>
}

// -----

// expected-error @+1 {{state #0 has type 'tensor<?xf32>'; a state must be a statically shaped tensor of numbers so that its size in bytes is known to the planner}}
rnn.cell @dynamic_state state(%h: tensor<?xf32>) input(%x: tensor<4xf32>) -> (tensor<?xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<?xf32>, f32
}

// -----

// expected-error @+1 {{new state #0 has type 'tensor<8xf32>' but the state it replaces has type 'tensor<4xf32>'; a step must preserve every state's type}}
rnn.cell @grows state(%h: tensor<4xf32>) input(%x: tensor<8xf32>) -> (tensor<8xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %x, %l : tensor<8xf32>, f32
}

// -----

// expected-error @+1 {{per-step input has type 'f32'; expected a ranked tensor}}
rnn.cell @scalar_input state(%h: tensor<4xf32>) input(%x: f32) -> (tensor<4xf32>, f32) {
  rnn.yield %h, %x : tensor<4xf32>, f32
}

// -----

// expected-error @+1 {{parameter #1 has type 'i32'; expected a ranked tensor}}
rnn.cell @scalar_param state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) params(%w: tensor<4xf32>, %n: i32) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}

// -----

// expected-error @+1 {{last result (the step's loss) has type 'tensor<f32>'; expected a scalar float type such as f32}}
rnn.cell @tensor_loss state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<f32>) {
  %l = "test.loss"() : () -> tensor<f32>
  rnn.yield %h, %l : tensor<4xf32>, tensor<f32>
}

// -----

// expected-error @+1 {{type of entry block argument #1('tensor<4xf64>') must match the type of the corresponding argument in function signature('tensor<4xf32>')}}
"rnn.cell"() <{function_type = (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, f32), num_states = 1 : i64, sym_name = "bad_body"}> ({
^bb0(%h: tensor<4xf32>, %x: tensor<4xf64>):
  %l = arith.constant 0.0 : f32
  "rnn.yield"(%h, %l) : (tensor<4xf32>, f32) -> ()
}) : () -> ()

// -----

// expected-error @+1 {{body must end with rnn.yield, found test.terminator}}
rnn.cell @wrong_terminator state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  "test.terminator"() : () -> ()
}

// -----

rnn.cell @yield_mismatch state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f64
  // expected-error @+1 {{yields (tensor<4xf32>, f64) but cell @yield_mismatch returns (tensor<4xf32>, f32)}}
  rnn.yield %h, %l : tensor<4xf32>, f64
}

// -----

func.func @yield_outside() {
  // expected-error @+1 {{'rnn.yield' op expects parent op 'rnn.cell'}}
  rnn.yield
}

// -----

func.func @undefined(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{refers to @nowhere, which is not defined; expected the name of an rnn.cell}}
  %hT, %l = rnn.apply @nowhere(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

func.func private @not_a_cell(tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, f32)
func.func @uses_func(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{refers to @not_a_cell, which is a 'func.func'; expected an rnn.cell}}
  %hT, %l = rnn.apply @not_a_cell(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

rnn.cell @lstm state(%h: tensor<4xf32>, %c: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %c, %l : tensor<4xf32>, tensor<4xf32>, f32
}
func.func @missing_state(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{expects 2 initial state(s) for cell @lstm, got 1}}
  %hT, %l = rnn.apply @lstm(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @state_type(%h: tensor<4xf16>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{initial state #0 has type 'tensor<4xf16>', but for cell @elman it must be 'tensor<4xf32>'}}
  %hT, %l = rnn.apply @elman(%h) over %xs : (tensor<4xf16>, tensor<7x4xf32>) -> (tensor<4xf16>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<2x4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @unstacked_inputs(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{inputs have type 'tensor<7x4xf32>'; expected the per-step input type 'tensor<2x4xf32>' of cell @elman stacked along a leading time dimension, i.e. 'tensor<?x2x4xf32>' with T static or dynamic}}
  %hT, %l = rnn.apply @elman(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) params(%w: tensor<4x4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @param_type(%h: tensor<4xf32>, %xs: tensor<7x4xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{parameter #0 has type 'tensor<4x8xf32>', but for cell @elman it must be 'tensor<4x4xf32>'}}
  %hT, %l = rnn.apply @elman(%h) over %xs params(%w) : (tensor<4xf32>, tensor<7x4xf32>, tensor<4x8xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) params(%w: tensor<4x4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @missing_param(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{expects 1 parameter(s) for cell @elman, got 0}}
  %hT, %l = rnn.apply @elman(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @final_state_type(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{final state #0 has type 'tensor<8xf32>', but for cell @elman it must be 'tensor<4xf32>'}}
  %hT, %l = rnn.apply @elman(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<8xf32>, f32)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @apply_loss_type(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{loss has type 'f64', but cell @elman returns a loss of type 'f32'}}
  %hT, %l = rnn.apply @elman(%h) over %xs : (tensor<4xf32>, tensor<7x4xf32>) -> (tensor<4xf32>, f64)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @zero_budget(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{memory_budget must be a positive number of bytes, got 0}}
  %l, %dh, %dxs = rnn.bptt @elman(%h) over %xs {memory_budget = 0 : i64}
      : (tensor<4xf32>, tensor<7x4xf32>) -> (f32, tensor<4xf32>, tensor<7x4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) params(%w: tensor<4x4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @gradient_type(%h: tensor<4xf32>, %xs: tensor<7x4xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{gradient #2 has type 'tensor<4xf32>', but (one per initial state, one for the inputs, one per parameter, each of the differentiated value's type) it must be 'tensor<4x4xf32>'}}
  %l, %dh, %dxs, %dw = rnn.bptt @elman(%h) over %xs params(%w) {memory_budget = 64 : i64}
      : (tensor<4xf32>, tensor<7x4xf32>, tensor<4x4xf32>) -> (f32, tensor<4xf32>, tensor<7x4xf32>, tensor<4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @missing_gradient(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{expects 2 gradient(s) (one per initial state, one for the inputs, one per parameter, each of the differentiated value's type), got 1}}
  %l, %dh = rnn.bptt @elman(%h) over %xs {memory_budget = 64 : i64}
      : (tensor<4xf32>, tensor<7x4xf32>) -> (f32, tensor<4xf32>)
  return
}

// -----

rnn.cell @elman state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
func.func @bptt_loss_type(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{loss has type 'f16', but cell @elman returns a loss of type 'f32'}}
  %l, %dh, %dxs = rnn.bptt @elman(%h) over %xs {memory_budget = 64 : i64}
      : (tensor<4xf32>, tensor<7x4xf32>) -> (f16, tensor<4xf32>, tensor<7x4xf32>)
  return
}

// -----

func.func @bptt_not_a_cell(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+1 {{refers to @missing, which is not defined; expected the name of an rnn.cell}}
  %l, %dh, %dxs = rnn.bptt @missing(%h) over %xs {memory_budget = 64 : i64}
      : (tensor<4xf32>, tensor<7x4xf32>) -> (f32, tensor<4xf32>, tensor<7x4xf32>)
  return
}

// -----

func.func @unknown_strategy(%h: tensor<4xf32>, %xs: tensor<7x4xf32>) {
  // expected-error @+2 {{expected ::bptt::rnn::Strategy to be one of: all, chen, revolve, hsm, ism, msm}}
  // expected-error @+1 {{failed to parse RNN_StrategyAttr parameter 'value'}}
  %l, %dh, %dxs = rnn.bptt @elman(%h) over %xs {memory_budget = 64 : i64, strategy = #rnn.strategy<greedy>}
      : (tensor<4xf32>, tensor<7x4xf32>) -> (f32, tensor<4xf32>, tensor<7x4xf32>)
  return
}

// -----

func.func @stop_gradient_outside_a_cell(%v: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'rnn.stop_gradient' op expects parent op 'rnn.cell'}}
  %s = rnn.stop_gradient %v : tensor<4xf32>
  return %s : tensor<4xf32>
}

// -----

rnn.cell @stop_gradient_types state(%h: tensor<4xf32>) input(%x: tensor<4xf32>) -> (tensor<4xf32>, f32) {
  // expected-error @+1 {{'rnn.stop_gradient' op requires the same type for all operands and results}}
  %s = "rnn.stop_gradient"(%h) : (tensor<4xf32>) -> tensor<8xf32>
  %l = arith.constant 0.0 : f32
  rnn.yield %h, %l : tensor<4xf32>, f32
}
