#!/usr/bin/env python
"""Guess & Sketch accuracy table: ``examples/transpile.py``'s comparison (model alone, beam
filtered by tests, Guess & Sketch, symbolic search with the same time per program) on the
held-out split, written to ``benchmarks/results/transpile_bench.md`` and ``.png``.

    python benchmarks/transpile_bench.py                  # 100 programs, 10 s each
    python benchmarks/transpile_bench.py --programs 200 --seconds 30
    python benchmarks/transpile_bench.py --quick          # harness check: tiny model

Every number of the README's Guess & Sketch table comes from one run of this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _example():
    spec = importlib.util.spec_from_file_location("transpile_example",
                                                  ROOT / "examples" / "transpile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    name = "transpile_bench_quick" if args.quick else "transpile_bench"
    RESULTS.mkdir(parents=True, exist_ok=True)
    options = ["--programs", str(3 if args.quick else args.programs),
               "--seconds", str(3.0 if args.quick else args.seconds), "--show", "0",
               "--report", str(RESULTS / f"{name}.md"), "--plot", str(RESULTS / f"{name}.png")]
    _example().main(options + (["--tiny"] if args.quick else []))


if __name__ == "__main__":
    main()
