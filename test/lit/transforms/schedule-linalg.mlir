// RUN: serenity-opt %s --serenity-schedule --memory-model paper | filecheck %s

// The same two-branch shape at the linalg-on-tensors level: the pass works on
// any single-block function body, not only on IREE's flow phase.

#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @two_branches
// CHECK:      %[[E0:.+]] = linalg.matmul ins(%arg1, %arg0
// CHECK:      %[[P0:.+]] = linalg.matmul ins(%arg2, %[[E0]]
// CHECK:      %[[E1:.+]] = linalg.matmul ins(%arg1, %arg0
// CHECK:      %[[P1:.+]] = linalg.matmul ins(%arg2, %[[E1]]
// CHECK:      linalg.generic {{.*}} ins(%[[P0]], %[[P1]]
func.func @two_branches(%x: tensor<8x1024xf32>, %w1: tensor<64x8xf32>, %w2: tensor<8x64xf32>) -> tensor<8x1024xf32> {
  %big = tensor.empty() : tensor<64x1024xf32>
  %small = tensor.empty() : tensor<8x1024xf32>
  %e0 = linalg.matmul ins(%w1, %x : tensor<64x8xf32>, tensor<8x1024xf32>) outs(%big : tensor<64x1024xf32>) -> tensor<64x1024xf32>
  %e1 = linalg.matmul ins(%w1, %x : tensor<64x8xf32>, tensor<8x1024xf32>) outs(%big : tensor<64x1024xf32>) -> tensor<64x1024xf32>
  %p0 = linalg.matmul ins(%w2, %e0 : tensor<8x64xf32>, tensor<64x1024xf32>) outs(%small : tensor<8x1024xf32>) -> tensor<8x1024xf32>
  %p1 = linalg.matmul ins(%w2, %e1 : tensor<8x64xf32>, tensor<64x1024xf32>) outs(%small : tensor<8x1024xf32>) -> tensor<8x1024xf32>
  %s = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p0, %p1 : tensor<8x1024xf32>, tensor<8x1024xf32>) outs(%small : tensor<8x1024xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %0 = arith.addf %a, %b : f32
    linalg.yield %0 : f32
  } -> tensor<8x1024xf32>
  return %s : tensor<8x1024xf32>
}
