// The iree-compile phase-bridging flow of the README, with the real tools:
// IREE to flow, serenity-opt, IREE from flow; the scheduled module needs no
// extra flag (it carries serial partitioning) and its runtime peak drops.
// RUN: iree-import-onnx %S/../../../samples/branches.onnx -o %t.input.mlir
// RUN: iree-compile %t.input.mlir --compile-to=flow --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.flow.mlir
// RUN: serenity-opt %t.flow.mlir --serenity-schedule -o %t.sched.mlir
// RUN: filecheck %s --input-file %t.sched.mlir
// RUN: iree-compile %t.sched.mlir --compile-from=flow --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.sched.vmfb
// RUN: iree-compile %t.input.mlir --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.default.vmfb
// RUN: serenity-mlir measure %t.sched.vmfb > %t.sched.json
// RUN: serenity-mlir measure %t.default.vmfb --input 1x8x32x32xf32 > %t.default.json
// RUN: %python -c "import json,sys; s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2])); print(s['device_bytes_peak'], d['device_bytes_peak']); assert s['outputs_sha256'] == d['outputs_sha256']; assert 2 * s['device_bytes_peak'] <= d['device_bytes_peak']" %t.sched.json %t.default.json
// CHECK: stream.partitioning = #stream.partitioning_config<"debug">
// CHECK: iree.reflection = {serenity.inputs = "1x8x32x32xf32", serenity.outputs = "1x8x32x32xf32"}
