// The rewrite between IREE's phases, with the real tools: IREE to the input
// phase (linalg on tensors), serenity-opt --serenity-rewrite, IREE from the
// input phase to flow. The concat is gone at the dispatch level and the two
// partial convolutions accumulate in place, one after the other, with no
// barrier left at the dispatch level.
// RUN: iree-compile %s --compile-to=input --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.input.mlir
// RUN: serenity-opt %t.input.mlir -p serenity-rewrite -o %t.rewritten.mlir
// RUN: iree-compile %t.rewritten.mlir --compile-from=input --compile-to=flow --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.flow.mlir
// RUN: filecheck %s --input-file %t.flow.mlir

// CHECK-LABEL: util.func public @expand_concat_project(
// CHECK-NOT: flow.tensor.update
// CHECK: flow.dispatch @{{.*}}_elementwise_4096_f32
// CHECK: flow.dispatch @{{.*}}_elementwise_4096_f32
// CHECK: flow.dispatch @{{.*}}_matmul_like_4x256x16_f32(%{{[^,]*}}) : (tensor<16x256xf32>) -> tensor<4x256xf32>
// The second partial convolution accumulates into the first one's result, in place.
// CHECK: flow.dispatch @{{.*}}_matmul_like_4x256x16_f32(%{{.*}}, %[[ACC:[0-9]+]]) : (tensor<16x256xf32>, tensor<4x256xf32>) -> %[[ACC]]
// CHECK-NOT: flow.tensor.update
// IREE's compute barrier is gone after dispatch formation: nothing ends the execution region.
// CHECK-NOT: {{compute_barrier|optimization_barrier}}
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @expand_concat_project(%x: tensor<1x16x16x16xf32>) -> tensor<1x4x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[[[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]], [[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]], [[1.0]], [[0.5]]], [[[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]], [[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]]], [[[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]], [[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]]], [[[-0.125]], [[-0.625]], [[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]], [[0.875]], [[0.375]], [[-0.125]], [[-0.625]], [[1.0]], [[0.5]], [[0.0]], [[-0.5]], [[-1.0]], [[0.625]], [[0.125]], [[-0.375]], [[-0.875]], [[0.75]], [[0.25]], [[-0.25]], [[-0.75]]]]> : tensor<4x32x1x1xf32>
  %e = tensor.empty() : tensor<1x16x16x16xf32>
  %a = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x16x16x16xf32>) outs(%e : tensor<1x16x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.tanh %in : f32
    linalg.yield %m : f32
  } -> tensor<1x16x16x16xf32>
  %b = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x16x16x16xf32>) outs(%e : tensor<1x16x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<1x16x16x16xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x16x16x16xf32>, tensor<1x16x16x16xf32>) -> tensor<1x32x16x16xf32>
  %oe = tensor.empty() : tensor<1x4x16x16xf32>
  %init = linalg.fill ins(%zero : f32) outs(%oe : tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w : tensor<1x32x16x16xf32>, tensor<4x32x1x1xf32>) outs(%init : tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
  return %y : tensor<1x4x16x16xf32>
}
