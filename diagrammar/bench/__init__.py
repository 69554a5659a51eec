"""Spec-Bench-style benchmark of our pipelines against Hugging Face ``generate``.

* :mod:`~diagrammar.bench.prompts`: prompts of four categories cut from the held-out modules.
* :mod:`~diagrammar.bench.runner`: every method on every prompt, interleaved, exactness and
  logit margins at divergences, the verification cost curve.
* :mod:`~diagrammar.bench.report`: JSON, Markdown and PNG reports.
* :mod:`~diagrammar.bench.command`: the command line (``diagrammar bench``,
  ``benchmarks/spec_bench.py``).

Example (runs a benchmark, so not a doctest)::

    from diagrammar.bench import BenchConfig, run_benchmark, write_reports
    result = run_benchmark(BenchConfig.for_quick(progress=False))
    write_reports(result, "/tmp/bench")["markdown"].name   # 'spec_bench_quick.md'
"""

from __future__ import annotations

from diagrammar.bench.prompts import CATEGORIES, Prompt, build_prompts
from diagrammar.bench.report import to_markdown, write_reports
from diagrammar.bench.runner import BenchConfig, BenchResult, run_benchmark

__all__ = ["CATEGORIES", "BenchConfig", "BenchResult", "Prompt", "build_prompts",
           "run_benchmark", "to_markdown", "write_reports"]
