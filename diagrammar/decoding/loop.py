"""The decode loop: run a step ``DecodeState -> DecodeState`` until the sequence is done.

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
>>> decode(lambda state: state, Model(), [1, 2], max_new_tokens=3)
Traceback (most recent call last):
...
diagrammar.decoding.steps.DecodingError: a decoding step committed no token ...
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.stats import DecodeStats
from diagrammar.decoding.steps import DecodingError


@dataclass
class Generation:
    """What a decode returns: the new tokens, their text (when a tokenizer is known) and stats."""

    tokens: list[int]
    text: str | None
    stats: DecodeStats


def check_token_ids(ids: Sequence[Any], vocab_size: int | None) -> list[int]:
    """The prompt as a list of ints, with a clear error for ids that are not token ids.

    >>> check_token_ids([1, 2], 10)
    [1, 2]
    >>> check_token_ids([1, 12], 10)
    Traceback (most recent call last):
    ...
    ValueError: prompt token id 12 (at position 1) is outside the model's vocabulary of 10
    """
    prompt = []
    for position, token in enumerate(ids):
        if isinstance(token, bool) or not hasattr(token, "__index__"):
            raise ValueError(f"prompt token ids must be integers, got {token!r} at position "
                             f"{position}")
        token = int(token)
        if token < 0 or (vocab_size is not None and token >= vocab_size):
            limit = f"the model's vocabulary of {vocab_size}" if vocab_size else "0 and up"
            raise ValueError(f"prompt token id {token} (at position {position}) is outside "
                             f"{limit}")
        prompt.append(token)
    return prompt


def check_budget(max_new_tokens: Any) -> None:
    """Raises a clear error unless ``max_new_tokens`` is an integer >= 0.

    >>> check_budget(-1)
    Traceback (most recent call last):
    ...
    ValueError: max_new_tokens must be an integer >= 0, got -1
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")


def progress_mark(state: DecodeState) -> tuple[int, int]:
    """What :func:`check_progress` compares before and after a step: the sequence's length
    and how many rollbacks a ``Check`` box made (a rollback is progress: its retries are
    bounded)."""
    return len(state.tokens), state.rollbacks


def check_progress(state: DecodeState, mark: int | tuple[int, int]) -> None:
    """Raises :class:`DecodingError` when a step left ``state`` where it found it (``mark``:
    :func:`progress_mark` before the step, or the length alone) without ending the
    generation (a step that never commits would loop forever)."""
    if isinstance(mark, int):
        mark = (mark, state.rollbacks)
    if not state.done and progress_mark(state) == mark:
        raise DecodingError(
            "a decoding step committed no token and did not end the generation: a step "
            "must end with a box that commits (e.g. ... >> Verify() >> GreedyAccept() >> "
            "Commit())")


def generation_of(state: DecodeState, prefill_seconds: float, decode_seconds: float,
                  box_seconds: Mapping[str, float] | None) -> Generation:
    """What a finished decode returns: its new tokens and stats."""
    stats = DecodeStats(
        steps=len(state.accepted_per_step),
        new_tokens=state.generated,
        prefill_seconds=prefill_seconds,
        decode_seconds=decode_seconds,
        box_seconds=dict(box_seconds or {}),
        accepted_per_step=list(state.accepted_per_step),
        config=state.config,
        draft_nodes_per_step=list(state.draft_nodes_per_step),
        stop_reason=state.stop_reason,
    )
    return Generation(state.tokens[state.prompt_length:], None, stats)


def decode(step: Callable[[DecodeState], DecodeState], model: Any, prompt_ids: Sequence[int],
           max_new_tokens: int, *, config: GenerationConfig | None = None,
           start: Callable[[DecodeState], None] | None = None,
           box_seconds: Mapping[str, float] | None = None) -> Generation:
    """Decodes up to ``max_new_tokens`` new tokens after ``prompt_ids``.

    Args:
        step: one decoding step.
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel` (``check_length``,
            ``session``, ``eos_token_ids``; ``vocab_size`` when known).
        config: how tokens are chosen; greedy by default.
        start: called once with the fresh state before the first step.
        box_seconds: time per box, filled by the step; copied into the stats at the end.

    Raises:
        DecodingError: when a step commits no token and does not end the generation.
    """
    check_budget(max_new_tokens)
    vocab_size = getattr(model, "vocab_size", None)
    prompt = check_token_ids(prompt_ids, vocab_size)
    model.check_length(len(prompt), max_new_tokens)
    config = config if config is not None else GenerationConfig()
    started = time.perf_counter()
    session = model.session(prompt)
    synchronize = getattr(session, "synchronize", None)
    if synchronize is not None:
        synchronize()
    state = DecodeState(session, list(prompt), len(prompt), max_new_tokens,
                        frozenset(model.eos_token_ids), config=config, vocab_size=vocab_size,
                        done=max_new_tokens == 0)
    prefilled = time.perf_counter()
    if start is not None:
        start(state)
    while not state.done:
        mark = progress_mark(state)
        state = step(state)
        check_progress(state, mark)
    finished = time.perf_counter()
    return generation_of(state, prefilled - started, finished - prefilled, box_seconds)

__all__ = ["Generation", "decode", "check_token_ids", "check_budget", "check_progress",
           "progress_mark", "generation_of"]
