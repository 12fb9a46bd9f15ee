// RUN: serenity-opt %s -p 'serenity-patch{grid=2x1 split=0}' | filecheck %s

// NHWC, as TFLite models arrive through TOSA: conv_2d_nhwc_hwcf whose bias
// is a broadcasting linalg.generic (the init), 3x3 stride 2 with padding 1
// on a 6x6 image: output 3x3. Two unequal patches of rows [0, 2) and [2, 3).
// The stride-2 window never reads the last padding column, so neither patch
// pads on the right; the second patch needs no row padding at all.

// CHECK-LABEL: func.func @nhwc
// CHECK: %[[ACC:.*]] = tensor.empty() : tensor<1x3x3x4xf32>
// CHECK: %[[X0:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 4, 6, 2] [1, 1, 1, 1]
// CHECK: %[[P0:.*]] = tensor.pad %[[X0]] low[0, 1, 1, 0] high[0, 0, 0, 0]
// CHECK: } : tensor<1x4x6x2xf32> to tensor<1x5x7x2xf32>
// CHECK: %[[B0:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<1x2x3x4xf32>)
// CHECK: %[[Y0:.*]] = linalg.conv_2d_nhwc_hwcf {{.*}} ins(%[[P0]], %{{.*}} : tensor<1x5x7x2xf32>, tensor<3x3x2x4xf32>) outs(%[[B0]] : tensor<1x2x3x4xf32>)
// CHECK: %[[A1:.*]] = tensor.insert_slice %[[Y0]] into %[[ACC]][0, 0, 0, 0] [1, 2, 3, 4]
// CHECK: %[[X1:.*]] = tensor.extract_slice %arg0[0, 3, 0, 0] [1, 3, 6, 2] [1, 1, 1, 1]
// CHECK: %[[P1:.*]] = tensor.pad %[[X1]] low[0, 0, 1, 0] high[0, 0, 0, 0]
// CHECK: } : tensor<1x3x6x2xf32> to tensor<1x3x7x2xf32>
// CHECK: %[[Y1:.*]] = linalg.conv_2d_nhwc_hwcf {{.*}} ins(%[[P1]], %{{.*}} : tensor<1x3x7x2xf32>, tensor<3x3x2x4xf32>) outs(%{{.*}} : tensor<1x1x3x4xf32>)
// CHECK: %[[A2:.*]] = tensor.insert_slice %[[Y1]] into %[[A1]][0, 2, 0, 0] [1, 1, 3, 4]
// CHECK: return %[[A2]]
func.func @nhwc(%x: tensor<1x6x6x2xf32>) -> tensor<1x3x3x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<0.5> : tensor<3x3x2x4xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %p = tensor.pad %x low[0, 1, 1, 0] high[0, 1, 1, 0] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  } : tensor<1x6x6x2xf32> to tensor<1x8x8x2xf32>
  %e = tensor.empty() : tensor<1x3x3x4xf32>
  %init = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%b : tensor<4xf32>) outs(%e : tensor<1x3x3x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x3x3x4xf32>
  %y = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%p, %w : tensor<1x8x8x2xf32>, tensor<3x3x2x4xf32>) outs(%init : tensor<1x3x3x4xf32>) -> tensor<1x3x3x4xf32>
  return %y : tensor<1x3x3x4xf32>
}
