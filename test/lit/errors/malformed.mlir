// RUN: not serenity-opt %s --serenity-schedule 2>&1 | filecheck %s -DFILE=%s
// CHECK: error: malformed MLIR: [[FILE]]:4:8: custom op 'flow.bogus' is unknown
util.func public @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = flow.bogus %arg0 : tensor<4xf32>
  util.return %0 : tensor<4xf32>
}
