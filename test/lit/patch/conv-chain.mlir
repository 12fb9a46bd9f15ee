// RUN: serenity-opt %s -p 'serenity-patch{grid=2x2 split=2}' | filecheck %s
// RUN: serenity-opt %s -p 'serenity-patch{grid=2x2}' | filecheck %s
// RUN: serenity-opt %s -p 'serenity-patch{grid=5x1 split=2}' | filecheck %s --check-prefix=FINE

// Three convolutions: 3x3 pad 1 (3->4, ReLU), 3x3 stride 2 pad 1 (4->4,
// ReLU), 1x1 (4->2); input 1x3x8x8, output 1x2x4x4. Split at the last
// convolution, 2x2 patches of 2x2 output pixels each: a patch needs rows
// [0, 2) of the 1x1's input, rows [0, 5) of the padded 8x8 map (one padding
// row and rows 0-3), rows 0-4 of the input and one padding row above them.
// Each patch slices the input, pads only where its window crosses the image
// border, re-runs the three convolutions with the same weights and is
// inserted into the output.

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @conv_chain
// CHECK-DAG: %[[W0:.*]] = arith.constant dense<5.000000e-01> : tensor<4x3x3x3xf32>
// CHECK-DAG: %[[W1:.*]] = arith.constant dense<2.500000e-01> : tensor<4x4x3x3xf32>
// CHECK-DAG: %[[W2:.*]] = arith.constant dense<1.250000e-01> : tensor<2x4x1x1xf32>
// CHECK: %[[ACC0:.*]] = tensor.empty() : tensor<1x2x4x4xf32>
// patch (0, 0): the top-left border is padded, the rest is real data
// CHECK: %[[X00:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 3, 5, 5] [1, 1, 1, 1] : tensor<1x3x8x8xf32> to tensor<1x3x5x5xf32>
// CHECK: tensor.pad %[[X00]] low[0, 0, 1, 1] high[0, 0, 0, 0]
// CHECK: } : tensor<1x3x5x5xf32> to tensor<1x3x6x6xf32>
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%{{.*}}, %[[W0]] : tensor<1x3x6x6xf32>, tensor<4x3x3x3xf32>) outs(%{{.*}} : tensor<1x4x4x4xf32>)
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 0, 0]
// CHECK: } : tensor<1x4x4x4xf32> to tensor<1x4x5x5xf32>
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} strides = dense<2> {{.*}} ins(%{{.*}}, %[[W1]] : tensor<1x4x5x5xf32>, tensor<4x4x3x3xf32>) outs(%{{.*}} : tensor<1x4x2x2xf32>)
// CHECK: %[[Y00:.*]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%{{.*}}, %[[W2]] : tensor<1x4x2x2xf32>, tensor<2x4x1x1xf32>) outs(%{{.*}} : tensor<1x2x2x2xf32>)
// CHECK: %[[ACC1:.*]] = tensor.insert_slice %[[Y00]] into %[[ACC0]][0, 0, 0, 0] [1, 2, 2, 2] [1, 1, 1, 1] : tensor<1x2x2x2xf32> into tensor<1x2x4x4xf32>
// patch (0, 1): columns 1..7 of the input with one padding column on the right
// CHECK: tensor.extract_slice %arg0[0, 0, 0, 2] [1, 3, 5, 6] [1, 1, 1, 1]
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 0] high[0, 0, 0, 1]
// CHECK: %[[ACC2:.*]] = tensor.insert_slice %{{.*}} into %[[ACC1]][0, 0, 0, 2] [1, 2, 2, 2]
// patch (1, 0)
// CHECK: tensor.extract_slice %arg0[0, 0, 2, 0] [1, 3, 6, 5] [1, 1, 1, 1]
// CHECK: %[[ACC3:.*]] = tensor.insert_slice %{{.*}} into %[[ACC2]][0, 0, 2, 0] [1, 2, 2, 2]
// patch (1, 1): the stride-2 layer's window [4, 9) of the padded map is
// rows 3..7 of the 8x8 map, all real: no pad before it
// CHECK: %[[X11:.*]] = tensor.extract_slice %arg0[0, 0, 2, 2] [1, 3, 6, 6] [1, 1, 1, 1]
// CHECK: tensor.pad %[[X11]] low[0, 0, 0, 0] high[0, 0, 1, 1]
// CHECK: %[[Y0:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x4x5x5xf32>)
// CHECK-NOT: tensor.pad
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[Y0]], %[[W1]] : tensor<1x4x5x5xf32>, tensor<4x4x3x3xf32>)
// CHECK: %[[ACC4:.*]] = tensor.insert_slice %{{.*}} into %[[ACC3]][0, 0, 2, 2] [1, 2, 2, 2]
// CHECK-NOT: tensor<1x4x8x8xf32>
// CHECK: return %[[ACC4]] : tensor<1x2x4x4xf32>

// A grid finer than the split op's output is refused; the module is unchanged.
// FINE-LABEL: func.func @conv_chain
// FINE-NOT: tensor.insert_slice
// FINE: linalg.conv_2d_nchw_fchw {{.*}} -> tensor<1x4x8x8xf32>
func.func @conv_chain(%x: tensor<1x3x8x8xf32>) -> tensor<1x2x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w0 = arith.constant dense<0.5> : tensor<4x3x3x3xf32>
  %w1 = arith.constant dense<0.25> : tensor<4x4x3x3xf32>
  %w2 = arith.constant dense<0.125> : tensor<2x4x1x1xf32>
  %b = arith.constant dense<[0.1, -0.2, 0.3, -0.4]> : tensor<4xf32>
  %p0 = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b_: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x3x8x8xf32> to tensor<1x3x10x10xf32>
  %e0 = tensor.empty() : tensor<1x4x8x8xf32>
  %i0 = linalg.broadcast ins(%b : tensor<4xf32>) outs(%e0 : tensor<1x4x8x8xf32>) dimensions = [0, 2, 3]
  %y0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p0, %w0 : tensor<1x3x10x10xf32>, tensor<4x3x3x3xf32>) outs(%i0 : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %r0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y0 : tensor<1x4x8x8xf32>) outs(%e0 : tensor<1x4x8x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %p1 = tensor.pad %r0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b_: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x4x8x8xf32> to tensor<1x4x10x10xf32>
  %e1 = tensor.empty() : tensor<1x4x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %y1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%p1, %w1 : tensor<1x4x10x10xf32>, tensor<4x4x3x3xf32>) outs(%f1 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %r1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y1 : tensor<1x4x4x4xf32>) outs(%e1 : tensor<1x4x4x4xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x4x4xf32>
  %e2 = tensor.empty() : tensor<1x2x4x4xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%r1, %w2 : tensor<1x4x4x4xf32>, tensor<2x4x1x1xf32>) outs(%f2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y2 : tensor<1x2x4x4xf32>
}
