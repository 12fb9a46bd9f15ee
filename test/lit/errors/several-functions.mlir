// RUN: not serenity-opt %s --serenity-schedule 2>&1 | filecheck %s -DFILE=%s
// RUN: not serenity-opt %s --serenity-schedule --function nope 2>&1 | filecheck %s --check-prefix=NOPE -DFILE=%s
// RUN: serenity-opt %s --serenity-schedule --function g | filecheck %s --check-prefix=PICK
// CHECK: error: [[FILE]]: the module has 2 public functions (f, g): pick one with --function
// NOPE: error: [[FILE]]: no public function 'nope' in the module (it has: f, g)
// PICK: func.func @g
func.func @f(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
func.func @g(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  return %arg0 : tensor<4xf32>
}
