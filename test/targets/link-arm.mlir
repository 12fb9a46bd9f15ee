// REQUIRES: arm-none-eabi-gcc
// The Cortex-M7 object links into a bare-metal program with the GNU Arm
// toolchain (no C library; libgcc for compiler builtins).
// RUN: rm -rf %t && mkdir -p %t
// RUN: serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/two.vmfb --target cortex-m7 --no-measure -q
// RUN: arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=auto -O1 -nostdlib -Wl,-e,serenity_entry -Wl,--no-warn-rwx-segments -Wl,--no-warn-execstack -DQUERY=two_linked_library_query %S/Inputs/link.c %t/two.o -lgcc -o %t/link.elf
// RUN: %python -m serenity_mlir.tools.deploy inspect %t/link.elf | filecheck %s
// CHECK: "machine": "ARM"
// CHECK: "type": "executable"
