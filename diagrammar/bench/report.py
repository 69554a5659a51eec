"""Benchmark reports: JSON (everything), a Markdown table and a PNG plot.

:func:`check_out_dir` checks the report folder before a run, so that a bad ``--out`` fails in
a second rather than after the whole benchmark.

Example:
    >>> try:
    ...     check_out_dir("/dev/null/reports")
    ... except ReportPathError as error:
    ...     print(error)
    cannot write reports to /dev/null/reports: /dev/null is not a folder

Writing the reports of a run (which trains the tiny model on first use, so not a doctest)::

    from diagrammar.bench import BenchConfig, run_benchmark
    result = run_benchmark(BenchConfig.for_quick())
    paths = write_reports(result, "out/bench")   # keys: json, markdown, png
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from diagrammar.bench.config import REFERENCE
from diagrammar.bench.prompts import CATEGORIES, CATEGORY_TITLES
from diagrammar.bench.results import BenchResult

__all__ = ["ReportPathError", "check_out_dir", "plot", "targets", "to_json", "to_markdown",
           "write_reports"]

#: The issue's performance targets, checked against the overall same-run speedups.
AR_TARGET = 1.2
#: The header of the method tables.
TABLE_HEADER = ("| method | tokens/s | speedup | predicted | MAT | looping | exact |\n"
                "|---|---:|---:|---:|---:|---:|---:|")


#: Categories where the drafting suite's targets for the best training-free pipeline apply.
CODE_CATEGORIES = ("code", "third-party")
#: The best training-free pipeline's targets there: x hf/greedy and x hf/prompt-lookup.
BEST_TARGETS = (2.0, 1.5)
#: The draft-model pipeline's target against hf/assisted.
ASSISTED_TARGET = 1.5


def _greedy_ours(result: BenchResult) -> list[dict[str, Any]]:
    return [m for m in result.methods if m["family"] == "ours" and not m.get("temperature")]


def targets(result: BenchResult) -> list[dict[str, Any]]:
    """The project's targets and whether this run meets them.

    * ``ours/autoregressive`` at least 1.2x ``hf/greedy`` (median same-prompt speedup);
    * ``ours/prompt-lookup`` at least as fast as ``hf/prompt-lookup``;
    * on ``code`` and ``third-party``, the best training-free greedy pipeline (one needing
      no draft model) at least 2.0x ``hf/greedy`` and 1.5x ``hf/prompt-lookup``;
    * no lossless greedy pipeline below 1.0x ``hf/greedy`` in any category;
    * Token Recycling's MAT above prompt lookup's;
    * the best draft-model pipeline at least 1.5x ``hf/assisted``;
    * every lossless method matches ``hf/greedy`` exactly (near-ties aside).

    Args:
        result: the measurements.

    Returns:
        One ``{"target", "value", "met"}`` per target (``value`` is ``None`` when a method
        did not run).
    """
    overall = result.summary["overall"]

    def speed(name: str) -> float | None:
        return overall.get(name, {}).get("speedup")

    out: list[dict[str, Any]] = []
    ar = speed("ours/autoregressive")
    out.append({"target": f"ours/autoregressive >= {AR_TARGET}x hf/greedy",
                "value": ar, "met": ar is not None and ar >= AR_TARGET})
    ours, theirs = speed("ours/prompt-lookup"), speed("hf/prompt-lookup")
    out.append({"target": "ours/prompt-lookup >= hf/prompt-lookup",
                "value": None if ours is None or theirs is None else ours / theirs,
                "met": ours is not None and theirs is not None and ours >= theirs})
    out += _suite_targets(result)
    exact = [r for r in result.runs if r.exact is not None]
    out.append({"target": "100% exact match of lossless methods (near-ties reported)",
                "value": sum(r.exact for r in exact) / len(exact) if exact else None,
                "met": result.ok})
    return out


def _suite_targets(result: BenchResult) -> list[dict[str, Any]]:
    """The drafting suite's targets (see :func:`targets`)."""
    summary, out = result.summary, []
    ours = _greedy_ours(result)
    free = [m["name"] for m in ours if "draft" not in m.get("resources", ())]
    for category in CODE_CATEGORIES:
        cells = summary.get(category, {})
        speeds = {name: cells[name]["speedup"] for name in free
                  if cells.get(name, {}).get("speedup") is not None}
        hf_lookup = cells.get("hf/prompt-lookup", {}).get("speedup")
        if not speeds or not hf_lookup:
            continue
        best = max(speeds, key=speeds.get)
        for limit, value, against in ((BEST_TARGETS[0], speeds[best], "hf/greedy"),
                                      (BEST_TARGETS[1], speeds[best] / hf_lookup,
                                       "hf/prompt-lookup")):
            out.append({"target": f"{category}: best training-free pipeline ({best}) >= "
                                  f"{limit}x {against}", "value": value, "met": value >= limit})
    slow = [(category, m["name"], cells[m["name"]]["speedup"])
            for category, cells in summary.items() if category != "overall"
            for m in ours if m["lossless"] and cells.get(m["name"], {}).get("speedup")
            is not None and cells[m["name"]]["speedup"] < 1.0]
    out.append({"target": "no lossless pipeline below 1.0x hf/greedy in any category"
                          + (": below are " + ", ".join(f"{n} on {c} ({v:.2f}x)"
                                                        for c, n, v in slow) if slow else ""),
                "value": min((v for *_, v in slow), default=None), "met": not slow})
    overall = summary.get("overall", {})
    recycling = max((overall[m["name"]]["mat"] or 0 for m in ours
                     if m["name"].startswith("ours/token-recycling")), default=None)
    lookup = overall.get("ours/prompt-lookup", {}).get("mat")
    if recycling is not None and lookup:
        out.append({"target": "Token Recycling's MAT above prompt lookup's (best TR pipeline)",
                    "value": recycling / lookup, "met": recycling > lookup})
    assisted = overall.get("hf/assisted", {}).get("speedup")
    drafts = {m["name"]: overall[m["name"]]["speedup"] for m in ours
              if "draft" in m.get("resources", ()) and overall[m["name"]]["speedup"]}
    if assisted and drafts:
        best = max(drafts, key=drafts.get)
        value = drafts[best] / assisted
        out.append({"target": f"best draft-model pipeline ({best}) >= {ASSISTED_TARGET}x "
                              "hf/assisted", "value": value, "met": value >= ASSISTED_TARGET})
    return out


def to_json(result: BenchResult) -> dict[str, Any]:
    """All measurements as JSON data.

    Args:
        result: the measurements.

    Returns:
        ``meta``, ``methods``, ``summary``, ``targets``, ``cost_curve``, ``timing_breakdown``,
        ``prediction`` (how well the cost model predicted our runs), ``near_ties`` and ``bugs``
        (``"PROMPT METHOD"`` strings), ``prompts`` and ``runs``.
    """
    return {
        "meta": result.meta,
        "methods": result.methods,
        "summary": result.summary,
        "targets": targets(result),
        "cost_curve": result.cost_curve,
        "timing_breakdown": result.timing_breakdown,
        "prediction": result.prediction,
        "near_ties": [r.prompt + " " + r.method for r in result.near_ties],
        "bugs": [r.prompt + " " + r.method for r in result.bugs],
        "prompts": [{"id": p.id, "category": p.category, "module": p.module, "name": p.name,
                     "chars": len(p.text)} for p in result.prompts],
        "runs": [r.as_dict() for r in result.runs],
    }


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{spec}}{suffix}"


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _method_rows(result: BenchResult, category: str, sampling: bool = False) -> list[str]:
    rows = []
    lossless = {m["name"]: m["lossless"] for m in result.methods}
    for method in (m["name"] for m in result.methods
                   if bool(m.get("temperature")) == sampling):
        cell = result.summary[category][method]
        exact = cell["exact"]
        mark = "" if exact is None or exact == 1 or not lossless[method] else " ⚠"
        rows.append(f"| {method} | {_fmt(cell['tokens_per_second'], '.1f')} | "
                    f"{_fmt(cell['speedup'], '.2f', 'x')} | "
                    f"{_fmt(cell.get('predicted_speedup'), '.2f', 'x')} | "
                    f"{_fmt(cell['mat'], '.2f')} | "
                    f"{_fmt(_percent(cell.get('looping')), '.0f', '%')} | "
                    f"{_fmt(None if exact is None else 100 * exact, '.0f', '%')}{mark} |")
    return rows


def to_markdown(result: BenchResult) -> str:
    """The report as Markdown.

    Args:
        result: the measurements.

    Returns:
        The setup, overall and per-category tables, targets, exactness, the cost curve and,
        when measured, where our pipelines spend their time.
    """
    meta = result.meta
    machine = meta["machine"]
    config = meta["config"]
    n_prompts = len(result.prompts)
    lines = [
        f"# Spec-Bench-style benchmark{' (quick)' if config.get('quick') else ''}",
        "",
        f"- date: {meta['date']} (run took {meta['seconds']:.0f} s)",
        f"- machine: {machine['platform']}, {machine['processor']}, "
        f"{machine['cpu_count']} CPUs; torch threads fixed at {meta['threads']}",
        f"- software: Python {machine['python']}, torch {machine['torch']}, "
        f"transformers {machine['transformers']}",
        f"- model: {meta['model']}",
    ]
    manifest = meta.get("model_manifest")
    if manifest:
        lines.append("- model manifest: " + ", ".join(f"{k}={v}" for k, v in manifest.items()
                                                       if k != "heldout_modules"))
    lines += [
        f"- assistant (hf/assisted): {meta['assistant'] or 'none given; hf/assisted skipped'}",
        f"- prompts: {n_prompts} ({config['per_category']} per category) from held-out modules "
        f"{', '.join((manifest or {}).get('heldout_modules', [])) or '(see prompts.py)'}"
        + (", and third-party packages " + ", ".join(
            f"{name} {version}" for name, version in meta["third_party_packages"].items())
           if meta.get("third_party_packages") else "")
        + f"; {config['max_new_tokens']} new tokens each, greedy"
        + (f" (sampling methods at temperature {config['temperature']:g})"
           if config.get("temperature") else ""),
        "",
        f"Speedup is the median over prompts of the same-prompt time ratio against "
        f"`{REFERENCE}` (interleaved in one run, wall time including prefill); tokens/s is the "
        "median over prompts; MAT is new tokens per target forward pass (bonus token "
        "counted); looping is the share of continuations with more than 30% of their tokens "
        "in a repeated 8-gram (copy-based drafters accept those easily); exact is the share "
        f"of generations identical to `{REFERENCE}`. Predicted is the cost model's speedup "
        "(the `PredictSpeed` functor: the verification curve t(n) measured up front, and "
        "each pipeline's draft nodes, accepted tokens and overheads per step observed on its "
        "other prompts of the category; median over prompts).",
        "",
        "## Overall",
        "",
        TABLE_HEADER,
        *_method_rows(result, "overall"),
        "",
        *_prediction_lines(result),
        "## By category",
        "",
    ]
    for category in CATEGORIES:
        if category not in result.summary:
            continue
        lines += [f"### {category}: {CATEGORY_TITLES[category]}", "", TABLE_HEADER,
                  *_method_rows(result, category), ""]
    lines += _sampling_lines(result)
    lines += ["## Targets", ""]
    for target in targets(result):
        value = target["value"]
        lines.append(f"- {'met' if target['met'] else '**not met**'}: {target['target']} "
                     f"(measured {_fmt(value, '.3f')})")
    lines += ["", "## Exactness", ""]
    if result.bugs:
        lines.append(f"**{len(result.bugs)} generation(s) of lossless methods diverged from "
                     f"`{REFERENCE}` with a clear logit margin: a bug.**")
    for run in result.bugs + result.near_ties:
        d = run.divergence
        lines.append(f"- {d.kind}: `{run.method}` on `{run.prompt}` at new token {d.position} "
                     f"(expected {d.expected}, got {d.got}; top-1 minus top-2 logit margin "
                     f"{d.margin:.3g}, tie threshold {meta['tie_margin']:g})")
    if not result.bugs and not result.near_ties:
        lines.append(f"Every generation of every method matched `{REFERENCE}` token for token.")
    curve = result.cost_curve
    lines += ["", "## Verification cost curve", "",
              f"t(n)/t(1): time of one forward pass scoring n tokens (root included, a chain of "
              f"n - 1 draft tokens) over {curve['context_tokens']} cached tokens, median of "
              f"{curve['repeats']} interleaved repeats.", "",
              "| n | " + " | ".join(str(n) for n in _pick(curve["sizes"])) + " |",
              "|---|" + "---:|" * len(_pick(curve["sizes"])),
              "| t(n)/t(1) | " + " | ".join(
                  f"{curve['ratio'][curve['sizes'].index(n)]:.2f}"
                  for n in _pick(curve["sizes"])) + " |", ""]
    if result.timing_breakdown:
        lines += ["## Where our pipelines spend their time", "",
                  "Share of wall time (all prompts), and decode milliseconds per step.", "",
                  "| method | ms/step | prefill | " + " | ".join(_parts(result)) + " |",
                  "|---|---:|---:|" + "---:|" * len(_parts(result))]
        for method, shares in result.timing_breakdown.items():
            cells = [f"{100 * shares.get(part, 0.0):.0f}%" for part in _parts(result)]
            lines.append(f"| {method} | {shares['ms_per_step']:.2f} | "
                         f"{100 * shares['prefill']:.0f}% | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _sampling_lines(result: BenchResult) -> list[str]:
    """The sampling methods' tables (none when the run sampled nothing)."""
    sampled = [m for m in result.methods if m.get("temperature")]
    if not sampled:
        return []
    lines = ["## Sampling", "",
             f"Sampling methods at temperature {sampled[0]['temperature']:g} (no top-k, no "
             f"top-p), speedup against `{sampled[0]['reference']}` (Hugging Face "
             "`generate(do_sample=True)`) on the same prompts. Their tokens differ from any "
             "other run's (other random draws); that they follow the target's distribution is "
             "proven by the chi-square and total-variation tests of the sampling rules "
             "(`tests/decoding/test_sampling.py`).", ""]
    for category in ["overall", *CATEGORIES]:
        if category in result.summary:
            lines += [f"### {category}", "", TABLE_HEADER,
                      *_method_rows(result, category, sampling=True), ""]
    return lines


def _prediction_lines(result: BenchResult) -> list[str]:
    """One line on how well the cost model predicted our runs (none when not predicted)."""
    prediction = result.prediction
    if not prediction or prediction.get("median_abs_rel_error") is None:
        return []
    return [f"Cost-model prediction: median absolute relative error of the predicted speedup "
            f"{100 * prediction['median_abs_rel_error']:.1f}% over {prediction['runs']} runs "
            f"of our pipelines ({prediction['held_out']}; the reference is the no-draft "
            f"pipeline t(1) plus `{REFERENCE}`'s time per token beyond it on those prompts).",
            ""]


def _parts(result: BenchResult) -> list[str]:
    parts: list[str] = []
    for shares in result.timing_breakdown.values():
        for key in shares:
            if key not in ("prefill", "ms_per_step") and key not in parts:
                parts.append(key)
    return parts


def _pick(sizes: list[int]) -> list[int]:
    """The powers of two (and the largest size) of a cost curve, for the table."""
    wanted = [n for n in sizes if n & (n - 1) == 0]
    if sizes and sizes[-1] not in wanted:
        wanted.append(sizes[-1])
    return wanted


def plot(result: BenchResult, path: str | Path) -> Path:
    """A PNG: speedup against ``hf/greedy`` by category and method, and the cost curve.

    Args:
        result: the measurements.
        path: the PNG file to write (its folder is created if missing).

    Returns:
        ``path`` as a path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    groups = [c for c in [*CATEGORIES, "overall"] if c in result.summary]
    methods = [m["name"] for m in result.methods]
    fig, (bars, curve_ax) = plt.subplots(1, 2, figsize=(14, 5),
                                         gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        values = [result.summary[g][method]["speedup"] or 0.0 for g in groups]
        xs = [g + (i - (len(methods) - 1) / 2) * width for g in range(len(groups))]
        bars.bar(xs, values, width, label=method)
    bars.axhline(1.0, color="black", linewidth=0.8)
    bars.set_xticks(range(len(groups)), groups)
    bars.set_ylabel(f"speedup vs {REFERENCE} (median same-prompt ratio)")
    bars.set_title(f"{result.meta['model_spec']}: speedup by category")
    bars.legend(fontsize=8)
    curve = result.cost_curve
    curve_ax.plot(curve["sizes"], curve["ratio"], marker=".")
    curve_ax.set_xlabel("tokens per verification pass n (root included)")
    curve_ax.set_ylabel("t(n) / t(1)")
    curve_ax.set_title(f"verification cost, {curve['context_tokens']} cached tokens")
    curve_ax.grid(True, alpha=0.3)
    fig.suptitle(f"{result.meta['date']}, {result.meta['machine']['cpu_count']} CPUs, "
                 f"{result.meta['threads']} torch threads", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class ReportPathError(ValueError):
    """The report folder cannot be created or written."""


def check_out_dir(out_dir: str | Path) -> Path:
    """Checks that reports can be written into ``out_dir``, creating nothing.

    The folder must be writable if it exists; else its nearest existing parent must be a
    writable folder (where it will be created).

    Args:
        out_dir: the report folder.

    Returns:
        ``out_dir`` as a path.

    Raises:
        ReportPathError: one line saying which path is in the way and why.
    """
    out = Path(out_dir).expanduser()
    existing = out
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent

    def fail(reason: str) -> ReportPathError:
        return ReportPathError(f"cannot write reports to {out}: {reason}")

    if not existing.is_dir():
        raise fail(f"{existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise fail(f"{existing} is not writable ({error.strerror or error})") from None
    return out


def write_reports(result: BenchResult, out_dir: str | Path,
                  stem: str | None = None) -> dict[str, Path]:
    """Writes ``STEM.json``, ``STEM.md`` and ``STEM.png`` into ``out_dir``.

    Args:
        result: the measurements.
        out_dir: the report folder (created if missing).
        stem: the file names' stem; defaults to ``spec_bench`` (``spec_bench_quick`` for a
            quick run), so a quick run never overwrites the full results.

    Returns:
        The paths written, by kind: ``json``, ``markdown``, ``png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if stem is None:
        stem = "spec_bench_quick" if result.meta["config"].get("quick") else "spec_bench"
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md",
             "png": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(to_json(result), indent=1, default=str) + "\n")
    paths["markdown"].write_text(to_markdown(result))
    plot(result, paths["png"])
    return paths
