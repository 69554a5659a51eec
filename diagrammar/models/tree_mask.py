"""The shape of a draft tree as a model sees it: depths and an ancestor mask.

Index 0 is the root (the last committed token); index ``i + 1`` is draft node ``i``.

>>> depths, ancestors = tree_layout([-1, 0, -1])
>>> depths
[0, 1, 2, 1]
>>> ancestors.int().tolist()
[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def is_chain(parents: Sequence[int]) -> bool:
    """Whether the tree is one path (each node's parent is the node before it)."""
    return all(parent == index - 1 for index, parent in enumerate(parents))


def tree_layout(parents: Sequence[int]) -> tuple[list[int], torch.Tensor]:
    """Depth of the root and every node, and which of them each one attends to.

    The depths take one pass over ``parents`` (plain integers); the ancestor mask is built with
    tensor operations, one gather per tree level (not one per node): every position walks one
    step up its path per level, and the positions visited are set in one scatter.

    Args:
        parents: for each draft node, its parent's index, or -1 for the root; parents first.

    Returns:
        ``(depths, ancestors)``: ``depths[k]`` is the depth of position ``k`` (root 0), and
        ``ancestors[k, j]`` is true when position ``j`` is ``k`` itself or one of its ancestors.
    """
    n = len(parents) + 1
    depths = [0] * n
    for node, parent in enumerate(parents, start=1):
        if not -1 <= parent < node - 1:
            raise ValueError(f"node {node - 1} has parent {parent}: parents must come before "
                             "their children")
        depths[node] = depths[parent + 1] + 1
    up = torch.tensor([-1, *parents]) + 1          # the position of each position's parent
    rows = torch.arange(n)
    visited = [rows]
    for _ in range(max(depths)):                   # the root is its own parent: walks stop there
        visited.append(up[visited[-1]])
    ancestors = torch.zeros((n, n), dtype=torch.bool)
    ancestors[rows.repeat(len(visited)), torch.cat(visited)] = True
    return depths, ancestors


__all__ = ["is_chain", "tree_layout"]
