"""The cost model's prediction of every run of our pipelines, next to what was measured.

For a run of pipeline ``m`` on prompt ``p``, the :class:`~diagrammar.functors.predict.
PredictSpeed` functor predicts ``m``'s speed from the cost curve measured up front and from
what ``m`` did on its *other* prompts of ``p``'s category (all its other prompts when ``p`` is
the category's only one): its mean draft nodes and accepted tokens per step, its boxes'
seconds per step, and its time outside the boxes (loop, prefill and call overhead amortised
per step). Nothing of the run on ``p`` is used (leave-one-out).

The predicted speedup is against the reference (``hf/greedy``) modelled as the no-draft
pipeline: ``t(1)`` plus the reference's time per token beyond ``t(1)`` on the same other
prompts. The measured speedup is the benchmark's: the same-prompt time ratio.

Example:
    >>> from diagrammar.decoding.cost import CostModel
    >>> from diagrammar.diagrams import PromptLookup, speculative
    >>> stats = lambda s: {"steps": 4, "new_tokens": 8, "prefill_seconds": 0.0,
    ...                    "decode_seconds": s, "box_seconds": {"Verify": s},
    ...                    "mean_draft_nodes": 3.0}
    >>> runs = [Run("hf/greedy", p, "code", 10, 8, 0.8, 8) for p in "ab"]
    >>> runs += [Run("ours/x", p, "code", 10, 8, 0.4, 4, stats=stats(0.4)) for p in "ab"]
    >>> report = predict_runs(runs, {"ours/x": speculative(PromptLookup())},
    ...                       CostModel([1, 4], [0.1, 0.1]))
    >>> runs[2].predicted["speedup"], runs[2].predicted["measured_speedup"]
    (2.0, 2.0)
    >>> report["median_abs_rel_error"], report["runs"]
    (0.0, 2)
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from diagrammar.bench.config import REFERENCE
from diagrammar.bench.results import Run
from diagrammar.decoding.cost import CostModel
from diagrammar.functors.predict import PredictSpeed, StepProfile

__all__ = ["predict_runs"]


def _held_out(mine: Sequence[Run], run: Run) -> list[Run]:
    """The method's runs on other prompts of the run's category, else on any other prompt."""
    others = [r for r in mine if r.prompt != run.prompt and r.stats and r.stats["steps"]]
    same = [r for r in others if r.category == run.category]
    return same or others


def predict_runs(runs: Sequence[Run], diagrams: Mapping[str, Any], cost: CostModel,
                 reference: str = REFERENCE) -> dict[str, Any]:
    """Sets ``run.predicted`` for every run of a method in ``diagrams`` that can be predicted.

    Args:
        runs: every generation of the benchmark.
        diagrams: our methods' step diagrams, by method name.
        cost: the target's verification cost model on this machine.
        reference: the method speedups are measured against.

    Returns:
        ``runs`` (how many were predicted), ``median_abs_rel_error`` (median over them of
        ``|predicted - measured| / measured`` speedup; ``None`` when none), ``held_out`` (how
        the observations were chosen, in words) and the cost curve used (``sizes``,
        ``median_seconds``).

    A run gets ``predicted``: the :class:`~diagrammar.functors.predict.SpeedPrediction`'s
    fields, ``speedup`` (predicted), ``measured_speedup`` and ``observed_prompts``.
    """
    by_prompt = {r.prompt: r for r in runs if r.method == reference}
    errors: list[float] = []
    for method, diagram in diagrams.items():
        mine = [r for r in runs if r.method == method]
        for run in mine:
            others = [r for r in _held_out(mine, run) if r.prompt in by_prompt]
            measured_reference = by_prompt.get(run.prompt)
            if not others or measured_reference is None or run.seconds <= 0:
                continue
            profile = StepProfile.from_stats(diagram, [r.stats for r in others],
                                             wall_seconds=[r.seconds for r in others])
            functor = PredictSpeed(cost, profile)
            references = [by_prompt[r.prompt] for r in others]
            per_token = sum(r.seconds for r in references) / max(
                1, sum(r.new_tokens for r in references))
            baseline = functor.no_draft(overhead=max(0.0, per_token - cost.time(1)))
            prediction = functor(diagram)
            predicted = prediction.speedup_over(baseline)
            measured = measured_reference.seconds / run.seconds
            run.predicted = {**prediction.as_dict(), "speedup": predicted,
                             "measured_speedup": measured, "observed_prompts": len(others)}
            errors.append(abs(predicted - measured) / measured)
    return {
        "runs": len(errors),
        "median_abs_rel_error": statistics.median(errors) if errors else None,
        "held_out": "each run predicted from its pipeline's runs on the other prompts of its "
                    "category (leave-one-out)",
        "sizes": list(cost.sizes),
        "median_seconds": list(cost.seconds),
    }
