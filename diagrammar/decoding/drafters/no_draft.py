"""The empty draft: with it, a step is plain autoregressive decoding.

>>> from diagrammar.decoding.state import DecodeState
>>> len(NoDraftDrafter()(DecodeState(None, [1], prompt_length=1, max_new_tokens=4)))
0
"""

from __future__ import annotations

from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.tree import DraftTree


class NoDraftDrafter(BaseDrafter):
    """Proposes nothing (the ``NoDraft`` box)."""

    def __call__(self, state: DecodeState) -> DraftTree:
        return DraftTree()


__all__ = ["NoDraftDrafter"]
