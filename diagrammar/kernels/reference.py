"""Tree attention in plain torch operations: the contract, and the ground truth for the kernels.

Verification scores the root and the draft nodes of a tree in one pass. Query ``i`` (node
``i``; node 0 is the root) attends to every key of the cached prefix and to the tree keys of
its ancestors and itself, read from the ancestor words (see
:mod:`diagrammar.kernels.ancestor_words`). Shapes:

- ``q``: ``(heads, T, d)``, the queries of the T tree nodes;
- ``k_prefix``, ``v_prefix``: ``(heads, P, d)``, the cache (``P`` may be 0);
- ``k_tree``, ``v_tree``: ``(heads, T, d)``, the tree's own keys and values;
- ``words``: int64 ``(T,)``; the output is ``(heads, T, d)`` in ``q``'s dtype.

A row with no visible key (impossible for a well-formed tree: every node sees itself) gives
zeros, not NaN. float16 and bfloat16 inputs are computed in float32; float64 stays float64.

>>> import torch
>>> from diagrammar.kernels.ancestor_words import ancestor_words
>>> torch.manual_seed(0) and None
>>> q, k_tree, v_tree = torch.randn(3, 2, 4, 8).unbind(0)
>>> k_prefix, v_prefix = torch.randn(2, 2, 5, 8).unbind(0)
>>> out = tree_attention_reference(q, k_prefix, v_prefix, k_tree, v_tree,
...                                ancestor_words([-1, 0, 0, 1]))
>>> tuple(out.shape)
(2, 4, 8)
"""

from __future__ import annotations

import math

import torch

from diagrammar.kernels.ancestor_words import ancestor_mask, check_block_shapes, check_words


def check_inputs(q: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor,
                 k_tree: torch.Tensor, v_tree: torch.Tensor, words: torch.Tensor) -> None:
    """A clear ``ValueError`` unless the shapes, dtypes and devices follow the contract."""
    named = {"q": q, "k_prefix": k_prefix, "v_prefix": v_prefix, "k_tree": k_tree,
             "v_tree": v_tree}
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor)
            raise ValueError(f"{name} must be a (heads, length, head size) tensor, got {shape}")
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {tensor.dtype}")
        if tensor.dtype != q.dtype:
            raise ValueError(f"{name} is {tensor.dtype} but q is {q.dtype}")
        if tensor.device != q.device:
            raise ValueError(f"{name} is on {tensor.device} but q is on {q.device}")
    nodes = check_block_shapes(named)
    check_words(words, nodes)
    if words.device != q.device:
        raise ValueError(f"ancestor words are on {words.device} but q is on {q.device}")


def tree_attention_reference(q: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor,
                             k_tree: torch.Tensor, v_tree: torch.Tensor, words: torch.Tensor,
                             scale: float | None = None) -> torch.Tensor:
    """Softmax attention of each tree node over the prefix and its ancestors (see the module
    docstring for the contract); ``scale`` defaults to ``1 / sqrt(d)``."""
    check_inputs(q, k_prefix, v_prefix, k_tree, v_tree, words)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    compute = torch.float64 if q.dtype == torch.float64 else torch.float32
    prefix = k_prefix.shape[1]
    keys = torch.cat([k_prefix, k_tree], dim=1).to(compute)
    values = torch.cat([v_prefix, v_tree], dim=1).to(compute)
    scores = torch.matmul(q.to(compute), keys.transpose(1, 2)) * scale
    visible = torch.ones(scores.shape[1:], dtype=torch.bool, device=q.device)
    visible[:, prefix:] = ancestor_mask(words)
    scores = scores.masked_fill(~visible, -math.inf)
    weights = torch.softmax(scores, dim=-1)
    weights = weights.masked_fill(~visible.any(-1, keepdim=True), 0.0)  # rows seeing nothing
    return torch.matmul(weights, values).to(q.dtype)


__all__ = ["check_inputs", "tree_attention_reference"]
