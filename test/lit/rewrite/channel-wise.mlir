// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// conv(relu(bn(concat(a, b))), W) with a bias, padding, stride 2 and
// dilation 2 becomes two partial convolutions that accumulate into the
// bias-initialised result: the first reads a's 3 input channels of W, the
// second b's 5. Batch norm (a per-channel scale here) and ReLU are pushed
// through the concat, each piece getting its slice of the per-channel
// constants; the concat disappears.

// SITES: "applicable": true, "kind": "channel-wise", "convolutions": ["linalg.conv_2d_nchw_fchw"], "pushed_through": ["linalg.generic", "linalg.generic", "tensor.pad"]

// CHECK-LABEL: func.func @channel_wise
// CHECK-NOT: tensor.concat
// CHECK: %[[SA:.*]] = linalg.generic {{.*}} ins(%arg0, %{{.*}} : tensor<1x3x16x16xf32>, tensor<1x3x1x1xf32>)
// CHECK: arith.mulf
// CHECK: arith.constant dense<{{\[\[\[\[}}4.000000e+00]], {{.*}} : tensor<1x5x1x1xf32>
// CHECK: %[[SB:.*]] = linalg.generic {{.*}} ins(%arg1, %{{.*}} : tensor<1x5x16x16xf32>, tensor<1x5x1x1xf32>)
// CHECK: %[[RA:.*]] = linalg.generic {{.*}} ins(%[[SA]] : tensor<1x3x16x16xf32>)
// CHECK: arith.maximumf
// CHECK: %[[RB:.*]] = linalg.generic {{.*}} ins(%[[SB]] : tensor<1x5x16x16xf32>)
// CHECK: %[[PA:.*]] = tensor.pad %[[RA]] low[0, 0, 2, 2] high[0, 0, 2, 2]
// CHECK: tensor<1x3x16x16xf32> to tensor<1x3x20x20xf32>
// CHECK: %[[PB:.*]] = tensor.pad %[[RB]] low[0, 0, 2, 2] high[0, 0, 2, 2]
// CHECK: tensor<1x5x16x16xf32> to tensor<1x5x20x20xf32>
// CHECK: %[[INIT:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4xf32>)
// The weights are sliced at compile time: W[:, 0:3] starts with -1.0, W[:, 3:8] with 0.8.
// CHECK: %[[WA:.*]] = arith.constant dense<"0x000080BF{{.*}}> : tensor<4x3x3x3xf32>
// CHECK: %[[YA:.*]] = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%[[PA]], %[[WA]] : tensor<1x3x20x20xf32>, tensor<4x3x3x3xf32>) outs(%[[INIT]] : tensor<1x4x8x8xf32>)
// A compute barrier keeps IREE from merging the accumulation into one add of all partials.
// CHECK: %[[BA:.*]] = iree_tensor_ext.compute_barrier.start %[[YA]] : tensor<1x4x8x8xf32>
// CHECK: %[[WB:.*]] = arith.constant dense<"0xCDCC4C3F{{.*}}> : tensor<4x5x3x3xf32>
// CHECK: %[[YB:.*]] = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%[[PB]], %[[WB]] : tensor<1x5x20x20xf32>, tensor<4x5x3x3xf32>) outs(%[[BA]] : tensor<1x4x8x8xf32>)
// CHECK-NOT: tensor.concat
// CHECK: return %[[YB]]
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @channel_wise(%a: tensor<1x3x16x16xf32>, %b: tensor<1x5x16x16xf32>) -> tensor<1x4x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %cst_scale = arith.constant dense<[[[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]], [[7.0]], [[8.0]]]]> : tensor<1x8x1x1xf32>
  %cst_bias = arith.constant dense<[0.5, -0.5, 1.0, 2.0]> : tensor<4xf32>
  %wconst = arith.constant dense<[[[[-1.0, -0.26, 0.48], [-0.8, -0.06, 0.68], [-0.6, 0.14, 0.88]], [[-0.4, 0.34, -0.94], [-0.2, 0.54, -0.74], [0.0, 0.74, -0.54]], [[0.2, 0.94, -0.34], [0.4, -0.88, -0.14], [0.6, -0.68, 0.06]], [[0.8, -0.48, 0.26], [1.0, -0.28, 0.46], [-0.82, -0.08, 0.66]], [[-0.62, 0.12, 0.86], [-0.42, 0.32, -0.96], [-0.22, 0.52, -0.76]], [[-0.02, 0.72, -0.56], [0.18, 0.92, -0.36], [0.38, -0.9, -0.16]], [[0.58, -0.7, 0.04], [0.78, -0.5, 0.24], [0.98, -0.3, 0.44]], [[-0.84, -0.1, 0.64], [-0.64, 0.1, 0.84], [-0.44, 0.3, -0.98]]], [[[-0.24, 0.5, -0.78], [-0.04, 0.7, -0.58], [0.16, 0.9, -0.38]], [[0.36, -0.92, -0.18], [0.56, -0.72, 0.02], [0.76, -0.52, 0.22]], [[0.96, -0.32, 0.42], [-0.86, -0.12, 0.62], [-0.66, 0.08, 0.82]], [[-0.46, 0.28, -1.0], [-0.26, 0.48, -0.8], [-0.06, 0.68, -0.6]], [[0.14, 0.88, -0.4], [0.34, -0.94, -0.2], [0.54, -0.74, 0.0]], [[0.74, -0.54, 0.2], [0.94, -0.34, 0.4], [-0.88, -0.14, 0.6]], [[-0.68, 0.06, 0.8], [-0.48, 0.26, 1.0], [-0.28, 0.46, -0.82]], [[-0.08, 0.66, -0.62], [0.12, 0.86, -0.42], [0.32, -0.96, -0.22]]], [[[0.52, -0.76, -0.02], [0.72, -0.56, 0.18], [0.92, -0.36, 0.38]], [[-0.9, -0.16, 0.58], [-0.7, 0.04, 0.78], [-0.5, 0.24, 0.98]], [[-0.3, 0.44, -0.84], [-0.1, 0.64, -0.64], [0.1, 0.84, -0.44]], [[0.3, -0.98, -0.24], [0.5, -0.78, -0.04], [0.7, -0.58, 0.16]], [[0.9, -0.38, 0.36], [-0.92, -0.18, 0.56], [-0.72, 0.02, 0.76]], [[-0.52, 0.22, 0.96], [-0.32, 0.42, -0.86], [-0.12, 0.62, -0.66]], [[0.08, 0.82, -0.46], [0.28, -1.0, -0.26], [0.48, -0.8, -0.06]], [[0.68, -0.6, 0.14], [0.88, -0.4, 0.34], [-0.94, -0.2, 0.54]]], [[[-0.74, 0.0, 0.74], [-0.54, 0.2, 0.94], [-0.34, 0.4, -0.88]], [[-0.14, 0.6, -0.68], [0.06, 0.8, -0.48], [0.26, 1.0, -0.28]], [[0.46, -0.82, -0.08], [0.66, -0.62, 0.12], [0.86, -0.42, 0.32]], [[-0.96, -0.22, 0.52], [-0.76, -0.02, 0.72], [-0.56, 0.18, 0.92]], [[-0.36, 0.38, -0.9], [-0.16, 0.58, -0.7], [0.04, 0.78, -0.5]], [[0.24, 0.98, -0.3], [0.44, -0.84, -0.1], [0.64, -0.64, 0.1]], [[0.84, -0.44, 0.3], [-0.98, -0.24, 0.5], [-0.78, -0.04, 0.7]], [[-0.58, 0.16, 0.9], [-0.38, 0.36, -0.92], [-0.18, 0.56, -0.72]]]]> : tensor<4x8x3x3xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x3x16x16xf32>, tensor<1x5x16x16xf32>) -> tensor<1x8x16x16xf32>
  %e = tensor.empty() : tensor<1x8x16x16xf32>
  %s = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %cst_scale : tensor<1x8x16x16xf32>, tensor<1x8x1x1xf32>) outs(%e : tensor<1x8x16x16xf32>) {
  ^bb0(%in: f32, %k: f32, %out: f32):
    %m = arith.mulf %in, %k : f32
    linalg.yield %m : f32
  } -> tensor<1x8x16x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s : tensor<1x8x16x16xf32>) outs(%e : tensor<1x8x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x8x16x16xf32>
  %p = tensor.pad %r low[0, 0, 2, 2] high[0, 0, 2, 2] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  } : tensor<1x8x16x16xf32> to tensor<1x8x20x20xf32>
  %oe = tensor.empty() : tensor<1x4x8x8xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%cst_bias : tensor<4xf32>) outs(%oe : tensor<1x4x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%p, %wconst : tensor<1x8x20x20xf32>, tensor<4x8x3x3xf32>) outs(%init : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}
