// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// A concat of concats (DARTS' factorized reduce: concat, batch norm, then a
// residual add into the cell's output concat). The inner concat is pushed
// through the batch norm and the add (the other addend is sliced per piece)
// and its pieces become operands of the outer concat, which then holds three
// pieces; the outer concat feeds a 1x1 convolution, so it is partitioned into
// three partial convolutions and neither concat is ever built.

// SITES: "index": 0, {{.*}} "applicable": true, "kind": "flatten", "convolutions": ["tensor.concat"], "pushed_through": ["linalg.generic", "linalg.generic"]
// SITES-SAME: "index": 1, {{.*}} "applicable": true, "kind": "channel-wise"
// SITES-SAME: "applied": [0, 1]

// CHECK-LABEL: func.func @flatten
// CHECK-NOT: tensor.concat
// CHECK: %[[BA:.*]] = linalg.generic {{.*}} ins(%arg0, %{{.*}} : tensor<1x1x8x8xf32>, tensor<1x1x1x1xf32>)
// CHECK: %[[BB:.*]] = linalg.generic {{.*}} ins(%arg1, %{{.*}} : tensor<1x1x8x8xf32>, tensor<1x1x1x1xf32>)
// CHECK: %[[O0:.*]] = tensor.extract_slice %arg2[0, 0, 0, 0] [1, 1, 8, 8]
// CHECK: %[[SA:.*]] = linalg.generic {{.*}} ins(%[[BA]], %[[O0]] :
// CHECK: %[[O1:.*]] = tensor.extract_slice %arg2[0, 1, 0, 0] [1, 1, 8, 8]
// CHECK: %[[SB:.*]] = linalg.generic {{.*}} ins(%[[BB]], %[[O1]] :
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%arg3, %{{.*}} : tensor<1x2x8x8xf32>, tensor<3x2x1x1xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[SA]], %{{.*}} : tensor<1x1x8x8xf32>, tensor<3x1x1x1xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} ins(%[[SB]], %{{.*}} : tensor<1x1x8x8xf32>, tensor<3x1x1x1xf32>)

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (0, d1, 0, 0)>
func.func @flatten(%a: tensor<1x1x8x8xf32>, %b: tensor<1x1x8x8xf32>, %o: tensor<1x2x8x8xf32>, %x: tensor<1x2x8x8xf32>) -> tensor<1x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s = arith.constant dense<[[[[2.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>
  %w = arith.constant dense<1.0> : tensor<3x4x1x1xf32>
  %inner = tensor.concat dim(1) %a, %b : (tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x2x8x8xf32>
  %e = tensor.empty() : tensor<1x2x8x8xf32>
  %bn = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%inner, %s : tensor<1x2x8x8xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x8x8xf32>) {
  ^bb0(%in: f32, %sc: f32, %out: f32):
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<1x2x8x8xf32>
  %e2 = tensor.empty() : tensor<1x2x8x8xf32>
  %sum = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%bn, %o : tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) outs(%e2 : tensor<1x2x8x8xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %m = arith.addf %in, %in2 : f32
    linalg.yield %m : f32
  } -> tensor<1x2x8x8xf32>
  %outer = tensor.concat dim(1) %x, %sum : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%outer, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}
