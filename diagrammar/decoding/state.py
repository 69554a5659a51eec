"""The value that travels on a step's ``Context`` wire, and on its ``Accepted`` wire.

>>> state = DecodeState(session=None, tokens=[1, 2, 3], prompt_length=3, max_new_tokens=4)
>>> state.generated, state.draft_budget
(0, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class DecodeState:
    """One sequence being decoded.

    Attributes:
        session: the model's cache over ``tokens[:-1]`` (e.g. a :class:`TreeSession`).
        tokens: prompt and generated tokens so far.
        prompt_length: how many of ``tokens`` are the prompt.
        max_new_tokens: the generation budget.
        eos_token_ids: tokens that end the generation (kept in the output).
        done: set by the commit once the budget is spent or an end token is written.
        accepted: tokens committed at each step, the bonus token included.
    """

    session: Any
    tokens: list[int]
    prompt_length: int
    max_new_tokens: int
    eos_token_ids: frozenset[int] = frozenset()
    done: bool = False
    accepted: list[int] = field(default_factory=list)

    @property
    def generated(self) -> int:
        """How many tokens were generated so far."""
        return len(self.tokens) - self.prompt_length

    @property
    def draft_budget(self) -> int:
        """The deepest draft worth verifying: new tokens left, minus the bonus token."""
        return max(0, self.max_new_tokens - self.generated - 1)


@dataclass(slots=True, frozen=True)
class Acceptance:
    """What a step accepts: draft node indices (root to leaf) and the new tokens, bonus last."""

    path: tuple[int, ...]
    tokens: tuple[int, ...]


__all__ = ["DecodeState", "Acceptance"]
