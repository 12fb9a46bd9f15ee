// RUN: not serenity-opt %s --serenity-schedule 2>&1 | filecheck %s -DFILE=%s
// CHECK: error: [[FILE]]:{{[0-9]+}}:{{[0-9]+}}: function 'f' has 2 blocks; only single-block bodies (no control flow) can be scheduled
func.func @f(%arg0: tensor<4xf32>, %c: i1) -> tensor<4xf32> {
  cf.cond_br %c, ^bb1, ^bb1
^bb1:
  return %arg0 : tensor<4xf32>
}
