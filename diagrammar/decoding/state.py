"""The values on a step's wires: ``Context`` (a :class:`DecodeState`), ``Accepted`` (an
:class:`Acceptance`), and the record of one verification pass (a :class:`Verification`).

>>> state = DecodeState(session=None, tokens=[1, 2, 3], prompt_length=3, max_new_tokens=4)
>>> state.generated, state.draft_budget, state.config.greedy
(0, 3, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.tree import DraftTree


@dataclass(slots=True, frozen=True)
class Acceptance:
    """What a step accepts: draft node indices (root to leaf) and the new tokens, bonus last.

    ``rolled_back`` marks a step that a ``Check`` box undid: the state was already rolled back
    to an earlier token, and the commit keeps and appends nothing.
    """

    path: tuple[int, ...]
    tokens: tuple[int, ...]
    rolled_back: bool = field(default=False, repr=False)


@dataclass(slots=True)
class Verification:
    """One verification pass, as drafters' ``observe`` hooks receive it.

    Attributes:
        root: the last committed token before the pass.
        tree: the verified draft tree.
        scores: the target's scores, row 0 for the root and row ``i + 1`` for node ``i``
            (the whole tree's, not only the accepted path's).
        acceptance: what the step accepted (set once the step commits).
    """

    root: int
    tree: DraftTree
    scores: Any
    acceptance: Acceptance | None = None


@dataclass(slots=True)
class DecodeState:
    """One sequence being decoded: the value on the ``Context`` wire.

    Attributes:
        session: the model's cache over ``tokens[:-1]`` (a ``Session``).
        tokens: prompt and generated tokens so far.
        prompt_length: how many of ``tokens`` are the prompt.
        max_new_tokens: the generation budget.
        eos_token_ids: tokens that end the generation (kept in the output).
        config: how tokens are chosen (greedy by default).
        rng: the generation's one random generator, seeded from ``config.seed``.
        vocab_size: the target's vocabulary size, when known (draft ids are checked against it).
        done: set by the commit once the budget is spent or an end token is written.
        accepted_per_step: tokens committed at each step, the bonus token included.
        draft_nodes_per_step: draft nodes verified at each step (the tree after pruning).
        verification: the latest verification pass (set by Verify, completed by Commit).
        observers: called with every completed verification (drafters that learn).
        score_masks: set by a ``Constrain`` box for the next verification: the tree it
            constrained and which tokens the grammar allows after the root and after each of
            its nodes (one boolean row each); ``Verify`` applies them to the scores.
        stop_reason: why the generation ended early, when a box ended it (e.g. the grammar
            allows no further token).
        excluded: set by a ``Check`` box that backed off: tokens the next verification pass
            must not choose at its first position (row 0 of its scores); cleared once applied.
        rollbacks: how many times a ``Check`` box rolled committed tokens back (a step that
            rolls back makes progress though the sequence got no longer).
    """

    session: Any
    tokens: list[int]
    prompt_length: int
    max_new_tokens: int
    eos_token_ids: frozenset[int] = frozenset()
    config: GenerationConfig = field(default_factory=GenerationConfig)
    rng: np.random.Generator | None = None
    vocab_size: int | None = None
    done: bool = False
    accepted_per_step: list[int] = field(default_factory=list)
    draft_nodes_per_step: list[int] = field(default_factory=list)
    verification: Verification | None = None
    observers: list[Any] = field(default_factory=list)
    score_masks: Any = None
    stop_reason: str | None = None
    excluded: frozenset[int] = frozenset()
    rollbacks: int = 0

    def __post_init__(self) -> None:
        if self.rng is None:
            self.rng = self.config.rng()

    @property
    def generated(self) -> int:
        """How many tokens were generated so far."""
        return len(self.tokens) - self.prompt_length

    @property
    def draft_budget(self) -> int:
        """The deepest draft worth verifying: new tokens left, minus the bonus token."""
        return max(0, self.max_new_tokens - self.generated - 1)


__all__ = ["DecodeState", "Acceptance", "Verification"]
