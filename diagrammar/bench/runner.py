"""The benchmark runner: every method on every prompt, interleaved, in one run.

Methods compared (all greedy):

* ``hf/greedy``: Hugging Face ``generate(do_sample=False)``, the reference for speed and tokens.
* ``hf/prompt-lookup``: ``generate(prompt_lookup_num_tokens=10)``.
* ``hf/assisted``: ``generate(assistant_model=...)`` (the tiny default model by default).
* ``ours/NAME`` for every pipeline registered in :data:`diagrammar.diagrams.PIPELINES`,
  compiled by :class:`~diagrammar.functors.execute.Execute` (``ours/autoregressive`` is our
  plain decode loop).

For each prompt, every method runs once, in an order rotated from prompt to prompt, and prompts
of the four categories alternate, so that a busy machine slows all methods alike. Time is wall
time around the whole call (prefill included) with torch's thread count fixed. Speedups are
same-prompt ratios against ``hf/greedy``; summaries are medians.

Exactness: each method's tokens are compared with ``hf/greedy``'s. At the first divergence the
target's logits after the reference prefix are recomputed with one plain forward pass, and the
margin between its top two logits is reported. A margin below ``tie_margin`` is a *near-tie*
(float32 batched and sequential passes differ in the last bits; reported loudly, not an
error); any other divergence of a lossless method is a *bug* (:attr:`BenchResult.ok` is false
and the command line exits non-zero).

Example:
    >>> config = BenchConfig.for_quick()
    >>> config.model, config.per_category, config.max_new_tokens
    ('default:tiny', 2, 32)

Running it (``run_benchmark(config).ok`` is true when every lossless method matched) trains
the tiny default model on first use, so it is not a doctest.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagrammar.bench.prompts import CATEGORIES, Prompt, build_prompts
from diagrammar.models.resolve import DEFAULT_PREFIX

__all__ = [
    "DEFAULT_TIE_MARGIN",
    "BenchConfig",
    "BenchResult",
    "Divergence",
    "LoadedModel",
    "Method",
    "Run",
    "cost_curve",
    "first_divergence",
    "load",
    "run_benchmark",
    "summarize",
]

#: Top-1 minus top-2 logit margin below which a divergence counts as a float near-tie.
DEFAULT_TIE_MARGIN = 1e-3
#: The reference method: speedups and exactness are measured against it.
REFERENCE = "hf/greedy"
#: Tree sizes (tokens scored in one pass, root included) of the quick cost curve.
QUICK_COST_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class BenchConfig:
    """What to run.

    Attributes:
        model: a local Hugging Face model folder, or ``default:tiny`` / ``default:small``.
        assistant: the assistant model of ``hf/assisted`` (same forms); ``None`` picks
            ``default:tiny`` when ``model`` is a default model, and skips ``hf/assisted``
            otherwise.
        threads: torch threads, fixed for the whole run.
        per_category: prompts per category.
        max_new_tokens: new tokens per generation.
        pipelines: our pipelines to run (names in ``PIPELINES``); ``None`` = all registered.
        tie_margin: see :data:`DEFAULT_TIE_MARGIN`.
        cost_sizes: tree sizes of the verification cost curve (tokens per pass, root
            included).
        cost_repeats: timed passes per size.
        cost_context: context length (tokens in the cache) of the cost curve.
        warmup: untimed generations per method before the timed ones.
        progress: show a tqdm progress bar.
        quick: recorded in the report (set by :meth:`for_quick`).
    """

    model: str = "default:small"
    assistant: str | None = None
    threads: int = 1
    per_category: int = 20
    max_new_tokens: int = 128
    pipelines: Sequence[str] | None = None
    tie_margin: float = DEFAULT_TIE_MARGIN
    cost_sizes: Sequence[int] = tuple(range(1, 129))
    cost_repeats: int = 7
    cost_context: int = 400
    warmup: int = 1
    progress: bool = True
    quick: bool = False

    @classmethod
    def for_quick(cls, **overrides: Any) -> BenchConfig:
        """The ``--quick`` settings: tiny model, 2 prompts per category, 32 new tokens, a
        coarse cost curve. The harness check run by the tests (under a minute on 2 cores)."""
        settings: dict[str, Any] = dict(model="default:tiny", per_category=2, max_new_tokens=32,
                                        cost_sizes=QUICK_COST_SIZES, cost_repeats=5,
                                        cost_context=200, quick=True)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)


# --------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """A model ready to benchmark: the wrapper, where it came from and its manifest."""

    spec: str
    lm: Any  # HFCausalLM
    manifest: dict[str, Any] | None

    @property
    def description(self) -> str:
        config = self.lm.config
        params = sum(p.numel() for p in self.lm.model.parameters())
        return (f"{self.spec} ({type(self.lm.model).__name__}, {params / 1e6:.1f} M parameters, "
                f"{getattr(config, 'n_layer', getattr(config, 'num_hidden_layers', '?'))} "
                f"layers, context {self.lm.max_positions})")


def load(spec: str) -> LoadedModel:
    """Loads ``default:SIZE`` (trained first if not cached) or a local model folder.

    Example (trains the tiny model on first use, so not a doctest)::

        load("default:tiny").lm.max_positions   # 1024
    """
    import json

    from diagrammar.models.resolve import resolve_model

    lm = resolve_model(spec)
    if spec.startswith(DEFAULT_PREFIX):
        from diagrammar.models.default import manifest

        return LoadedModel(spec, lm, manifest(spec[len(DEFAULT_PREFIX):]))
    meta_path = Path(spec).expanduser() / "manifest.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    return LoadedModel(spec, lm, meta)


def _default_assistant(model_spec: str, assistant: str | None) -> str | None:
    if assistant is not None:
        return assistant
    return "default:tiny" if model_spec.startswith(DEFAULT_PREFIX) else None


# --------------------------------------------------------------------------- methods


@dataclass
class Method:
    """A way to generate: ``run(prompt_ids, max_new_tokens) -> (new tokens, steps, stats)``.

    ``steps`` counts target forward passes that produced tokens (the prefill included for
    Hugging Face, which emits its first token from it), so ``new tokens / steps`` is the mean
    accepted tokens per step (MAT).
    """

    name: str
    lossless: bool
    run: Callable[[list[int], int], tuple[list[int], int, dict[str, Any] | None]]
    family: str = "ours"


def _hf_method(name: str, lm: Any, **options: Any) -> Method:
    import torch

    model = lm.model
    pad = min(lm.eos_token_ids) if lm.eos_token_ids else 0
    calls = [0]

    def count(_module: Any, _args: Any, _output: Any) -> None:
        calls[0] += 1

    def run(ids: list[int], max_new_tokens: int):
        input_ids = torch.tensor([ids], device=lm.device)
        calls[0] = 0
        hook = model.register_forward_hook(count)
        try:
            with torch.inference_mode():
                out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                     do_sample=False, max_new_tokens=max_new_tokens,
                                     pad_token_id=pad, **options)
        finally:
            hook.remove()
        return out[0, len(ids):].tolist(), calls[0], None

    return Method(name, True, run, family="hf")


def _our_method(name: str, lm: Any, diagram: Any) -> Method:
    from diagrammar.diagrams.boxes import Accept, GreedyAccept
    from diagrammar.functors.execute import Execute

    decoder = Execute(lm)(diagram)
    accepts = [box for box in diagram.boxes if isinstance(box, Accept)]
    lossless = bool(accepts) and all(
        getattr(box, "lossless", isinstance(box, GreedyAccept)) for box in accepts)
    roles = {box.name: _role(box) for box in diagram.boxes}

    def run(ids: list[int], max_new_tokens: int):
        generation = decoder.generate(ids, max_new_tokens)
        stats = generation.stats.as_dict()
        by_role: dict[str, float] = {}
        for box, seconds in stats["box_seconds"].items():
            role = roles.get(box, box)
            by_role[role] = by_role.get(role, 0.0) + seconds
        stats["role_seconds"] = by_role
        return generation.tokens, generation.stats.steps, stats

    return Method(f"ours/{name}", lossless, run)


def _role(box: Any) -> str:
    """The part of a step a box plays: draft, verify, accept, commit (else its name)."""
    from diagrammar.diagrams.boxes import Accept, Commit, Drafter, Verify

    for cls, role in ((Drafter, "draft"), (Verify, "verify"), (Accept, "accept"),
                      (Commit, "commit")):
        if isinstance(box, cls):
            return role
    return box.name


def build_methods(target: LoadedModel, assistant: LoadedModel | None,
                  pipelines: Sequence[str] | None = None) -> list[Method]:
    """The Hugging Face baselines and our pipelines, reference first."""
    from diagrammar.diagrams import PIPELINES

    methods = [_hf_method(REFERENCE, target.lm),
               _hf_method("hf/prompt-lookup", target.lm, prompt_lookup_num_tokens=10)]
    if assistant is not None:
        methods.append(_hf_method("hf/assisted", target.lm, assistant_model=assistant.lm.model))
    names = sorted(PIPELINES, key=lambda n: (n != "autoregressive", n)) if pipelines is None \
        else list(pipelines)
    for name in names:
        if name not in PIPELINES:
            raise ValueError(f"unknown pipeline {name!r}; registered: {', '.join(PIPELINES)}")
        methods.append(_our_method(name, target.lm, PIPELINES[name]()))
    return methods


# --------------------------------------------------------------------------- exactness


@dataclass
class Divergence:
    """Where a method's tokens first differ from the reference, and how close the call was.

    Attributes:
        position: index among the new tokens.
        expected: the reference token there (``None`` if the reference had ended).
        got: the method's token there (``None`` if it had ended).
        margin: the target's top-1 minus top-2 logit after the reference prefix.
        near_tie: ``margin`` is below the tie threshold.
    """

    position: int
    expected: int | None
    got: int | None
    margin: float
    near_tie: bool


def first_divergence(reference: Sequence[int], tokens: Sequence[int]) -> int | None:
    """Index of the first difference of two token lists, ``None`` if they are equal.

    Example:
        >>> first_divergence([1, 2, 3], [1, 2, 3]), first_divergence([1, 2, 3], [1, 5, 3])
        (None, 1)
        >>> first_divergence([1, 2], [1, 2, 3])
        2
    """
    for index, (a, b) in enumerate(zip(reference, tokens)):
        if a != b:
            return index
    return None if len(reference) == len(tokens) else min(len(reference), len(tokens))


def logit_margin(lm: Any, ids: Sequence[int]) -> float:
    """Top-1 minus top-2 logit of the model's next token after ``ids`` (one full forward)."""
    import torch

    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([list(ids)], device=lm.device)).logits[0, -1]
    top = torch.topk(logits.double(), 2).values
    return float(top[0] - top[1])


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One generation of one prompt by one method."""

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

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tokens_per_second"] = self.tokens_per_second
        return data


@dataclass
class BenchResult:
    """Everything a run measured; :mod:`diagrammar.bench.report` writes it out."""

    meta: dict[str, Any]
    prompts: list[Prompt]
    runs: list[Run]
    methods: list[dict[str, Any]]
    summary: dict[str, dict[str, dict[str, float | None]]]
    cost_curve: dict[str, Any]
    timing_breakdown: dict[str, dict[str, float]] = field(default_factory=dict)

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
              categories: Sequence[str] = CATEGORIES) -> dict[str, dict[str, dict]]:
    """Per category (and ``"overall"``) and method: median tokens/s, median same-prompt
    speedup against ``hf/greedy``, MAT (new tokens / steps over all its runs) and exact-match
    rate against ``hf/greedy``.

    Example:
        >>> runs = [Run("hf/greedy", "p", "code", 10, 8, 2.0, 8, True),
        ...         Run("ours/x", "p", "code", 10, 8, 1.0, 4, True)]
        >>> s = summarize(runs, ["hf/greedy", "ours/x"], ["code"])
        >>> s["code"]["ours/x"]["speedup"], s["overall"]["ours/x"]["mat"]
        (2.0, 2.0)
    """
    reference = {r.prompt: r.seconds for r in runs if r.method == REFERENCE}
    table: dict[str, dict[str, dict]] = {}
    for category in [*categories, "overall"]:
        table[category] = {}
        for method in methods:
            mine = [r for r in runs if r.method == method
                    and (category == "overall" or r.category == category)]
            ratios = [reference[r.prompt] / r.seconds for r in mine
                      if r.prompt in reference and r.seconds > 0]
            steps = sum(r.steps for r in mine)
            checked = [r.exact for r in mine if r.exact is not None]
            table[category][method] = {
                "runs": len(mine),
                "tokens_per_second": _median([r.tokens_per_second for r in mine]),
                "speedup": _median(ratios),
                "mat": sum(r.new_tokens for r in mine) / steps if steps else None,
                "exact": sum(checked) / len(checked) if checked else None,
            }
    return table


def _breakdown(runs: Sequence[Run]) -> dict[str, dict[str, float]]:
    """Share of our pipelines' wall time: prefill, each part of the step (draft, verify,
    accept, commit), the loop around the boxes, and the call around the decode."""
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


# --------------------------------------------------------------------------- cost curve


def cost_curve(lm: Any, context_ids: Sequence[int], sizes: Sequence[int], repeats: int = 5,
               seed: int = 0) -> dict[str, Any]:
    """Verification cost t(n)/t(1) of one tree pass of ``n`` tokens (root included, so
    ``n - 1`` draft tokens in a chain) over a cache of ``len(context_ids) - 1`` tokens.

    Sizes are timed in a shuffled order on every repeat (after one untimed pass each), the
    cache is rolled back after every pass, and the median of the repeats is kept.

    Example (needs a model ``lm`` and context ``ids``)::

        curve = cost_curve(lm, ids[:300], [1, 2, 4], repeats=3)
        curve["ratio"][0]   # 1.0
    """
    context = list(context_ids)
    sizes = sorted(set(int(n) for n in sizes))
    if lm.max_positions is not None:
        sizes = [n for n in sizes if len(context) + n <= lm.max_positions]
    if not sizes or sizes[0] != 1:
        raise ValueError("the cost curve needs size 1 and sizes that fit the model's context")
    session = lm.session(context)
    base = session.cache_length
    root = context[-1]
    pool = (context * (1 + max(sizes) // len(context)))[:max(sizes)]
    rng = random.Random(seed)
    times: dict[int, list[float]] = {n: [] for n in sizes}

    def one(n: int) -> float:
        draft = pool[:n - 1]
        began = time.perf_counter()
        session.verify(root, draft, list(range(-1, n - 2)))
        elapsed = time.perf_counter() - began
        session.truncate(base)
        return elapsed

    for n in sizes:
        one(n)
    for _ in range(repeats):
        order = list(sizes)
        rng.shuffle(order)
        for n in order:
            times[n].append(one(n))
    medians = [statistics.median(times[n]) for n in sizes]
    return {
        "sizes": sizes,
        "median_seconds": medians,
        "ratio": [m / medians[0] for m in medians],
        "context_tokens": base,
        "repeats": repeats,
        "n_counts": "tokens scored in one pass, the root included (n - 1 draft tokens)",
    }


# --------------------------------------------------------------------------- the run


def _machine() -> dict[str, Any]:
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


def _interleave(prompts: Sequence[Prompt]) -> list[Prompt]:
    """Prompts with the categories alternating: code, edit, retrieval, docstring, code..."""
    by_category = [[p for p in prompts if p.category == c] for c in CATEGORIES]
    order: list[Prompt] = []
    for i in range(max((len(b) for b in by_category), default=0)):
        order.extend(b[i] for b in by_category if i < len(b))
    return order


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> BenchResult:
    """Runs the whole benchmark and returns its measurements (writes nothing).

    Torch's thread count is set to ``config.threads`` for the run and restored after.
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
    target = load(config.model)
    assistant_spec = _default_assistant(config.model, config.assistant)
    assistant = load(assistant_spec) if assistant_spec is not None else None
    lm = target.lm
    if lm.tokenizer is None:
        raise ValueError(f"the model {config.model} has no tokenizer: the benchmark needs one")
    tokenizer = lm.tokenizer

    def count(text: str) -> int:
        return len(lm.encode(text))

    limit = (lm.max_positions or 4096) - config.max_new_tokens - 1
    prompts = build_prompts(config.per_category, count_tokens=count, max_prompt_tokens=limit)
    methods = build_methods(target, assistant, config.pipelines)
    encoded = {p.id: lm.encode(p.text) for p in prompts}
    order = _interleave(prompts)

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
                                       len(tokens), seconds, steps, stats=stats)
            bar.update()
        reference = tokens_of[REFERENCE]
        for method in methods:
            run = results[method.name]
            where = first_divergence(reference, tokens_of[method.name])
            run.exact = where is None
            if where is not None:
                got = tokens_of[method.name]
                margin = logit_margin(lm, ids + reference[:where])
                run.divergence = Divergence(
                    where, reference[where] if where < len(reference) else None,
                    got[where] if where < len(got) else None, margin,
                    margin < config.tie_margin)
                kind = "near-tie" if run.divergence.near_tie else "MISMATCH"
                bar.write(f"{kind}: {method.name} on {prompt.id} differs from {REFERENCE} at new "
                          f"token {where} (top-1 minus top-2 logit margin {margin:.3g})",
                          file=sys.stderr)
            runs.append(run)
        bar.set_postfix_str(prompt.category)
    bar.close()

    say("measuring the verification cost curve...")
    longest = max(prompts, key=lambda p: len(encoded[p.id]))
    context = (encoded[longest.id] * 4)[:config.cost_context]
    curve = cost_curve(lm, context, config.cost_sizes, config.cost_repeats)

    names = [m.name for m in methods]
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock0, 1),
        "machine": _machine(),
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
        "tokenizer": type(tokenizer).__name__,
    }
    return BenchResult(
        meta=meta,
        prompts=prompts,
        runs=runs,
        methods=[{"name": m.name, "family": m.family, "lossless": m.lossless} for m in methods],
        summary=summarize(runs, names),
        cost_curve=curve,
        timing_breakdown=_breakdown(runs),
    )


_MANIFEST_KEYS = ("size", "parameters", "recipe_hash", "heldout_loss", "heldout_accuracy",
                  "heldout_modules", "train_seconds", "date", "precision")


def _manifest_summary(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {k: manifest[k] for k in _MANIFEST_KEYS if k in manifest}
