"""Draft trees: tokens hanging below the last committed token, stored as a trie.

Nodes are numbered in insertion order, so a parent always comes before its children; the
parent ``-1`` is the root (the last committed token).

>>> tree = DraftTree()
>>> tree.add_path([5, 6, 7])
[0, 1, 2]
>>> tree.add_path([5, 9])
[0, 3]
>>> tree.tokens, tree.parents
([5, 6, 7, 9], [-1, 0, 1, 0])
>>> tree.child(-1, 5), tree.child(0, 8)
(0, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class DraftTree:
    """A token trie below the root. Adding a path shares the prefix it has with earlier paths."""

    __slots__ = ("tokens", "parents", "_children")

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
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

    def add(self, parent: int, token: int) -> int:
        """The node for ``token`` under ``parent``, created if missing."""
        key = (parent, token)
        node = self._children.get(key)
        if node is None:
            node = len(self.tokens)
            self._children[key] = node
            self.tokens.append(token)
            self.parents.append(parent)
        return node

    def add_path(self, tokens: Iterable[int], parent: int = -1) -> list[int]:
        """Adds a path below ``parent`` and returns its node indices."""
        nodes = []
        for token in tokens:
            parent = self.add(parent, int(token))
            nodes.append(parent)
        return nodes

    def child(self, parent: int, token: int) -> int | None:
        """The child of ``parent`` holding ``token``, if any."""
        return self._children.get((parent, token))

    def union(self, other: DraftTree) -> DraftTree:
        """Adds every node of ``other`` to this tree (shared prefixes merge); returns self."""
        mapping: list[int] = []
        for token, parent in zip(other.tokens, other.parents):
            mapping.append(self.add(mapping[parent] if parent >= 0 else -1, token))
        return self

    def path_to(self, node: int) -> list[int]:
        """Node indices from the root's child down to ``node``."""
        path = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]

    def depth(self) -> int:
        """Length of the longest path."""
        depths: list[int] = []
        for parent in self.parents:
            depths.append(depths[parent] + 1 if parent >= 0 else 1)
        return max(depths, default=0)

    def paths(self) -> list[list[int]]:
        """Token sequences of every root-to-leaf path."""
        has_child = set(self.parents)
        return [[self.tokens[i] for i in self.path_to(leaf)]
                for leaf in range(len(self)) if leaf not in has_child]

    @classmethod
    def from_parents(cls, tokens: Sequence[int], parents: Sequence[int]) -> DraftTree:
        """Builds a tree from token and parent lists (duplicate siblings merge)."""
        tree = cls()
        mapping: list[int] = []
        for index, (token, parent) in enumerate(zip(tokens, parents)):
            if not -1 <= parent < index:
                raise ValueError(f"node {index} has parent {parent}: parents come first")
            mapping.append(tree.add(mapping[parent] if parent >= 0 else -1, int(token)))
        return tree


__all__ = ["DraftTree"]
