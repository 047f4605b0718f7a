// Elman (tanh) RNN cell (PyTorch nn.RNN equations, nonlinearity='tanh'), one
// layer, trained with BPTT.
//
//   B = 64 (batch), I = 512 (input size), H = 512 (hidden size), T = 1000.
//
//   h' = tanh(x·W_ih^T + b_ih + h·W_hh^T + b_hh)
//   loss_t = mean(h'^2)      (over all B*H elements)
//
// Parameters, in PyTorch's order and transposed for row-major matmuls:
//   W_ih^T : 512 x 512  (= weight_ih_l0.T)    W_hh^T : 512 x 512  (= weight_hh_l0.T)
//   b_ih   : 512        (= bias_ih_l0)        b_hh   : 512        (= bias_hh_l0)
//
// State: h : 64 x 512. Inputs: xs : 1000 x 64 x 512.

rnn.cell @elman state(%h: tensor<64x512xf32>) input(%x: tensor<64x512xf32>)
    params(%w_ih_t: tensor<512x512xf32>, %w_hh_t: tensor<512x512xf32>,
           %b_ih: tensor<512xf32>, %b_hh: tensor<512xf32>)
    -> (tensor<64x512xf32>, f32) {
  // Input and recurrent projections, each seeded with its bias.
  %gx_init = tensor.empty() : tensor<64x512xf32>
  %b_ih_bcast = linalg.broadcast ins(%b_ih : tensor<512xf32>)
      outs(%gx_init : tensor<64x512xf32>) dimensions = [0]
  %gx = linalg.matmul ins(%x, %w_ih_t : tensor<64x512xf32>, tensor<512x512xf32>)
      outs(%b_ih_bcast : tensor<64x512xf32>) -> tensor<64x512xf32>
  %gh_init = tensor.empty() : tensor<64x512xf32>
  %b_hh_bcast = linalg.broadcast ins(%b_hh : tensor<512xf32>)
      outs(%gh_init : tensor<64x512xf32>) dimensions = [0]
  %gh = linalg.matmul ins(%h, %w_hh_t : tensor<64x512xf32>, tensor<512x512xf32>)
      outs(%b_hh_bcast : tensor<64x512xf32>) -> tensor<64x512xf32>

  // h' = tanh(gx + gh)
  %h_init = tensor.empty() : tensor<64x512xf32>
  %h_next = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%gx, %gh : tensor<64x512xf32>, tensor<64x512xf32>)
      outs(%h_init : tensor<64x512xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %pre = arith.addf %a, %b : f32
    %h_new = math.tanh %pre : f32
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

  rnn.yield %h_next, %loss : tensor<64x512xf32>, f32
}

// Summed loss over T = 1000 steps and its gradients, within a 64 MiB budget.
func.func @train_step(%h0: tensor<64x512xf32>, %xs: tensor<1000x64x512xf32>,
                      %w_ih_t: tensor<512x512xf32>, %w_hh_t: tensor<512x512xf32>,
                      %b_ih: tensor<512xf32>, %b_hh: tensor<512xf32>)
    -> (f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>,
        tensor<512xf32>) {
  %loss, %dh0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh =
      rnn.bptt @elman(%h0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      {memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>,
         tensor<512xf32>)
      -> (f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
          tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>,
          tensor<512xf32>)
  return %loss, %dh0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh
      : f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>,
        tensor<512xf32>
}

// Forward only: final h after T = 1000 steps and the summed loss.
func.func @forward(%h0: tensor<64x512xf32>, %xs: tensor<1000x64x512xf32>,
                   %w_ih_t: tensor<512x512xf32>, %w_hh_t: tensor<512x512xf32>,
                   %b_ih: tensor<512xf32>, %b_hh: tensor<512xf32>)
    -> (tensor<64x512xf32>, f32) {
  %h_final, %loss = rnn.apply @elman(%h0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      : (tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x512xf32>, tensor<512x512xf32>, tensor<512xf32>,
         tensor<512xf32>)
      -> (tensor<64x512xf32>, f32)
  return %h_final, %loss : tensor<64x512xf32>, f32
}
