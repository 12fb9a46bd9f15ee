// Output kind vm-c: the VM module as C source (two_create) plus the
// executables as a static library; no .vmfb.
// RUN: rm -rf %t && mkdir -p %t
// RUN: serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/two.vmfb --target cortex-m7-vmc --no-measure -q
// RUN: filecheck %s --input-file %t/two.c
// RUN: filecheck %s --check-prefix=HDR --input-file %t/two.h
// RUN: not ls %t/two.vmfb
// CHECK: iree_status_t two_create(iree_vm_instance_t*
// HDR: two_linked_library_query(
