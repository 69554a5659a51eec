"""The diagrammar demo: a speculative decoder, composed from boxes, on a real model.

1. loads the embedded default model — a GPT-2 trained by this project on Python source, shipped
   inside the package (``small``; ``--tiny`` for a quick look);
2. composes a speculative pipeline and saves its drawing as PNG;
3. decodes held-out prompts (modules the model never saw), printing each continuation;
4. shows that the output is identical to greedy decoding (ours and Hugging Face's), and the
   speedup against Hugging Face greedy ``generate`` measured in the same run, interleaved.

Run:  make demo          (or: python examples/demo.py [--tiny] [--model PATH])
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from diagrammar import PromptLookup, autoregressive, speculative
from diagrammar.bench.config import load_bench_model
from diagrammar.bench.exactness import first_divergence, logit_margin
from diagrammar.bench.prompts import CATEGORIES, build_prompts
from diagrammar.functors import Draw, Execute


def hf_greedy(lm, ids: list[int], max_new_tokens: int) -> list[int]:
    inputs = torch.tensor([ids])
    with torch.inference_mode():
        out = lm.model.generate(inputs, attention_mask=torch.ones_like(inputs), do_sample=False,
                                max_new_tokens=max_new_tokens,
                                pad_token_id=lm.tokenizer.eos_token_id)
    return out[0, len(ids):].tolist()


def timed(run, *args):
    began = time.perf_counter()
    value = run(*args)
    return value, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="use the tiny default model")
    parser.add_argument("--model", default=None, help="a local Hugging Face model folder")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per prompt")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = args.model or ("default:tiny" if args.tiny else "default:small")
    if spec.startswith("default:"):
        from diagrammar.models.default import model_folder

        ready = model_folder(spec.removeprefix("default:")) is not None
        print(f"model: {spec}" + ("" if ready else " (not shipped or cached: training it "
                                                      "first, about an hour for small)"))
    else:
        print(f"model: {spec}")
    lm = load_bench_model(spec).lm
    step = speculative(PromptLookup())
    args.out.mkdir(parents=True, exist_ok=True)
    picture = Draw()(step, args.out / "demo_pipeline.png")
    print(f"pipeline: {' >> '.join(box.name for box in step.boxes)}  (drawn to {picture})\n")

    execute = Execute(lm)
    fast, greedy = execute(step), execute(autoregressive())
    count = lambda text: len(lm.encode(text))  # noqa: E731
    limit = lm.max_positions - args.max_new_tokens
    prompts = build_prompts(1, count_tokens=count, max_prompt_tokens=limit)

    speedups, mats, identical = [], [], True
    for prompt in prompts:
        ids = lm.encode(prompt.text)
        hf_times, ours_times = [], []
        for _ in range(args.repeats):         # interleaved: HF, ours, HF, ours, ...
            reference, seconds = timed(hf_greedy, lm, ids, args.max_new_tokens)
            hf_times.append(seconds)
            result, seconds = timed(fast.generate, ids, args.max_new_tokens)
            ours_times.append(seconds)
        plain = greedy.generate(ids, args.max_new_tokens).tokens
        same = result.tokens == reference == plain
        speedup = statistics.median(hf_times) / statistics.median(ours_times)
        speedups.append(speedup)
        mats.append(result.stats.mean_accepted)
        print(f"--- {prompt.category}: {prompt.module}.{prompt.name} "
              f"({len(ids)} prompt tokens) ---")
        print(prompt.text[-300:].lstrip("\n") + "\033[1m" + result.text + "\033[0m")
        print(f"[identical to greedy (ours and Hugging Face): {same}; MAT "
              f"{result.stats.mean_accepted:.2f}; {speedup:.2f}x Hugging Face greedy]\n")
        if not same:
            identical = False
            where = first_divergence(reference, result.tokens)
            margin = logit_margin(lm, ids + reference[:where])
            print(f"  diverged at token {where}; target logit margin there {margin:.3g} "
                  "(a margin near 0 is a float32 near-tie, not a bug)")

    print(f"categories: {', '.join(CATEGORIES)}")
    print(f"median speedup against Hugging Face greedy generate: "
          f"{statistics.median(speedups):.2f}x (same run, interleaved, {args.threads} threads); "
          f"mean accepted tokens per step {statistics.mean(mats):.2f}")
    print("all outputs identical to greedy decoding" if identical else
          "some outputs differ from greedy decoding: see the margins above")


if __name__ == "__main__":
    main()
