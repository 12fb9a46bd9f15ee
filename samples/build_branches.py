"""An iree-build file that compiles the bundled samples with SERENITY's schedule.

    python -m iree.build samples/build_branches.py --output-dir build/iree-build

(`python -m iree.build` is what the `iree-build` command runs; the console
script shipped in iree-base-compiler 3.13.0 fails to start with an
ImportError, so call the module.)

builds `branches` (an ONNX file on disk) and `branches_imported` (the same
model through IREE's own `onnx_import` action first), each as a .vmfb with a
JSON report next to it.
"""

from pathlib import Path

from iree.build import entrypoint, iree_build_main, onnx_import

from serenity_mlir.iree_build import serenity_compile, source_file

HERE = Path(__file__).resolve().parent


@entrypoint(description="The multi-branch sample, SERENITY-scheduled for the host")
def branches():
    return serenity_compile(name="branches", source=HERE / "branches.onnx", target="host")


@entrypoint(description="The same model through IREE's onnx_import action")
def branches_imported():
    mlir = onnx_import(name="branches_imported.mlir", source=source_file(HERE / "branches.onnx"))
    return serenity_compile(name="branches_imported", source=mlir, target="host")


if __name__ == "__main__":
    iree_build_main()
