"""Running a batch job in this process: one decoder, built once, decodes every job.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from diagrammar.diagrams import read_pipeline
>>> from diagrammar.functors.execute import Execute
>>> from diagrammar.jobs.inputs import Job
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1,
...                                    n_head=2, eos_token_id=None, bos_token_id=None))
>>> runner = LocalRunner(lambda: Execute(model)(read_pipeline("prompt-lookup")),
...                      DecodeOptions(max_new_tokens=4))
>>> sorted(record["id"] for record in runner.run([Job(1, 1, (1, 2)), Job(2, 2, (3, 4))]))
[1, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from diagrammar.jobs.decode import DecodeOptions, Outcome, decode_jobs
from diagrammar.jobs.inputs import Job


class LocalRunner:
    """Decodes jobs in this process, with the decoder ``make_decoder`` builds (on the first
    :meth:`run` that has jobs; later runs reuse it).

    Args:
        make_decoder: builds the :class:`~diagrammar.functors.execute.Decoder`, e.g. a
            :class:`~diagrammar.jobs.factory.DecoderFactory`.
        options: budget, generation config and batch size (the defaults when ``None``).
    """

    def __init__(self, make_decoder: Callable[[], Any],
                 options: DecodeOptions | None = None) -> None:
        self.make_decoder = make_decoder
        self.options = options or DecodeOptions()
        self.decoder: Any = None

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Each job's result record (or the :class:`~diagrammar.jobs.inputs.LineError` that
        skipped it), as it finishes."""
        if not jobs:
            return
        if self.decoder is None:
            self.decoder = self.make_decoder()
        yield from decode_jobs(self.decoder, jobs, self.options)


__all__ = ["LocalRunner"]
