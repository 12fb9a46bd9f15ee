// RUN: serenity-opt %s -p 'serenity-patch{grid=2x2 split=1}' | filecheck %s
// RUN: serenity-opt %s -p 'serenity-patch{grid=2x2 split=0}' | filecheck %s --check-prefix=CONV

// A 3x3 convolution (pad 1, 2->4 channels, ReLU), LRN over 3 channels as
// IREE's ONNX import writes it (the squares expanded to 5-D, padded over
// channels, transposed to NDHWC, summed by a pooling whose window covers
// channels only, transposed back, collapsed to 4-D) and a 2x2 stride-2 max
// pooling: input 1x2x8x8, output 1x4x4x4. LRN is spatially pointwise, so
// the stage runs through it: split at the max pooling, each of the 2x2
// patches (2x2 output pixels) needs a 4x4 window of the LRN and of the
// convolution, rows and columns [0, 5) of the input for patch (0, 0) with a
// padding row and column above and left of them. The LRN's ops run on that
// window with no halo: their channel padding is kept, their spatial dims
// (dims 3 and 4 of the 5-D values, 2 and 3 after the transpose) are 4x4.

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#id5 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// CHECK-LABEL: func.func @conv_lrn_pool
// CHECK: %[[ACC0:.*]] = tensor.empty() : tensor<1x4x4x4xf32>
// patch (0, 0)
// CHECK: %[[X00:.*]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 2, 5, 5] [1, 1, 1, 1] : tensor<1x2x8x8xf32> to tensor<1x2x5x5xf32>
// CHECK: tensor.pad %[[X00]] low[0, 0, 1, 1] high[0, 0, 0, 0]
// CHECK: linalg.conv_2d_nchw_fchw {{.*}} outs(%{{.*}} : tensor<1x4x4x4xf32>)
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2], [3], [4]] output_shape [1, 1, 4, 4, 4] : tensor<1x4x4x4xf32> into tensor<1x1x4x4x4xf32>
// CHECK-NEXT: tensor.pad %[[E]] low[0, 0, 1, 0, 0] high[0, 0, 1, 0, 0]
// CHECK: } : tensor<1x1x4x4x4xf32> to tensor<1x1x6x4x4xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<1x1x6x4x4xf32>) outs(%{{.*}} : tensor<1x6x4x4x1xf32>) permutation = [0, 2, 3, 4, 1]
// CHECK: linalg.pooling_ndhwc_sum {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x6x4x4x1xf32>, tensor<3x1x1xf32>) outs(%{{.*}} : tensor<1x4x4x4x1xf32>)
// CHECK: linalg.transpose ins(%{{.*}} : tensor<1x4x4x4x1xf32>) outs(%{{.*}} : tensor<1x1x4x4x4xf32>) permutation = [0, 4, 1, 2, 3]
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<1x1x4x4x4xf32>)
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1], [2], [3], [4]] : tensor<1x1x4x4x4xf32> into tensor<1x4x4x4xf32>
// CHECK: %[[Y00:.*]] = linalg.pooling_nchw_max {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x4x4x4xf32>, tensor<2x2xf32>) outs(%{{.*}} : tensor<1x4x2x2xf32>)
// CHECK: %[[ACC1:.*]] = tensor.insert_slice %[[Y00]] into %[[ACC0]][0, 0, 0, 0] [1, 4, 2, 2] [1, 1, 1, 1] : tensor<1x4x2x2xf32> into tensor<1x4x4x4xf32>
// patch (0, 1): columns 3..7 of the input, a padding row above
// CHECK: tensor.extract_slice %arg0[0, 0, 0, 3] [1, 2, 5, 5] [1, 1, 1, 1]
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 0] high[0, 0, 0, 1]
// CHECK: linalg.pooling_ndhwc_sum {{.*}} outs(%{{.*}} : tensor<1x4x4x4x1xf32>)
// CHECK: %[[ACC2:.*]] = tensor.insert_slice %{{.*}} into %[[ACC1]][0, 0, 0, 2] [1, 4, 2, 2]
// CHECK: %[[ACC3:.*]] = tensor.insert_slice %{{.*}} into %[[ACC2]][0, 0, 2, 0] [1, 4, 2, 2]
// CHECK: %[[ACC4:.*]] = tensor.insert_slice %{{.*}} into %[[ACC3]][0, 0, 2, 2] [1, 4, 2, 2]
// No full-size value of the stage is left.
// CHECK-NOT: x8x8xf32>
// CHECK: return %[[ACC4]] : tensor<1x4x4x4xf32>

// Split at the convolution: the cut is its ReLU (read twice by the LRN),
// the LRN and the pooling run whole after the assembled output.
// CONV-LABEL: func.func @conv_lrn_pool
// CONV: tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 4, 4] [1, 4, 4, 4] [1, 1, 1, 1] : tensor<1x4x4x4xf32> into tensor<1x4x8x8xf32>
// CONV: tensor.expand_shape %{{.*}} output_shape [1, 1, 4, 8, 8]
// CONV: linalg.pooling_ndhwc_sum {{.*}} outs(%{{.*}} : tensor<1x4x8x8x1xf32>)
// CONV: linalg.pooling_nchw_max {{.*}} -> tensor<1x4x4x4xf32>
func.func @conv_lrn_pool(%x: tensor<1x2x8x8xf32>) -> tensor<1x4x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %w = arith.constant dense<0.5> : tensor<4x2x3x3xf32>
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x2x10x10xf32>, tensor<4x2x3x3xf32>) outs(%f : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %sq = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%r, %r : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in0: f32, %in1: f32, %o: f32):
    %m = arith.mulf %in0, %in1 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %x5 = tensor.expand_shape %sq [[0], [1, 2], [3], [4]] output_shape [1, 1, 4, 8, 8] : tensor<1x4x8x8xf32> into tensor<1x1x4x8x8xf32>
  %xp = tensor.pad %x5 low[0, 0, 1, 0, 0] high[0, 0, 1, 0, 0] {
  ^bb0(%a: index, %b: index, %c: index, %d: index, %e_: index):
    tensor.yield %zero : f32
  } : tensor<1x1x4x8x8xf32> to tensor<1x1x6x8x8xf32>
  %te = tensor.empty() : tensor<1x6x8x8x1xf32>
  %t = linalg.transpose ins(%xp : tensor<1x1x6x8x8xf32>) outs(%te : tensor<1x6x8x8x1xf32>) permutation = [0, 2, 3, 4, 1]
  %se = tensor.empty() : tensor<1x4x8x8x1xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%se : tensor<1x4x8x8x1xf32>) -> tensor<1x4x8x8x1xf32>
  %k = tensor.empty() : tensor<3x1x1xf32>
  %s = linalg.pooling_ndhwc_sum {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%t, %k : tensor<1x6x8x8x1xf32>, tensor<3x1x1xf32>) outs(%sf : tensor<1x4x8x8x1xf32>) -> tensor<1x4x8x8x1xf32>
  %be = tensor.empty() : tensor<1x1x4x8x8xf32>
  %tb = linalg.transpose ins(%s : tensor<1x4x8x8x1xf32>) outs(%be : tensor<1x1x4x8x8xf32>) permutation = [0, 4, 1, 2, 3]
  %d = linalg.generic {indexing_maps = [#id5, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%tb : tensor<1x1x4x8x8xf32>) outs(%be : tensor<1x1x4x8x8xf32>) {
  ^bb0(%in0: f32, %o: f32):
    %n = arith.constant 3.0 : f32
    %m = arith.divf %in0, %n : f32
    linalg.yield %m : f32
  } -> tensor<1x1x4x8x8xf32>
  %c = tensor.collapse_shape %d [[0, 1], [2], [3], [4]] : tensor<1x1x4x8x8xf32> into tensor<1x4x8x8xf32>
  %den = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in0: f32, %o: f32):
    %al = arith.constant 2.0e-2 : f32
    %bi = arith.constant 1.0 : f32
    %bt = arith.constant 0.75 : f32
    %m = arith.mulf %in0, %al : f32
    %a = arith.addf %m, %bi : f32
    %q = math.powf %a, %bt : f32
    linalg.yield %q : f32
  } -> tensor<1x4x8x8xf32>
  %l = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%r, %den : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%in0: f32, %in1: f32, %o: f32):
    %m = arith.divf %in0, %in1 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x8x8xf32>
  %pe = tensor.empty() : tensor<1x4x4x4xf32>
  %pf = linalg.fill ins(%ninf : f32) outs(%pe : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %pk = tensor.empty() : tensor<2x2xf32>
  %out = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%l, %pk : tensor<1x4x8x8xf32>, tensor<2x2xf32>) outs(%pf : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %out : tensor<1x4x4x4xf32>
}
