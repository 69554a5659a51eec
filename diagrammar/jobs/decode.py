"""Decoding a list of jobs with one decoder: what a batch job runs, in-process or on each Ray
worker.

Each job's prompt is first checked against the model (text it can encode, token ids in its
vocabulary, prompt plus budget within its context); a job that fails becomes a
:class:`~diagrammar.jobs.inputs.LineError` naming its input line, and the others go on. The
jobs that pass are grouped by budget, and each group is decoded batched with
:meth:`Decoder.stream <diagrammar.functors.execute.Decoder.stream>` (continuous batching, up
to ``max_batch`` rows at once), yielding one result record per job as it finishes.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from diagrammar.diagrams import read_pipeline
>>> from diagrammar.functors.execute import Execute
>>> from diagrammar.jobs.inputs import Job
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1,
...                                    n_head=2, eos_token_id=None, bos_token_id=None))
>>> decoder = Execute(model)(read_pipeline("prompt-lookup"))
>>> jobs = [Job("a", 1, (1, 2, 3, 1, 2)), Job("b", 2, (4, 5), max_new_tokens=3),
...         Job("c", 3, (70,)), Job("d", 4, tuple(range(30)))]
>>> outcomes = list(decode_jobs(decoder, jobs, DecodeOptions(max_new_tokens=6)))
>>> for outcome in outcomes:
...     print(outcome.describe("in.jsonl")[:60] if isinstance(outcome, LineError) else
...           (outcome["id"], len(outcome["tokens"]), outcome["stats"]["new_tokens"]))
in.jsonl line 3: prompt token id 70 (at position 0) is outsi
in.jsonl line 4: the prompt has 30 tokens and 6 new tokens w
('a', 6, 6)
('b', 3, 3)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.loop import Generation, check_token_ids
from diagrammar.jobs.inputs import Job, LineError
from diagrammar.models.errors import ModelError

#: What decoding a job gives: its result record, or the error that skipped its line.
Outcome = dict[str, Any] | LineError


@dataclass(frozen=True)
class DecodeOptions:
    """How the jobs of a batch are decoded (the same on every worker).

    Attributes:
        max_new_tokens: the budget of a job that does not give its own.
        config: how tokens are chosen (greedy when ``None``).
        max_batch: the most prompts decoded at once by one decoder (bounds memory).
        policy: the batch-aware tree policy of :meth:`Decoder.stream
            <diagrammar.functors.execute.Decoder.stream>` (``"auto"`` or ``None``).
    """

    max_new_tokens: int = 128
    config: GenerationConfig | None = None
    max_batch: int = 8
    policy: Any = "auto"


def prompt_ids(model: Any, job: Job, max_new_tokens: int) -> list[int]:
    """The token ids of ``job``'s prompt, checked against ``model`` for a decode of
    ``max_new_tokens``.

    Raises:
        ValueError: ids outside the vocabulary, an empty prompt, or one that does not fit
            the context with its budget.
        ModelError: a text prompt for a model without a tokenizer.
    """
    if isinstance(job.prompt, str):
        ids = list(model.encode(job.prompt))
    else:
        ids = check_token_ids(job.prompt, getattr(model, "vocab_size", None))
    if not ids:
        raise ValueError("the prompt is empty: give at least one token")
    model.check_length(len(ids), max_new_tokens)
    return ids


def result_record(job: Job, generation: Generation) -> dict[str, Any]:
    """The output line of a finished job: ``{"id", "text", "tokens", "stats"}``."""
    return {"id": job.id, "text": generation.text, "tokens": list(generation.tokens),
            "stats": generation.stats.as_dict()}


def decode_jobs(decoder: Any, jobs: Sequence[Job],
                options: DecodeOptions = DecodeOptions()) -> Iterator[Outcome]:
    """Decodes ``jobs`` with ``decoder`` (a :class:`~diagrammar.functors.execute.Decoder`):
    first yields a :class:`LineError` for each job whose prompt does not fit the model, then
    each other job's result record as it finishes (see :func:`result_record`)."""
    groups: dict[int, list[tuple[Job, list[int]]]] = {}
    for job in jobs:
        budget = options.max_new_tokens if job.max_new_tokens is None else job.max_new_tokens
        try:
            ids = prompt_ids(decoder.model, job, budget)
        except (ValueError, ModelError) as error:
            yield LineError(job.line, str(error))
            continue
        groups.setdefault(budget, []).append((job, ids))
    for budget, group in groups.items():
        stream = decoder.stream([ids for _, ids in group], budget, options.config,
                                max_batch=options.max_batch, policy=options.policy)
        for index, generation in stream:
            yield result_record(group[index][0], generation)


__all__ = ["DecodeOptions", "Outcome", "decode_jobs", "prompt_ids", "result_record"]
