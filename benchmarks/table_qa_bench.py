#!/usr/bin/env python
"""Binder against its end-to-end and SQL-only baselines on the table-QA splits:
``examples/table_qa.py``'s comparison, written to ``benchmarks/results/table_qa_bench.md``
(accuracy per split, model sizes and training times) and ``.png`` (bar chart).

    python benchmarks/table_qa_bench.py            # the full comparison (CPU, tens of minutes)
    python benchmarks/table_qa_bench.py --quick    # harness check: seconds

Every number of the README's table-QA table comes from one run of this script (torch on 2
threads; each model's training time is in the report). Extra arguments go to the example.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _example():
    spec = importlib.util.spec_from_file_location("table_qa_example",
                                                  ROOT / "examples" / "table_qa.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args, rest = parser.parse_known_args(argv)
    name = "table_qa_bench_quick" if args.quick else "table_qa_bench"
    RESULTS.mkdir(parents=True, exist_ok=True)
    options = ["--report", str(RESULTS / f"{name}.md"), "--plot", str(RESULTS / f"{name}.png")]
    _example().main(options + (["--tiny"] if args.quick else []) + rest)


if __name__ == "__main__":
    main()
