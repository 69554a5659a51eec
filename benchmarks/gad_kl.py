#!/usr/bin/env python
"""Grammar-aligned sampling (ASAp) against plain masking (GCD): how far each sampler's
distribution is from the model's distribution conditioned on the grammar, over iterations.

    python benchmarks/gad_kl.py                  # 1000 iterations, 5 sampling seeds
    python benchmarks/gad_kl.py --quick          # harness check (100 iterations, 2 seeds)

Settings, all small enough that every output of the language can be enumerated, so the
exact conditional ``P(w | L)`` is known:

* ``tiny/open-mode`` and ``tiny/encoding``: the embedded tiny default model (no download)
  and a regular expression compiled by llguidance, on a line of Python: a file mode in
  ``open(path, "...")`` and an encoding name in ``open(path, encoding="...")``, the output
  ended by a newline token (the grammar accepts there; every tokenization of the strings is in
  the language, as the engines' masks allow them);
* ``markov/random``: a random second-order Markov model over 8 tokens (scores depend on the
  last two tokens only; written out below) and random regular languages over 7 tokens with
  outputs of at most 6 tokens, five (model, language) pairs, averaged.

For each, at checkpoints up to ``--iterations`` ASAp samples, ``KL(exact || q)`` where ``q`` is
the sampler's *current* distribution read exactly from its trie (``AlignedSampler.
probability``), mean and range over ``--seeds`` sampling seeds; GCD's divergence (constant:
it never learns) is ASAp's at iteration 0. Also recorded: the model calls (prefixes scored)
of a sampler that is only sampled, never probed, and the wall time per iteration. Writes
``gad_kl.{json,md,png}`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diagrammar.decoding.constraints.aligned import (
    AlignedSampler,
    compiled_grammar,
    kl_divergence,
    language_probabilities,
    normalised,
)
from diagrammar.decoding.constraints.automaton import TokenAutomaton

RESULTS = Path(__file__).parent / "results"


# -- a second-order Markov model and random regular languages (no tokenizer, exact) ----------
class MarkovSession:
    """The Session contract over a table of logits indexed by the last two tokens."""

    def __init__(self, table: np.ndarray, prompt: Sequence[int]) -> None:
        self.table = table
        self.cached = list(prompt[:-1])
        self.cache_length = len(self.cached)
        self._pending: list[int] = []

    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> np.ndarray:
        previous = [self.cached[-1] if self.cached else 0]
        previous += [root if parent < 0 else tokens[parent] for parent in parents]
        self._pending = [root, *tokens]
        return self.table[previous, self._pending]

    def keep(self, path: Sequence[int]) -> None:
        self.cached += [self._pending[0]] + [self._pending[node + 1] for node in path]
        self.cache_length = len(self.cached)

    def truncate(self, length: int) -> None:
        del self.cached[length:]
        self.cache_length = length


class MarkovModel:
    """Random second-order logits over ``vocab`` tokens; token 0 ends an output."""

    eos_token_ids = frozenset({0})

    def __init__(self, vocab: int, seed: int, sharpness: float = 2.0) -> None:
        self.vocab_size = vocab
        self.table = np.random.default_rng(seed).normal(size=(vocab, vocab, vocab)) * sharpness

    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        pass

    def session(self, prompt_ids: Sequence[int]) -> MarkovSession:
        return MarkovSession(self.table, prompt_ids)


# -- settings --------------------------------------------------------------------------------
@dataclass
class Problem:
    """One grammar, model and prompt whose language is enumerable."""

    grammar: Any
    model: Any
    prompt: list[int]
    max_new_tokens: int
    end_tokens: frozenset[int]


@dataclass
class Setting:
    name: str
    description: str
    problems: Callable[[], list[Problem]]


def _tiny_problems(prompt: str, pattern: str, max_new_tokens: int) -> Callable[[], list[Problem]]:
    def make() -> list[Problem]:
        from diagrammar.models.resolve import resolve_model

        lm = resolve_model("default:tiny")
        newline = lm.tokenizer.convert_tokens_to_ids("Ċ")        # byte-level BPE's "\n"
        grammar = compiled_grammar(f"regex:{pattern}", lm)
        return [Problem(grammar, lm, lm.encode(prompt), max_new_tokens, frozenset({newline}))]
    return make


def _markov_problems() -> list[Problem]:
    problems = []
    for model_seed, language_seed in [(3, 10), (4, 14), (5, 3), (4, 9), (3, 21)]:
        problems.append(Problem(TokenAutomaton.random(language_seed, vocab=8),
                                MarkovModel(8, model_seed), [1, 2], 6, frozenset({0})))
    return problems


SETTINGS = [
    Setting("tiny/open-mode",
            'tiny default model; `with open(path, "` + regex `(r|w|a|x)b?\\+?"\\)`, then "\\n"',
            _tiny_problems('import os\n\n\ndef open_file(path):\n    with open(path, "',
                           r'(r|w|a|x)b?\+?"\)', 8)),
    Setting("tiny/encoding",
            'tiny default model; `open(path, encoding="` + regex '
            '`(utf-8|ascii|latin-1|utf-16)"\\)`, then "\\n"',
            _tiny_problems('def read(path):\n    with open(path, encoding="',
                           r'(utf-8|ascii|latin-1|utf-16)"\)', 10)),
    Setting("markov/random",
            "random 2nd-order Markov model (vocab 8), random regular languages, <= 6 tokens; "
            "5 (model, language) pairs",
            _markov_problems),
]


# -- measuring -------------------------------------------------------------------------------
def checkpoints_up_to(iterations: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, ... up to ``iterations`` (included)."""
    points, scale = [0], 1
    while scale <= iterations:
        points += [value for value in (scale, 2 * scale, 5 * scale) if value <= iterations]
        scale *= 10
    return sorted(set(points + [iterations]))


def kl_curve(problem: Problem, exact: dict, checkpoints: list[int], seed: int) -> list[float]:
    sampler = AlignedSampler(problem.grammar, problem.model, problem.prompt,
                             problem.max_new_tokens, problem.end_tokens)
    rng = np.random.default_rng(seed)
    curve = []
    for iteration in range(checkpoints[-1] + 1):
        if iteration:
            sampler.sample(rng)
        if iteration in checkpoints:
            curve.append(kl_divergence(exact, sampler.probability))
    return curve


def sampling_cost(problem: Problem, checkpoints: list[int], seed: int) -> dict[str, Any]:
    """Model calls (prefixes scored) at each checkpoint and seconds per iteration, for a
    sampler that is only sampled."""
    sampler = AlignedSampler(problem.grammar, problem.model, problem.prompt,
                             problem.max_new_tokens, problem.end_tokens)
    rng = np.random.default_rng(seed)
    calls = []
    began = time.perf_counter()
    for iteration in range(checkpoints[-1] + 1):
        if iteration:
            sampler.sample(rng)
        if iteration in checkpoints:
            calls.append(sampler.scorer.calls)
    seconds = time.perf_counter() - began
    return {"model_calls": calls, "ms_per_iteration": 1e3 * seconds / max(1, checkpoints[-1]),
            "dead_ends": sampler.dead_ends}


def run_setting(setting: Setting, checkpoints: list[int], seeds: int,
                progress: Any) -> dict[str, Any]:
    problems = setting.problems()
    rows: list[list[float]] = []        # one KL curve per (problem, seed)
    gcd, sizes, masses, costs = [], [], [], []
    for index, problem in enumerate(problems):
        probabilities = language_probabilities(problem.grammar, problem.model, problem.prompt,
                                               problem.max_new_tokens, problem.end_tokens)
        exact = normalised(probabilities)
        sizes.append(len(exact))
        masses.append(math.fsum(probabilities.values()))
        first = AlignedSampler(problem.grammar, problem.model, problem.prompt,
                               problem.max_new_tokens, problem.end_tokens)
        gcd.append(kl_divergence(exact, first.gcd_probability))
        for seed in range(seeds):
            rows.append(kl_curve(problem, exact, checkpoints, seed=1000 * index + seed))
            progress.update(1)
        costs.append(sampling_cost(problem, checkpoints, seed=1000 * index))
    columns = list(zip(*rows))
    return {
        "name": setting.name, "description": setting.description,
        "problems": len(problems), "outputs": sizes, "language_probability": masses,
        "gcd_kl": gcd, "gcd_kl_mean": statistics.fmean(gcd),
        "asap_kl_median": [statistics.median(column) for column in columns],
        "asap_kl_mean": [statistics.fmean(column) for column in columns],
        "asap_kl_min": [min(column) for column in columns],
        "asap_kl_max": [max(column) for column in columns],
        "cost": costs,
    }


# -- reporting -------------------------------------------------------------------------------
def markdown(results: list[dict[str, Any]], checkpoints: list[int], seeds: int) -> str:
    shown = [c for c in checkpoints if c in (0, 10, 100, 1000) or c == checkpoints[-1]]
    lines = ["# Grammar-aligned sampling (ASAp) vs plain masking (GCD)", "",
             f"KL(exact conditional || sampler's current distribution), nats; mean over "
             f"{seeds} sampling seeds (and over the problems of a setting); GCD = ASAp at "
             "iteration 0. Model calls: prefixes scored by a sampler that is only sampled "
             "(each prefix is scored once, then kept in the trie).", "",
             "| setting | outputs | P(L) | GCD KL | " + " | ".join(
                 f"ASAp @{c}" for c in shown) + " | last / GCD | model calls @end | ms/iter |",
             "|---|---:|---:|---:|" + "---:|" * len(shown) + "---:|---:|---:|"]
    for result in results:
        at = [result["asap_kl_mean"][checkpoints.index(c)] for c in shown]
        calls = statistics.fmean(cost["model_calls"][-1] for cost in result["cost"])
        per = statistics.fmean(cost["ms_per_iteration"] for cost in result["cost"])
        mass = statistics.fmean(result["language_probability"])
        lines.append(f"| {result['name']} | {statistics.fmean(result['outputs']):.0f} | "
                     f"{mass:.2g} | {result['gcd_kl_mean']:.3f} | "
                     + " | ".join(f"{value:.4f}" for value in at)
                     + f" | {at[-1] / result['gcd_kl_mean']:.3f} | {calls:.0f} | {per:.2f} |")
    lines += ["", "Settings:", ""]
    lines += [f"- `{result['name']}`: {result['description']}" for result in results]
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], checkpoints: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    x = [max(c, 0.5) for c in checkpoints]               # iteration 0 drawn at 0.5 (log axis)
    for axis, result in zip(axes[0], results):
        axis.plot(x, result["asap_kl_mean"], marker="o", label="ASAp (mean)")
        axis.fill_between(x, result["asap_kl_min"], result["asap_kl_max"], alpha=0.2,
                          label="ASAp (range over runs)")
        axis.axhline(result["gcd_kl_mean"], color="tab:red", linestyle="--", label="GCD")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(result["name"])
        axis.set_xlabel("iterations (0 drawn at 0.5)")
        axis.set_ylabel("KL(exact || sampler), nats")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 iterations, 2 seeds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.seeds = 100, 2
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    checkpoints = checkpoints_up_to(args.iterations)
    results = []
    with tqdm(total=len(SETTINGS) * args.seeds, unit="run", desc="gad-kl",
              disable=args.no_progress) as progress:
        for setting in SETTINGS:
            if setting.name == "markov/random":
                progress.total += 4 * args.seeds            # five problems, not one
                progress.refresh()
            results.append(run_setting(setting, checkpoints, args.seeds, progress))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gad_kl_quick" if args.quick else "gad_kl"
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"checkpoints": checkpoints, "seeds": args.seeds, "results": results,
         "machine": platform.platform(), "python": platform.python_version(),
         "torch_threads": 1}, indent=1))
    text = markdown(results, checkpoints, args.seeds)
    (args.out / f"{stem}.md").write_text(text)
    plot(results, checkpoints, args.out / f"{stem}.png")
    print(text)


if __name__ == "__main__":
    main()
