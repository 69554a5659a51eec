"""A batch job over 2 local Ray workers against the same job in one process.

Builds ``--prompts`` prompts (200 by default) from :mod:`diagrammar.bench.prompts` (the
default model's held-out modules and installed third-party packages; nothing is downloaded),
writes them as a JSONL input, runs it with :func:`diagrammar.jobs.run_batch` in this process
and over Ray (a local instance of ``--workers`` CPUs started here, one model per actor), and
checks that both outputs hold every prompt once with identical tokens and text. With
``--kill-one``, one Ray worker process is SIGKILLed once the first results are back (its
unfinished chunks must be re-run by a replacement). Prints a short JSON summary, and writes it
to ``--json`` when given.

Run:  python benchmarks/batch_ray_check.py [--kill-one] [--json results/batch_ray_check.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")               # never touch the network

from diagrammar.bench.prompts import CATEGORIES, build_prompts  # noqa: E402
from diagrammar.jobs import (  # noqa: E402
    DecodeOptions,
    DecoderFactory,
    LocalRunner,
    RayRunner,
    read_results,
    run_batch,
)


class KillOne:
    """Runs a RayRunner and SIGKILLs a worker holding unfinished chunks after the first
    result."""

    def __init__(self, runner: RayRunner) -> None:
        self.runner, self.killed = runner, None

    def run(self, jobs):
        for outcome in self.runner.run(jobs):
            yield outcome
            if self.killed is None:
                victim = next(actor for actor in self.runner.actors if actor.chunks)
                self.killed = {"pid": victim.pid, "chunks_held": len(victim.chunks)}
                os.kill(victim.pid, signal.SIGKILL)


def write_input(path: Path, count: int, max_new_tokens: int, factory: DecoderFactory) -> None:
    from diagrammar.models.resolve import resolve_model

    model = resolve_model(factory.model)
    per_category = -(-count // len(CATEGORIES))
    prompts = build_prompts(per_category, count_tokens=lambda text: len(model.encode(text)),
                            max_prompt_tokens=model.max_positions - max_new_tokens)
    with path.open("w") as file:
        for prompt in prompts[:count]:
            file.write(json.dumps({"id": prompt.id, "prompt": prompt.text}) + "\n")


def timed_batch(source: Path, output: Path, runner) -> tuple[float, object]:
    began = time.perf_counter()
    summary = run_batch(source, output, runner, progress=sys.stderr.isatty())
    return time.perf_counter() - began, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default:small")
    parser.add_argument("--pipeline", default="prompt-lookup")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the in-process run (default: torch's choice; "
                             "each Ray worker uses one)")
    parser.add_argument("--kill-one", action="store_true",
                        help="SIGKILL one Ray worker after the first results")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()

    import ray

    folder = Path(tempfile.mkdtemp(prefix="batch-ray-check-"))
    factory = DecoderFactory(args.model, args.pipeline)
    options = DecodeOptions(max_new_tokens=args.max_new_tokens, max_batch=args.max_batch)
    source = folder / "prompts.jsonl"
    write_input(source, args.prompts, args.max_new_tokens, factory)

    local_factory = DecoderFactory(args.model, args.pipeline, threads=args.threads)
    local_seconds, local = timed_batch(source, folder / "local.jsonl",
                                       LocalRunner(local_factory, options))

    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR")
    runner = RayRunner(factory, options, workers=args.workers, report=lambda line: print(
        line, file=sys.stderr))
    killing = KillOne(runner) if args.kill_one else None
    ray_seconds, sharded = timed_batch(source, folder / "ray.jsonl", killing or runner)
    ray.shutdown()

    ours, theirs = read_results(folder / "local.jsonl"), read_results(folder / "ray.jsonl")
    ray_lines = (folder / "ray.jsonl").read_text().splitlines()
    mismatched = sorted(key for key in ours if key in theirs and (
        ours[key]["tokens"], ours[key]["text"]) != (theirs[key]["tokens"], theirs[key]["text"]))
    new_tokens = sum(len(record["tokens"]) for record in ours.values())
    summary = {
        "model": args.model, "pipeline": args.pipeline, "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens, "max_batch": args.max_batch,
        "new_tokens": new_tokens,
        "single_process": {"seconds": round(local_seconds, 2), "results": local.done,
                           "skipped": len(local.skipped), "threads": args.threads or "torch",
                           "tokens_per_second": round(new_tokens / local_seconds, 1)},
        "ray": {"workers": args.workers, "seconds": round(ray_seconds, 2),
                "results": sharded.done, "skipped": len(sharded.skipped),
                "output_lines": len(ray_lines), "restarts": runner.restarts,
                "chunks_requeued": runner.requeued,
                "killed": killing.killed if killing else None,
                "tokens_per_second": round(new_tokens / ray_seconds, 1)},
        "identical": not mismatched and set(ours) == set(theirs)
        and len(ray_lines) == len(theirs),
        "mismatched_ids": mismatched[:10],
        "missing_from_ray": sorted(set(ours) - set(theirs))[:10],
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    sys.exit(0 if summary["identical"] else 1)


if __name__ == "__main__":
    main()
