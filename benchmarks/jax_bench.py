#!/usr/bin/env python
"""The JAX backend (per-step loop and whole-step compiled) against Hugging Face greedy and the
Torch backend, with the arithmetic floor of a decoding step on this machine.

    python benchmarks/jax_bench.py                 # default small model, 4 x 5 prompts, 128 tokens
    python benchmarks/jax_bench.py --quick         # harness check: tiny model, 2 prompts, 32 tokens
    python benchmarks/jax_bench.py --device cuda   # torch methods on a GPU, JAX on its default

Methods, all greedy and lossless, every one on every prompt, interleaved (the method order
rotates from prompt to prompt, the prompt categories alternate):

* ``hf/greedy``: Hugging Face ``generate(do_sample=False)`` on the torch model (the reference);
* ``torch/NAME``: our Torch backend, ``Execute(lm)(PIPELINES[NAME]())``;
* ``jax-per-step/NAME``: ``Execute(model, backend="jax", step_mode="per-step")`` (Python runs
  each step, the device each pass);
* ``jax-compiled/NAME``: ``step_mode="compiled"`` (the whole decode is one ``lax.while_loop``;
  the run fails if the step cannot compile), for NAME in ``autoregressive``, ``prompt-lookup``,
  ``token-recycling``.

What is timed:

* **decode ms/token** (the headline): ours: ``stats.decode_seconds / new tokens``, every step
  after the prompt's prefill (for the compiled loop: running the loop and copying its tokens
  back; compiling is not in it). ``hf/greedy``: from the end of the model's first forward call
  inside ``generate`` (the prefill, which also emits the first token) to ``generate``'s return,
  over ``new tokens - 1`` (a forward hook takes the time; on a GPU it synchronises first).
* **call ms/token**: wall time around the whole call (tokenised prompt in, tokens out:
  ``generate``'s set-up and the prefill included) over new tokens, for every method.
* **compile seconds**: JAX compiles, recorded per method from ``stats.compile_seconds``
  during the untimed warm-ups (one generation per method on one prompt of each cache-capacity
  group) and in any timed run that compiled: such a run is discarded and run again (counted
  in ``reruns``; a drafter that learns, Token Recycling's matrix, starts the second run from
  the state the first started from). Passes compiled by one JAX method serve the others on the
  same model, so a pass shape is charged to the first method that needed it; whole-step loops
  are per pipeline.

Reported per method: median decode and call ms/token, the median same-prompt speedup against
``hf/greedy`` (ratio of decode ms/token, and of call time), MAT (new tokens per target
forward pass), exact match against ``hf/greedy`` (a first divergence at a top-1 minus top-2
logit margin under ``--tie-margin`` is a float near-tie, any other a mismatch), compile
seconds and the loop that ran (``stats.mode``; asserted ``compiled`` for ``jax-compiled``). Also
the compiled-over-per-step speedup per pipeline, and the **arithmetic floor**: the FLOPs of one
autoregressive step of the model (2 x the weights a token touches, head included, plus
attention at the run's mean context length), against the machine's float32 matmul throughput
measured in JAX (the model's MLP matvecs chained, the matmul skeleton of a whole step, and a
512^3 matrix product; medians of repeats). ``--threads N`` fixes torch's threads and XLA's
CPU threads (:func:`fix_jax_threads`, before JAX is imported; 0 leaves both alone). Writes
``jax_bench.{json,md,png}`` into ``--out`` (``jax_bench_quick.*`` for ``--quick``, a
``_cuda`` suffix for ``--device cuda``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REFERENCE = "hf/greedy"
PIPELINE_NAMES = ("autoregressive", "prompt-lookup", "token-recycling")
FAMILIES = ("torch", "jax-per-step", "jax-compiled")
#: Whole-step compiled autoregressive decoding against Hugging Face greedy (decode ms/token).
AR_TARGET = 2.5
#: Prompts whose reference continuation is shorter are left out of the time-per-token figures.
MIN_TIMED_TOKENS = 16
#: XLA flags for one CPU thread (read when JAX initialises its CPU client).
ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false"


# -- the arithmetic floor ----------------------------------------------------------------------
def step_flops(config: dict[str, Any], context: float) -> dict[str, float]:
    """FLOPs of one autoregressive step (one token) of a GPT-2 or Llama-style model.

    Args:
        config: the model's ``config.json``.
        context: tokens the step attends to.

    Returns:
        ``weights`` (the weight matrices and biases one token touches, the output head
        included; embeddings are a row lookup), ``weight_flops`` (2 per weight),
        ``attention_flops`` (q.k and the weighted sum of values over ``context`` positions,
        every layer and head) and ``flops``, their sum.

    Example:
        >>> config = {"model_type": "gpt2", "n_embd": 256, "n_layer": 4, "n_head": 4,
        ...           "vocab_size": 4096}
        >>> f = step_flops(config, 500)
        >>> f["weights"], f["attention_flops"]
        (4203520, 2048000.0)
    """
    if config.get("model_type") == "gpt2":
        d, layers = config["n_embd"], config["n_layer"]
        heads = config["n_head"]
        inner = config.get("n_inner") or 4 * d
        head_dim, kv = d // heads, d
        per_layer = (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) + (inner * d + d)
    else:
        d, layers = config["hidden_size"], config["num_hidden_layers"]
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or d // heads
        kv = config.get("num_key_value_heads", heads) * head_dim
        inner = config["intermediate_size"]
        per_layer = d * heads * head_dim + 2 * d * kv + heads * head_dim * d + 3 * d * inner
    weights = layers * per_layer + d * config["vocab_size"]
    attention = 2.0 * 2.0 * context * heads * head_dim * layers
    return {"weights": weights, "weight_flops": 2.0 * weights, "attention_flops": attention,
            "flops": 2.0 * weights + attention}


def _time_jax(fn: Callable[..., Any], args: Sequence[Any], repeats: int
              ) -> tuple[float, float]:
    """Median seconds of ``fn(*args)`` (jitted, warmed, each call waited for), and the
    process's CPU time over wall time during the timed calls."""
    import jax

    for _ in range(2):
        jax.block_until_ready(fn(*args))
    times = []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        began = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - began)
    busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return statistics.median(times), busy


def matmul_throughput(config: dict[str, Any], repeats: int = 21,
                      chain: int = 32) -> dict[str, dict[str, float]]:
    """The machine's float32 matmul throughput in JAX (its default device), three ways.

    * ``mlp-matvec-chain``: ``chain`` times ``x @ W1 @ W2`` with ``x`` of shape ``(1, d)``,
      ``W1`` ``(d, 4d)`` and ``W2`` ``(4d, d)`` (the model's MLP, one token), in one jitted loop;
    * ``step-skeleton``: ``chain`` times the weight matrices of a whole step in order (every
      layer's attention and MLP matrices, then the head), one token, no attention or
      nonlinearity;
    * ``matmul-512``: one ``(512, 512) x (512, 512)`` product.

    Returns:
        Per case: ``flops`` per call, median ``seconds``, ``gflops_per_second`` and
        ``cpu_per_wall`` (process CPU time over wall time while timing: about the number of
        busy threads on a CPU).
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    model = "gpt2" if config.get("model_type") == "gpt2" else "llama"
    d = config["n_embd"] if model == "gpt2" else config["hidden_size"]
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 64))

    def weight(rows: int, cols: int) -> Any:
        return jax.random.normal(next(keys), (rows, cols), jnp.float32) / rows ** 0.5

    def dot(a: Any, b: Any) -> Any:          # float32 arithmetic, as the model's passes
        return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)

    x = jax.random.normal(next(keys), (1, d), jnp.float32)
    w1, w2 = weight(d, 4 * d), weight(4 * d, d)

    @jax.jit
    def mlp_chain(x: Any, w1: Any, w2: Any) -> Any:
        return lax.fori_loop(0, chain, lambda _, h: dot(dot(h, w1), w2), x)

    shapes: list[tuple[int, int]] = []
    if model == "gpt2":
        inner = config.get("n_inner") or 4 * d
        for _ in range(config["n_layer"]):
            shapes += [(d, 3 * d), (d, d), (d, inner), (inner, d)]
    else:
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or d // heads
        kv = config.get("num_key_value_heads", heads) * head_dim
        inner = config["intermediate_size"]
        for _ in range(config["num_hidden_layers"]):
            shapes += [(d, heads * head_dim + 2 * kv), (heads * head_dim, d), (d, 2 * inner),
                       (inner, d)]
    shapes.append((d, config["vocab_size"]))
    skeleton = [weight(r, c) for r, c in shapes]

    @jax.jit
    def step_chain(x: Any, weights: list[Any]) -> Any:
        def body(_: Any, h: Any) -> Any:
            for w in weights:                 # each input is a prefix of the last output
                h = dot(h[:, :w.shape[0]], w)
            return h[:, :d]
        return lax.fori_loop(0, chain, body, x)

    a, b = weight(512, 512), weight(512, 512)
    big = jax.jit(dot)
    cases = {
        "mlp-matvec-chain": (mlp_chain, (x, w1, w2), chain * 2.0 * 2 * d * 4 * d),
        "step-skeleton": (step_chain, (x, skeleton),
                          chain * 2.0 * sum(r * c for r, c in shapes)),
        "matmul-512": (big, (a, b), 2.0 * 512 ** 3),
    }
    out = {}
    for name, (fn, args, count) in cases.items():
        seconds, busy = _time_jax(fn, args, repeats)
        out[name] = {"flops": count, "seconds": seconds,
                     "gflops_per_second": count / seconds / 1e9, "cpu_per_wall": busy}
    return out


def fix_jax_threads(threads: int) -> str:
    """Limits XLA's CPU threads to ``threads``; call before JAX is imported.

    At 1, sets ``XLA_FLAGS`` (:data:`ONE_THREAD_XLA_FLAGS`). That alone does not hold XLA to
    one thread (jax 0.10 still ran a 512^3 product on two cores of this machine): XLA sizes
    its CPU thread pools from the CPUs the process may run on when its client starts. So the
    client is started with the process's CPU affinity cut to ``threads`` CPUs, and the
    affinity is restored right after (the pools keep their size; the OS may still move the
    threads between cores). Returns what was done, for the report.
    """
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {ONE_THREAD_XLA_FLAGS}".strip()
    if not hasattr(os, "sched_setaffinity"):
        return "XLA_FLAGS only (no CPU affinity on this platform)"
    allowed = os.sched_getaffinity(0)
    if threads >= len(allowed):
        return f"{len(allowed)} CPUs allowed: nothing to limit"
    os.sched_setaffinity(0, set(sorted(allowed)[:threads]))
    try:
        import jax
        import jax.numpy as jnp

        jax.block_until_ready(jnp.zeros(1) + 1)       # starts the clients
    finally:
        os.sched_setaffinity(0, allowed)
    return f"XLA clients started on {threads} of {len(allowed)} CPUs, affinity restored"


# -- methods -----------------------------------------------------------------------------------
class Method:
    """One way to generate: ``run(ids, n)`` returns ``(tokens, record)``; ``decoder`` is
    ours (``None`` for Hugging Face)."""

    def __init__(self, name: str, family: str, run: Callable[[list[int], int],
                 tuple[list[int], dict[str, Any]]], pipeline: str | None = None,
                 decoder: Any = None) -> None:
        self.name, self.family, self.pipeline, self.run = name, family, pipeline, run
        self.decoder = decoder
        self._saved: Any = None

    def snapshot(self) -> None:
        """Keeps what the step's drafters learned so far (Token Recycling's matrix), so that
        a generation run again starts from the same state."""
        if self.decoder is None or not self.decoder.learned_state():
            return
        import tempfile

        if self._saved is None:
            self._saved = tempfile.TemporaryDirectory(prefix="jax-bench-")
        self.decoder.save_state(self._saved.name)

    def restore(self) -> None:
        """Puts back the state :meth:`snapshot` kept."""
        if self._saved is not None:
            self.decoder.load_state(self._saved.name)


def _hf_greedy(lm: Any) -> Method:
    import torch

    model = lm.model
    pad = min(lm.eos_token_ids) if lm.eos_token_ids else 0
    cuda = lm.device.type == "cuda"

    def run(ids: list[int], max_new_tokens: int) -> tuple[list[int], dict[str, Any]]:
        marks: list[float] = []

        def hook(_module: Any, _args: Any, _output: Any) -> None:
            if not marks:
                if cuda:
                    torch.cuda.synchronize()
                marks.append(time.perf_counter())
            calls[0] += 1

        calls = [0]
        input_ids = torch.tensor([ids], device=lm.device)
        handle = model.register_forward_hook(hook)
        try:
            cpu = time.process_time()
            began = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                     do_sample=False, max_new_tokens=max_new_tokens,
                                     pad_token_id=pad)
            tokens = out[0, len(ids):].tolist()
            ended = time.perf_counter()
            cpu = time.process_time() - cpu
        finally:
            handle.remove()
        decode = ended - marks[0]
        return tokens, {"call_seconds": ended - began, "cpu_seconds": cpu,
                        "prefill_seconds": marks[0] - began,
                        "decode_seconds": decode, "decode_tokens": max(len(tokens) - 1, 0),
                        "steps": calls[0], "mode": "hf", "compiles": 0,
                        "compile_seconds": 0.0}

    return Method(REFERENCE, "hf", run)


def _ours(name: str, family: str, pipeline: str, decoder: Any, cuda: bool) -> Method:
    def run(ids: list[int], max_new_tokens: int) -> tuple[list[int], dict[str, Any]]:
        cpu = time.process_time()
        began = time.perf_counter()
        generation = decoder.generate(ids, max_new_tokens)
        if cuda:
            import torch

            torch.cuda.synchronize()
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        s = generation.stats
        return generation.tokens, {
            "call_seconds": ended - began, "cpu_seconds": cpu,
            "prefill_seconds": s.prefill_seconds,
            "decode_seconds": s.decode_seconds, "decode_tokens": s.new_tokens,
            "steps": s.steps, "mode": s.mode, "mode_reason": s.mode_reason,
            "compiles": s.compiles, "compile_seconds": s.compile_seconds}

    return Method(name, family, run, pipeline, decoder)


def build_methods(lm: Any, jax_model: Any, pipelines: Sequence[str]) -> list[Method]:
    """``hf/greedy`` first, then every family's pipelines."""
    from diagrammar.diagrams import PIPELINES
    from diagrammar.functors.execute import Execute

    cuda = lm.device.type == "cuda"
    executes = {"torch": Execute(lm),
                "jax-per-step": Execute(jax_model, backend="jax", step_mode="per-step"),
                "jax-compiled": Execute(jax_model, backend="jax", step_mode="compiled")}
    methods = [_hf_greedy(lm)]
    for family in FAMILIES:
        for pipeline in pipelines:
            decoder = executes[family](PIPELINES[pipeline]())
            methods.append(_ours(f"{family}/{pipeline}", family, pipeline, decoder, cuda))
    return methods


# -- the run -----------------------------------------------------------------------------------
def _capacity_group(prompt_tokens: int, max_new_tokens: int) -> int:
    """A power of two like the JAX caches' capacities: prompts in one group compile alike."""
    return 1 << (prompt_tokens + max_new_tokens + 64).bit_length()


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Runs every method on every prompt; returns the report's data."""
    import datetime as dt

    import torch
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    import jax

    from diagrammar.bench.config import load_bench_model
    from diagrammar.bench.exactness import compare, logit_margin
    from diagrammar.bench.machine import processor_name
    from diagrammar.bench.prompts import build_prompts
    from diagrammar.bench.runner import interleave, machine_info
    from diagrammar.models.jax.loader import load_jax_model, model_path

    started = dt.datetime.now(dt.timezone.utc)
    clock0 = time.perf_counter()
    say = (lambda m: None) if args.no_progress else (lambda m: print(m, file=sys.stderr))
    say(f"loading {args.model} (torch and JAX)...")
    loaded = load_bench_model(args.model)
    lm = loaded.lm
    if args.device != "cpu":
        from diagrammar.models.hf import HFCausalLM

        lm = HFCausalLM(lm.model.to(args.device), lm.tokenizer)
    folder = model_path(args.model)
    config = json.loads((folder / "config.json").read_text())
    jax_model = load_jax_model(folder)

    def count(text: str) -> int:
        return len(lm.encode(text))

    limit = (lm.max_positions or 1024) - args.max_new_tokens - 1
    prompts = interleave(build_prompts(args.prompts, count_tokens=count,
                                       max_prompt_tokens=limit))
    if args.max_prompts:
        prompts = prompts[:args.max_prompts]
    encoded = {p.id: lm.encode(p.text) for p in prompts}
    methods = build_methods(lm, jax_model, args.pipeline)
    account = {m.name: {"compiles": 0, "compile_seconds": 0.0, "reruns": 0} for m in methods}

    groups: dict[int, Any] = {}
    for p in prompts:
        groups.setdefault(_capacity_group(len(encoded[p.id]), args.max_new_tokens), p)
    bar = tqdm(total=len(methods) * (len(groups) + len(prompts)), desc="jax-bench",
               unit="gen", disable=args.no_progress, file=sys.stderr)
    bar.set_postfix_str("warm-up")
    for prompt in groups.values():                        # untimed: compiles, warms caches
        for method in methods:
            _, record = method.run(encoded[prompt.id], args.max_new_tokens)
            account[method.name]["compiles"] += record["compiles"]
            account[method.name]["compile_seconds"] += record["compile_seconds"]
            bar.update()

    runs: list[dict[str, Any]] = []
    for index, prompt in enumerate(prompts):
        ids = encoded[prompt.id]
        shift = index % len(methods)
        tokens_of: dict[str, list[int]] = {}
        records: dict[str, dict[str, Any]] = {}
        for method in methods[shift:] + methods[:shift]:
            method.snapshot()                             # untimed
            tokens, record = method.run(ids, args.max_new_tokens)
            if record["compiles"]:                        # a new shape: count it, run again
                account[method.name]["compiles"] += record["compiles"]
                account[method.name]["compile_seconds"] += record["compile_seconds"]
                account[method.name]["reruns"] += 1
                method.restore()                          # from the same learned state
                tokens, record = method.run(ids, args.max_new_tokens)
            tokens_of[method.name], records[method.name] = tokens, record
            bar.update()
        reference = tokens_of[REFERENCE]

        def margin_after(prefix: list[int], ids: list[int] = ids) -> float:
            return logit_margin(lm, ids + prefix)

        for method in methods:
            record = records[method.name]
            divergence = None if method.name == REFERENCE else compare(
                reference, tokens_of[method.name], margin_after, args.tie_margin)
            if divergence is not None:
                bar.write(f"{divergence.kind}: {method.name} on {prompt.id} differs from "
                          f"{REFERENCE} at new token {divergence.position} (margin "
                          f"{divergence.margin:.3g})", file=sys.stderr)
            runs.append({"method": method.name, "prompt": prompt.id,
                         "category": prompt.category, "prompt_tokens": len(ids),
                         "new_tokens": len(tokens_of[method.name]), **record,
                         "exact": divergence is None,
                         "divergence": None if divergence is None else {
                             "position": divergence.position, "margin": divergence.margin,
                             "near_tie": divergence.near_tie}})
        bar.set_postfix_str(prompt.category)
    bar.close()

    for method in methods:                                # compiled must mean compiled
        if method.family == "jax-compiled":
            modes = {r["mode"] for r in runs if r["method"] == method.name}
            if modes != {"compiled"}:
                raise SystemExit(f"{method.name} ran {modes}, not the compiled loop")

    mean_context = statistics.fmean(r["prompt_tokens"] + r["new_tokens"] / 2 for r in runs
                                    if r["method"] == REFERENCE)
    say("measuring matmul throughput...")
    throughput = matmul_throughput(config, repeats=args.matmul_repeats)
    device = jax.devices()[0]
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock0, 1),
        "machine": {**machine_info(), "processor_name": processor_name()},
        "jax": jax.__version__, "jax_device": f"{device.platform}: {device.device_kind}",
        "torch_device": str(lm.device),
        "gpu": torch.cuda.get_device_name(lm.device) if lm.device.type == "cuda" else None,
        "threads": args.threads or "not fixed", "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "xla_threads": args.xla_threads,
        "model": loaded.description, "model_spec": args.model,
        "jax_dtype": str(jax_model.dtype), "jax_attention": jax_model.attention,
        "prompts": len(prompts), "per_category": args.prompts,
        "max_new_tokens": args.max_new_tokens, "quick": args.quick,
        "tie_margin": args.tie_margin, "pipelines": list(args.pipeline),
        "jax_compiles": _compile_summary(jax_model.compiled),
        "git": _git_state(),
    }
    return {"meta": meta, "methods": [{"name": m.name, "family": m.family,
                                       "pipeline": m.pipeline} for m in methods],
            "account": account, "runs": runs,
            "floor": {"config": {k: config.get(k) for k in (
                "model_type", "n_embd", "n_layer", "n_head", "n_inner", "hidden_size",
                "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "vocab_size") if k in config},
                "mean_context": mean_context, **step_flops(config, mean_context),
                "throughput": throughput},
            "prompt_ids": [p.id for p in prompts]}


def _git_state() -> str:
    """The commit measured, and how many files under diagrammar/ differ from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "diagrammar"],
                                 cwd=root, text=True, capture_output=True,
                                 timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (f" + {len(changed)} uncommitted file(s) under diagrammar/"
                                 if changed else "")


def _compile_summary(compiled: Sequence[tuple[str, int, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for function, _, _ in compiled:
        out[function] = out.get(function, 0) + 1
    return out


# -- summary and reports -----------------------------------------------------------------------
def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _ms_per_token(run: dict[str, Any]) -> float | None:
    return 1e3 * run["decode_seconds"] / run["decode_tokens"] if run["decode_tokens"] else None


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Per method: medians, speedups, MAT, exactness, compiles; per pipeline: compiled over
    per-step; the floor; the targets."""
    runs = data["runs"]
    by = {(r["method"], r["prompt"]): r for r in runs}
    prompts = data["prompt_ids"]
    # Time per token is taken on prompts whose reference continuation has at least
    # MIN_TIMED_TOKENS tokens (one that ends at once times a call, not decoding).
    timed = [p for p in prompts if (REFERENCE, p) in by
             and by[(REFERENCE, p)]["new_tokens"] >= MIN_TIMED_TOKENS]
    table: dict[str, dict[str, Any]] = {}
    for method in data["methods"]:
        name = method["name"]
        everything = [by[(name, p)] for p in prompts if (name, p) in by]
        mine = [by[(name, p)] for p in timed if (name, p) in by]
        ref = [by[(REFERENCE, p)] for p in timed if (name, p) in by]
        decode = [_ms_per_token(r) for r in mine]
        decode_ratio = [_ms_per_token(h) / _ms_per_token(r) for h, r in zip(ref, mine)
                        if _ms_per_token(h) and _ms_per_token(r)]
        call_ratio = [h["call_seconds"] / r["call_seconds"] for h, r in zip(ref, mine)]
        steps = sum(r["steps"] for r in everything)
        wall = sum(r["call_seconds"] for r in everything)
        table[name] = {
            "runs": len(everything), "timed_runs": len(mine),
            "decode_ms_per_token": _median([d for d in decode if d is not None]),
            "call_ms_per_token": _median([1e3 * r["call_seconds"] / r["new_tokens"]
                                          for r in mine if r["new_tokens"]]),
            "speedup_decode": _median(decode_ratio),
            "speedup_call": _median(call_ratio),
            "cpu_per_wall": sum(r["cpu_seconds"] for r in everything) / wall if wall else None,
            "mat": sum(r["new_tokens"] for r in everything) / steps if steps else None,
            "exact": sum(r["exact"] for r in everything) / len(everything)
            if everything else None,
            "near_ties": sum(1 for r in everything if r["divergence"]
                             and r["divergence"]["near_tie"]),
            "mismatches": sum(1 for r in everything if r["divergence"]
                              and not r["divergence"]["near_tie"]),
            "modes": sorted({r["mode"] for r in everything}),
            **data["account"][name],
        }
    pipelines: dict[str, dict[str, float | None]] = {}
    for pipeline in data["meta"]["pipelines"]:
        step, whole = f"jax-per-step/{pipeline}", f"jax-compiled/{pipeline}"
        ratios = [by[(step, p)]["decode_seconds"] / by[(whole, p)]["decode_seconds"]
                  for p in timed if (step, p) in by and (whole, p) in by
                  and by[(whole, p)]["decode_seconds"] > 0]
        torch_ratios = [by[(f"torch/{pipeline}", p)]["decode_seconds"]
                        / by[(whole, p)]["decode_seconds"] for p in timed
                        if (whole, p) in by and (f"torch/{pipeline}", p) in by
                        and by[(whole, p)]["decode_seconds"] > 0]
        pipelines[pipeline] = {"compiled_over_per_step": _median(ratios),
                               "compiled_over_torch": _median(torch_ratios)}
    floor = data["floor"]
    best = floor["throughput"]
    floors = {case: 1e3 * floor["flops"] / (v["gflops_per_second"] * 1e9)
              for case, v in best.items()}
    targets = []
    ar = table.get("jax-compiled/autoregressive", {})
    if ar:
        targets.append({"target": f"jax-compiled/autoregressive >= {AR_TARGET}x {REFERENCE} "
                                  "(decode ms/token)",
                        "value": ar["speedup_decode"],
                        "met": (ar["speedup_decode"] or 0) >= AR_TARGET})
        targets.append({"target": f"jax-compiled/autoregressive >= {AR_TARGET}x {REFERENCE} "
                                  "(whole call, prefill included)",
                        "value": ar["speedup_call"],
                        "met": (ar["speedup_call"] or 0) >= AR_TARGET})
    for pipeline, cell in pipelines.items():
        if pipeline == "autoregressive":
            continue
        value = cell["compiled_over_per_step"]
        targets.append({"target": f"jax-compiled/{pipeline} faster than "
                                  f"jax-per-step/{pipeline} (decode time)",
                        "value": value, "met": value is not None and value > 1.0})
    exact = [r["exact"] for r in runs if r["method"] != REFERENCE]
    targets.append({"target": f"every method token-identical to {REFERENCE} (near-ties "
                              "reported)",
                    "value": sum(exact) / len(exact) if exact else None,
                    "met": not any(c["mismatches"] for c in table.values())})
    return {"methods": table, "pipelines": pipelines, "floor_ms": floors, "targets": targets,
            "timed_prompts": len(timed), "prompts": len(prompts)}


def _f(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def to_markdown(data: dict[str, Any], summary: dict[str, Any]) -> str:
    meta, floor = data["meta"], data["floor"]
    machine = meta["machine"]
    lines = [f"# JAX backend benchmark ({meta['model_spec']})", "",
             f"- date: {meta['date']} (run took {meta['seconds']} s)",
             f"- machine: {machine['processor_name']}, {machine['cpu_count']} CPUs "
             f"({machine['platform']}); torch threads {meta['threads']}; XLA: "
             f"{meta['xla_threads']}, XLA_FLAGS `{meta['xla_flags'] or '(none)'}`",
             f"- devices: torch {meta['torch_device']}"
             + (f" ({meta['gpu']})" if meta["gpu"] else "") + f", JAX {meta['jax_device']}",
             f"- software: Python {machine['python']}, torch {machine['torch']}, transformers "
             f"{machine['transformers']}, jax {meta['jax']}",
             f"- model: {meta['model']}; JAX {meta['jax_dtype']}, attention "
             f"{meta['jax_attention']}",
             f"- prompts: {meta['prompts']} ({meta['per_category']} per category, "
             f"interleaved), {meta['max_new_tokens']} new tokens, greedy",
             f"- JAX compiles over the run: {meta['jax_compiles']}",
             f"- code: {meta.get('git', '?')}", "",
             "Decode ms/token: ours, `stats.decode_seconds` / new tokens (the steps after the "
             "prefill; the compiled loop's compile is not in it); `hf/greedy`, from the end "
             "of its first forward call (the prefill, which emits the first token) to "
             "`generate`'s return, / (new tokens - 1). Call ms/token: wall time of the whole "
             "call / new tokens, prefill and set-up included. Speedups are medians of "
             f"same-prompt ratios against `{REFERENCE}`; MAT is new tokens per target "
             "forward pass; exact is the share of generations token-identical to "
             f"`{REFERENCE}`; compile s is the JAX compile time charged to the method "
             "(warm-ups, and timed runs that compiled, which were rerun: `reruns`); CPU/wall "
             "is process CPU time over wall time of its calls (about the busy threads). "
             f"Times per token and speedups over the {summary['timed_prompts']} of "
             f"{summary['prompts']} prompts whose `{REFERENCE}` continuation has at least "
             f"{MIN_TIMED_TOKENS} tokens; MAT and exact over all.", "",
             "| method | decode ms/token | speedup (decode) | call ms/token | speedup (call) "
             "| MAT | exact | compile s | reruns | CPU/wall | loop |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for method in data["methods"]:
        c = summary["methods"][method["name"]]
        exact = _f(100 * c["exact"] if c["exact"] is not None else None, ".0f", "%")
        if c["near_ties"]:
            exact += f" ({c['near_ties']} near-tie)"
        lines.append(
            f"| {method['name']} | {_f(c['decode_ms_per_token'], '.3f')} | "
            f"{_f(c['speedup_decode'], '.2f', 'x')} | {_f(c['call_ms_per_token'], '.3f')} | "
            f"{_f(c['speedup_call'], '.2f', 'x')} | {_f(c['mat'])} | {exact} | "
            f"{_f(c['compile_seconds'], '.1f')} | {c['reruns']} | "
            f"{_f(c['cpu_per_wall'], '.2f')} | {', '.join(c['modes'])} |")
    lines += ["", "## Compiled against the per-step loop", "",
              "Median same-prompt ratio of decode time (above 1: the compiled loop is faster).",
              "", "| pipeline | jax-compiled vs jax-per-step | jax-compiled vs torch |",
              "|---|---:|---:|"]
    for pipeline, cell in summary["pipelines"].items():
        lines.append(f"| {pipeline} | {_f(cell['compiled_over_per_step'], '.2f', 'x')} | "
                     f"{_f(cell['compiled_over_torch'], '.2f', 'x')} |")
    t = floor["throughput"]
    ar = summary["methods"].get("jax-compiled/autoregressive", {}).get("decode_ms_per_token")
    hf = summary["methods"][REFERENCE]["decode_ms_per_token"]
    lines += ["", "## Arithmetic floor", "",
              f"One autoregressive step: {floor['weights'] / 1e6:.2f} M weights touched (head "
              f"included) = {floor['weight_flops'] / 1e6:.2f} MFLOP, plus attention over the "
              f"mean context of {floor['mean_context']:.0f} tokens = "
              f"{floor['attention_flops'] / 1e6:.2f} MFLOP; {floor['flops'] / 1e6:.2f} MFLOP "
              "in all. float32 throughput measured in JAX on this device (median of repeats):",
              "", "| kernel | GFLOP/s | CPU/wall | floor ms/token at that rate | "
              "jax-compiled/autoregressive over the floor | hf/greedy over the floor |",
              "|---|---:|---:|---:|---:|---:|"]
    labels = {"mlp-matvec-chain": "(1,d)x(d,4d)x(4d,d) matvec chain",
              "step-skeleton": "a whole step's weight matrices, one token",
              "matmul-512": "512^3 matmul"}
    for case, v in t.items():
        fl = summary["floor_ms"][case]
        lines.append(f"| {labels.get(case, case)} | {v['gflops_per_second']:.1f} | "
                     f"{v['cpu_per_wall']:.2f} | {fl:.4f} | "
                     f"{_f(ar / fl if ar else None, '.1f', 'x')} | "
                     f"{_f(hf / fl if hf else None, '.1f', 'x')} |")
    lines += ["", "## Targets", ""]
    for target in summary["targets"]:
        verdict = "met" if target["met"] else "**not met**"
        lines.append(f"- {verdict}: {target['target']} (measured {_f(target['value'], '.3f')})")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m["name"] for m in data["methods"]]
    values = [summary["methods"][n]["decode_ms_per_token"] or 0.0 for n in names]
    colors = {"hf": "tab:gray", "torch": "tab:blue", "jax-per-step": "tab:orange",
              "jax-compiled": "tab:green"}
    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.barh(names, values, color=[colors[m["family"]] for m in data["methods"]])
    floor = summary["floor_ms"].get("step-skeleton")
    if floor:
        axis.axvline(floor, color="black", linestyle="--", linewidth=0.8,
                     label=f"arithmetic floor of one autoregressive step: {floor:.3f} ms "
                           "(at the step-skeleton throughput)")
        axis.legend(fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("decode ms per new token (median over prompts)")
    meta = data["meta"]
    axis.set_title(f"{meta['model_spec']}, {meta['prompts']} prompts x "
                   f"{meta['max_new_tokens']} tokens; torch {meta['torch_device']}, JAX "
                   f"{meta['jax_device']}", fontsize=9)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default:small")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per category")
    parser.add_argument("--max-prompts", type=int, default=0,
                        help="keep only the first N prompts (interleaved order); 0 = all")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--pipeline", action="append", choices=PIPELINE_NAMES,
                        help=f"repeatable; default: {', '.join(PIPELINE_NAMES)}")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch's and XLA's CPU threads (default 1; 0 leaves them alone)")
    parser.add_argument("--device", default="cpu", help="the torch methods' device (cpu, "
                        "cuda); JAX runs on its default device")
    parser.add_argument("--tie-margin", type=float, default=1e-3)
    parser.add_argument("--matmul-repeats", type=int, default=21)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true",
                        help="tiny model, 2 prompts, 32 new tokens")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.pipeline = args.pipeline or list(PIPELINE_NAMES)
    if args.quick:
        args.model, args.prompts, args.max_prompts = "default:tiny", 1, 2
        args.max_new_tokens, args.matmul_repeats = 32, 7
    args.xla_threads = "not fixed"
    if args.threads:                   # before JAX is imported, or it is too late
        if "jax" in sys.modules:
            raise SystemExit("jax was imported before the thread settings could apply")
        args.xla_threads = fix_jax_threads(args.threads)
    from diagrammar.bench.report import check_out_dir

    out = Path(args.out)
    check_out_dir(out)
    data = run_bench(args)
    summary = summarize(data)
    stem = "jax_bench" + ("" if args.device == "cpu" else f"_{args.device.split(':')[0]}") \
        + ("_quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({**data, "summary": summary}, indent=1,
                                                 default=str) + "\n")
    markdown = to_markdown(data, summary)
    (out / f"{stem}.md").write_text(markdown)
    plot(data, summary, out / f"{stem}.png")
    print(markdown)
    return 1 if any(c["mismatches"] for c in summary["methods"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
