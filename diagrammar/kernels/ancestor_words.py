"""A draft tree's attention mask, bit-packed: one int64 word per node.

The kernels take the tree as its **ancestor words**: bit ``j`` of word ``i`` is set when node
``i`` sees tree key ``j``, that is when ``j`` is ``i`` itself or one of its ancestors. A tree
of up to 64 nodes (the root and 63 draft nodes) fits one word per row, so a kernel loads one
integer per query instead of a row of the dense mask.

Trees are given as ``parents``: node 0 is the root (parent -1), and every other node's parent
comes before it. (The sessions number draft nodes without the root, -1 meaning "below the
root"; :func:`with_root` converts.)

>>> words = ancestor_words([-1, 0, 1, 0])
>>> words.tolist()
[1, 3, 7, 9]
>>> ancestor_mask(words).int().tolist()
[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]]
>>> with_root([-1, 0, -1])
[-1, 0, 1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:     # torch is imported where a tensor is made: the JAX kernels run without it
    import torch

#: The most nodes (root included) whose rows fit one int64 word.
MAX_TREE_NODES = 64


def with_root(draft_parents: Sequence[int]) -> list[int]:
    """Parents with the root as node 0, from the sessions' draft-only numbering (where draft
    node ``i`` is position ``i + 1`` and -1 means "child of the root")."""
    return [-1, *(int(parent) + 1 for parent in draft_parents)]


def check_parents(parents: Sequence[int]) -> np.ndarray:
    """``parents`` as an int64 array, after checking that they describe one tree of at most
    :data:`MAX_TREE_NODES` nodes rooted at node 0; a clear ``ValueError`` otherwise."""
    array = np.asarray(parents)
    if array.ndim != 1:
        raise ValueError(f"parents must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("parents is empty: a tree has at least its root (parents = [-1])")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"parents must be integers, got dtype {array.dtype}")
    if array.size > MAX_TREE_NODES:
        raise ValueError(f"a tree of {array.size} nodes does not fit the bit-packed mask: one "
                         f"int64 word per row holds at most {MAX_TREE_NODES} nodes "
                         "(the root included)")
    array = array.astype(np.int64)
    if array[0] != -1:
        raise ValueError(f"node 0 is the root and must have parent -1, got {array[0]}")
    nodes = np.arange(array.size)
    bad = np.flatnonzero((array[1:] < 0) | (array[1:] >= nodes[1:]))
    if bad.size:
        node = int(bad[0]) + 1
        raise ValueError(f"node {node} has parent {int(array[node])}: every node but the root "
                         "needs a parent in 0..node-1 (parents come before their children)")
    return array


def ancestor_words_array(parents: Sequence[int]) -> np.ndarray:
    """The packed ancestor mask of the tree ``parents`` as a NumPy int64 array ``(T,)``.

    One pass in node order: a node's word is its parent's word plus its own bit.
    """
    array = check_parents(parents)
    words = np.zeros(array.size, dtype=np.uint64)
    for node in range(array.size):
        own = np.uint64(1) << np.uint64(node)
        words[node] = own if node == 0 else words[array[node]] | own
    return words.view(np.int64)


def ancestor_words(parents: Sequence[int], device: torch.device | str | None = None
                   ) -> torch.Tensor:
    """The packed ancestor mask of the tree ``parents``: an int64 tensor of shape ``(T,)``
    (:func:`ancestor_words_array` as a torch tensor)."""
    import torch

    tensor = torch.from_numpy(ancestor_words_array(parents))
    return tensor if device is None else tensor.to(device)


def ancestor_mask(words: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """The dense boolean mask ``(T, size)`` that ``words`` packs (``size`` defaults to T):
    ``mask[i, j]`` is bit ``j`` of ``words[i]``."""
    import torch

    check_words(words)
    size = words.shape[0] if size is None else size
    if size > MAX_TREE_NODES:
        raise ValueError(f"{size} columns: one int64 word holds at most {MAX_TREE_NODES}")
    bits = torch.arange(size, device=words.device)
    return ((words[:, None] >> bits) & 1).bool()


def check_words(words: torch.Tensor, nodes: int | None = None) -> None:
    """A clear ``ValueError`` unless ``words`` is an int64 tensor of shape ``(nodes,)``."""
    import torch

    if not isinstance(words, torch.Tensor):
        raise ValueError(f"ancestor words must be a torch tensor, got {type(words).__name__}")
    if words.dtype != torch.int64:
        raise ValueError(f"ancestor words must be int64, got {words.dtype}")
    if words.ndim != 1:
        raise ValueError(f"ancestor words must have shape (T,), got {tuple(words.shape)}")
    if nodes is not None and words.shape[0] != nodes:
        raise ValueError(f"{words.shape[0]} ancestor words for a tree block of {nodes} nodes")
    if words.shape[0] > MAX_TREE_NODES:
        raise ValueError(f"{words.shape[0]} ancestor words: the bit-packed mask holds at most "
                         f"{MAX_TREE_NODES} nodes")


def check_block_shapes(named: dict[str, Any], grouped: bool = False) -> int:
    """The shape checks every implementation shares (torch tensors, NumPy or jax arrays): q,
    the prefix and the tree block ``(heads, length, head size)`` agree in heads and head size,
    the prefix keys and values alike, the tree block one row per query. Returns the number
    of tree nodes; a clear ``ValueError`` otherwise.

    With ``grouped`` (grouped-query attention, for the implementations that take it), keys and
    values may have fewer heads than q, a number that divides q's (and is the same for all
    four)."""
    q = named["q"]
    heads, nodes, size = q.shape
    if nodes == 0:
        raise ValueError("q has no rows: a tree has at least its root")
    kv_heads = named["k_prefix"].shape[0] if grouped else heads
    if grouped and (kv_heads == 0 or heads % kv_heads):
        raise ValueError(f"k_prefix has {kv_heads} heads, which does not divide q's {heads} "
                         "(grouped-query attention)")
    for name in ("k_prefix", "v_prefix", "k_tree", "v_tree"):
        array = named[name]
        if array.shape[0] != kv_heads or array.shape[2] != size:
            what = f"{kv_heads} key/value heads" if kv_heads != heads else f"{heads} heads"
            raise ValueError(f"{name} has shape {tuple(array.shape)}; q has {what} of "
                             f"size {size}")
    if named["k_prefix"].shape != named["v_prefix"].shape:
        raise ValueError(f"k_prefix {tuple(named['k_prefix'].shape)} and v_prefix "
                         f"{tuple(named['v_prefix'].shape)} differ")
    for name in ("k_tree", "v_tree"):
        if named[name].shape[1] != nodes:
            raise ValueError(f"{name} has {named[name].shape[1]} rows for {nodes} queries")
    return nodes


__all__ = ["MAX_TREE_NODES", "ancestor_mask", "ancestor_words", "ancestor_words_array",
           "check_block_shapes", "check_parents", "check_words", "with_root"]
