#!/usr/bin/env python
"""One verification pass of the lean GPT-2 session, by attention implementation.

    python benchmarks/kernel_attention_bench.py                 # default small model, ~15 s
    python benchmarks/kernel_attention_bench.py --quick         # harness check (~5 s)
    python benchmarks/kernel_attention_bench.py --prefixes 256 896 --trees 1 16 64 --repeats 9

For every prefix length P (tokens in the cache) and tree size T (tokens in the pass: the
root and T - 1 draft nodes, a random tree, seeded), one :class:`FastGPT2Session` per
attention implementation holds the same prefilled cache; each round times one ``verify`` of
the same tree with every implementation in turn (interleaved; the pass is then dropped with
``truncate``, untimed), ``--repeats`` rounds after one warm-up round. Implementations:
``sdpa`` (the default: PyTorch's scaled-dot-product attention with a dense mask),
``reference`` (the torch tree-attention reference of :mod:`diagrammar.kernels`) and, on a
CUDA device only, ``triton`` (compiled; the interpreter is no benchmark). On a GPU every
timed pass ends with a device synchronisation.

Reported per (P, T): the median time of a pass per implementation, the median over rounds of
each one's same-round ratio to ``sdpa``, and the largest absolute difference of its scores
from ``sdpa``'s (correctness on this machine). Torch threads are fixed (``--threads``,
default 1: the machines are shared). Writes ``kernel_attention_bench.{json,md}`` into
``--out`` (``kernel_attention_bench_cuda.*`` when run on a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch


def _tree(rng: random.Random, size: int, vocab: int) -> tuple[list[int], list[int]]:
    """The draft nodes of a random tree of ``size`` tokens (root included)."""
    nodes = size - 1
    return ([rng.randrange(vocab) for _ in range(nodes)],
            [rng.randint(-1, node - 1) for node in range(nodes)])


def _timed(session: Any, root: int, tokens: list[int], parents: list[int]
           ) -> tuple[float, torch.Tensor]:
    session.synchronize()
    start = time.perf_counter()
    scores = session.verify(root, tokens, parents)
    session.synchronize()
    seconds = time.perf_counter() - start
    session.truncate(session.cache_length)        # drop the pending tree, untimed
    return seconds, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default:small",
                        help="a GPT-2 model: default:tiny, default:small or a local folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16",
                                                               "bfloat16"])
    parser.add_argument("--prefixes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--trees", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64],
                        help="tokens per pass, root included (at most 64: the packed mask)")
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true",
                        help="tiny model, P in (64, 512), T in (1, 64), 5 repeats")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.model, args.prefixes, args.trees, args.repeats = "default:tiny", [64, 512], [1, 64], 5
    if any(not 1 <= t <= 64 for t in args.trees):
        parser.error("--trees: each size must be from 1 to 64 (root included)")

    torch.set_num_threads(args.threads)
    from tqdm import tqdm

    from diagrammar.bench.machine import processor_name
    from diagrammar.models.fast_gpt2 import FastGPT2Session, supports
    from diagrammar.models.resolve import resolve_model

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    lm = resolve_model(args.model)
    model = lm.model.to(device=device, dtype=dtype)
    if not supports(model):
        raise SystemExit(f"{args.model} is not a plain GPT-2 model: the lean session (and its "
                         "attention choice) does not apply")
    impls = ["sdpa", "reference"] + (["triton"] if device.type == "cuda" else [])
    vocab = model.config.vocab_size
    limit = model.config.n_positions
    if max(args.prefixes) + max(args.trees) > limit:
        raise SystemExit(f"prefix + tree exceeds the model's {limit} positions")

    rng = random.Random(args.seed)
    rows = []
    bar = tqdm(total=len(args.prefixes) * len(args.trees) * (args.repeats + 1) * len(impls),
               unit="pass", desc="kernel-attention", disable=args.no_progress)
    for prefix in args.prefixes:
        prompt = [rng.randrange(vocab) for _ in range(prefix + 1)]
        sessions = {impl: FastGPT2Session(model, prompt, attention=impl) for impl in impls}
        for size in args.trees:
            tokens, parents = _tree(rng, size, vocab)
            seconds: dict[str, list[float]] = {impl: [] for impl in impls}
            error: dict[str, float] = dict.fromkeys(impls, 0.0)
            for round_ in range(args.repeats + 1):
                order = impls[round_ % len(impls):] + impls[:round_ % len(impls)]
                scores = {}
                for impl in order:
                    elapsed, scores[impl] = _timed(sessions[impl], prompt[-1], tokens, parents)
                    if round_:                            # round 0 warms up
                        seconds[impl].append(elapsed)
                    bar.update()
                for impl in impls:
                    gap = (scores[impl].double() - scores["sdpa"].double()).abs().max().item()
                    error[impl] = max(error[impl], gap)
            ratios = {impl: statistics.median(t / s for t, s in zip(seconds[impl],
                                                                     seconds["sdpa"]))
                      for impl in impls}
            rows.append({"prefix": prefix, "tree": size,
                         "median_ms": {i: 1e3 * statistics.median(seconds[i]) for i in impls},
                         "ratio_to_sdpa": ratios, "max_abs_error": error,
                         "fallback_passes": {i: sessions[i].fallback_passes for i in impls},
                         "seconds": seconds})
    bar.close()

    meta = {"model": args.model, "device": str(device), "dtype": args.dtype,
            "threads": args.threads, "repeats": args.repeats, "impls": impls,
            "layers": model.config.n_layer, "width": model.config.n_embd,
            "heads": model.config.n_head, "torch": torch.__version__,
            "machine": platform.platform(), "processor": processor_name(),
            "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "kernel_attention_bench" + ("" if device.type == "cpu" else f"_{device.type}")
    if args.quick:
        stem += "_quick"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Tree attention in one verification pass ({args.model}, {device}, {args.dtype})",
             "",
             f"{meta['layers']} layers, width {meta['width']}, {meta['heads']} heads; torch "
             f"{meta['torch']}, {args.threads} thread(s); {meta['gpu'] or meta['processor']} "
             f"({meta['machine']}). Median of {args.repeats} interleaved rounds after one "
             "warm-up; in brackets the median same-round ratio to sdpa (above 1: slower); "
             "err: the largest absolute score difference from sdpa.",
             "",
             "| prefix | tree | " + " | ".join(f"{i} ms" for i in impls) + " | "
             + " | ".join(f"{i} err" for i in impls if i != "sdpa") + " |",
             "|---:|---:|" + "---:|" * (2 * len(impls) - 1)]
    for row in rows:
        times = " | ".join(
            f"{row['median_ms'][i]:.3f}" + ("" if i == "sdpa" else
                                           f" ({row['ratio_to_sdpa'][i]:.2f}x)")
            for i in impls)
        errors = " | ".join(f"{row['max_abs_error'][i]:.1e}" for i in impls if i != "sdpa")
        lines.append(f"| {row['prefix']} | {row['tree']} | {times} | {errors} |")
    for impl in impls[1:]:
        lines += ["", f"{impl}: median ratio to sdpa over all cells "
                  f"{statistics.median(r['ratio_to_sdpa'][impl] for r in rows):.2f}x"]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
