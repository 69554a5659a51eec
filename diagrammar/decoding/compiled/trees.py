"""Draft trees and acceptances as fixed-shape arrays: the ``Draft`` and ``Accepted`` wires of a
compiled step.

Inside a compiled step a draft tree has a static number of *slots* ``M``; a drafter fills the
first ``count`` of them (parents before children) and marks the rest invalid. Row 0 of a
verification pass is the root and row ``s + 1`` is slot ``s``, as in the per-step loop.
:func:`tree_layout` turns the (traced) parents into the ancestor mask and depths the forward
pass needs, by ``max_depth`` rounds of "my ancestors are my parent's plus me"; invalid slots
see only themselves.

>>> import jax.numpy as jnp
>>> tree = ArrayTree(tokens=jnp.array([5, 6, 7]), parents=jnp.array([-1, 0, -1]),
...                  valid=jnp.array([True, True, True]), max_depth=2)
>>> ancestors, depths = tree_layout(tree)
>>> depths.tolist(), ancestors.astype(int).tolist()
([0, 1, 2, 1], [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class ArrayTree:
    """A draft tree of ``M`` slots (the ``Draft`` wire of a compiled step).

    Attributes:
        tokens: ``(M,)`` int32 token of each slot.
        parents: ``(M,)`` int32 parent slot of each slot (``-1``: the root); a valid slot's
            parent is a valid slot before it.
        valid: ``(M,)`` bool, which slots hold a node (the valid ones come first).
        max_depth: a static bound on the depth of any valid node (the rounds of
            :func:`tree_layout` and of greedy acceptance).
    """

    tokens: jax.Array
    parents: jax.Array
    valid: jax.Array
    max_depth: int

    @property
    def slots(self) -> int:
        """``M``, the static number of slots."""
        return int(self.tokens.shape[0])

    @property
    def count(self) -> jax.Array:
        """How many slots hold a node."""
        return jnp.sum(self.valid, dtype=jnp.int32)


def empty_tree() -> ArrayTree:
    """The tree of no node (no-draft steps)."""
    nothing = jnp.zeros((0,), jnp.int32)
    return ArrayTree(nothing, nothing, jnp.zeros((0,), bool), 0)


def chain(tokens: jax.Array, count: jax.Array) -> ArrayTree:
    """A chain of the first ``count`` of ``tokens`` (each slot the child of the one before)."""
    slots = tokens.shape[0]
    index = jnp.arange(slots, dtype=jnp.int32)
    return ArrayTree(tokens.astype(jnp.int32), index - 1, index < count, slots)


def rows_of(tree: ArrayTree) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per pass row (root first): the token slot's validity, the parent's row and the token
    (the root's entries are placeholders: not valid, its own parent)."""
    valid = jnp.concatenate([jnp.zeros((1,), bool), tree.valid])
    parent = jnp.concatenate([jnp.zeros((1,), jnp.int32),
                              jnp.where(tree.valid, tree.parents + 1, 0).astype(jnp.int32)])
    tokens = jnp.concatenate([jnp.zeros((1,), jnp.int32), tree.tokens.astype(jnp.int32)])
    return valid, parent, tokens


def tree_layout(tree: ArrayTree) -> tuple[jax.Array, jax.Array]:
    """The ancestor mask ``(M + 1, M + 1)`` (row ``r`` sees row ``j`` when ``j`` is ``r`` or
    one of its ancestors) and the depth of every row (root 0; invalid slots 0)."""
    rows = tree.slots + 1
    valid, parent, _ = rows_of(tree)
    eye = jnp.eye(rows, dtype=bool)
    ancestors = eye
    depths = jnp.zeros((rows,), jnp.int32)
    for _ in range(tree.max_depth):
        ancestors = eye | (valid[:, None] & ancestors[parent])
        depths = jnp.where(valid, depths[parent] + 1, 0)
    return ancestors, depths


@dataclass(frozen=True)
class ArrayAcceptance:
    """What greedy acceptance chose (the ``Accepted`` wire of a compiled step).

    Attributes:
        path: ``(D,)`` int32 rows of the accepted draft nodes, root to leaf (``-1`` past
            ``length``); row ``r`` is slot ``r - 1``.
        length: how many draft nodes were accepted.
        tokens: ``(D + 1,)`` int32 the accepted nodes' tokens then the bonus token (entries
            past ``length + 1`` are zero).
        tree, scores: the verified tree and its scores, for drafters that learn from the pass.
    """

    path: jax.Array
    length: jax.Array
    tokens: jax.Array
    tree: ArrayTree
    scores: jax.Array


__all__ = ["ArrayAcceptance", "ArrayTree", "chain", "empty_tree", "rows_of", "tree_layout"]
