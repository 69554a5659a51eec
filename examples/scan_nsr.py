"""NSR (Li et al., "Neural-Symbolic Recursive Machine for Systematic Generalization") on
SCAN, reproduced at small scale and compared in the same run with a Transformer
sequence-to-sequence model, both trained here from nothing:

- **NSR** (:mod:`diagrammar.functors.nsr`): a grounded symbol system — one symbol per word,
  an arity-constrained transition parser with a small scoring network, one program per
  symbol in a list language — learned from (command, actions) pairs alone by deduction and
  abduction with a curriculum from short commands to long ones;
- **Transformer**: an encoder–decoder (:mod:`diagrammar.models.seq2seq`) trained on the
  same pairs.

On SCAN's **length** split (train on outputs of at most 22 actions, test on 24 to 48) and
**add-jump** split (``jump`` seen only alone in training, tested in every construction),
both generated exactly by :mod:`diagrammar.symbolic.scan`. Both are also measured on a
held-out sample of the *training* distribution (500 pairs neither model trains on), which
shows the Transformer does learn the task it is given. Seeds are fixed; the learning curves
(test accuracy on a fixed sample of 300 test commands against training time) are plotted.

Usage::

    python examples/scan_nsr.py                          # both splits, NSR seeds 0-2
    python examples/scan_nsr.py --splits length --seeds 0 --steps 1500
    python examples/scan_nsr.py --tiny                   # seconds: the pipeline only
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diagrammar.diagrams.grounded import tree_diagram
from diagrammar.functors.nsr import GroundedSymbolSystem, NSRConfig, PassRecord
from diagrammar.models.seq2seq import Seq2Seq, Seq2SeqConfig, train_seq2seq
from diagrammar.symbolic.scan import split

HELD_OUT = 500
CURVE_SAMPLE = 300


@dataclass
class Result:
    """One model trained on one split: accuracies, training time and learning curve
    ``(seconds, accuracy on the curve sample)``."""

    split: str
    method: str
    seed: int
    test_accuracy: float
    held_out_accuracy: float
    train_seconds: float
    test_size: int
    curve: list[tuple[float, float]] = field(default_factory=list)
    programs: dict[str, str] = field(default_factory=dict)


def _accuracy(outputs, pairs) -> float:
    return sum(out == tuple(actions) for out, (_, actions) in zip(outputs, pairs)) / len(pairs)


def _data(name: str, seed: int, tiny: bool):
    train, test = split(name)
    rng = random.Random(seed)
    held = set(rng.sample(range(len(train)), HELD_OUT))
    held_out = [train[i] for i in sorted(held)]
    train = [pair for i, pair in enumerate(train) if i not in held]
    curve = random.Random(1).sample(test, CURVE_SAMPLE)
    if tiny:
        train = [pair for pair in train if len(pair[0].split()) <= 3]
        test, held_out, curve = test[:40], held_out[:40], curve[:20]
    return train, test, held_out, curve


def run_nsr(name: str, seed: int, *, tiny: bool = False, time_limit: float = 600.0,
            progress: bool = True) -> Result:
    """Train NSR on a split's training pairs and measure it."""
    train, test, held_out, curve_pairs = _data(name, 0, tiny)
    vocabulary = sorted({w for s, _ in train + test for w in s.split()})
    config = NSRConfig(seed=seed, time_limit=time_limit,
                       stage_size=60 if tiny else NSRConfig.stage_size)
    model = GroundedSymbolSystem(vocabulary, config)
    curve: list[tuple[float, float]] = []
    measuring = [0.0]

    def on_pass(record: PassRecord) -> None:
        started = time.perf_counter()
        curve.append((record.seconds - measuring[0], model.accuracy(curve_pairs)))
        measuring[0] += time.perf_counter() - started

    started = time.perf_counter()
    model.fit(train, progress=progress, on_pass=on_pass)
    seconds = time.perf_counter() - started - measuring[0]
    return Result(name, "NSR", seed, model.accuracy(test), model.accuracy(held_out), seconds,
                  len(test), curve, {s: str(p) for s, p in model.programs.items() if p})


def run_transformer(name: str, seed: int, *, steps: int = 9000, tiny: bool = False,
                    progress: bool = True) -> Result:
    """Train the Transformer baseline on a split's training pairs and measure it."""
    train, test, held_out, curve_pairs = _data(name, 0, tiny)
    pairs = [(s, " ".join(a)) for s, a in train]
    config = Seq2SeqConfig(seed=seed, steps=20 if tiny else steps,
                           dim=16 if tiny else Seq2SeqConfig.dim)
    curve: list[tuple[float, float]] = []
    measuring = [0.0]
    started = time.perf_counter()

    def translate(model: Seq2Seq, items) -> list[tuple[str, ...]]:
        return [tuple(out.split()) for out in model.translate([s for s, _ in items])]

    def checkpoint(step: int, model: Seq2Seq) -> None:
        begun = time.perf_counter()
        accuracy = _accuracy(translate(model, curve_pairs), curve_pairs)
        curve.append((begun - started - measuring[0], accuracy))
        measuring[0] += time.perf_counter() - begun

    model = train_seq2seq(pairs, config, progress=progress, checkpoint=checkpoint,
                          every=max(steps // 8, 1))
    seconds = time.perf_counter() - started - measuring[0]
    return Result(name, "Transformer", seed, _accuracy(translate(model, test), test),
                  _accuracy(translate(model, held_out), held_out), seconds, len(test), curve)


def report(results: list[Result]) -> str:
    """A Markdown table: per split and method, the median over seeds (and the range)."""
    lines = ["| split | method | seeds | test accuracy (median, min–max) | held-out train-"
             "distribution accuracy | training time (median) |",
             "|---|---|---|---|---|---|"]
    keys = sorted({(r.split, r.method) for r in results}, key=lambda k: (k[0], k[1] != "NSR"))
    for name, method in keys:
        rows = [r for r in results if (r.split, r.method) == (name, method)]
        tests = [r.test_accuracy for r in rows]
        lines.append(
            f"| {name} ({rows[0].test_size} test) | {method} | {len(rows)} | "
            f"{100 * statistics.median(tests):.1f}% ({100 * min(tests):.1f}–"
            f"{100 * max(tests):.1f}%) | "
            f"{100 * statistics.median(r.held_out_accuracy for r in rows):.1f}% | "
            f"{statistics.median(r.train_seconds for r in rows):.0f} s |")
    nsr = [r for r in results if r.method == "NSR"]
    if nsr:
        lines += ["", "Programs NSR learned (first seed of the first split):", ""]
        lines += [f"- `{symbol}`: `{program}`" for symbol, program in
                  sorted(nsr[0].programs.items())]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    """Learning curves: accuracy on the curve sample against training seconds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r.split for r in results})
    figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names):
        for r in (r for r in results if r.split == name):
            xs, ys = zip(*r.curve) if r.curve else ((), ())
            axis.plot(xs, [100 * y for y in ys], marker="o", markersize=3,
                      color="tab:blue" if r.method == "NSR" else "tab:red",
                      label=f"{r.method} (seed {r.seed})")
        axis.set_title(f"SCAN {name} split")
        axis.set_xlabel("training time (s)")
        axis.set_ylabel(f"test accuracy on {CURVE_SAMPLE} commands (%)")
        axis.set_ylim(-3, 103)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs="+", default=["length", "add-jump"],
                        choices=["length", "add-jump", "simple"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="NSR seeds (the Transformer runs with the first)")
    parser.add_argument("--steps", type=int, default=9000, help="Transformer batches")
    parser.add_argument("--time-limit", type=float, default=600.0, help="NSR seconds")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--report", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: list[Result] = []
    for name in args.splits:
        for seed in args.seeds:
            result = run_nsr(name, seed, tiny=args.tiny, time_limit=args.time_limit)
            print(f"{name:8s} NSR seed {seed}: test {100 * result.test_accuracy:.1f}%, "
                  f"held-out {100 * result.held_out_accuracy:.1f}%, "
                  f"{result.train_seconds:.0f} s", flush=True)
            results.append(result)
        result = run_transformer(name, args.seeds[0], steps=args.steps, tiny=args.tiny)
        print(f"{name:8s} Transformer: test {100 * result.test_accuracy:.1f}%, "
              f"held-out {100 * result.held_out_accuracy:.1f}%, "
              f"{result.train_seconds:.0f} s", flush=True)
        results.append(result)
    table = report(results)
    print(table)
    example = ("twice", ("opposite", ("left", ("jump",))))
    print("a grounded tree as a diagram:", [box.name for box in tree_diagram(example).boxes])
    if args.report:
        args.report.write_text(table)
    if args.plot:
        plot(results, args.plot)
    return results


if __name__ == "__main__":
    main()
