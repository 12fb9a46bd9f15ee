// RUN: serenity-opt %s --serenity-print-graph --memory-model paper --function concat -o /dev/null 2>&1 | filecheck %s --check-prefix=EMPLACE
// RUN: serenity-opt %s --serenity-print-graph --memory-model paper --function shared -o /dev/null 2>&1 | filecheck %s --check-prefix=COPY

// The memory model of a concat by in-place updates, as IREE allocates it.

flow.executable private @ex {
  flow.executable.export public @f
}

// Each writer's result is used only by its update, so IREE's stream phase
// writes it straight into the concat buffer: the first writer allocates the
// 8 KiB buffer, the second writes into it (0 bytes, and runs after the first:
// it writes the first one's result), the updates are views.
// EMPLACE: "nodes": [{"name": "%0", "bytes": 8192}, {"name": "%1", "bytes": 0}, {"name": "%6", "bytes": 4096}]
// EMPLACE-SAME: "edges": [["%0", "%1"], ["%0", "%6"], ["%1", "%6"]]
// EMPLACE-SAME: "outputs": ["%6"]
// EMPLACE-SAME: "inputs": [{"name": "%arg0", "bytes": 4096, "users": ["%0", "%1"]}]
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

// When a writer's result has another user it keeps its own buffer and the
// update copies it: that update allocates the concat buffer, and the second
// writer (single use) is still emplaced: it writes into the copy's result, so
// it runs after the copy, and the nodes are numbered so (IREE moves the copy
// before the writer).
// COPY: "nodes": [{"name": "%0", "bytes": 4096}, {"name": "%3", "bytes": 8192}, {"name": "%1", "bytes": 0}, {"name": "%6", "bytes": 4096}]
// COPY-SAME: "edges": [["%0", "%3"], ["%0", "%1"], ["%3", "%1"], ["%3", "%6"], ["%1", "%6"]]
// COPY-SAME: "outputs": ["%6"]
util.func public @shared(%arg0: tensor<1024xf32>) -> tensor<1024xf32> {
  %a = flow.dispatch @ex::@f(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %b = flow.dispatch @ex::@f(%a) : (tensor<1024xf32>) -> tensor<1024xf32>
  %c0 = arith.constant 0 : index
  %c1024 = arith.constant 1024 : index
  %buf = flow.tensor.empty : tensor<2048xf32>
  %u0 = flow.tensor.update %a, %buf[%c0] : tensor<1024xf32> -> %buf as tensor<2048xf32>
  %u1 = flow.tensor.update %b, %u0[%c1024] : tensor<1024xf32> -> %u0 as tensor<2048xf32>
  %v = flow.tensor.reshape %u1 : tensor<2048xf32> -> tensor<2x1024xf32>
  %r = flow.dispatch @ex::@f(%v) : (tensor<2x1024xf32>) -> tensor<1024xf32>
  util.return %r : tensor<1024xf32>
}
