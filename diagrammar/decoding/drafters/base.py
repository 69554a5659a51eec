"""A base for drafters: no per-sequence data, learns nothing. Subclass and override.

>>> from diagrammar.decoding.state import DecodeState
>>> class Repeat(BaseDrafter):             # drafts the last token once more
...     def __call__(self, state):
...         return DraftTree.chain(state.tokens[-1:])
>>> Repeat()(DecodeState(None, [3, 4], prompt_length=2, max_new_tokens=5)).tokens
[4]
"""

from __future__ import annotations

from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree


class BaseDrafter:
    """Implements the :class:`~diagrammar.decoding.protocols.Drafter` protocol with no-ops.

    ``start`` is called with the fresh state before each generation, ``observe`` after every
    verification pass; both do nothing here.
    """

    def start(self, state: DecodeState) -> None:
        """Prepares per-sequence data; nothing to prepare here."""

    def __call__(self, state: DecodeState) -> DraftTree:
        raise NotImplementedError

    def observe(self, state: DecodeState, verification: Verification) -> None:
        """Learns from a verification pass; nothing to learn here."""

    def learns(self) -> bool:
        """Whether :meth:`observe` does anything (a subclass overrides it): only then is the
        drafter handed the verification passes."""
        return type(self).observe is not BaseDrafter.observe


def drafter_parts(drafter: object) -> list[object]:
    """``drafter`` and, for composite drafters (those with ``parts()``: merges, RASD), every
    drafter inside it, depth first.

    >>> from diagrammar.decoding.drafters.merge import MergeDrafter
    >>> inner = BaseDrafter()
    >>> [type(d).__name__ for d in drafter_parts(MergeDrafter([inner, MergeDrafter([inner])]))]
    ['MergeDrafter', 'BaseDrafter', 'MergeDrafter', 'BaseDrafter']
    """
    found = [drafter]
    parts = getattr(drafter, "parts", None)
    for part in (parts() if callable(parts) else ()):
        found.extend(drafter_parts(part))
    return found


def learns(drafter: object) -> bool:
    """Whether ``drafter`` wants the verification passes: its ``learns()`` when it has one,
    else whether it has an ``observe`` hook at all."""
    method = getattr(drafter, "learns", None)
    return bool(method()) if callable(method) else hasattr(drafter, "observe")


__all__ = ["BaseDrafter", "DraftTree", "drafter_parts", "learns"]
