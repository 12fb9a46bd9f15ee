// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// Two concats meet in one element-wise op (a residual add) before the
// convolution, with different splits: [2, 2] and [1, 3]. They are rewritten
// together at their common split [1, 1, 2]: each concat operand that spans
// more than one piece is sliced, the add is done piece by piece, and three
// partial convolutions replace the one.

// SITES: "index": 0, {{[^{]*}} "channels": [2, 2], {{[^{]*}} "applicable": true, {{[^{]*}} "group": [0, 1], "split": [1, 1, 2]}
// SITES-SAME: "index": 1, {{[^{]*}} "channels": [1, 3], {{[^{]*}} "applicable": true, {{[^{]*}} "group": [0, 1], "split": [1, 1, 2]}
// SITES-SAME: "applied": [0, 1]

// CHECK-LABEL: func.func @shared_split
// CHECK-NOT: tensor.concat
// CHECK-DAG: %[[A0:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 1, 8, 8]
// CHECK-DAG: %[[A1:.*]] = tensor.extract_slice %arg0[0, 1, 0, 0] [1, 1, 8, 8]
// CHECK-DAG: %[[Q0:.*]] = tensor.extract_slice %arg3[0, 0, 0, 0] [1, 1, 8, 8]
// CHECK-DAG: %[[Q1:.*]] = tensor.extract_slice %arg3[0, 1, 0, 0] [1, 2, 8, 8]
// CHECK: %[[S0:.*]] = linalg.generic {{.*}} ins(%[[A0]], %arg2 : tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>)
// CHECK: %[[S1:.*]] = linalg.generic {{.*}} ins(%[[A1]], %[[Q0]] : tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>)
// CHECK: %[[S2:.*]] = linalg.generic {{.*}} ins(%arg1, %[[Q1]] : tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[S0]], %{{.*}} : tensor<1x1x8x8xf32>, tensor<3x1x1x1xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[S1]], %{{.*}} : tensor<1x1x8x8xf32>, tensor<3x1x1x1xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[S2]], %{{.*}} : tensor<1x2x8x8xf32>, tensor<3x2x1x1xf32>)

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @shared_split(%a: tensor<1x2x8x8xf32>, %b: tensor<1x2x8x8xf32>, %p: tensor<1x1x8x8xf32>, %q: tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<1.0> : tensor<3x4x1x1xf32>
  %c1 = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
  %c2 = tensor.concat dim(1) %p, %q : (tensor<1x1x8x8xf32>, tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32>
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c1, %c2 : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %m = arith.addf %in, %in2 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%r, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}
