// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// Sites the rewrite must leave alone, each with the reason it reports.

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>

// Non-constant weights: slicing them would need runtime slices of W.
// SITES: "index": 0, {{.*}} "applicable": false, {{.*}} "reason": "the weights of linalg.conv_2d_nchw_fchw at {{.*}}no-rewrite.mlir:{{[0-9]+}}:{{[0-9]+}} are not a compile-time constant"
// CHECK-LABEL: func.func @weights_not_constant
// CHECK: tensor.concat
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-NOT: linalg.conv_2d_nchw_fchw
func.func @weights_not_constant(%a: tensor<1x2x8x8xf32>, %b: tensor<1x2x8x8xf32>, %w: tensor<3x4x1x1xf32>) -> tensor<1x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %c = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}

// The concat has another user (ReLU's result is also returned): the
// concatenated buffer must exist anyway.
// SITES-SAME: "index": 1, {{.*}} "applicable": false, {{.*}} "reason": "the concat (or a value computed from it) is also used by func.return at
// CHECK-LABEL: func.func @other_user
// CHECK: tensor.concat
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-NOT: linalg.conv_2d_nchw_fchw
func.func @other_user(%a: tensor<1x2x8x8xf32>, %b: tensor<1x2x8x8xf32>) -> (tensor<1x3x8x8xf32>, tensor<1x4x8x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<1.0> : tensor<3x4x1x1xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%r, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y, %r : tensor<1x3x8x8xf32>, tensor<1x4x8x8xf32>
}

// A grouped convolution that is not depthwise (2 groups of 2 channels).
// SITES-SAME: "index": 2, {{.*}} "applicable": false, {{.*}} "reason": "grouped convolution that is not depthwise (linalg.conv_2d_ngchw_gfchw at
// CHECK-LABEL: func.func @grouped
// CHECK: tensor.concat
// CHECK: linalg.conv_2d_ngchw_gfchw
// CHECK-NOT: linalg.conv_2d_ngchw_gfchw
func.func @grouped(%a: tensor<1x2x1x8x8xf32>, %b: tensor<1x2x1x8x8xf32>) -> tensor<1x2x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<1.0> : tensor<2x3x2x1x1xf32>
  %c = tensor.concat dim(2) %a, %b : (tensor<1x2x1x8x8xf32>, tensor<1x2x1x8x8xf32>) -> tensor<1x2x2x8x8xf32>
  %oe = tensor.empty() : tensor<1x2x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x2x3x8x8xf32>) -> tensor<1x2x3x8x8xf32>
  %y = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x2x2x8x8xf32>, tensor<2x3x2x1x1xf32>) outs(%init : tensor<1x2x3x8x8xf32>) -> tensor<1x2x3x8x8xf32>
  return %y : tensor<1x2x3x8x8xf32>
}

// A concat along the image height feeds the convolution's spatial dims,
// not its channels: no partitioning identity applies.
// SITES-SAME: "index": 3, {{.*}} "applicable": false, {{.*}} "reason": "the concat joins dim 2 but linalg.conv_2d_nchw_fchw at {{.*}} reads channels on dim 1"
// CHECK-LABEL: func.func @spatial_concat
// CHECK: tensor.concat
func.func @spatial_concat(%a: tensor<1x4x4x8xf32>, %b: tensor<1x4x4x8xf32>) -> tensor<1x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<1.0> : tensor<3x4x1x1xf32>
  %c = tensor.concat dim(2) %a, %b : (tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x8x8xf32>
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}
