// Shared input of the target tests: two matmul chains (64-row intermediates)
// whose results are summed; exact weights, so every CPU computes the same bits.
#id = affine_map<(d0, d1) -> (d0, d1)>
module {
  func.func @two(%x: tensor<8x1024xf32>) -> tensor<8x1024xf32> {
    %w1 = arith.constant dense<0.5> : tensor<64x8xf32>
    %w2 = arith.constant dense<0.25> : tensor<8x64xf32>
    %zero = arith.constant 0.0 : f32
    %bige = tensor.empty() : tensor<64x1024xf32>
    %smalle = tensor.empty() : tensor<8x1024xf32>
    %big = linalg.fill ins(%zero : f32) outs(%bige : tensor<64x1024xf32>) -> tensor<64x1024xf32>
    %small = linalg.fill ins(%zero : f32) outs(%smalle : tensor<8x1024xf32>) -> tensor<8x1024xf32>
    %e0 = linalg.matmul ins(%w1, %x : tensor<64x8xf32>, tensor<8x1024xf32>) outs(%big : tensor<64x1024xf32>) -> tensor<64x1024xf32>
    %e1 = linalg.matmul ins(%w2, %e0 : tensor<8x64xf32>, tensor<64x1024xf32>) outs(%small : tensor<8x1024xf32>) -> tensor<8x1024xf32>
    %p0 = linalg.matmul ins(%w1, %e1 : tensor<64x8xf32>, tensor<8x1024xf32>) outs(%big : tensor<64x1024xf32>) -> tensor<64x1024xf32>
    %p1 = linalg.matmul ins(%w2, %p0 : tensor<8x64xf32>, tensor<64x1024xf32>) outs(%small : tensor<8x1024xf32>) -> tensor<8x1024xf32>
    %s = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
        ins(%e1, %p1 : tensor<8x1024xf32>, tensor<8x1024xf32>) outs(%smalle : tensor<8x1024xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %0 = arith.addf %a, %b : f32
      linalg.yield %0 : f32
    } -> tensor<8x1024xf32>
    return %s : tensor<8x1024xf32>
  }
}
