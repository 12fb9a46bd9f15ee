// RUN: serenity-opt %s --serenity-rewrite | filecheck %s

// depthwise(pad(relu(concat(a, b))), K) becomes concat(depthwise(pad(relu(a)), K[0:2]),
// depthwise(pad(relu(b)), K[2:6])): each piece gets its own channels of the
// kernel (sliced at compile time) and of the zero-filled init; the concat
// moves behind the convolutions, so a and b can die one by one.

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @kernel_wise
// CHECK: %[[RA:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x2x8x8xf32>)
// CHECK: %[[RB:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<1x4x8x8xf32>)
// CHECK: %[[PA:.*]] = tensor.pad %[[RA]] low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[PB:.*]] = tensor.pad %[[RB]] low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[KA:.*]] = arith.constant dense<{{\[\[\[}}1.000000e+00{{.*}}> : tensor<2x3x3xf32>
// CHECK: %[[FA:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x2x8x8xf32>)
// CHECK: %[[DA:.*]] = linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%[[PA]], %[[KA]] : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>) outs(%[[FA]] : tensor<1x2x8x8xf32>)
// CHECK: %[[KB:.*]] = arith.constant dense<{{\[\[\[}}3.000000e+00{{.*}}> : tensor<4x3x3xf32>
// CHECK: %[[FB:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x4x8x8xf32>)
// CHECK: %[[DB:.*]] = linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%[[PB]], %[[KB]] : tensor<1x4x10x10xf32>, tensor<4x3x3xf32>) outs(%[[FB]] : tensor<1x4x8x8xf32>)
// CHECK: %[[C:.*]] = tensor.concat dim(1) %[[DA]], %[[DB]] : (tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x6x8x8xf32>
// CHECK: return %[[C]]
func.func @kernel_wise(%a: tensor<1x2x8x8xf32>, %b: tensor<1x4x8x8xf32>) -> tensor<1x6x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %k = arith.constant dense<[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0], [3.0, 3.0, 3.0]], [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]], [[6.0, 6.0, 6.0], [6.0, 6.0, 6.0], [6.0, 6.0, 6.0]]]> : tensor<6x3x3xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x6x8x8xf32>
  %e = tensor.empty() : tensor<1x6x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x6x8x8xf32>) outs(%e : tensor<1x6x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x6x8x8xf32>
  %p = tensor.pad %r low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  } : tensor<1x6x8x8xf32> to tensor<1x6x10x10xf32>
  %oe = tensor.empty() : tensor<1x6x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x6x8x8xf32>) -> tensor<1x6x8x8xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %k : tensor<1x6x10x10xf32>, tensor<6x3x3xf32>) outs(%init : tensor<1x6x8x8xf32>) -> tensor<1x6x8x8xf32>
  return %y : tensor<1x6x8x8xf32>
}
