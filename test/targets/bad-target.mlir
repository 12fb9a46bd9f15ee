// Target files are checked before anything is compiled, and LLVM's
// "not a recognized feature" warning is an error.
// RUN: rm -rf %t && mkdir -p %t
// RUN: not serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/x.vmfb --target %S/Inputs/bad-output.toml --no-measure 2>&1 | filecheck %s --check-prefix=KIND
// RUN: not serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/x.vmfb --target %S/Inputs/bogus-feature.toml --no-measure 2>&1 | filecheck %s --check-prefix=FEATURE
// RUN: not serenity-mlir compile %S/Inputs/two-chains.mlir -o %t/x.vmfb --target cortex-m99 --no-measure 2>&1 | filecheck %s --check-prefix=NAME
// RUN: not ls %t/x.vmfb
// KIND: error: {{.*}}bad-output.toml: field 'output' must be one of vmfb, static-library, vm-c (got 'elf')
// FEATURE: error: target my-board (in {{.*}}bogus-feature.toml): LLVM does not recognise feature '+vfp4sp-d16' for triple thumbv7em-none-eabihf
// NAME: error: unknown target 'cortex-m99' (known: {{.*}}cortex-m7{{.*}})
