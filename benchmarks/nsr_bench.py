#!/usr/bin/env python
"""NSR against a Transformer on SCAN's length and add-jump splits: ``examples/scan_nsr.py``'s
comparison, written to ``benchmarks/results/nsr_bench.md`` (table and learned programs) and
``.png`` (learning curves).

    python benchmarks/nsr_bench.py            # NSR seeds 0-2, Transformer 9000 batches
    python benchmarks/nsr_bench.py --quick    # harness check: seconds

Every number of the README's NSR table comes from one run of this script (torch on one
thread; each experiment's training time is in the table).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _example():
    spec = importlib.util.spec_from_file_location("scan_nsr_example",
                                                  ROOT / "examples" / "scan_nsr.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=9000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: a second job on the other core cannot stall it)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    name = "nsr_bench_quick" if args.quick else "nsr_bench"
    RESULTS.mkdir(parents=True, exist_ok=True)
    options = ["--steps", str(args.steps), "--threads", str(args.threads),
               "--report", str(RESULTS / f"{name}.md"), "--plot", str(RESULTS / f"{name}.png")]
    _example().main(options + (["--tiny", "--seeds", "0"] if args.quick else []))


if __name__ == "__main__":
    main()
