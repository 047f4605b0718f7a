// A request whose gradient of xs feeds other code: bptt-compile
// --input-gradient=false cannot leave it out (bptt-compile.test).
rnn.cell @elman state(%h: tensor<2x3xf32>) input(%x: tensor<2x3xf32>)
    params(%w: tensor<3x3xf32>) -> (tensor<2x3xf32>, f32) {
  %a = linalg.matmul ins(%h, %w : tensor<2x3xf32>, tensor<3x3xf32>)
      outs(%x : tensor<2x3xf32>) -> tensor<2x3xf32>
  %c0 = arith.constant 0 : index
  %l = tensor.extract %a[%c0, %c0] : tensor<2x3xf32>
  rnn.yield %a, %l : tensor<2x3xf32>, f32
}

func.func @train(%h0: tensor<2x3xf32>, %xs: tensor<4x2x3xf32>, %w: tensor<3x3xf32>)
    -> (f32, tensor<4x2x3xf32>) {
  %loss, %dh0, %dxs, %dw = rnn.bptt @elman(%h0) over %xs params(%w)
      {memory_budget = 4096 : i64}
      : (tensor<2x3xf32>, tensor<4x2x3xf32>, tensor<3x3xf32>)
      -> (f32, tensor<2x3xf32>, tensor<4x2x3xf32>, tensor<3x3xf32>)
  %twice = arith.addf %dxs, %dxs : tensor<4x2x3xf32>
  return %loss, %twice : f32, tensor<4x2x3xf32>
}
