#!/usr/bin/env python
"""Recipe sweep for the embedded default model: which training choices buy held-out quality.

    python benchmarks/recipe_sweep.py                       # every variant, 2 at a time
    python benchmarks/recipe_sweep.py --variant base --variant short256 --steps 100
    python benchmarks/recipe_sweep.py --list

Each variant is the ``small`` recipe (or ``--size tiny``) with a few fields overridden, trained
for the same number of tokens (``--steps`` steps of ``batch_size x seq_len`` tokens; the
variants keep the tokens per step) and scored on the held-out modules like the real model
(loss in nats/token and next-token accuracy, 1024-token windows).  Every variant runs in its
own process with one torch thread, ``--jobs`` at a time; same-budget comparisons are about
quality, and the seconds column only says which choices are also cheaper.

Writes ``recipe_sweep.json``, ``recipe_sweep.md`` and ``recipe_sweep.png`` into ``--out``
(default ``benchmarks/results/``).  See benchmarks/README.md for the latest results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: What every variant starts from: the size's recipe with full-length windows throughout, and
#: for ``small`` its first shape (6 layers, lr 2e-3), the recipe the sweep set out to improve.
SWEEP_BASE: dict[str, dict[str, Any]] = {
    "tiny": {"short_seq_len": 0, "short_seq_steps": 0},
    "small": {"short_seq_len": 0, "short_seq_steps": 0, "n_layer": 6, "lr": 2e-3},
}

#: Overrides of the sweep base, by name.  ``steps`` comes from the command line (times
#: ``steps_factor``, so that half-size batches see the same tokens), ``warmup_steps`` is 6% of
#: it and ``short_fraction`` of the steps use the short windows.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "lr4e-3": {"lr": 4e-3},
    "lr8e-3": {"lr": 8e-3},
    "batch1": {"batch_size": 1, "steps_factor": 2},
    "4-layers": {"n_layer": 4},
    "short256": {"short_seq_len": 256, "short_fraction": 0.8},
    "short128": {"short_seq_len": 128, "short_fraction": 0.8},
    "short64": {"short_seq_len": 64, "short_fraction": 0.8},
    "short256-90%": {"short_seq_len": 256, "short_fraction": 0.9},
    "short256-lr1e-3": {"short_seq_len": 256, "short_fraction": 0.8, "lr": 1e-3},
    "short256-4-layers": {"short_seq_len": 256, "short_fraction": 0.8, "n_layer": 4},
    "short128-4-layers": {"short_seq_len": 128, "short_fraction": 0.8, "n_layer": 4},
}


def _recipe(size: str, steps: int, overrides: dict[str, Any]):
    from diagrammar.models.default import RECIPES

    fields = {**SWEEP_BASE[size], **overrides}
    fraction = fields.pop("short_fraction", None)
    fields["steps"] = steps * fields.pop("steps_factor", 1)
    fields["warmup_steps"] = max(1, fields["steps"] * 3 // 50)
    if fraction is not None:
        fields["short_seq_steps"] = round(fields["steps"] * fraction)
    return dataclasses.replace(RECIPES[size], threads=1, **fields)


def run_one(size: str, steps: int, name: str) -> dict[str, Any]:
    """Train and score one variant in this process (one torch thread)."""
    from diagrammar.models import default as dm

    recipe = _recipe(size, steps, VARIANTS[name])
    tokenizer = dm.default_tokenizer(progress=False)
    train_ids = dm.encode_documents(tokenizer, [d.text for d in dm.training_documents()])
    held = {k: dm.encode_documents(tokenizer, [v]) for k, v in dm.heldout_sources().items()}
    model, facts = dm.train_model(recipe, tokenizer, train_ids, progress=False)
    with dm.fixed_threads(1):
        result = dm.evaluate(model, held, recipe.eval_seq_len, recipe.eval_batch_size)
    return {
        "name": name,
        "overrides": VARIANTS[name],
        "recipe": dataclasses.asdict(recipe),
        "train_seconds": round(facts["train_seconds"], 1),
        "train_tokens": facts["train_tokens_seen"],
        "final_train_loss": round(facts["final_train_loss"], 4),
        "heldout_loss": round(result.loss, 4),
        "heldout_accuracy": round(result.accuracy, 4),
    }


def _spawn(size: str, steps: int, name: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--size", size, "--steps", str(steps), "--one", name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"variant {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(report: dict[str, Any]) -> str:
    rows = sorted(report["results"], key=lambda r: r["heldout_loss"])
    lines = [
        f"Recipe sweep ({report['date']}, {report['machine']}): size `{report['size']}`, "
        f"{report['steps']} steps ({rows[0]['train_tokens'] / 1e6:.2f} M tokens) per variant, "
        "one thread each, sorted by held-out loss.",
        "",
        "| variant | overrides | held-out loss | held-out accuracy | train seconds |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        over = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "-"
        lines.append(
            f"| {r['name']} | {over} | {r['heldout_loss']:.3f} | "
            f"{100 * r['heldout_accuracy']:.1f}% | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(report["results"], key=lambda r: r["heldout_loss"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.5), sharey=True)
    names = [r["name"] for r in rows]
    ax1.barh(names, [r["heldout_loss"] for r in rows], color="tab:blue")
    ax1.set_xlabel("held-out loss (nats/token, lower is better)")
    ax1.set_xlim(min(r["heldout_loss"] for r in rows) - 0.3, None)
    ax1.invert_yaxis()
    ax2.barh(names, [100 * r["heldout_accuracy"] for r in rows], color="tab:green")
    ax2.set_xlabel("held-out next-token accuracy (%)")
    fig.suptitle(f"default model [{report['size']}] recipe sweep, {report['steps']} steps each")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        for name, over in VARIANTS.items():
            print(f"{name}: {over}")
        return 0
    if args.one:
        print(json.dumps(run_one(args.size, args.steps, args.one)))
        return 0

    from tqdm.auto import tqdm

    from diagrammar.models import default as dm

    dm.default_tokenizer()  # train the shared tokenizer once, up front
    names = args.variant or list(VARIANTS)
    started = time.perf_counter()
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, tqdm(
        total=len(names), desc="recipe sweep", unit="variant"
    ) as bar:
        for result in pool.map(lambda n: _spawn(args.size, args.steps, n), names):
            results.append(result)
            bar.set_postfix(last=f"{result['name']} {result['heldout_loss']:.3f}")
            bar.update(1)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.system()} {platform.machine()}, {_cpus()} CPUs",
        "size": args.size,
        "steps": args.steps,
        "jobs": args.jobs,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipe_sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "recipe_sweep.md").write_text(_markdown(report))
    _plot(report, args.out / "recipe_sweep.png")
    print(_markdown(report))
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
