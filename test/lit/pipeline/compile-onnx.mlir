// The driver on the bundled ONNX sample, with the real IREE compiler and runtime.
// RUN: serenity-mlir compile %S/../../../samples/branches.onnx -o %t.vmfb --report %t.json -q
// RUN: filecheck %s --input-file %t.json
// RUN: serenity-mlir measure %t.vmfb | filecheck %s --check-prefix=MEASURE
// CHECK: "scheduler": "serenity"
// CHECK: "entry_function": "branches"
// CHECK: "optimal": true
// CHECK: "outputs_bit_identical": true
// MEASURE: "device_bytes_peak": {{[1-9][0-9]*}}
