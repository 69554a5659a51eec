"""Draft trees: tokens hanging below the last committed token, stored as a trie.

Nodes are numbered in insertion order, so a parent always comes before its children; the
parent ``-1`` is the root (the last committed token). A node may carry the drafter's
probability of its token given its path (``probs``; ``None`` for deterministic drafters), which
speculative sampling needs. A drafter that *samples* its tokens records how: a
:class:`Proposal` per parent node (the distribution it drew from, the draws in order, with or
without replacement), which the exact sampling acceptance rules read; nodes without one are
deterministic candidates (a one-hot draft distribution).

>>> tree = DraftTree()
>>> tree.add_path([5, 6, 7])
[0, 1, 2]
>>> tree.add_path([5, 9])
[0, 3]
>>> tree.tokens, tree.parents
([5, 6, 7, 9], [-1, 0, 1, 0])
>>> tree.child(-1, 5), tree.child(0, 8)
(0, None)
>>> tree.add(0, 8, prob=0.25), tree.probs
(4, [None, None, None, None, 0.25])
>>> tree.prune(1).tokens
[5]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Proposal:
    """How a sampling drafter drew the children of one node.

    Attributes:
        distribution: the drafter's (warped) next-token distribution at the node, a
            ``(vocab,)`` array of probabilities summing to 1.
        draws: the drawn tokens in the order drawn (repeats kept when drawn with replacement).
        replacement: ``True`` for independent draws, ``False`` for draws without replacement
            (each from the distribution with the earlier draws removed).

    >>> Proposal([0.5, 0.5], (1, 1)).draws
    (1, 1)
    """

    distribution: Any
    draws: tuple[int, ...]
    replacement: bool = True


class DraftTree:
    """A token trie below the root. Adding a path shares the prefix it has with earlier paths."""

    __slots__ = ("tokens", "parents", "probs", "proposals", "_children")

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        #: The drafter's probability of each node's token given its path, or ``None``.
        self.probs: list[float | None] = []
        #: How sampled children were drawn, by parent node (-1 the root); see Proposal.
        self.proposals: dict[int, list[Proposal]] = {}
        self._children: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"DraftTree(tokens={self.tokens}, parents={self.parents})"

    @classmethod
    def chain(cls, tokens: Iterable[int]) -> DraftTree:
        """A tree that is one path."""
        tree = cls()
        tree.add_path(tokens)
        return tree

    def add(self, parent: int, token: int, prob: float | None = None) -> int:
        """The node for ``token`` under ``parent``, created if missing.

        ``prob`` is the drafter's probability of ``token`` after the node's path; an existing
        node keeps the probability it has, unless it had none.
        """
        key = (parent, token)
        node = self._children.get(key)
        if node is None:
            node = len(self.tokens)
            self._children[key] = node
            self.tokens.append(token)
            self.parents.append(parent)
            self.probs.append(prob)
        elif prob is not None and self.probs[node] is None:
            self.probs[node] = prob
        return node

    def add_path(self, tokens: Iterable[int], parent: int = -1,
                 probs: Iterable[float] | None = None) -> list[int]:
        """Adds a path below ``parent`` (with the drafter's ``probs``, if any) and returns its
        node indices."""
        nodes = []
        tokens = list(tokens)
        probs = [None] * len(tokens) if probs is None else list(probs)
        if len(probs) != len(tokens):
            raise ValueError(f"{len(tokens)} tokens but {len(probs)} probabilities")
        for token, prob in zip(tokens, probs):
            parent = self.add(parent, int(token), prob)
            nodes.append(parent)
        return nodes

    def propose(self, parent: int, proposal: Proposal) -> None:
        """Records that ``proposal``'s draws were drawn below ``parent`` (they are added as
        children if missing)."""
        for token in proposal.draws:
            self.add(parent, int(token))
        self.proposals.setdefault(parent, []).append(proposal)

    @property
    def has_probs(self) -> bool:
        """Whether every node carries the drafter's probability."""
        return bool(self.probs) and all(p is not None for p in self.probs)

    def child(self, parent: int, token: int) -> int | None:
        """The child of ``parent`` holding ``token``, if any."""
        return self._children.get((parent, token))

    def union(self, other: DraftTree) -> DraftTree:
        """Adds every node of ``other`` to this tree (shared prefixes merge); returns self."""
        mapping: list[int] = []
        for token, parent, prob in zip(other.tokens, other.parents, other.probs):
            mapping.append(self.add(mapping[parent] if parent >= 0 else -1, token, prob))
        for parent, proposals in other.proposals.items():
            self.proposals.setdefault(mapping[parent] if parent >= 0 else -1, []).extend(
                proposals)
        return self

    def depths(self) -> list[int]:
        """The depth of every node (the root's children have depth 1)."""
        depths: list[int] = []
        for parent in self.parents:
            depths.append(depths[parent] + 1 if parent >= 0 else 1)
        return depths

    def prune(self, max_depth: int) -> DraftTree:
        """This tree without the nodes deeper than ``max_depth`` (self when none is)."""
        depths = self.depths()
        if all(d <= max_depth for d in depths):
            return self
        pruned = DraftTree()
        mapping: dict[int, int] = {-1: -1}
        for node, (token, parent, prob) in enumerate(zip(self.tokens, self.parents, self.probs)):
            if depths[node] <= max_depth:
                mapping[node] = pruned.add(mapping[parent], token, prob)
        for parent, proposals in self.proposals.items():
            if parent < 0 or depths[parent] < max_depth:  # its children survive
                pruned.proposals[mapping[parent]] = list(proposals)
        return pruned

    def path_to(self, node: int) -> list[int]:
        """Node indices from the root's child down to ``node``."""
        path = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]

    def depth(self) -> int:
        """Length of the longest path."""
        return max(self.depths(), default=0)

    def paths(self) -> list[list[int]]:
        """Token sequences of every root-to-leaf path."""
        has_child = set(self.parents)
        return [[self.tokens[i] for i in self.path_to(leaf)]
                for leaf in range(len(self)) if leaf not in has_child]

    @classmethod
    def from_parents(cls, tokens: Sequence[int], parents: Sequence[int],
                     probs: Sequence[float | None] | None = None) -> DraftTree:
        """Builds a tree from token and parent lists (duplicate siblings merge)."""
        tree = cls()
        mapping: list[int] = []
        probs = [None] * len(tokens) if probs is None else probs
        if not len(tokens) == len(parents) == len(probs):
            raise ValueError(f"{len(tokens)} tokens, {len(parents)} parents and {len(probs)} "
                             "probabilities: give one of each per node")
        for index, (token, parent, prob) in enumerate(zip(tokens, parents, probs)):
            if not -1 <= parent < index:
                raise ValueError(f"node {index} has parent {parent}: parents come first")
            mapping.append(tree.add(mapping[parent] if parent >= 0 else -1, int(token), prob))
        return tree


__all__ = ["DraftTree", "Proposal"]
