"""Tree attention in plain ``jax.numpy``: the contract of :mod:`.reference`, for jax arrays.

The ground truth for the Pallas kernel (:mod:`.pallas_tree`) and the JAX backend's default on
a CPU. Query ``i`` (tree node ``i``, node 0 the root) attends to every prefix key and to the
tree keys its ancestor word names (bit ``j`` set: node ``j`` is ``i`` or an ancestor of
``i``); a row that sees nothing gives zeros. Shapes are the torch reference's: ``q``,
``k_tree``, ``v_tree`` ``(heads, T, d)``, ``k_prefix``, ``v_prefix`` ``(heads, P, d)``.

**Ancestor words without 64-bit integers.** JAX computes in 32 bits unless
``jax_enable_x64`` is on, and then ``jnp.asarray`` of an int64 word silently keeps its low 32
bits only. So the JAX kernels carry each word as two int32 halves, an int32 array of shape
``(T, 2)`` holding ``[low, high]`` (bits 0-31 and 32-63, each half's bit pattern reinterpreted
as int32). :func:`word_pairs` makes these pairs from any of:

- a NumPy int64 (or uint64) array ``(T,)``, such as ``ancestor_words(...).numpy()``: split in
  NumPy, so it works whatever the x64 setting;
- a jax int64 array ``(T,)`` (only exists with x64 on): split with jax operations, traceable;
- a torch int64 tensor ``(T,)``: moved to NumPy first;
- the pairs themselves: an int32 array ``(T, 2)``;
- a jax or NumPy int32 array ``(T,)`` when ``T <= 32`` (every bit fits the low half); for a
  larger tree it is refused, since that is what an int64 word truncated by ``jnp.asarray``
  looks like.

:func:`ancestor_word_pairs` builds the pairs straight from ``parents``.

``prefix_length`` (optional, may be a traced scalar) makes ``k_prefix``/``v_prefix`` a
fixed-capacity cache buffer of which only the first ``prefix_length`` keys are visible: under
``jax.jit`` the cache keeps one shape while the prefix grows.

float16 and bfloat16 inputs are computed in float32 (float64 stays float64, with x64 on), and
products use ``Precision.HIGHEST`` (no TF32 on a GPU).

>>> import jax, jax.numpy as jnp
>>> q, k_tree, v_tree = jax.random.normal(jax.random.key(0), (3, 2, 4, 8))
>>> k_prefix, v_prefix = jax.random.normal(jax.random.key(1), (2, 2, 5, 8))
>>> pairs = ancestor_word_pairs([-1, 0, 0, 1])
>>> pairs.tolist()
[[1, 0], [3, 0], [5, 0], [11, 0]]
>>> out = tree_attention_jax_reference(q, k_prefix, v_prefix, k_tree, v_tree, pairs)
>>> out.shape
(2, 4, 8)
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diagrammar.kernels.ancestor_words import (
    MAX_TREE_NODES,
    ancestor_words_array,
    check_block_shapes,
)

#: Bits in each half of a packed ancestor word.
HALF_BITS = 32


def ancestor_word_pairs(parents: Sequence[int]) -> jax.Array:
    """The packed ancestor mask of the tree ``parents`` as int32 ``[low, high]`` pairs
    ``(T, 2)`` (see the module docstring); the tree is checked as
    :func:`~diagrammar.kernels.ancestor_words.ancestor_words` checks it (no torch needed)."""
    return word_pairs(ancestor_words_array(parents))


def _split_numpy(words: np.ndarray) -> np.ndarray:
    unsigned = words.astype(np.int64).view(np.uint64)
    low = (unsigned & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
    high = (unsigned >> np.uint64(HALF_BITS)).astype(np.uint32).view(np.int32)
    return np.stack([low, high], axis=-1)


def _split_jax(words: jax.Array) -> jax.Array:
    def half(bits):   # 32 bits in [0, 2^32): exact as uint32, then reinterpreted as int32
        return lax.bitcast_convert_type((bits & 0xFFFFFFFF).astype(jnp.uint32), jnp.int32)

    return jnp.stack([half(words), half(words >> HALF_BITS)], axis=-1)


def word_pairs(words: Any, nodes: int | None = None) -> jax.Array:
    """``words`` (any form the module docstring lists) as int32 ``[low, high]`` pairs
    ``(T, 2)``; a clear ``ValueError`` for anything else, or for ``T != nodes``."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(words, torch.Tensor):
        if words.dtype != torch.int64:
            raise ValueError(f"ancestor words must be int64, got {words.dtype}")
        words = words.detach().cpu().numpy()
    if isinstance(words, (list, tuple)):
        words = np.asarray(words, dtype=np.int64)
    if not isinstance(words, (np.ndarray, jax.Array)):
        raise ValueError("ancestor words must be a NumPy, jax or torch integer array, got "
                         f"{type(words).__name__}")
    dtype = np.dtype(words.dtype)
    shape = tuple(words.shape)
    if dtype == np.int32 and len(shape) == 2 and shape[1] == 2:
        pairs = jnp.asarray(words)
    elif len(shape) != 1:
        raise ValueError(f"ancestor words must have shape (T,) (int64) or (T, 2) (int32 "
                         f"[low, high] pairs), got {shape}")
    elif dtype in (np.int64, np.uint64):
        pairs = (jnp.asarray(_split_numpy(words)) if isinstance(words, np.ndarray)
                 else _split_jax(words))
    elif dtype in (np.int32, np.uint32):
        if shape[0] > HALF_BITS:
            raise ValueError(
                f"{shape[0]} ancestor words of 32 bits cannot mask a tree of more than "
                f"{HALF_BITS} nodes (an int64 word given to jnp.asarray with x64 off keeps "
                "only its low half): pass the NumPy int64 words, or int32 [low, high] pairs "
                "(ancestor_word_pairs)")
        low = words.view(np.int32) if isinstance(words, np.ndarray) else words
        if isinstance(low, jax.Array) and low.dtype == jnp.uint32:
            low = lax.bitcast_convert_type(low, jnp.int32)
        pairs = jnp.stack([jnp.asarray(low), jnp.zeros(shape, jnp.int32)], axis=-1)
    else:
        raise ValueError(f"ancestor words must be int64 (or int32 pairs), got {dtype}")
    if pairs.shape[0] > MAX_TREE_NODES:
        raise ValueError(f"{pairs.shape[0]} ancestor words: the bit-packed mask holds at most "
                         f"{MAX_TREE_NODES} nodes")
    if nodes is not None and pairs.shape[0] != nodes:
        raise ValueError(f"{pairs.shape[0]} ancestor words for a tree block of {nodes} nodes")
    return pairs


def pair_bits(pairs: jax.Array, columns: int) -> jax.Array:
    """The boolean mask ``(T, columns)`` the pairs pack: ``mask[i, j]`` is bit ``j`` of word
    ``i`` (bits 0-31 from the low half, 32-63 from the high half; ``columns <= 64``)."""
    column = jnp.arange(columns, dtype=jnp.int32)
    low = pairs[:, :1] >> jnp.minimum(column, HALF_BITS - 1)[None, :]
    high = pairs[:, 1:] >> jnp.maximum(column - HALF_BITS, 0)[None, :]
    return (jnp.where(column[None, :] < HALF_BITS, low, high) & 1) != 0


def mask_word_pairs(mask: jax.Array) -> jax.Array:
    """A dense boolean mask ``(T, T)`` (``T <= 64``; ``mask[i, j]``: query ``i`` sees tree key
    ``j``) packed into int32 ``[low, high]`` pairs ``(T, 2)``, with jax operations (traceable;
    the inverse of :func:`pair_bits`). Any mask packs, not only a tree's.

    >>> mask = jnp.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]], bool)
    >>> mask_word_pairs(mask).tolist()
    [[1, 0], [3, 0], [5, 0]]
    """
    columns = mask.shape[1]
    if columns > MAX_TREE_NODES:
        raise ValueError(f"a mask of {columns} columns: the bit-packed mask holds at most "
                         f"{MAX_TREE_NODES} nodes")
    column = jnp.arange(columns, dtype=jnp.uint32)
    bits = jnp.where(mask, jnp.left_shift(jnp.uint32(1), column % HALF_BITS), jnp.uint32(0))

    def half(part: jax.Array) -> jax.Array:   # distinct bits: their sum is their union
        return lax.bitcast_convert_type(part.sum(axis=1, dtype=jnp.uint32), jnp.int32)

    return jnp.stack([half(bits[:, :HALF_BITS]), half(bits[:, HALF_BITS:])], axis=-1)


def check_jax_inputs(q: Any, k_prefix: Any, v_prefix: Any, k_tree: Any, v_tree: Any,
                     grouped: bool = False) -> None:
    """A clear ``ValueError`` unless shapes and dtypes follow the contract (the torch
    :func:`~diagrammar.kernels.reference.check_inputs`, for jax arrays; tracers pass).
    ``grouped``: keys and values may have fewer heads than q, dividing them (see
    :func:`~diagrammar.kernels.ancestor_words.check_block_shapes`)."""
    named = {"q": q, "k_prefix": k_prefix, "v_prefix": v_prefix, "k_tree": k_tree,
             "v_tree": v_tree}
    for name, array in named.items():
        if not isinstance(array, jax.Array) or array.ndim != 3:
            shape = tuple(array.shape) if isinstance(array, jax.Array) else type(array)
            raise ValueError(f"{name} must be a (heads, length, head size) jax array, got "
                             f"{shape}")
        if not jnp.issubdtype(array.dtype, jnp.floating):
            raise ValueError(f"{name} must be floating point, got {array.dtype}")
        if array.dtype != q.dtype:
            raise ValueError(f"{name} is {array.dtype} but q is {q.dtype}")
    check_block_shapes(named, grouped)


def devices(array: jax.Array) -> list[Any]:
    """The devices holding ``array``; for a traced array, the default backend's first."""
    if isinstance(array, jax.core.Tracer):
        return jax.devices()[:1]
    return list(array.devices())


def on_cpu(array: jax.Array) -> bool:
    """Whether ``array`` lives on a CPU (a traced array: whether the default backend is)."""
    return all(device.platform == "cpu" for device in devices(array))


def on_gpu(array: jax.Array) -> bool:
    """Whether ``array`` lives on a GPU (CUDA or ROCm; a traced array: the default
    backend)."""
    return all(device.platform in ("gpu", "cuda", "rocm") for device in devices(array))


def compute_dtype(dtype: Any) -> Any:
    """float64 for float64 inputs, float32 for the rest."""
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


@functools.partial(jax.jit, static_argnames=("scale",))
def _reference(q, k_prefix, v_prefix, k_tree, v_tree, pairs, prefix_length, scale):
    compute = compute_dtype(q.dtype)
    prefix, nodes = k_prefix.shape[1], q.shape[1]
    in_prefix = jnp.arange(prefix) < prefix_length
    v_prefix = jnp.where(in_prefix[None, :, None], v_prefix, 0)   # stale cache rows: no NaN
    keys = jnp.concatenate([k_prefix, k_tree], axis=1).astype(compute)
    values = jnp.concatenate([v_prefix, v_tree], axis=1).astype(compute)
    scores = jnp.einsum("htd,hkd->htk", q.astype(compute), keys,
                        precision=lax.Precision.HIGHEST) * scale
    visible = jnp.concatenate([jnp.broadcast_to(in_prefix, (nodes, prefix)),
                               pair_bits(pairs, nodes)], axis=1)
    scores = jnp.where(visible, scores, -jnp.inf)
    top = scores.max(axis=-1, keepdims=True)
    weights = jnp.exp(scores - jnp.where(visible.any(-1, keepdims=True), top, 0.0))
    total = weights.sum(axis=-1, keepdims=True)
    out = jnp.einsum("htk,hkd->htd", weights, values, precision=lax.Precision.HIGHEST)
    return (out / jnp.where(total > 0, total, 1.0)).astype(q.dtype)   # rows seeing nothing: 0


def tree_attention_jax_reference(q: jax.Array, k_prefix: jax.Array, v_prefix: jax.Array,
                                 k_tree: jax.Array, v_tree: jax.Array, ancestor_words: Any,
                                 scale: float | None = None, *,
                                 prefix_length: int | jax.Array | None = None) -> jax.Array:
    """Softmax attention of each tree node over the prefix and its ancestors (the module
    docstring has the contract).

    Args:
        q, k_prefix, v_prefix, k_tree, v_tree: jax arrays, ``(heads, T | P, d)``, one dtype.
        ancestor_words: the packed mask in any form :func:`word_pairs` takes.
        scale: the score scale, ``1 / sqrt(d)`` by default.
        prefix_length: how many prefix keys are visible (default all ``P``); a traced scalar
            is fine.

    Returns:
        ``(heads, T, d)`` in ``q``'s dtype.
    """
    check_jax_inputs(q, k_prefix, v_prefix, k_tree, v_tree)
    pairs = word_pairs(ancestor_words, q.shape[1])
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    length = k_prefix.shape[1] if prefix_length is None else prefix_length
    return _reference(q, k_prefix, v_prefix, k_tree, v_tree, pairs,
                      jnp.asarray(length, jnp.int32), scale)


__all__ = ["HALF_BITS", "ancestor_word_pairs", "check_jax_inputs", "compute_dtype", "devices",
           "mask_word_pairs", "on_cpu", "on_gpu", "pair_bits", "tree_attention_jax_reference",
           "word_pairs"]
