// RUN: serenity-opt %s --serenity-rewrite --serenity-print-sites 2>%t.sites | filecheck %s
// RUN: filecheck %s --check-prefix=SITES < %t.sites

// Two rounds of rewriting. concat(a, b, c) -> pad -> depthwise 3x3 -> ReLU ->
// 1x1 conv: the kernel-wise rewrite moves the concat below the depthwise
// convolution, where it feeds ReLU and the 1x1 convolution: a channel-wise
// site that did not exist before. The rewrite runs to a fixed point, so that
// concat is partitioned too and no concat is left: each piece goes through
// its own pad, depthwise convolution and ReLU and dies at its own partial
// 1x1 convolution.

// SITES: "index": 0, {{.*}} "applicable": true, "kind": "kernel-wise", "convolutions": ["linalg.depthwise_conv_2d_nchw_chw"], {{.*}} "second_round_rewrites": 1}], "applied": [0]}

// CHECK-LABEL: func.func @two_rounds
// CHECK-NOT: tensor.concat
// CHECK: %[[PA:.*]] = tensor.pad %arg0
// CHECK: %[[PB:.*]] = tensor.pad %arg1
// CHECK: %[[PC:.*]] = tensor.pad %arg2
// CHECK: %[[DA:.*]] = linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%[[PA]], %{{.*}} : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>)
// CHECK: %[[DB:.*]] = linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%[[PB]], %{{.*}} : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>)
// CHECK: %[[DC:.*]] = linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%[[PC]], %{{.*}} : tensor<1x2x10x10xf32>, tensor<2x3x3xf32>)
// CHECK: %[[RA:.*]] = linalg.generic {{.*}} ins(%[[DA]] : tensor<1x2x8x8xf32>)
// CHECK: %[[RB:.*]] = linalg.generic {{.*}} ins(%[[DB]] : tensor<1x2x8x8xf32>)
// CHECK: %[[RC:.*]] = linalg.generic {{.*}} ins(%[[DC]] : tensor<1x2x8x8xf32>)
// The 1x1 weights are cut by input channel at compile time: W[:, 0:2] holds 1, 2, 7, 8, ...
// CHECK: %[[WA:.*]] = arith.constant dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}2.000000e+00]]], {{\[\[\[}}7.000000e+00]]{{.*}} : tensor<4x2x1x1xf32>
// CHECK: %[[YA:.*]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%[[RA]], %[[WA]] : {{.*}}) outs(%{{.*}} : tensor<1x4x8x8xf32>)
// CHECK: %[[BA:.*]] = iree_tensor_ext.compute_barrier.start %[[YA]]
// CHECK: %[[YB:.*]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%[[RB]], %{{.*}} : {{.*}}) outs(%[[BA]] : tensor<1x4x8x8xf32>)
// CHECK: %[[BB:.*]] = iree_tensor_ext.compute_barrier.start %[[YB]]
// CHECK: %[[YC:.*]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%[[RC]], %{{.*}} : {{.*}}) outs(%[[BB]] : tensor<1x4x8x8xf32>)
// CHECK: return %[[YC]]
// The marks the rewrite keeps on concats while it works are gone.
// CHECK-NOT: serenity.

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @two_rounds(%a: tensor<1x2x8x8xf32>, %b: tensor<1x2x8x8xf32>, %c: tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %k = arith.constant dense<[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], [[3.0, 3.0, 3.0], [3.0, 3.0, 3.0], [3.0, 3.0, 3.0]], [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]], [[6.0, 6.0, 6.0], [6.0, 6.0, 6.0], [6.0, 6.0, 6.0]]]> : tensor<6x3x3xf32>
  %w = arith.constant dense<[[[[1.0]], [[2.0]], [[3.0]], [[4.0]], [[5.0]], [[6.0]]], [[[7.0]], [[8.0]], [[9.0]], [[10.0]], [[11.0]], [[12.0]]], [[[13.0]], [[14.0]], [[15.0]], [[16.0]], [[17.0]], [[18.0]]], [[[19.0]], [[20.0]], [[21.0]], [[22.0]], [[23.0]], [[24.0]]]]> : tensor<4x6x1x1xf32>
  %cat = tensor.concat dim(1) %a, %b, %c : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x6x8x8xf32>
  %p = tensor.pad %cat low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  } : tensor<1x6x8x8xf32> to tensor<1x6x10x10xf32>
  %de = tensor.empty() : tensor<1x6x8x8xf32>
  %dinit = linalg.fill ins(%zero : f32) outs(%de : tensor<1x6x8x8xf32>) -> tensor<1x6x8x8xf32>
  %dw = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %k : tensor<1x6x10x10xf32>, tensor<6x3x3xf32>) outs(%dinit : tensor<1x6x8x8xf32>) -> tensor<1x6x8x8xf32>
  %re = tensor.empty() : tensor<1x6x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%dw : tensor<1x6x8x8xf32>) outs(%re : tensor<1x6x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x6x8x8xf32>
  %oe = tensor.empty() : tensor<1x4x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%r, %w : tensor<1x6x8x8xf32>, tensor<4x6x1x1xf32>) outs(%init : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}
