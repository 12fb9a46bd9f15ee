"""A SERENITY action for ``iree.build`` (the ``iree-build`` command).

IREE's build language describes pipelines as ``@entrypoint`` functions that
chain actions (``onnx_import``, ``compile``). ``serenity_compile`` is one more
action: it imports, schedules and compiles a model for a target from
``pipelines/`` and writes the ``.vmfb`` plus the JSON report into the build
tree, so users keep their build files and swap one call::

    from iree.build import entrypoint, iree_build_main
    from serenity_mlir.iree_build import serenity_compile

    @entrypoint(description="My model, memory-scheduled")
    def model():
        return serenity_compile(name="model", source="/path/to/model.onnx", target="cortex-a53")

    if __name__ == "__main__":
        iree_build_main()
"""

from __future__ import annotations

from pathlib import Path

from iree.build.executor import BuildAction, BuildContext, BuildFile, FileNamespace

from serenity_mlir.errors import InputError
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.settings import TIME_LIMIT, CompileSettings

__all__ = ["serenity_compile", "source_file"]


def source_file(path: str | Path) -> BuildFile:
    """Declares a file on disk in the build graph, so IREE's own actions
    (``onnx_import``) can take it as their ``source``."""
    p = Path(path).resolve()
    if not p.is_file():
        raise InputError(f"source_file: {p} does not exist")
    context = BuildContext.current()
    existing = context.executor.all.get(str(p))
    if isinstance(existing, BuildFile):
        return existing
    return BuildFile(executor=context.executor, path=str(p))


def serenity_compile(
    *,
    name: str,
    source: str | Path | BuildFile,
    target: str = "host",
    scheduler: str = "serenity",
    time_limit: float = TIME_LIMIT,
    measure: bool = False,
) -> BuildFile:
    """Declares ``<name>.vmfb`` (and ``<name>.report.json``) in the build tree.

    ``source`` is a file produced by another action (``onnx_import``,
    ``fetch_http``) or a path on disk (.onnx, .mlir, .mlirbc).
    """
    context = BuildContext.current()
    deps: set = set()
    if isinstance(source, BuildFile):
        deps.add(source)
        source_file: BuildFile | Path = source
    else:
        p = Path(source)
        if not p.is_file():
            raise InputError(f"serenity_compile(name={name!r}): source {p} does not exist")
        source_file = p.resolve()
    output = context.allocate_file(f"{name}.vmfb", namespace=FileNamespace.BIN)
    report = context.allocate_file(f"{name}.report.json", namespace=FileNamespace.BIN)
    SerenityCompileAction(
        source=source_file,
        output=output,
        report=report,
        target=target,
        scheduler=scheduler,
        time_limit=time_limit,
        measure=measure,
        desc=f"SERENITY {scheduler} schedule + compile {name} for {target}",
        executor=context.executor,
        deps=deps,
    )
    return output


class SerenityCompileAction(BuildAction):
    def __init__(
        self,
        *,
        source: BuildFile | Path,
        output: BuildFile,
        report: BuildFile,
        target: str,
        scheduler: str,
        time_limit: float,
        measure: bool,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.source = source
        self.output = output
        self.report = report
        self.target = target
        self.scheduler = scheduler
        self.time_limit = time_limit
        self.measure = measure
        output.deps.add(self)
        report.deps.add(self)

    def _invoke(self) -> None:
        src = self.source.get_fs_path() if isinstance(self.source, BuildFile) else self.source
        opts = CompileSettings.from_options(
            target=self.target,
            scheduler=self.scheduler,
            time_limit=self.time_limit,
            measure=self.measure,
            verify_outputs=False,
            quiet=True,
        )
        compile_model(src, self.output.get_fs_path(), opts, self.report.get_fs_path())
