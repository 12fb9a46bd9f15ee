// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// Pooling works channel by channel, like a depthwise convolution whose
// window is only a shape: maxpool(pad(concat(a, b))) becomes
// concat(maxpool(pad(a)), maxpool(pad(b))), each piece with its own slice
// of the -inf init; a and b can die one by one. Global average pooling
// (a sum pool over the whole image, then a division) splits the same way.

// SITES: "index": 0, {{.*}} "applicable": true, "kind": "kernel-wise", "convolutions": ["linalg.pooling_nchw_max"], "pushed_through": ["tensor.pad"]
// SITES-SAME: "index": 1, {{.*}} "applicable": true, "kind": "kernel-wise", "convolutions": ["linalg.pooling_nchw_sum"]

// CHECK-LABEL: func.func @max_pool
// CHECK: %[[PA:.*]] = tensor.pad %arg0 low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[PB:.*]] = tensor.pad %arg1 low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[W:.*]] = tensor.empty() : tensor<3x3xf32>
// CHECK: %[[FA:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x2x4x4xf32>)
// CHECK: %[[MA:.*]] = linalg.pooling_nchw_max {{.*}} ins(%[[PA]], %[[W]] : tensor<1x2x10x10xf32>, tensor<3x3xf32>) outs(%[[FA]] : tensor<1x2x4x4xf32>)
// CHECK: %[[FB:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x3x4x4xf32>)
// CHECK: %[[MB:.*]] = linalg.pooling_nchw_max {{.*}} ins(%[[PB]], %[[W]] : tensor<1x3x10x10xf32>, tensor<3x3xf32>) outs(%[[FB]] : tensor<1x3x4x4xf32>)
// CHECK: %[[C:.*]] = tensor.concat dim(1) %[[MA]], %[[MB]] : (tensor<1x2x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x5x4x4xf32>
// CHECK: return %[[C]]
func.func @max_pool(%a: tensor<1x2x8x8xf32>, %b: tensor<1x3x8x8xf32>) -> tensor<1x5x4x4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %c = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x3x8x8xf32>) -> tensor<1x5x8x8xf32>
  %p = tensor.pad %c low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %ninf : f32
  } : tensor<1x5x8x8xf32> to tensor<1x5x10x10xf32>
  %w = tensor.empty() : tensor<3x3xf32>
  %oe = tensor.empty() : tensor<1x5x4x4xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%oe : tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%p, %w : tensor<1x5x10x10xf32>, tensor<3x3xf32>) outs(%init : tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
  return %y : tensor<1x5x4x4xf32>
}

// CHECK-LABEL: func.func @global_sum_pool
// CHECK-NOT: tensor.concat dim(1) %arg0, %arg1
// CHECK: linalg.pooling_nchw_sum {{.*}} ins(%arg0, %{{.*}} : tensor<1x4x8x8xf32>, tensor<8x8xf32>) outs(%{{.*}} : tensor<1x4x1x1xf32>)
// CHECK: linalg.pooling_nchw_sum {{.*}} ins(%arg1, %{{.*}} : tensor<1x4x8x8xf32>, tensor<8x8xf32>) outs(%{{.*}} : tensor<1x4x1x1xf32>)
// CHECK: tensor.concat dim(1) {{.*}} -> tensor<1x8x1x1xf32>
func.func @global_sum_pool(%a: tensor<1x4x8x8xf32>, %b: tensor<1x4x8x8xf32>) -> tensor<1x8x1x1xf32> {
  %zero = arith.constant 0.0 : f32
  %c = tensor.concat dim(1) %a, %b : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x8x8x8xf32>
  %w = tensor.empty() : tensor<8x8xf32>
  %oe = tensor.empty() : tensor<1x8x1x1xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x8x1x1xf32>) -> tensor<1x8x1x1xf32>
  %y = linalg.pooling_nchw_sum {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x8x8x8xf32>, tensor<8x8xf32>) outs(%init : tensor<1x8x1x1xf32>) -> tensor<1x8x1x1xf32>
  return %y : tensor<1x8x1x1xf32>
}
