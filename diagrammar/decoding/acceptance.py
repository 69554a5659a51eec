"""Acceptance rules: which path of a verified draft tree becomes output.

Scores are any array with ``argmax(-1)`` and ``tolist()`` (torch, NumPy, JAX): this module
imports no tensor library.

>>> import numpy as np
>>> from diagrammar.decoding.tree import DraftTree
>>> tree = DraftTree.from_parents([5, 6, 9], [-1, 0, -1])
>>> scores = np.zeros((4, 10))
>>> scores[0, 5] = scores[1, 6] = scores[2, 3] = 1.0   # the target says 5, then 6, then 3
>>> greedy_accept(tree, scores)
Acceptance(path=(0, 1), tokens=(5, 6, 3))
"""

from __future__ import annotations

from typing import Any

from diagrammar.decoding.state import Acceptance
from diagrammar.decoding.tree import DraftTree


def greedy_accept(tree: DraftTree, scores: Any) -> Acceptance:
    """Lossless greedy acceptance over a tree.

    Follows the target's argmax from the root as long as the tree has a matching child, then
    adds the target's argmax after the last accepted node (the bonus token). The output equals
    what greedy decoding of the target alone would write.

    Args:
        tree: the draft tree.
        scores: target logits, row 0 for the root and row ``i + 1`` for node ``i``.
    """
    if not tree.tokens:
        return Acceptance((), (int(scores[:1].argmax(-1).tolist()[0]),))
    best = scores.argmax(-1).tolist()
    path: list[int] = []
    node = -1
    child = tree.child(node, best[0])
    while child is not None:
        path.append(child)
        node = child
        child = tree.child(node, best[node + 1])
    tokens = [tree.tokens[i] for i in path]
    tokens.append(best[node + 1])
    return Acceptance(tuple(path), tuple(tokens))


__all__ = ["greedy_accept"]
