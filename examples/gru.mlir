// GRU cell (PyTorch nn.GRU equations), one layer, trained with BPTT.
//
//   B = 64 (batch), I = 512 (input size), H = 512 (hidden size), T = 1000.
//
//   gx = x·W_ih^T + b_ih,  gh = h·W_hh^T + b_hh             : B x 3H, gate order r, z, n
//   r  = σ(gx[:, 0:H]   + gh[:, 0:H])
//   z  = σ(gx[:, H:2H]  + gh[:, H:2H])
//   n  = tanh(gx[:, 2H:3H] + r * gh[:, 2H:3H])     (b_hn stays inside r * (...))
//   h' = (1 - z) * n + z * h
//   loss_t = mean(h'^2)      (over all B*H elements; σ(x) = 1 / (1 + exp(-x)))
//
// Parameters, in PyTorch's order and transposed for row-major matmuls:
//   W_ih^T : 512 x 1536  (= weight_ih_l0.T)    W_hh^T : 512 x 1536  (= weight_hh_l0.T)
//   b_ih   : 1536        (= bias_ih_l0)        b_hh   : 1536        (= bias_hh_l0)
//
// State: h : 64 x 512. Inputs: xs : 1000 x 64 x 512.

rnn.cell @gru state(%h: tensor<64x512xf32>) input(%x: tensor<64x512xf32>)
    params(%w_ih_t: tensor<512x1536xf32>, %w_hh_t: tensor<512x1536xf32>,
           %b_ih: tensor<1536xf32>, %b_hh: tensor<1536xf32>)
    -> (tensor<64x512xf32>, f32) {
  // Input and recurrent projections, each seeded with its bias. They stay
  // separate because the n gate scales only the recurrent part by r.
  %gx_init = tensor.empty() : tensor<64x1536xf32>
  %b_ih_bcast = linalg.broadcast ins(%b_ih : tensor<1536xf32>)
      outs(%gx_init : tensor<64x1536xf32>) dimensions = [0]
  %gx = linalg.matmul ins(%x, %w_ih_t : tensor<64x512xf32>, tensor<512x1536xf32>)
      outs(%b_ih_bcast : tensor<64x1536xf32>) -> tensor<64x1536xf32>
  %gh_init = tensor.empty() : tensor<64x1536xf32>
  %b_hh_bcast = linalg.broadcast ins(%b_hh : tensor<1536xf32>)
      outs(%gh_init : tensor<64x1536xf32>) dimensions = [0]
  %gh = linalg.matmul ins(%h, %w_hh_t : tensor<64x512xf32>, tensor<512x1536xf32>)
      outs(%b_hh_bcast : tensor<64x1536xf32>) -> tensor<64x1536xf32>

  // Per-gate slices, in PyTorch order r, z, n.
  %gx_r = tensor.extract_slice %gx[0, 0] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>
  %gx_z = tensor.extract_slice %gx[0, 512] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>
  %gx_n = tensor.extract_slice %gx[0, 1024] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>
  %gh_r = tensor.extract_slice %gh[0, 0] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>
  %gh_z = tensor.extract_slice %gh[0, 512] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>
  %gh_n = tensor.extract_slice %gh[0, 1024] [64, 512] [1, 1]
      : tensor<64x1536xf32> to tensor<64x512xf32>

  // h' = (1 - z) * n + z * h, all gates fused into one elementwise kernel.
  %h_init = tensor.empty() : tensor<64x512xf32>
  %h_next = linalg.generic {
      indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>,
                       affine_map<(d0, d1) -> (d0, d1)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%gx_r, %gx_z, %gx_n, %gh_r, %gh_z, %gh_n, %h
          : tensor<64x512xf32>, tensor<64x512xf32>, tensor<64x512xf32>,
            tensor<64x512xf32>, tensor<64x512xf32>, tensor<64x512xf32>,
            tensor<64x512xf32>)
      outs(%h_init : tensor<64x512xf32>) {
  ^bb0(%xr: f32, %xz: f32, %xn: f32, %hr: f32, %hz: f32, %hn: f32,
       %h_prev: f32, %out: f32):
    %one = arith.constant 1.0 : f32
    // r = σ(xr + hr)
    %r_pre = arith.addf %xr, %hr : f32
    %r_neg = arith.negf %r_pre : f32
    %r_exp = math.exp %r_neg : f32
    %r_den = arith.addf %one, %r_exp : f32
    %r_gate = arith.divf %one, %r_den : f32
    // z = σ(xz + hz)
    %z_pre = arith.addf %xz, %hz : f32
    %z_neg = arith.negf %z_pre : f32
    %z_exp = math.exp %z_neg : f32
    %z_den = arith.addf %one, %z_exp : f32
    %z_gate = arith.divf %one, %z_den : f32
    // n = tanh(xn + r * hn)
    %r_hn = arith.mulf %r_gate, %hn : f32
    %n_pre = arith.addf %xn, %r_hn : f32
    %n_gate = math.tanh %n_pre : f32
    // h' = (1 - z) * n + z * h
    %one_minus_z = arith.subf %one, %z_gate : f32
    %new_part = arith.mulf %one_minus_z, %n_gate : f32
    %old_part = arith.mulf %z_gate, %h_prev : f32
    %h_new = arith.addf %new_part, %old_part : f32
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
                      %w_ih_t: tensor<512x1536xf32>, %w_hh_t: tensor<512x1536xf32>,
                      %b_ih: tensor<1536xf32>, %b_hh: tensor<1536xf32>)
    -> (f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x1536xf32>, tensor<512x1536xf32>, tensor<1536xf32>,
        tensor<1536xf32>) {
  %loss, %dh0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh =
      rnn.bptt @gru(%h0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      {memory_budget = 67108864 : i64, strategy = #rnn.strategy<msm>}
      : (tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x1536xf32>, tensor<512x1536xf32>, tensor<1536xf32>,
         tensor<1536xf32>)
      -> (f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
          tensor<512x1536xf32>, tensor<512x1536xf32>, tensor<1536xf32>,
          tensor<1536xf32>)
  return %loss, %dh0, %dxs, %dw_ih_t, %dw_hh_t, %db_ih, %db_hh
      : f32, tensor<64x512xf32>, tensor<1000x64x512xf32>,
        tensor<512x1536xf32>, tensor<512x1536xf32>, tensor<1536xf32>,
        tensor<1536xf32>
}

// Forward only: final h after T = 1000 steps and the summed loss.
func.func @forward(%h0: tensor<64x512xf32>, %xs: tensor<1000x64x512xf32>,
                   %w_ih_t: tensor<512x1536xf32>, %w_hh_t: tensor<512x1536xf32>,
                   %b_ih: tensor<1536xf32>, %b_hh: tensor<1536xf32>)
    -> (tensor<64x512xf32>, f32) {
  %h_final, %loss = rnn.apply @gru(%h0) over %xs
      params(%w_ih_t, %w_hh_t, %b_ih, %b_hh)
      : (tensor<64x512xf32>, tensor<1000x64x512xf32>,
         tensor<512x1536xf32>, tensor<512x1536xf32>, tensor<1536xf32>,
         tensor<1536xf32>)
      -> (tensor<64x512xf32>, f32)
  return %h_final, %loss : tensor<64x512xf32>, f32
}
