#!/usr/bin/env python
"""Spec-Bench-style benchmark: our pipelines against Hugging Face ``generate``.

    python benchmarks/spec_bench.py                 # full run: default small model, 20 x 4 prompts
    python benchmarks/spec_bench.py --quick         # harness check on the tiny model (~1 min)
    python benchmarks/spec_bench.py --model PATH --assistant PATH --threads 1 --out DIR

Same as ``diagrammar bench``. See benchmarks/README.md for what is measured.
"""

from diagrammar.bench.command import command

if __name__ == "__main__":
    command()
