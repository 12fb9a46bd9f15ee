// Asking for a site that cannot be rewritten is an error with both
// locations (the concat's and the convolution's), and no output is written.
// RUN: rm -f %t.out
// RUN: not serenity-opt %s --serenity-rewrite --rewrite-sites 0 -o %t.out 2>&1 | filecheck %s -DFILE=%s
// RUN: not ls %t.out
// RUN: not serenity-opt %s --serenity-rewrite --rewrite-sites 3 2>&1 | filecheck %s --check-prefix=RANGE -DFILE=%s
// CHECK: error: concat site 0 at [[FILE]]:13:8 cannot be rewritten: the weights of linalg.conv_2d_nchw_fchw at [[FILE]]:16:8 are not a compile-time constant
// RANGE: error: [[FILE]]: no concat site 3 in the module (it has 1)
func.func @f(%a: tensor<1x2x8x8xf32>, %b: tensor<1x2x8x8xf32>, %w: tensor<3x4x1x1xf32>) -> tensor<1x3x8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %oe = tensor.empty() : tensor<1x3x8x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
  // keep the line numbers in the CHECK lines above right
  // (the convolution is on line 16)
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x4x8x8xf32>, tensor<3x4x1x1xf32>) outs(%init : tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return %y : tensor<1x3x8x8xf32>
}
