"""The contracts between the decoding loop, models and drafters, as ``typing.Protocol``s.

A backend provides a :class:`LanguageModel` whose ``session(prompt)`` returns a
:class:`Session`; drafters are :class:`Drafter`\\ s. The step wiring in
:mod:`diagrammar.decoding.steps` uses nothing else, so a new backend (JAX, NumPy, a remote
server) is a model loader plus one session class.

The cache convention: a session holds every committed token but the last one, the *root*.
``verify(root, tokens, parents)`` scores the root and a draft tree below it in one pass;
``keep(path)`` keeps the root's and the accepted nodes' entries; ``truncate(n)`` rolls back.
A model that decodes several sequences at once also offers ``batch_session(max_batch)``, a
:class:`BatchSession` whose rows are sessions verified together in one pass.

>>> from diagrammar.decoding.drafters import NoDraftDrafter, PromptLookupDrafter
>>> isinstance(PromptLookupDrafter(), Drafter), isinstance(NoDraftDrafter(), Drafter)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree


@runtime_checkable
class Session(Protocol):
    """The KV cache of one sequence under a model, scored tree by tree.

    Attributes:
        cache_length: how many committed tokens the cache holds (all but the root).
    """

    cache_length: int

    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> Any:
        """Scores the root and the draft tree (``tokens``, ``parents``; -1 is the root) in one
        pass: a ``(1 + len(tokens), vocab)`` array whose row ``i + 1`` scores node ``i``'s
        next token. Anything with ``argmax(-1)`` and ``tolist()`` (torch, NumPy, JAX)."""
        ...

    def keep(self, path: Sequence[int]) -> None:
        """After ``verify``, keeps the root's and the accepted nodes' cache entries."""
        ...

    def truncate(self, length: int) -> None:
        """Rolls the cache back to its first ``length`` tokens."""
        ...


@runtime_checkable
class LanguageModel(Protocol):
    """A target model as the decoding loop sees it.

    Attributes:
        eos_token_ids: the tokens that end a generation.
        vocab_size: the number of rows of the output embedding (ids must be below it).
    """

    eos_token_ids: frozenset[int]
    vocab_size: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``."""
        ...

    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        """Raises a clear error when the prompt plus the new tokens cannot fit."""
        ...

    def session(self, prompt_ids: Sequence[int]) -> Session:
        """Prefills a cache with the prompt (all but its last token) and returns it."""
        ...


@runtime_checkable
class BatchSession(Protocol):
    """The KV caches of several sequences under one model, verified in one forward pass.

    A model that can batch returns one from ``batch_session(max_batch)``. Each row is a
    :class:`Session` of its own (``keep``, ``truncate`` and even ``verify`` work row by row);
    :meth:`verify_rows` scores several rows' trees together, each exactly as that row's own
    ``verify`` would. Rows come and go: :meth:`add` prefills new prompts into free slots,
    :meth:`remove` frees a row's slot; the other rows' caches are never recomputed.

    Attributes:
        rows: the row sessions held now.
    """

    rows: list[Session]

    def add(self, prompts: Sequence[Sequence[int]]) -> list[Session]:
        """Prefills each prompt (all but its last token) into a new row; one session each."""
        ...

    def remove(self, row: Session) -> None:
        """Frees the slot of ``row`` (a finished sequence)."""
        ...

    def verify_rows(self, requests: Sequence[tuple[Session, int, Sequence[int],
                                                   Sequence[int]]]) -> list[Any]:
        """Scores ``(row, root, tokens, parents)`` for several rows in one pass: one array of
        scores per request, as :meth:`Session.verify` returns for that row alone."""
        ...


@runtime_checkable
class Drafter(Protocol):
    """Proposes draft trees, and may learn from every verification pass.

    ``start`` prepares per-sequence data before a generation; ``__call__`` drafts a tree below
    the state's last token (at most ``state.draft_budget`` deep; deeper nodes are pruned);
    ``observe`` receives every verification pass with the whole tree's scores (Token
    Recycling, ADED and online drafters learn from it).
    """

    def start(self, state: DecodeState) -> None:
        ...

    def __call__(self, state: DecodeState) -> DraftTree:
        ...

    def observe(self, state: DecodeState, verification: Verification) -> None:
        ...


__all__ = ["Session", "BatchSession", "LanguageModel", "Drafter"]
