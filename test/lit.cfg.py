# lit configuration for serenity-mlir: `lit test/` runs every *.mlir test here.
# RUN lines use the installed console scripts (serenity-opt, serenity-mlir),
# IREE's tools from the iree-base-* wheels and FileCheck from the PyPI
# `filecheck` package, all found on PATH next to the Python running lit.
import os
import shutil
import sys

import lit.formats

config.name = "serenity-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".onnx-test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.local.cfg"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")

bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
for var in ("HOME", "TMPDIR", "PYTHONPATH"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

config.substitutions.append(("%python", sys.executable))
# PyPI's filecheck is a Python port of LLVM FileCheck; `filecheck` is its name.
config.substitutions.append(("FileCheck", "filecheck"))


def tool(name):
    return shutil.which(name, path=config.environment["PATH"])


for name in ("serenity-opt", "serenity-mlir", "iree-compile", "iree-run-module", "filecheck"):
    if tool(name):
        config.available_features.add(name)
    else:
        lit_config.warning(f"{name} not found on PATH: tests that need it are unsupported")

if tool("qemu-aarch64"):
    config.available_features.add("qemu-aarch64")
