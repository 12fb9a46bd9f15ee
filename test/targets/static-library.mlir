// A Cortex-M7 build writes the module, an ELF32 ARM object and its header;
// the object defines the query function the header declares.
// RUN: rm -rf %t && mkdir -p %t
// RUN: serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/two.vmfb --target cortex-m7 --no-measure -q
// RUN: %python -m serenity_mlir.tools.deploy inspect %t/two.o | filecheck %s --check-prefix=OBJ
// RUN: filecheck %s --check-prefix=HDR --input-file %t/two.h
// RUN: %python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1])" %t/two.vmfb
// OBJ: "bits": 32
// OBJ: "machine": "ARM"
// OBJ: "type": "relocatable"
// OBJ: "code_size_bytes": {{[1-9][0-9]*}}
// OBJ: "library_query_symbols": [
// OBJ-NEXT: "two_linked_library_query"
// OBJ-NEXT: ]
// HDR: const iree_hal_executable_library_header_t**
// HDR-NEXT: two_linked_library_query(
