"""The decode loop: run a step ``DecodeState -> DecodeState`` until the sequence is done.

>>> from diagrammar.decoding.stats import DecodeStats
>>> class Session:                       # a stand-in model that always predicts token 7
...     def keep(self, path): pass
>>> class Model:
...     eos_token_ids = frozenset()
...     def check_length(self, prompt_length, max_new_tokens): pass
...     def session(self, ids): return Session()
>>> from diagrammar.decoding.commit import commit
>>> from diagrammar.decoding.state import Acceptance
>>> def step(state):
...     commit(state, Acceptance((), (7,)))
...     return state
>>> result = decode(step, Model(), [1, 2], max_new_tokens=3)
>>> result.tokens, result.stats.steps, result.stats.mean_accepted
([7, 7, 7], 3, 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.stats import DecodeStats


@dataclass
class Generation:
    """What a decode returns: the new tokens, their text (when a tokenizer is known) and stats."""

    tokens: list[int]
    text: str | None
    stats: DecodeStats


def decode(step: Callable[[DecodeState], DecodeState], model: Any, prompt_ids: Sequence[int],
           max_new_tokens: int, *, start: Callable[[DecodeState], None] | None = None,
           box_seconds: Mapping[str, float] | None = None) -> Generation:
    """Decodes up to ``max_new_tokens`` new tokens after ``prompt_ids``.

    Args:
        step: one decoding step.
        model: has ``check_length(prompt_length, max_new_tokens)``, ``session(prompt_ids)``
            and ``eos_token_ids``.
        start: called once with the fresh state before the first step.
        box_seconds: time per box, filled by the step; copied into the stats at the end.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    prompt = [int(t) for t in prompt_ids]
    model.check_length(len(prompt), max_new_tokens)
    started = time.perf_counter()
    state = DecodeState(model.session(prompt), list(prompt), len(prompt), max_new_tokens,
                        frozenset(model.eos_token_ids), done=max_new_tokens == 0)
    prefilled = time.perf_counter()
    if start is not None:
        start(state)
    while not state.done:
        state = step(state)
    finished = time.perf_counter()
    stats = DecodeStats(
        steps=len(state.accepted),
        new_tokens=state.generated,
        prefill_seconds=prefilled - started,
        decode_seconds=finished - prefilled,
        box_seconds=dict(box_seconds or {}),
        accepted=list(state.accepted),
    )
    return Generation(state.tokens[state.prompt_length:], None, stats)


__all__ = ["Generation", "decode"]
