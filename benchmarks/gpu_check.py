"""Exactness and per-box timing of the torch backend on an accelerator (or the CPU).

Two checks, both on random models (nothing is downloaded):

1. **Exactness** in float64: our pipelines (autoregressive, prompt lookup chain and tree, and
   random branching trees) against Hugging Face ``generate(do_sample=False)`` on the device,
   for GPT-2 (lean session), Llama (generic session) and Mistral with a sliding window
   smaller than the sequence.
2. **Timing** in float32 on a GPT-2-small-shaped model: our loop against HF greedy and HF
   prompt lookup, interleaved, medians of repeats, and the time per box. On an accelerator
   each box's time ends with a device synchronisation, so Verify carries the forward pass.

Run:  python benchmarks/gpu_check.py --device cuda --out results/
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
)

from diagrammar.decoding import DraftTree
from diagrammar.decoding.steps import DrafterStep
from diagrammar.diagrams import Drafter, PromptLookup, autoregressive, box_registry, speculative
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM

with box_registry():
    class RandomTree(Drafter):
        """Random trees around the reference continuation (a test drafter)."""

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed=seed)


def _random_trees(reference: list[int], vocab: int):
    def factory(box, execute):
        rng = random.Random(box.spec["seed"])

        def draft(state):
            done = state.generated
            tree = DraftTree()
            for _ in range(rng.randint(0, 3)):
                path = reference[done:done + rng.randint(1, 6)]
                if path and rng.random() < 0.4:
                    path = list(path)
                    path[rng.randrange(len(path))] = rng.randrange(vocab)
                tree.add_path(path)
            return tree
        return DrafterStep(draft)
    return factory


def _models(vocab: int):
    common = dict(vocab_size=vocab, eos_token_id=None, bos_token_id=None)
    yield "gpt2", GPT2LMHeadModel(GPT2Config(n_positions=512, n_embd=64, n_layer=2, n_head=4,
                                             **common)), True
    yield "llama", LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                num_key_value_heads=2,
                                                max_position_embeddings=512, **common)), False
    yield "mistral-window8", MistralForCausalLM(MistralConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, sliding_window=8, **common)), False


def exactness(device: str, cases: int = 6) -> list[dict]:
    vocab = 64
    rows = []
    for name, model, fast in _models(vocab):
        torch.manual_seed(0)
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(4.0)
        model = model.to(device=device, dtype=torch.float64).eval()
        lm = HFCausalLM(model, fast=fast)
        rng = random.Random(1)
        for case in range(cases):
            pattern = [rng.randrange(4, vocab) for _ in range(rng.randint(2, 6))]
            prompt = pattern * rng.randint(2, 6)
            new = rng.randint(8, 48)
            hf = model.generate(torch.tensor([prompt], device=device), do_sample=False,
                                max_new_tokens=new, pad_token_id=0)[0, len(prompt):].tolist()
            execute = Execute(lm, implementations={RandomTree: _random_trees(hf, vocab)})
            for label, step in (("autoregressive", autoregressive()),
                                ("prompt-lookup", speculative(PromptLookup())),
                                ("prompt-lookup-tree", speculative(PromptLookup(branches=3))),
                                ("random-trees", speculative(RandomTree(seed=case)))):
                tokens = execute(step).generate(prompt, new).tokens
                rows.append({"model": name, "case": case, "pipeline": label,
                             "identical": tokens == hf})
    return rows


def _time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def timing(device: str, repeats: int = 5, new_tokens: int = 128) -> dict:
    torch.manual_seed(0)
    config = GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                        eos_token_id=None, bos_token_id=None)
    model = GPT2LMHeadModel(config).to(device=device, dtype=torch.float32).eval()
    rng = random.Random(0)
    prompt = [rng.randrange(50000) for _ in range(64)] * 6     # 384 tokens, repetitive
    ids = torch.tensor([prompt], device=device)
    lm = HFCausalLM(model)
    decoders = {"ours/autoregressive": Execute(lm)(autoregressive()),
                "ours/prompt-lookup": Execute(lm)(speculative(PromptLookup()))}
    runs = {
        "hf/greedy": lambda: model.generate(ids, do_sample=False, max_new_tokens=new_tokens,
                                            pad_token_id=0),
        "hf/prompt-lookup": lambda: model.generate(ids, do_sample=False,
                                                   max_new_tokens=new_tokens, pad_token_id=0,
                                                   prompt_lookup_num_tokens=10),
    }
    stats = {}
    for name, decoder in decoders.items():
        def run(decoder=decoder, name=name):
            stats[name] = decoder.generate(prompt, new_tokens).stats
        runs[name] = run
    for fn in runs.values():                                    # warm-up
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):                                    # interleaved
        for name, fn in runs.items():
            seconds[name] += _time(fn, 1)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "new_tokens": new_tokens, "prompt_tokens": len(prompt),
        "median_seconds": medians,
        "speedup_vs_hf_greedy": {n: medians["hf/greedy"] / s for n, s in medians.items()},
        "box_seconds": {n: s.box_seconds for n, s in stats.items()},
        "mean_accepted": {n: s.mean_accepted for n, s in stats.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not args.out.is_dir():
        parser.error(f"--out {args.out} is not a folder")
    rows = exactness(args.device)
    report = {"exactness": rows,
              "all_identical": all(r["identical"] for r in rows),
              "timing": timing(args.device, args.repeats)}
    path = args.out / f"gpu_check_{args.device.split(':')[0]}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "exactness"}, indent=2))
    print(f"exactness: {sum(r['identical'] for r in rows)}/{len(rows)} identical; "
          f"report in {path}")


if __name__ == "__main__":
    main()
