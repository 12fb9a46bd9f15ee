// REQUIRES: qemu-aarch64
// A Cortex-A53 build runs under qemu-aarch64 (-cpu cortex-a53) with the
// aarch64 iree-run-module, and computes the same bits as the host build.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -m serenity_mlir.tools.deploy build %S/Inputs/two-chains.mlir -o %t/a53.vmfb --target cortex-a53 -q
// RUN: %python -m serenity_mlir.tools.deploy run-emulated %t/a53.vmfb --target cortex-a53 > %t/a53.json
// RUN: filecheck %s --input-file %t/a53.json
// RUN: serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/host.vmfb -q --no-verify-outputs
// RUN: serenity-mlir measure %t/host.vmfb > %t/host.json
// RUN: %python -c "import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); sys.exit(a['outputs_sha256'] != b['outputs_sha256'])" %t/a53.json %t/host.json
// CHECK: "inputs": [
// CHECK-NEXT: "8x1024xf32"
// CHECK: "device_bytes_peak": {{[1-9][0-9]*}}
// CHECK: "emulator": "qemu-aarch64 -L {{.*}} -cpu cortex-a53"
