"""What a benchmark measured: runs, their summary by category, and where time went.

Speedups are same-prompt time ratios against the reference (``hf/greedy``); summaries are
medians over prompts, so that a busy machine slowing every method alike cancels out.

Example:
    >>> runs = [Run("hf/greedy", "p", "code", 10, 8, 2.0, 8, exact=True),
    ...         Run("ours/x", "p", "code", 10, 8, 1.0, 4, exact=True)]
    >>> runs[1].tokens_per_second
    8.0
    >>> summarize(runs, ["hf/greedy", "ours/x"], ["code"])["code"]["ours/x"]["speedup"]
    2.0
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagrammar.bench.config import REFERENCE
from diagrammar.bench.exactness import Divergence
from diagrammar.bench.looping import LOOP_THRESHOLD
from diagrammar.bench.prompts import CATEGORIES, Prompt

__all__ = ["BenchResult", "Run", "summarize", "timing_breakdown"]


@dataclass
class Run:
    """One generation of one prompt by one method.

    Attributes:
        method: the method's name.
        prompt: the prompt's id.
        category: the prompt's category.
        prompt_tokens: tokens in the prompt.
        new_tokens: tokens generated.
        seconds: wall time of the whole call, prefill included.
        steps: target forward passes that produced tokens.
        exact: whether the tokens equal the reference's (``None`` until checked).
        divergence: where they first differ, when they do.
        stats: our decode statistics (``None`` for Hugging Face methods).
        repeated: share of the new tokens inside a repeated 8-gram (see
            :mod:`~diagrammar.bench.looping`); ``None`` when not measured.
        predicted: the cost model's prediction of the run from the method's other prompts
            (:func:`~diagrammar.bench.prediction.predict_runs`; its ``speedup`` is the
            predicted speedup); ``None`` when not predicted.
    """

    method: str
    prompt: str
    category: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    steps: int
    exact: bool | None = None
    divergence: Divergence | None = None
    stats: dict[str, Any] | None = None
    repeated: float | None = None
    predicted: dict[str, Any] | None = None

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of wall time (0 for a zero time)."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The run as JSON data, ``tokens_per_second`` included."""
        data = dataclasses.asdict(self)
        data["tokens_per_second"] = self.tokens_per_second
        return data


@dataclass
class BenchResult:
    """Everything a run measured; :mod:`diagrammar.bench.report` writes it out.

    Attributes:
        meta: date, machine, software, models and configuration.
        prompts: the prompts, in the order they were built.
        runs: every generation.
        methods: ``{"name", "family", "lossless"}`` per method, the reference first.
        summary: :func:`summarize` of the runs.
        cost_curve: :func:`~diagrammar.bench.cost_curve.measure_cost_curve`'s result.
        timing_breakdown: :func:`timing_breakdown` of the runs.
        prediction: :func:`~diagrammar.bench.prediction.predict_runs`'s report (how well the
            cost model predicted the runs); empty when not predicted.
    """

    meta: dict[str, Any]
    prompts: list[Prompt]
    runs: list[Run]
    methods: list[dict[str, Any]]
    summary: dict[str, dict[str, dict[str, float | None]]]
    cost_curve: dict[str, Any]
    timing_breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    prediction: dict[str, Any] = field(default_factory=dict)

    @property
    def bugs(self) -> list[Run]:
        """Runs of lossless methods that diverged from the reference, not at a near-tie."""
        lossless = {m["name"] for m in self.methods if m["lossless"]}
        return [r for r in self.runs if r.method in lossless and r.divergence is not None
                and not r.divergence.near_tie]

    @property
    def near_ties(self) -> list[Run]:
        """Runs that diverged from the reference at a near-tie."""
        return [r for r in self.runs if r.divergence is not None and r.divergence.near_tie]

    @property
    def ok(self) -> bool:
        """True when every lossless method matched the reference (up to near-ties)."""
        return not self.bugs


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: Sequence[Run], methods: Sequence[str],
              categories: Sequence[str] = CATEGORIES,
              references: Mapping[str, str] | None = None) -> dict[str, dict[str, dict]]:
    """The summary table of a run.

    Args:
        runs: every generation.
        methods: the method names to summarize.
        categories: the prompt categories.
        references: each method's reference (default ``hf/greedy``; sampling methods are
            measured against ``hf/sample``).

    Returns:
        Per category (and ``"overall"``) and method: ``runs``, median ``tokens_per_second``,
        median same-prompt ``speedup`` against its reference, ``mat`` (new tokens / steps
        over all its runs), ``exact`` (share of runs identical to ``hf/greedy``),
        ``looping`` (share of its continuations that loop, see
        :mod:`~diagrammar.bench.looping`) and ``predicted_speedup`` (median of the cost
        model's predicted speedups, see :mod:`~diagrammar.bench.prediction`).
        Figures without runs are ``None``.

    Example:
        >>> runs = [Run("hf/greedy", "p", "code", 10, 8, 2.0, 8, True),
        ...         Run("ours/x", "p", "code", 10, 8, 1.0, 4, True)]
        >>> s = summarize(runs, ["hf/greedy", "ours/x"], ["code"])
        >>> s["overall"]["ours/x"]["mat"], s["code"]["ours/x"]["exact"]
        (2.0, 1.0)
    """
    references = references or {}
    seconds_of: dict[str, dict[str, float]] = {}
    for r in runs:
        seconds_of.setdefault(r.method, {})[r.prompt] = r.seconds
    table: dict[str, dict[str, dict]] = {}
    for category in [*categories, "overall"]:
        table[category] = {}
        for method in methods:
            reference = seconds_of.get(references.get(method, REFERENCE), {})
            mine = [r for r in runs if r.method == method
                    and (category == "overall" or r.category == category)]
            ratios = [reference[r.prompt] / r.seconds for r in mine
                      if r.prompt in reference and r.seconds > 0]
            steps = sum(r.steps for r in mine)
            checked = [r.exact for r in mine if r.exact is not None]
            repeated = [r.repeated for r in mine if r.repeated is not None]
            predicted = [r.predicted["speedup"] for r in mine if r.predicted]
            table[category][method] = {
                "runs": len(mine),
                "tokens_per_second": _median([r.tokens_per_second for r in mine]),
                "speedup": _median(ratios),
                "mat": sum(r.new_tokens for r in mine) / steps if steps else None,
                "exact": sum(checked) / len(checked) if checked else None,
                "looping": (sum(f > LOOP_THRESHOLD for f in repeated) / len(repeated)
                            if repeated else None),
                "predicted_speedup": _median(predicted),
            }
    return table


def timing_breakdown(runs: Sequence[Run]) -> dict[str, dict[str, float]]:
    """Where our pipelines spend their wall time.

    Args:
        runs: every generation; only those with decode statistics (ours) count.

    Returns:
        Per method: the share of its wall time in ``prefill``, in each role of the step
        (``drafter``, ``verify``, ``accept``, ``commit``, ...), in the ``loop (outside
        boxes)`` and the ``call overhead (outside decode)``; and ``ms_per_step``, decode
        milliseconds per step.

    Example:
        >>> stats = {"prefill_seconds": 0.5, "decode_seconds": 1.0,
        ...          "role_seconds": {"drafter": 0.25, "verify": 0.5}}
        >>> timing_breakdown([Run("ours/x", "p", "code", 10, 8, 2.0, 4, stats=stats)])
        ... # doctest: +NORMALIZE_WHITESPACE
        {'ours/x': {'prefill': 0.25, 'drafter': 0.125, 'verify': 0.25,
                    'loop (outside boxes)': 0.125, 'call overhead (outside decode)': 0.25,
                    'ms_per_step': 250.0}}
    """
    out: dict[str, dict[str, float]] = {}
    for method in sorted({r.method for r in runs if r.stats}):
        mine = [r for r in runs if r.method == method and r.stats]
        total = sum(r.seconds for r in mine) or 1.0
        shares: dict[str, float] = {"prefill": sum(r.stats["prefill_seconds"] for r in mine)}
        for r in mine:
            for role, seconds in r.stats["role_seconds"].items():
                shares[role] = shares.get(role, 0.0) + seconds
        shares["loop (outside boxes)"] = sum(r.stats["decode_seconds"] for r in mine) - sum(
            s for k, s in shares.items() if k != "prefill")
        shares["call overhead (outside decode)"] = total - sum(
            r.stats["prefill_seconds"] + r.stats["decode_seconds"] for r in mine)
        steps = sum(r.steps for r in mine) or 1
        out[method] = {k: v / total for k, v in shares.items()}
        out[method]["ms_per_step"] = 1000 * sum(r.stats["decode_seconds"] for r in mine) / steps
    return out
