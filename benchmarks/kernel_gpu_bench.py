#!/usr/bin/env python
"""Tree-attention kernels on a GPU: correctness against the reference, time against PyTorch's
scaled-dot-product attention with an explicit mask, and memory bandwidth.

    python benchmarks/kernel_gpu_bench.py --out DIR                  # on a CUDA GPU
    python benchmarks/kernel_gpu_bench.py --device cpu --quick       # smoke test: interpreters

One attention layer (``--heads`` 32 x ``--head-dim`` 128, a 7B-class model's, ``--dtype``
float16) scores a random tree of T nodes (root included) over a prefix of P cached tokens, for
T in ``--trees`` (1, 8, 16, 32, 64) and P in ``--prefixes`` (512, 2048, 8192). The keys and
values sit in one ``(heads, P + T, d)`` buffer each, as in a session's cache. Implementations:

* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` over the whole buffer with
  an explicit boolean mask ``(T, P + T)`` (prefix visible, tree part the ancestor mask), the
  mask built once outside the timing;
* ``triton``: :func:`diagrammar.kernels.triton_tree.tree_attention_triton` on views of the
  buffer (prefix and tree slices, no copies), the packed ancestor words built once;
* ``pallas``: :func:`diagrammar.kernels.pallas_tree.tree_attention_pallas` under ``jax.jit``,
  when JAX sees a GPU (or, with ``--device cpu``, in Pallas' interpreter);
* ``reference``: the torch reference (:mod:`diagrammar.kernels.reference`), timed too.

**Correctness**: every output against the reference computed in float32 from the same
inputs (largest absolute difference; the tests' float16 tolerance for the Triton kernel is
2e-2). **Time**: on a GPU, each sample times a batch of calls with CUDA events, the calls
rotating over enough copies of the inputs (at least ``--rotate-mb``, 256 MB by default, above
any L2) that the keys and values come from device memory; the median of ``--repeats``
samples, implementations interleaved. Torch batches are captured in a CUDA graph when that
works (so Python launch time is not counted; the report says when it fell back to plain
launches); JAX runs the batch as one jitted function. **Bandwidth**: bytes of K and V read
(``2 x heads x (P + T) x d x itemsize``) over the time, against the device's peak memory
bandwidth (a table of data-sheet values by device name, else ``2 x memory clock x bus width``
from the device properties; unknown: achieved GB/s only).

Writes ``kernel_gpu_bench[_cpu][_quick].{json,md}`` into ``--out``. On a CPU the numbers
time interpreters and say nothing about kernels; the CPU mode is a smoke test of the script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Data-sheet peak memory bandwidth (bytes/s) by a fragment of the CUDA device name; the first
#: fragment found in the name wins, so longer names come first.
PEAK_BANDWIDTH = (
    ("H200", 4.8e12), ("H100 NVL", 3.9e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12),
    ("GH200", 4.0e12), ("A100-SXM4-80GB", 2.039e12), ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12), ("L40S", 0.864e12), ("L40", 0.864e12), ("L4", 0.3e12),
    ("A10G", 0.6e12), ("A10", 0.6e12), ("RTX 4090", 1.008e12), ("RTX 3090", 0.936e12),
    ("V100", 0.9e12), ("T4", 0.32e12),
)
#: The Triton kernel's float16 tolerance in the tests (tests/kernels/test_tree_attention.py).
TOLERANCE = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-4}


def peak_bandwidth(device: Any) -> tuple[float | None, str]:
    """The device's peak memory bandwidth in bytes/s and where the number comes from."""
    import torch

    name = torch.cuda.get_device_name(device)
    for fragment, peak in PEAK_BANDWIDTH:
        if fragment in name:
            return peak, f"data sheet ({fragment})"
    props = torch.cuda.get_device_properties(device)
    clock = getattr(props, "memory_clock_rate", None)       # kHz
    width = getattr(props, "memory_bus_width", None)        # bits
    if clock and width:
        return 2.0 * clock * 1e3 * width / 8, "2 x memory clock x bus width"
    return None, "unknown"


def random_parents(rng: random.Random, size: int) -> list[int]:
    """A random tree of ``size`` nodes, node 0 the root: each node's parent comes before it."""
    return [-1] + [rng.randrange(node) for node in range(1, size)]


def _median_cuda(run_batch: Callable[[], Any], calls: int, repeats: int) -> float:
    """Median seconds per call of ``run_batch`` (``calls`` calls), timed with CUDA events."""
    import torch

    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run_batch()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / calls)
    return statistics.median(times)


def _median_wall(run_batch: Callable[[], Any], calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run_batch()
        times.append((time.perf_counter() - began) / calls)
    return statistics.median(times)


class TorchTimer:
    """Times a torch function over rotating input copies: a CUDA graph of the whole batch
    when capture works, else plain launches between CUDA events (or wall time on a CPU)."""

    def __init__(self, fn: Callable[[int], Any], copies: int, cuda: bool) -> None:
        self.fn, self.copies, self.cuda = fn, copies, cuda
        self.graph = None
        self.mode = "wall" if not cuda else "launches"
        if cuda:
            import torch

            try:
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for i in range(min(3, copies)):
                        fn(i)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    for i in range(copies):
                        fn(i)
                self.graph, self.mode = graph, "cuda-graph"
            except Exception:          # noqa: BLE001 - any capture failure: plain launches
                torch.cuda.synchronize()
                self.graph = None

    def batch(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            for i in range(self.copies):
                self.fn(i)

    def seconds(self, repeats: int) -> float:
        self.batch()                                   # warm
        if self.cuda:
            return _median_cuda(self.batch, self.copies, repeats)
        return _median_wall(self.batch, self.copies, repeats)


def _case(args: argparse.Namespace, prefix: int, nodes: int, parents: list[int],
          generator: Any, device: Any, dtype: Any, impls: list[str],
          jax_fn: Callable[..., Any] | None) -> dict[str, Any]:
    """One (prefix, tree) cell: errors against the float32 reference, medians, bandwidth."""
    import torch

    from diagrammar.kernels.ancestor_words import ancestor_mask, ancestor_words
    from diagrammar.kernels.reference import tree_attention_reference
    from diagrammar.kernels.triton_tree import tree_attention_triton

    cuda = device.type == "cuda"
    heads, size = args.heads, args.head_dim
    kv_bytes = 2 * heads * (prefix + nodes) * size * (torch.finfo(dtype).bits // 8)
    copies = max(1, math.ceil(args.rotate_mb * 2 ** 20 / kv_bytes)) if cuda else 1
    inputs = []
    for _ in range(copies):
        q, k, v = (torch.randn(heads, length, size, generator=generator, device=device,
                               dtype=dtype) for length in (nodes, prefix + nodes, prefix + nodes))
        inputs.append((q, k, v))
    words = ancestor_words(parents, device=device)
    mask = torch.ones(nodes, prefix + nodes, dtype=torch.bool, device=device)
    mask[:, prefix:] = ancestor_mask(words)

    def split(i: int) -> tuple[Any, ...]:
        q, k, v = inputs[i]
        return q, k[:, :prefix], v[:, :prefix], k[:, prefix:], v[:, prefix:]

    def sdpa(i: int) -> Any:
        q, k, v = inputs[i]
        return torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None],
                                                                attn_mask=mask)[0]

    calls: dict[str, Callable[[int], Any]] = {
        "sdpa": sdpa,
        "triton": lambda i: tree_attention_triton(*split(i), words),
        "reference": lambda i: tree_attention_reference(*split(i), words),
    }
    truth = tree_attention_reference(*(x.float() for x in split(0)), words)
    error = {name: (fn(0).float() - truth).abs().max().item() for name, fn in calls.items()}
    timers: dict[str, Any] = {name: TorchTimer(fn, copies, cuda) for name, fn in calls.items()}
    if jax_fn:
        timers["pallas"], error["pallas"] = jax_fn(inputs, parents, truth)
    seconds: dict[str, list[float]] = {name: [] for name in impls}
    for round_ in range(args.rounds):                 # interleaved
        for name in impls[round_ % len(impls):] + impls[:round_ % len(impls)]:
            seconds[name].append(timers[name].seconds(args.repeats))
    median = {name: statistics.median(s) for name, s in seconds.items()}
    return {"prefix": prefix, "tree": nodes, "parents": parents, "copies": copies,
            "kv_bytes": kv_bytes, "microseconds": {n: 1e6 * t for n, t in median.items()},
            "gb_per_second": {n: kv_bytes / t / 1e9 for n, t in median.items()},
            "max_abs_error": error, "timing": {n: t.mode for n, t in timers.items()},
            "ratio_to_sdpa": {n: median[n] / median["sdpa"] for n in impls}}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = getattr(torch, args.dtype)
    jax_fn = _pallas_setup(args, cuda)
    impls = ["sdpa", "triton", *(["pallas"] if jax_fn else []), "reference"]
    rng = random.Random(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    heads, size = args.heads, args.head_dim
    rows = []
    total = len(args.prefixes) * len(args.trees)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="case", desc="kernel-gpu", disable=args.no_progress,
               file=sys.stderr)
    for prefix in args.prefixes:
        for nodes in args.trees:
            rows.append(_case(args, prefix, nodes, random_parents(rng, nodes), generator,
                              device, dtype, impls, jax_fn))
            if cuda:
                torch.cuda.empty_cache()
            bar.update()
    bar.close()
    meta = {"device": str(device), "dtype": args.dtype, "heads": heads, "head_dim": size,
            "impls": impls, "repeats": args.repeats, "rounds": args.rounds,
            "rotate_mb": args.rotate_mb, "torch": torch.__version__,
            "machine": platform.platform(), "python": platform.python_version()}
    if cuda:
        peak, source = peak_bandwidth(device)
        meta.update(gpu=torch.cuda.get_device_name(device), peak_bandwidth=peak,
                    peak_source=source)
    else:
        from diagrammar.bench.machine import processor_name

        meta.update(gpu=None, processor=processor_name(), peak_bandwidth=None,
                    peak_source="not measured on a CPU")
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        pass
    if jax_fn:
        import jax

        meta["jax"] = jax.__version__
        meta["jax_device"] = str(jax.devices()[0])
    return {"meta": meta, "rows": rows}


def _pallas_setup(args: argparse.Namespace, cuda: bool) -> Callable[..., Any] | None:
    """A function timing the Pallas kernel, or ``None`` when it does not apply here."""
    if args.no_pallas:
        return None
    try:
        import jax
    except ImportError:
        return None
    platform_ = jax.devices()[0].platform
    if cuda and platform_ not in ("gpu", "cuda"):
        return None            # JAX without a GPU: the interpreter is no GPU benchmark
    import jax.numpy as jnp
    import numpy as np

    from diagrammar.kernels.jax_reference import ancestor_word_pairs
    from diagrammar.kernels.pallas_tree import tree_attention_pallas

    def measure(inputs: list[tuple[Any, ...]], parents: list[int], truth: Any
                ) -> tuple[Any, float]:
        prefix = inputs[0][1].shape[1] - len(parents)
        pairs = ancestor_word_pairs(parents)
        dtype = jnp.dtype(args.dtype)
        arrays = [tuple(jnp.asarray(x.float().cpu().numpy(), dtype=dtype) for x in qkv)
                  for qkv in inputs]

        def one(q: Any, k: Any, v: Any) -> Any:
            return tree_attention_pallas(q, k[:, :prefix], v[:, :prefix], k[:, prefix:],
                                         v[:, prefix:], pairs)

        single = jax.jit(one)
        batch = jax.jit(lambda copies: [one(*c) for c in copies])
        out = np.asarray(single(*arrays[0]), dtype=np.float32)
        error = float(np.abs(out - truth.cpu().numpy()).max())

        class Timer:
            mode = "jit"

            def seconds(self, repeats: int) -> float:
                jax.block_until_ready(batch(arrays))   # compiles once, then warm
                return _median_wall(lambda: jax.block_until_ready(batch(arrays)), len(arrays),
                                    repeats)

        return Timer(), error

    return measure


def to_markdown(data: dict[str, Any]) -> str:
    meta, rows = data["meta"], data["rows"]
    impls = meta["impls"]
    peak = meta.get("peak_bandwidth")
    where = meta["gpu"] or f"CPU ({meta.get('processor', '?')}): interpreters, not kernels"
    lines = [f"# Tree attention kernels on {where}", "",
             f"One layer: {meta['heads']} heads x {meta['head_dim']}, {meta['dtype']}; torch "
             f"{meta['torch']}" + (f", triton {meta['triton']}" if "triton" in meta else "")
             + (f", jax {meta['jax']} ({meta['jax_device']})" if "jax" in meta else "")
             + f". Median of {meta['repeats']} samples x {meta['rounds']} interleaved rounds;"
             + (" each sample a batch of calls rotating over input copies of at least "
                f"{meta['rotate_mb']:.0f} MB (K/V read from device memory, not L2). "
                if meta["gpu"] else " one call per sample. ")
             + "GB/s: bytes of K and V read / time"
             + (f"; peak {peak / 1e9:.0f} GB/s ({meta['peak_source']})." if peak else "."),
             "", "| prefix | tree | " + " | ".join(f"{i} µs" for i in impls)
             + " | triton GB/s | triton % peak | triton vs sdpa | "
             + " | ".join(f"{i} err" for i in impls if i != "reference") + " |",
             "|---:|---:|" + "---:|" * (len(impls) + 3 + len(impls) - 1)]
    for row in rows:
        us = " | ".join(f"{row['microseconds'][i]:.1f}" for i in impls)
        gbs = row["gb_per_second"]["triton"]
        share = f"{100 * gbs * 1e9 / peak:.0f}%" if peak else "–"
        errors = " | ".join(f"{row['max_abs_error'][i]:.1e}" for i in impls if i != "reference")
        lines.append(f"| {row['prefix']} | {row['tree']} | {us} | {gbs:.0f} | {share} | "
                     f"{row['ratio_to_sdpa']['triton']:.2f}x | {errors} |")
    tolerance = TOLERANCE.get(meta["dtype"], 2e-2)
    bad = [(r["prefix"], r["tree"], i) for r in rows for i in impls
           if i != "reference" and r["max_abs_error"][i] > tolerance]
    modes = sorted({m for r in rows for m in r["timing"].values()})
    lines += ["", f"Correctness (largest |out - float32 reference|, tolerance {tolerance}): "
              + ("all within." if not bad else "**outside** at " + ", ".join(
                  f"P={p} T={t} {i}" for p, t, i in bad) + "."),
              f"Timing modes: {', '.join(modes)} (`cuda-graph`: launch time excluded; "
              "`launches`: CUDA events around plain launches; `jit`: one jitted batch, wall "
              "time; `wall`: CPU wall time)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16",
                                                               "float32"])
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--trees", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    parser.add_argument("--prefixes", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--repeats", type=int, default=10, help="samples per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rotate-mb", type=float, default=256.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pallas", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (2 heads x 16, trees 1 and 8, prefixes 16 and 64)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cpu":            # the interpreters: set before Triton is first imported
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
        if args.device == "cpu":
            os.environ.setdefault("TRITON_INTERPRET", "1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.quick:
        args.heads, args.head_dim, args.trees, args.prefixes = 2, 16, [1, 8], [16, 64]
        args.repeats, args.rounds, args.rotate_mb = 3, 1, 64.0
    if any(not 1 <= t <= 64 for t in args.trees):
        parser.error("--trees: each size must be from 1 to 64 (root included)")
    if args.device == "cpu" and "triton" in sys.modules:
        parser.error("triton was imported before TRITON_INTERPRET could be set")
    data = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "kernel_gpu_bench" + ("_cpu" if args.device == "cpu" else "") \
        + ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    markdown = to_markdown(data)
    (out / f"{stem}.md").write_text(markdown)
    print(markdown)
    tolerance = TOLERANCE.get(args.dtype, 2e-2)
    bad = any(r["max_abs_error"][i] > tolerance for r in data["rows"] for i in r["max_abs_error"]
              if i != "reference")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
