"""Merging drafters: several drafters run on the same state; their trees are unioned.

>>> from diagrammar.decoding.drafters.prompt_lookup import PromptLookupDrafter
>>> from diagrammar.decoding.state import DecodeState
>>> state = DecodeState(None, [7, 8, 9, 7, 8, 5, 7, 8], prompt_length=8, max_new_tokens=9)
>>> drafter = MergeDrafter([PromptLookupDrafter(num_tokens=2),
...                         PromptLookupDrafter(num_tokens=1, max_ngram=1)])
>>> drafter.start(state)
>>> drafter(state).paths()
[[5, 7]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagrammar.decoding.drafters.base import BaseDrafter, learns
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree


class MergeDrafter(BaseDrafter):
    """Runs several drafters on the same state and unions their trees (the ``Merge`` box).

    ``start`` and ``observe`` reach every merged drafter that has them.

    Args:
        drafters: callables ``state -> DraftTree``, optionally with ``start``/``observe``.
    """

    def __init__(self, drafters: Sequence[Any]) -> None:
        self.drafters = list(drafters)

    def start(self, state: DecodeState) -> None:
        for drafter in self.drafters:
            start = getattr(drafter, "start", None)
            if start is not None:
                start(state)

    def __call__(self, state: DecodeState) -> DraftTree:
        trees = [drafter(state) for drafter in self.drafters]
        merged = trees[0]
        for tree in trees[1:]:
            merged.union(tree)
        return merged

    def parts(self) -> list[Any]:
        """The merged drafters."""
        return list(self.drafters)

    def learns(self) -> bool:
        return any(learns(drafter) for drafter in self.drafters)

    def observe(self, state: DecodeState, verification: Verification) -> None:
        for drafter in self.drafters:
            observe = getattr(drafter, "observe", None)
            if observe is not None:
                observe(state, verification)


__all__ = ["MergeDrafter"]
