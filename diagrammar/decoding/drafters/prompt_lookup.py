"""Prompt lookup: drafts what followed an earlier occurrence of the context's last n-gram.

>>> from diagrammar.decoding.state import DecodeState
>>> drafter = PromptLookupDrafter(num_tokens=3, max_ngram=2)
>>> state = DecodeState(None, [7, 8, 9, 4, 7, 8], prompt_length=6, max_new_tokens=10)
>>> drafter.start(state)
>>> drafter(state).tokens
[9, 4, 7]
"""

from __future__ import annotations

from collections.abc import Sequence

from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.tree import DraftTree


class PromptLookupDrafter(BaseDrafter):
    """Copies what followed an earlier occurrence of the context's last n-gram.

    Of the occurrences of the longest matching n-gram, the latest one with a full-length
    continuation is used (or, if none has one, the one with the longest continuation).

    Keeps an index from n-grams to the positions that follow them, extended with each new
    token, so a lookup costs a few dictionary probes rather than a scan of the context.

    Args:
        num_tokens: length of the main chain.
        max_ngram, min_ngram: the n-gram sizes tried, longest first.
        branches: how many distinct continuations to draft (1 = a chain).
        branch_tokens: length of each side branch.
        scan_limit: how many of the latest matches are scanned for a full-length continuation
            and for side branches.
    """

    def __init__(self, num_tokens: int = 10, max_ngram: int = 3, min_ngram: int = 1,
                 branches: int = 1, branch_tokens: int = 3, scan_limit: int = 64) -> None:
        self.num_tokens = num_tokens
        self.sizes = range(max_ngram, min_ngram - 1, -1)
        self.branches = branches
        self.branch_tokens = branch_tokens
        self.scan_limit = scan_limit
        self._index: dict[tuple[int, ...], list[int]] = {}
        self._indexed = 0

    def start(self, state: DecodeState) -> None:
        self._index = {}
        self._indexed = 0

    def _extend_index(self, tokens: Sequence[int]) -> None:
        index = self._index
        sizes = self.sizes
        for position in range(max(self._indexed, 1), len(tokens)):
            for n in sizes:
                if position >= n:
                    key = tuple(tokens[position - n:position])
                    found = index.get(key)
                    if found is None:
                        index[key] = [position]
                    else:
                        found.append(position)
        self._indexed = len(tokens)

    def __call__(self, state: DecodeState) -> DraftTree:
        tokens = state.tokens
        if self._indexed < len(tokens):
            self._extend_index(tokens)
        tree = DraftTree()
        budget = state.draft_budget
        if budget == 0:
            return tree
        positions = None
        for n in self.sizes:
            if len(tokens) >= n:
                positions = self._index.get(tuple(tokens[-n:]))
                if positions:
                    break
        if not positions:
            return tree
        wanted = min(self.num_tokens, budget)
        best = positions[-1]
        if len(tokens) - best < wanted:
            # The latest match often sits inside the repetition being written, so its
            # continuation runs into the end of the context: take the latest match that has
            # a full-length continuation, else the one with the longest.
            for position in reversed(positions[-self.scan_limit:-1]):
                if len(tokens) - position > len(tokens) - best:
                    best = position
                    if len(tokens) - position >= wanted:
                        break
        tree.add_path(tokens[best:best + wanted])
        if self.branches > 1:
            branches = self.branches - 1
            length = min(self.branch_tokens, budget)
            for position in reversed(positions[-self.scan_limit:]):
                before = len(tree)
                tree.add_path(tokens[position:position + length])
                if len(tree) > before:
                    branches -= 1
                    if branches == 0:
                        break
        return tree


__all__ = ["PromptLookupDrafter"]
