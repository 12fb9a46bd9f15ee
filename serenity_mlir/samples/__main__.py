"""``python -m serenity_mlir.samples OUTDIR [--paper-size] [NAMES...]``: write sample models."""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from . import SAMPLES, write_sample


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serenity_mlir.samples",
        description="Write deterministic ONNX sample networks as OUTDIR/<name>.onnx.")
    parser.add_argument("outdir", type=pathlib.Path, help="output directory (created if missing)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"samples to write (default: all of {', '.join(SAMPLES)})")
    parser.add_argument("--paper-size", action="store_true",
                        help="paper-like sizes instead of the small, fast-to-compile defaults")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SAMPLES]
    if unknown:
        parser.error(f"unknown sample(s) {', '.join(unknown)}; choose from {', '.join(SAMPLES)}")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(SAMPLES):
        path = write_sample(name, args.outdir / f"{name}.onnx", paper=args.paper_size)
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
