// `python -m serenity_mlir.tools.deploy build` reports code size and arena, and
// enforces a memory budget.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -m serenity_mlir.tools.deploy build %S/Inputs/two-chains.mlir -o %t/two.vmfb --target cortex-m4 --report %t/r.json -q | filecheck %s --check-prefix=LINE
// RUN: filecheck %s --input-file %t/r.json
// RUN: not %python -m serenity_mlir.tools.deploy build %S/Inputs/two-chains.mlir -o %t/b.vmfb --target cortex-m4 --memory-budget 64K 2>&1 | filecheck %s --check-prefix=BUDGET
// RUN: not %python -m serenity_mlir.tools.deploy build %S/Inputs/two-chains.mlir -o %t/b.vmfb --target cortex-m4 --memory-budget 64Q 2>&1 | filecheck %s --check-prefix=JUNK
// LINE: two-chains.mlir -> cortex-m4: code {{[0-9.]+}} KiB, arena {{[0-9.]+}} KiB, RAM 352.0 KiB (does NOT fit 192.0 KiB SRAM)
// CHECK-DAG: "output_kind": "static-library"
// CHECK-DAG: "code_size_bytes": {{[1-9][0-9]*}}
// CHECK-DAG: "arena_bytes": {{[1-9][0-9]*}}
// CHECK-DAG: "input_bytes": 32768
// CHECK-DAG: "output_bytes": 32768
// CHECK-DAG: "sram_bytes": 196608
// CHECK-DAG: "fits_sram": false
// CHECK-DAG: "library_query_symbol": "two_linked_library_query"
// BUDGET: error: two-chains.mlir on cortex-m4 (peak at dispatch {{.+}}) needs {{.*}} of RAM, over the memory budget of 65,536 B (64.0 KiB)
// JUNK: error: bad size '64Q'
