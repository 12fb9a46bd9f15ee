// The phase-bridging flow extended to placement, with the real tools: IREE to
// flow, serenity-opt --serenity-schedule, iree-opt to the transient packs,
// serenity-opt -p serenity-place, iree-opt to the end of the stream phase,
// iree-compile --compile-from=stream. On SwiftNet IREE's greedy packer
// leaves holes in the slab (650,176 B for 589,824 live bytes on IREE 3.13);
// placed, the slab is the live bytes, the runtime peak is the inputs, the
// results and that slab, and the outputs are bit-identical to IREE's own
// layout of the same order.
// iree-opt prints the serial partitioning as <favor-debug> but parses only
// <"debug">: sed writes it back between the text steps.
// RUN: iree-import-onnx %S/../../../samples/swiftnet.onnx -o %t.input.mlir
// RUN: iree-compile %t.input.mlir --compile-to=flow --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.flow.mlir
// RUN: serenity-opt %t.flow.mlir --serenity-schedule -o %t.sched.mlir
// RUN: iree-opt %t.sched.mlir --pass-pipeline='builtin.module(iree-util-verify-initialization-order, iree-stream-tensor-transformation-pipeline, iree-stream-async-transformation-pipeline, iree-stream-schedule-allocation, iree-stream-emplace-transients, iree-stream-materialize-transient-size-queries)' | sed -e 's/<favor-debug>/<"debug">/' > %t.stream.mlir
// RUN: filecheck %s --check-prefix=PACK --input-file %t.stream.mlir
// RUN: serenity-opt %t.stream.mlir -p 'serenity-place{print-packs=true}' -o %t.placed.mlir 2> %t.packs.json
// RUN: filecheck %s --check-prefix=REPORT --input-file %t.packs.json
// RUN: filecheck %s --check-prefix=PLACED --input-file %t.placed.mlir
// RUN: iree-opt %t.placed.mlir --pass-pipeline='builtin.module(iree-stream-cmd-transformation-pipeline, iree-stream-optimization-pipeline, symbol-dce)' | sed -e 's/<favor-debug>/<"debug">/' > %t.final.mlir
// RUN: iree-compile %t.final.mlir --compile-from=stream --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.placed.vmfb
// RUN: iree-compile %t.sched.mlir --compile-from=flow --iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host -o %t.sched.vmfb
// RUN: serenity-mlir measure %t.placed.vmfb > %t.placed.json
// RUN: serenity-mlir measure %t.sched.vmfb > %t.sched.json
// RUN: %python -c "import json,sys; p=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2])); r=json.load(open(sys.argv[3])); print(p['device_bytes_peak'], s['device_bytes_peak'], r); assert p['outputs_sha256'] == s['outputs_sha256']; assert (p['transient_bytes'], s['transient_bytes']) == (r['slab_bytes'], r['iree_slab_bytes']); assert r['slab_bytes'] == r['slab_live_bytes'] < r['iree_slab_bytes']; assert p['device_bytes_peak'] == p['input_bytes'] + p['output_bytes'] + r['slab_bytes']" %t.placed.json %t.sched.json %t.packs.json
// PACK: stream.resource.pack
// PACK-SAME: slices({
// REPORT: "iree_slab_bytes": [[IREE:[0-9]+]], "slab_bytes": [[SLAB:[0-9]+]], "slab_live_bytes": [[SLAB]]
// PLACED-NOT: stream.resource.pack
// PLACED: stream.resource.alloca {{.*}} => !stream.resource<transient>{{[{]}}%c{{[0-9]+(_[0-9]+)?}}}
// PLACED-NOT: stream.resource.pack
