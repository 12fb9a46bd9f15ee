// RUN: not serenity-opt %s --serenity-schedule 2>&1 | filecheck %s -DFILE=%s
// CHECK: error: [[FILE]]:{{[0-9]+}}:{{[0-9]+}}: dynamic shapes are not supported: argument %arg0 of 'f' has type tensor<?xf32>
func.func @f(%arg0: tensor<?xf32>) -> tensor<?xf32> {
  return %arg0 : tensor<?xf32>
}
