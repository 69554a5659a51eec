"""Spec-Bench-style benchmark of our pipelines against Hugging Face ``generate``.

* :mod:`~diagrammar.bench.config`: what to run (:class:`BenchConfig`), model spec defaults and
  loading.
* :mod:`~diagrammar.bench.prompts`: prompts of four categories cut from the held-out modules.
* :mod:`~diagrammar.bench.methods`: the Hugging Face baselines and our pipelines.
* :mod:`~diagrammar.bench.exactness`: first divergences, logit margins and near-ties.
* :mod:`~diagrammar.bench.cost_curve`: the verification cost curve t(n)/t(1).
* :mod:`~diagrammar.bench.results`: runs, the summary by category, the timing breakdown.
* :mod:`~diagrammar.bench.runner`: the run itself: every method on every prompt, interleaved.
* :mod:`~diagrammar.bench.report`: JSON, Markdown and PNG reports.
* :mod:`~diagrammar.bench.command`: the command line (``diagrammar bench``,
  ``benchmarks/spec_bench.py``).

Example (runs a benchmark, so not a doctest)::

    from diagrammar.bench import BenchConfig, run_benchmark, write_reports
    result = run_benchmark(BenchConfig.for_quick(progress=False))
    write_reports(result, "/tmp/bench")["markdown"].name   # 'spec_bench_quick.md'
"""

from __future__ import annotations

from diagrammar.bench.config import BenchConfig
from diagrammar.bench.prompts import CATEGORIES, Prompt, build_prompts
from diagrammar.bench.report import to_markdown, write_reports
from diagrammar.bench.results import BenchResult
from diagrammar.bench.runner import run_benchmark

__all__ = ["CATEGORIES", "BenchConfig", "BenchResult", "Prompt", "build_prompts",
           "run_benchmark", "to_markdown", "write_reports"]
