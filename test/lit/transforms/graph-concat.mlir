// RUN: serenity-opt %s --serenity-print-graph --memory-model paper -o /dev/null 2>&1 | filecheck %s

// The memory model of a concat by in-place updates: the buffer that starts
// as flow.tensor.empty is allocated by its first writer (2 x 4 KiB = 8 KiB),
// later updates and the view add nothing, and the input is live until its
// last reader.

flow.executable private @ex {
  flow.executable.export public @f
}
// CHECK: "nodes": [{"name": "%0", "bytes": 4096}, {"name": "%1", "bytes": 4096}, {"name": "%3", "bytes": 8192}, {"name": "%4", "bytes": 0}, {"name": "%6", "bytes": 4096}]
// CHECK-SAME: "outputs": ["%6"]
// CHECK-SAME: "inputs": [{"name": "%arg0", "bytes": 4096, "users": ["%0", "%1"]}]
util.func public @concat(%arg0: tensor<1024xf32>) -> tensor<1024xf32> {
  %a = flow.dispatch @ex::@f(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %b = flow.dispatch @ex::@f(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %c0 = arith.constant 0 : index
  %c1024 = arith.constant 1024 : index
  %buf = flow.tensor.empty : tensor<2048xf32>
  %u0 = flow.tensor.update %a, %buf[%c0] : tensor<1024xf32> -> %buf as tensor<2048xf32>
  %u1 = flow.tensor.update %b, %u0[%c1024] : tensor<1024xf32> -> %u0 as tensor<2048xf32>
  %v = flow.tensor.reshape %u1 : tensor<2048xf32> -> tensor<2x1024xf32>
  %r = flow.dispatch @ex::@f(%v) : (tensor<2x1024xf32>) -> tensor<1024xf32>
  util.return %r : tensor<1024xf32>
}
