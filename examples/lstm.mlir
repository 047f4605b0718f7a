// LSTM cell (PyTorch nn.LSTM equations), one layer, trained with BPTT.
//
//   B = 64 (batch), I = 512 (input size), H = 512 (hidden size), T = 1000.
//
//   gates = x·W_ih^T + b_ih + h·W_hh^T + b_hh              : B x 4H
//   i = σ(gates[:, 0:H])       f = σ(gates[:, H:2H])
//   g = tanh(gates[:, 2H:3H])  o = σ(gates[:, 3H:4H])      (PyTorch gate order)
//   c' = f * c + i * g
//   h' = o * tanh(c')
//   loss_t = mean(h'^2)      (over all B*H elements; σ(x) = 1 / (1 + exp(-x)))
//
// Parameters, in PyTorch's order and transposed for row-major matmuls:
//   W_ih^T : 512 x 2048  (= weight_ih_l0.T)    W_hh^T : 512 x 2048  (= weight_hh_l0.T)
//   b_ih   : 2048        (= bias_ih_l0)        b_hh   : 2048        (= bias_hh_l0)
//
// States: h, c : 64 x 512 each. Inputs: xs : 1000 x 64 x 512.

rnn.cell @lstm state(%h: tensor<64x512xf32>, %c: tensor<64x512xf32>)
    input(%x: tensor<64x512xf32>)
    params(%w_ih_t: tensor<512x2048xf32>, %w_hh_t: tensor<512x2048xf32>,
           %b_ih: tensor<2048xf32>, %b_hh: tensor<2048xf32>)
    -> (tensor<64x512xf32>, tensor<64x512xf32>, f32) {
  // Input and recurrent projections, each seeded with its bias.
  %gx_init = tensor.empty() : tensor<64x2048xf32>
  %b_ih_bcast = linalg.broadcast ins(%b_ih : tensor<2048xf32>)
      outs(%gx_init : tensor<64x2048xf32>) dimensions = [0]
  %gx = linalg.matmul ins(%x, %w_ih_t : tensor<64x512xf32>, tensor<512x2048xf32>)
      outs(%b_ih_bcast : tensor<64x2048xf32>) -> tensor<64x2048xf32>
  %gh_init = tensor.empty() : tensor<64x2048xf32>
  %b_hh_bcast = linalg.broadcast ins(%b_hh : tensor<2048xf32>)
      outs(%gh_init : tensor<64x2048xf32>) dimensions = [0]
  %gh = linalg.matmul ins(%h, %w_hh_t : tensor<64x512xf32>, tensor<512x2048xf32>)
      outs(%b_hh_bcast : tensor<64x2048xf32>) -> tensor<64x2048xf32>

  // gates = gx + gh
  %gates_init = tensor.empty() : tensor<64x2048xf32>
  %gates = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%gx, %gh : tensor<64x2048xf32>, tensor<64x2048xf32>)
      outs(%gates_init : tensor<64x2048xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %sum = arith.addf %a, %b : f32
    linalg.yield %sum : f32
  } -> tensor<64x2048xf32>

  // Pre-activations of the four gates, in PyTorch order i, f, g, o.
  %i_pre = tensor.extract_slice %gates[0, 0] [64, 512] [1, 1]
      : tensor<64x2048xf32> to tensor<64x512xf32>
  %f_pre = tensor.extract_slice %gates[0, 512] [64, 512] [1, 1]
      : tensor<64x2048xf32> to tensor<64x512xf32>
  %g_pre = tensor.extract_slice %gates[0, 1024] [64, 512] [1, 1]
      : tensor<64x2048xf32> to tensor<64x512xf32>
  %o_pre = tensor.extract_slice %gates[0, 1536] [64, 512] [1, 1]
      : tensor<64x2048xf32> to tensor<64x512xf32>

  // c' = σ(f_pre) * c + σ(i_pre) * tanh(g_pre)
  %c_init = tensor.empty() : tensor<64x512xf32>
  %c_next = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%i_pre, %f_pre, %g_pre, %c
          : tensor<64x512xf32>, tensor<64x512xf32>, tensor<64x512xf32>,
            tensor<64x512xf32>)
      outs(%c_init : tensor<64x512xf32>) {
  ^bb0(%ip: f32, %fp: f32, %gp: f32, %c_prev: f32, %out: f32):
    %one = arith.constant 1.0 : f32
    // i = σ(ip)
    %i_neg = arith.negf %ip : f32
    %i_exp = math.exp %i_neg : f32
    %i_den = arith.addf %one, %i_exp : f32
    %i_gate = arith.divf %one, %i_den : f32
    // f = σ(fp)
    %f_neg = arith.negf %fp : f32
    %f_exp = math.exp %f_neg : f32
    %f_den = arith.addf %one, %f_exp : f32
    %f_gate = arith.divf %one, %f_den : f32
    // g = tanh(gp)
    %g_gate = math.tanh %gp : f32
    // c' = f * c + i * g
    %keep = arith.mulf %f_gate, %c_prev : f32
    %write = arith.mulf %i_gate, %g_gate : f32
    %c_new = arith.addf %keep, %write : f32
    linalg.yield %c_new : f32
  } -> tensor<64x512xf32>

  // h' = σ(o_pre) * tanh(c')
  %h_init = tensor.empty() : tensor<64x512xf32>
  %h_next = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%o_pre, %c_next : tensor<64x512xf32>, tensor<64x512xf32>)
      outs(%h_init : tensor<64x512xf32>) {
  ^bb0(%op: f32, %c_new: f32, %out: f32):
    %one = arith.constant 1.0 : f32
    %o_neg = arith.negf %op : f32
    %o_exp = math.exp %o_neg : f32
    %o_den = arith.addf %one, %o_exp : f32
    %o_gate = arith.divf %one, %o_den : f32
    %c_act = math.tanh %c_new : f32
    %h_new = arith.mulf %o_gate, %c_act : f32
    linalg.yield %h_new : f32
  } -> tensor<64x512xf32>

  // loss = sum(h'^2) / (B*H), with 1 / (64*512) = 2^-15.
  %zero = arith.constant 0.0 : f32
  %sumsq_init = tensor.empty() : tensor<f32>
  %sumsq_zero = linalg.fill ins(%zero : f32) outs(%sumsq_init : tensor<f32>)
      -> tensor<f32>
  %sumsq = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> ()>],
      iterator_types = ["reduction", "reduction"]}
      ins(%h_next : tensor<64x512xf32>) outs(%sumsq_zero : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %acc_next = arith.addf %acc, %sq : f32
    linalg.yield %acc_next : f32
  } -> tensor<f32>
  %mean_init = tensor.empty() : tensor<f32>
  %mean = linalg.generic {
      indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>],
      iterator_types = []}
      ins(%sumsq : tensor<f32>) outs(%mean_init : tensor<f32>) {
  ^bb0(%s: f32, %out: f32):
    %inv_n = arith.constant 3.0517578125e-05 : f32
    %m = arith.mulf %s, %inv_n : f32
    linalg.yield %m : f32
  } -> tensor<f32>
  %loss = tensor.extract %mean[] : tensor<f32>

  rnn.yield %h_next, %c_next, %loss : tensor<64x512xf32>, tensor<64x512xf32>, f32
}

// Summed loss over T = 1000 steps and its gradients, within a 64 MiB budget.
func.func @train_step(%h0: tensor<64x512xf32>, %c0: tensor<64x512xf32>,
                      %xs: tensor<1000x64x512xf32>,
                      %w_ih_t: tensor<512x2048xf32>, %w_hh_t: tensor<512x2048xf32>,
                      %b_ih: tensor<2048xf32>, %b_hh: tensor<2048xf32>)
    -> (f32, tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>,
        tensor<2048xf32>) {
  %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh =
      rnn.bptt @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      {memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>,
         tensor<2048xf32>)
      -> (f32, tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
          tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>,
          tensor<2048xf32>)
  return %loss, %dh0, %dc0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh
      : f32, tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>,
        tensor<2048xf32>
}

// Forward only: final (h, c) after T = 1000 steps and the summed loss.
func.func @forward(%h0: tensor<64x512xf32>, %c0: tensor<64x512xf32>,
                   %xs: tensor<1000x64x512xf32>,
                   %w_ih_t: tensor<512x2048xf32>, %w_hh_t: tensor<512x2048xf32>,
                   %b_ih: tensor<2048xf32>, %b_hh: tensor<2048xf32>)
    -> (tensor<64x512xf32>, tensor<64x512xf32>, f32) {
  %h_final, %c_final, %loss = rnn.apply @lstm(%h0, %c0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      : (tensor<64x512xf32>, tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x2048xf32>, tensor<512x2048xf32>, tensor<2048xf32>,
         tensor<2048xf32>)
      -> (tensor<64x512xf32>, tensor<64x512xf32>, f32)
  return %h_final, %c_final, %loss : tensor<64x512xf32>, tensor<64x512xf32>, f32
}
