// RUN: serenity-opt %s --serenity-schedule --memory-model paper | filecheck %s
// RUN: serenity-opt %s --serenity-schedule --scheduler program | filecheck %s --check-prefix=PROGRAM

// Two branches that each expand 8 -> 64 rows and project back, then a sum.
// As written, both 256 KiB expansions are alive at once; the schedule runs
// one branch to its small result before starting the other.

flow.executable private @ex {
  flow.executable.export public @expand
  flow.executable.export public @project
  flow.executable.export public @sum
}

// CHECK: module attributes {stream.partitioning = #stream.partitioning_config<"debug">}
// CHECK-LABEL: util.func public @branches
// CHECK:      %[[E0:.+]] = flow.dispatch @ex::@expand(%arg0)
// CHECK-NEXT: %[[P0:.+]] = flow.dispatch @ex::@project(%[[E0]])
// CHECK-NEXT: %[[E1:.+]] = flow.dispatch @ex::@expand(%arg0)
// CHECK-NEXT: %[[P1:.+]] = flow.dispatch @ex::@project(%[[E1]])
// CHECK-NEXT: %[[S:.+]] = flow.dispatch @ex::@sum(%[[P0]], %[[P1]])
// CHECK-NEXT: util.return %[[S]]

// The program order is kept, with serial partitioning.
// PROGRAM: stream.partitioning = #stream.partitioning_config<"debug">
// PROGRAM:      flow.dispatch @ex::@expand
// PROGRAM-NEXT: flow.dispatch @ex::@expand
// PROGRAM-NEXT: flow.dispatch @ex::@project
// PROGRAM-NEXT: flow.dispatch @ex::@project
util.func public @branches(%arg0: tensor<8x1024xf32>) -> tensor<8x1024xf32> {
  %e0 = flow.dispatch @ex::@expand(%arg0) : (tensor<8x1024xf32>) -> tensor<64x1024xf32>
  %e1 = flow.dispatch @ex::@expand(%arg0) : (tensor<8x1024xf32>) -> tensor<64x1024xf32>
  %p0 = flow.dispatch @ex::@project(%e0) : (tensor<64x1024xf32>) -> tensor<8x1024xf32>
  %p1 = flow.dispatch @ex::@project(%e1) : (tensor<64x1024xf32>) -> tensor<8x1024xf32>
  %s = flow.dispatch @ex::@sum(%p0, %p1) : (tensor<8x1024xf32>, tensor<8x1024xf32>) -> tensor<8x1024xf32>
  util.return %s : tensor<8x1024xf32>
}
