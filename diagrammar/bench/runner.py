"""The benchmark run: every method on every prompt, interleaved, in one run.

For each prompt, every method (:mod:`~diagrammar.bench.methods`) runs once, in an order rotated
from prompt to prompt, and prompts of the four categories alternate, so that a busy machine
slows all methods alike. Time is wall time around the whole call (prefill included) with
torch's thread count fixed. Each method's tokens are then checked against the reference's
(:mod:`~diagrammar.bench.exactness`), the verification cost curve is measured
(:mod:`~diagrammar.bench.cost_curve`), the cost model predicts every run of our pipelines
from their other prompts (:mod:`~diagrammar.bench.prediction`), and everything is gathered in a
:class:`~diagrammar.bench.results.BenchResult` with the machine's description.

Example:
    >>> from diagrammar.bench.prompts import Prompt
    >>> prompts = [Prompt(c, "m", f"f{i}", "") for c in ("code", "edit") for i in range(2)]
    >>> [p.id for p in interleave(prompts)]
    ['code/m.f0', 'edit/m.f0', 'code/m.f1', 'edit/m.f1']

Running it (``run_benchmark(BenchConfig.for_quick()).ok`` is true when every lossless method
matched) trains the tiny default model on first use, so it is not a doctest.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from diagrammar.bench.config import REFERENCE, BenchConfig, default_assistant, load_bench_model
from diagrammar.bench.cost_curve import measure_cost_curve
from diagrammar.bench.exactness import compare, logit_margin
from diagrammar.bench.looping import repeated_ngram_fraction
from diagrammar.bench.methods import build_methods
from diagrammar.bench.prediction import predict_runs
from diagrammar.bench.prompts import CATEGORIES, Prompt, build_prompts
from diagrammar.bench.results import BenchResult, Run, summarize, timing_breakdown
from diagrammar.bench.third_party import installed_versions
from diagrammar.decoding.cost import CostModel

#: Pass sizes of the quick cost curve that size-aware pipelines are given.
SIZING_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)

__all__ = ["interleave", "machine_info", "run_benchmark"]


def machine_info() -> dict[str, Any]:
    """The machine and software a run measured on, for the report.

    Returns:
        ``platform``, ``processor``, ``cpu_count``, and the ``python``, ``torch`` and
        ``transformers`` versions.

    Example:
        >>> sorted(machine_info())
        ['cpu_count', 'platform', 'processor', 'python', 'torch', 'transformers']
    """
    import os
    import platform

    import torch
    import transformers

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def interleave(prompts: Sequence[Prompt]) -> list[Prompt]:
    """The prompts with their categories alternating: code, edit, retrieval, docstring, code...

    Args:
        prompts: prompts grouped by category, in any category order.

    Returns:
        The same prompts, the ``i``-th of every category (in :data:`CATEGORIES` order) before
        the ``i + 1``-th of any.
    """
    by_category = [[p for p in prompts if p.category == c] for c in CATEGORIES]
    order: list[Prompt] = []
    for i in range(max((len(b) for b in by_category), default=0)):
        order.extend(b[i] for b in by_category if i < len(b))
    return order


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> BenchResult:
    """Runs the whole benchmark and returns its measurements (writes nothing).

    Torch's thread count is set to ``config.threads`` for the run and restored after.

    Args:
        config: what to run.
        log: where progress messages go (standard error by default).

    Returns:
        The measurements; ``result.ok`` is false when a lossless method diverged from the
        reference at a clear logit margin.

    Raises:
        ValueError: an unknown pipeline or default model size, or a model without tokenizer.
        diagrammar.models.errors.ModelError: a model folder that cannot be loaded.
    """
    import datetime as dt

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    say = log or (lambda message: print(message, file=sys.stderr))
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, say, dt.datetime.now(dt.timezone.utc), time.perf_counter())
    finally:
        torch.set_num_threads(threads_before)


def _run(config: BenchConfig, say: Callable[[str], None], started: Any,
         clock0: float) -> BenchResult:
    from tqdm import tqdm

    say(f"loading {config.model}...")
    target = load_bench_model(config.model)
    assistant_spec = default_assistant(config.model, config.assistant)
    assistant = load_bench_model(assistant_spec) if assistant_spec is not None else None
    lm = target.lm
    if lm.tokenizer is None:
        raise ValueError(f"the model {config.model} has no tokenizer: the benchmark needs one")

    def count(text: str) -> int:
        return len(lm.encode(text))

    limit = (lm.max_positions or 4096) - config.max_new_tokens - 1
    prompts = build_prompts(config.per_category, count_tokens=count, max_prompt_tokens=limit)
    encoded = {p.id: lm.encode(p.text) for p in prompts}
    # The cost model our size-aware pipelines read ("cost"): a quick curve measured up front.
    first = max(prompts, key=lambda p: len(encoded[p.id]))
    sizing = measure_cost_curve(lm, encoded[first.id], SIZING_SIZES, repeats=3)
    resources: dict[str, Any] = {"cost": sizing}
    if config.datastore is not None:   # retrieval pipelines (REST, RASD) read this corpus
        from diagrammar.functors.datastores import load_datastore

        say(f"loading the datastore {config.datastore!r}...")
        resources["datastore"] = load_datastore(config.datastore, lm)
    methods = build_methods(target, assistant, config.pipelines, resources=resources,
                            temperature=config.temperature)
    order = interleave(prompts)

    for _ in range(config.warmup):
        warm = encoded[order[0].id]
        for method in methods:
            method.run(warm, min(16, config.max_new_tokens))

    runs: list[Run] = []
    bar = tqdm(total=len(order) * len(methods), desc="spec-bench", unit="gen",
               disable=not config.progress, file=sys.stderr)
    for index, prompt in enumerate(order):
        ids = encoded[prompt.id]
        shift = index % len(methods)
        results: dict[str, Run] = {}
        tokens_of: dict[str, list[int]] = {}
        for method in methods[shift:] + methods[:shift]:
            began = time.perf_counter()
            tokens, steps, stats = method.run(ids, config.max_new_tokens)
            seconds = time.perf_counter() - began
            tokens_of[method.name] = tokens
            results[method.name] = Run(method.name, prompt.id, prompt.category, len(ids),
                                       len(tokens), seconds, steps, stats=stats,
                                       repeated=repeated_ngram_fraction(tokens))
            bar.update()
        reference = tokens_of[REFERENCE]

        def margin_after(prefix: list[int], ids: list[int] = ids) -> float:
            return logit_margin(lm, ids + prefix)

        for method in methods:
            run = results[method.name]
            if method.sampling:   # correct in distribution (the sampling rules' tests)
                runs.append(run)
                continue
            run.divergence = compare(reference, tokens_of[method.name], margin_after,
                                     config.tie_margin)
            run.exact = run.divergence is None
            if run.divergence is not None:
                d = run.divergence
                bar.write(f"{d.kind}: {method.name} on {prompt.id} differs from {REFERENCE} at "
                          f"new token {d.position} (top-1 minus top-2 logit margin "
                          f"{d.margin:.3g})", file=sys.stderr)
            runs.append(run)
        bar.set_postfix_str(prompt.category)
    bar.close()

    # The cost model as a functor from pipelines to predicted speed, against what was measured.
    diagrams = {m.name: m.diagram for m in methods
                if m.diagram is not None and not m.sampling}
    prediction = predict_runs(runs, diagrams, CostModel.from_curve(sizing))
    prediction["context_tokens"] = sizing["context_tokens"]

    say("measuring the verification cost curve...")
    longest = max(prompts, key=lambda p: len(encoded[p.id]))
    context = (encoded[longest.id] * 4)[:config.cost_context]
    curve = measure_cost_curve(lm, context, config.cost_sizes, config.cost_repeats)

    meta = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock0, 1),
        "machine": machine_info(),
        "threads": config.threads,
        "model": target.description,
        "model_spec": target.spec,
        "model_manifest": _manifest_summary(target.manifest),
        "assistant": assistant.description if assistant is not None else None,
        "assistant_manifest": _manifest_summary(assistant.manifest if assistant else None),
        "config": {k: (list(v) if isinstance(v, (tuple, list)) else v)
                   for k, v in dataclasses.asdict(config).items()},
        "reference": REFERENCE,
        "tie_margin": config.tie_margin,
        "tokenizer": type(lm.tokenizer).__name__,
        "third_party_packages": installed_versions(
            p.module for p in prompts if p.category == "third-party"),
    }
    return BenchResult(
        meta=meta,
        prompts=prompts,
        runs=runs,
        methods=[m.describe() for m in methods],
        summary=summarize(runs, [m.name for m in methods],
                          references={m.name: m.reference for m in methods}),
        cost_curve=curve,
        timing_breakdown=timing_breakdown(runs),
        prediction=prediction,
    )


_MANIFEST_KEYS = ("size", "parameters", "recipe_hash", "heldout_loss", "heldout_accuracy",
                  "heldout_modules", "train_seconds", "date", "precision")


def _manifest_summary(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {k: manifest[k] for k in _MANIFEST_KEYS if k in manifest}
