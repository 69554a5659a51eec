"""Tree attention as a Pallas kernel, for the JAX backend: the Triton kernel's plan in JAX.

The contract is :func:`~diagrammar.kernels.jax_reference.tree_attention_jax_reference`'s (the
torch reference's, for jax arrays). As in :mod:`.triton_tree`, the work is split along the
keys (flash-decoding), since verification has few queries and a long cache:

1. ``_prefix_kernel``, one program per (head, prefix split): the online softmax over its
   slice of the prefix in blocks of ``block_n`` keys (every key below ``prefix_length``
   visible), writing its normalised partial output and log-sum-exp in float32;
2. ``_tree_kernel``, one program per head: the whole tree block at once (at most 64 keys),
   query ``i`` seeing key ``j`` iff bit ``j`` of its ancestor word is set;
3. the merge, in ``jax.numpy`` (XLA fuses it): partial outputs weighted by
   ``exp(lse_s - max lse)``.

A row that sees no key has ``l = 0``: its log-sum-exp is ``-inf``, its weight 0 and its
output zeros; maxima of ``-inf`` are replaced by 0 before they are subtracted, so no
``-inf - -inf`` arises.

**Ancestor words.** JAX is 32-bit unless ``jax_enable_x64`` is on, so the kernel never sees
an int64: the words are split into int32 ``[low, high]`` halves by
:func:`~diagrammar.kernels.jax_reference.word_pairs` (NumPy, torch or jax int64 words, or the
pairs themselves; see :mod:`.jax_reference`), and the tree kernel takes bit ``j`` from the
low half for ``j < 32``, from the high half otherwise (arithmetic shifts by 0..31, then
``& 1``). Both x64 settings give the same kernel.

**Shapes.** Everything a program loads has power-of-two sides of at least 16 (what Triton's
``tl.dot`` needs): the tree block (T nodes) and the head size are zero-padded to a power of
two (small copies: T <= 64); padded tree columns are masked, padded rows see nothing and are
cut off. The prefix is read in place when its length is a multiple of ``splits ×
split_size`` (a cache capacity that is a multiple of ``block_n`` does, with the default plan,
see :func:`plan_splits`); otherwise it is zero-padded (a copy). ``prefix_length`` (a traced
scalar is fine) lets ``k_prefix``/``v_prefix`` be a fixed-capacity cache buffer under
``jax.jit``: keys at or past it are hidden, and whole blocks past it are not read.

**Grouped-query attention.** Keys and values may have fewer heads than ``q`` (a number that
divides q's): query head ``h`` reads key/value head ``h // (heads // kv_heads)``, through the
blocks' index maps, so the cache is never repeated per query head.

**Where it runs.** ``interpret=True`` runs the kernels in Pallas' interpreter (any backend;
the default when ``q`` lives on a CPU); otherwise they are compiled by Pallas' Triton lowering
(``jax.experimental.pallas.triton`` compiler parameters: ``num_warps``, ``num_stages``), for
NVIDIA (and, as Pallas allows, AMD) GPUs. The kernels use only what that lowering supports,
as JAX's own ``pallas.ops.gpu.decode_attention`` does: 2-D ``plgpu.dot`` (float32 products at
``Precision.HIGHEST``, that is IEEE, no TF32), ``fori_loop`` with a dynamic trip count,
``pl.ds`` slices of whole blocks, elementwise ``where``/``exp``/``log``, int32 shifts. The
tests run the kernels in the interpreter and lower them to Triton IR for CUDA (which needs no
GPU); Triton's compile and a run on a GPU are **not yet checked** (no GPU was lent when this
was written).

>>> import jax
>>> from diagrammar.kernels.jax_reference import (ancestor_word_pairs,
...                                               tree_attention_jax_reference)
>>> q, k_tree, v_tree = jax.random.normal(jax.random.key(0), (3, 2, 4, 16))
>>> k_prefix, v_prefix = jax.random.normal(jax.random.key(1), (2, 2, 9, 16))
>>> pairs = ancestor_word_pairs([-1, 0, 1, 0])
>>> out = tree_attention_pallas(q, k_prefix, v_prefix, k_tree, v_tree, pairs, interpret=True)
>>> reference = tree_attention_jax_reference(q, k_prefix, v_prefix, k_tree, v_tree, pairs)
>>> bool(abs(out - reference).max() < 1e-5)
True
>>> plan_splits(100, heads=4, block_n=16, cores=None)      # interpreter: one split
(1, 112)
>>> plan_splits(1024, heads=4, block_n=64, cores=132)      # a GPU: ~2 programs per core
(16, 64)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from diagrammar.kernels.ancestor_words import MAX_TREE_NODES
from diagrammar.kernels.jax_reference import (
    HALF_BITS,
    check_jax_inputs,
    devices,
    on_cpu,
    word_pairs,
)

#: Input dtypes the kernel takes (float64: use the JAX reference).
DTYPES = (jnp.float32, jnp.float16, jnp.bfloat16)
#: The largest head size (padded to a power of two) one program holds.
MAX_HEAD_SIZE = 256
#: The smallest side of a block that Triton's dot takes.
MIN_BLOCK = 16


def _power_of_two_at_least(value: int, least: int = MIN_BLOCK) -> int:
    return max(least, 1 << max(value - 1, 0).bit_length())


def _accumulate(scores, values, m_i, l_i, acc):
    """One step of the online softmax: fold a block of ``scores`` (``-inf`` where hidden)
    and its ``values`` into the running maximum, sum and weighted values (float32)."""
    m_new = jnp.maximum(m_i, scores.max(axis=1))
    m_safe = jnp.where(m_new == -jnp.inf, 0.0, m_new)    # rows that saw nothing yet
    alpha = jnp.exp(m_i - m_safe)
    p = jnp.exp(scores - m_safe[:, None])
    l_i = l_i * alpha + p.sum(axis=1)
    acc = acc * alpha[:, None] + plgpu.dot(p.astype(values.dtype), values,
                                           precision=lax.Precision.HIGHEST)
    return m_new, l_i, acc


def _start(rows: int, size: int):
    return (jnp.full((rows,), -jnp.inf, jnp.float32), jnp.zeros((rows,), jnp.float32),
            jnp.zeros((rows, size), jnp.float32))


def _finish(m_i, l_i, acc, out_ref, lse_ref):
    """Write the normalised partial output and its log-sum-exp (``-inf`` for rows that saw
    nothing, whose output is zeros)."""
    seen = l_i > 0.0
    safe = jnp.where(seen, l_i, 1.0)
    out_ref[...] = acc / safe[:, None]
    lse_ref[...] = jnp.where(seen, m_i + jnp.log(safe), -jnp.inf)


def _prefix_kernel(q_ref, k_ref, v_ref, length_ref, out_ref, lse_ref, *, scale: float,
                   block_n: int, split_size: int):
    """One (head, split) program: the online softmax over the split's prefix keys."""
    q = q_ref[...]
    first = pl.program_id(1) * split_size
    length = length_ref[()]
    remaining = jnp.maximum(length - first, 0)     # int32 arithmetic, with x64 on or off
    blocks = jnp.minimum(lax.div(remaining + (block_n - 1), jnp.int32(block_n)),
                         split_size // block_n)
    columns = jnp.arange(block_n, dtype=jnp.int32)

    def body(block, carry):
        keys = pl.ds(pl.multiple_of(block * block_n, block_n), block_n)
        key_ok = first + block * block_n + columns < length
        scores = plgpu.dot(q, k_ref[keys, :], trans_b=True, precision=lax.Precision.HIGHEST)
        scores = jnp.where(key_ok[None, :], scores * scale, -jnp.inf)
        values = jnp.where(key_ok[:, None], v_ref[keys, :], 0)   # stale cache rows: no NaN
        return _accumulate(scores, values, *carry)

    carry = lax.fori_loop(0, blocks, body, _start(*q.shape))
    _finish(*carry, out_ref, lse_ref)


def _tree_kernel(q_ref, k_ref, v_ref, low_ref, high_ref, out_ref, lse_ref, *, scale: float,
                 nodes: int):
    """One head's program: the tree block, masked by the ancestor words' bits."""
    q = q_ref[...]
    rows = q.shape[0]
    column = jnp.arange(rows, dtype=jnp.int32)
    low = low_ref[...][:, None] >> jnp.minimum(column, HALF_BITS - 1)[None, :]
    high = high_ref[...][:, None] >> jnp.maximum(column - HALF_BITS, 0)[None, :]
    bits = jnp.where(column[None, :] < HALF_BITS, low, high) & 1
    visible = (bits != 0) & (column < nodes)[None, :]
    scores = plgpu.dot(q, k_ref[...], trans_b=True, precision=lax.Precision.HIGHEST)
    scores = jnp.where(visible, scores * scale, -jnp.inf)
    _finish(*_accumulate(scores, v_ref[...], *_start(*q.shape)), out_ref, lse_ref)


def _merge(outs: jax.Array, lses: jax.Array) -> jax.Array:
    """Partial outputs ``(heads, S, rows, size)`` merged by their log-sum-exps."""
    top = lses.max(axis=1, keepdims=True)
    top = jnp.where(top == -jnp.inf, 0.0, top)             # rows that saw nothing anywhere
    weights = jnp.exp(lses - top)
    total = weights.sum(axis=1)
    out = (weights[..., None] * outs).sum(axis=1)
    return out / jnp.where(total > 0.0, total, 1.0)[..., None]


def plan_splits(capacity: int, heads: int, block_n: int, cores: int | None,
                split_size: int | None = None) -> tuple[int, int]:
    """``(splits, split_size)`` for a prefix buffer of ``capacity`` keys.

    Given ``split_size`` (a multiple of ``block_n``), slices of that many keys. Otherwise, in
    the interpreter (``cores=None``) one split (fewest programs); on a GPU with ``cores``
    multiprocessors about two programs per core, with a split size that divides the buffer
    rounded up to ``block_n`` where one is near (so that no padding copy is needed)."""
    if split_size is not None:
        if split_size < 1 or split_size % block_n:
            raise ValueError(f"split_size must be a positive multiple of block_n={block_n}, "
                             f"got {split_size}")
        return pl.cdiv(capacity, split_size), split_size
    blocks = pl.cdiv(capacity, block_n)
    if capacity == 0:
        return 0, block_n
    if cores is None:
        return 1, blocks * block_n
    per_split = pl.cdiv(blocks, min(max(pl.cdiv(2 * cores, heads), 1), blocks))
    divisor = next((n for n in range(per_split, min(2 * per_split, blocks) + 1)
                    if blocks % n == 0), per_split)
    return pl.cdiv(blocks, divisor), divisor * block_n


def _pad_to(array: jax.Array, length: int, size: int) -> jax.Array:
    """``(heads, n, d)`` zero-padded to ``(heads, length, size)`` (itself if no padding)."""
    pad = ((0, 0), (0, length - array.shape[1]), (0, size - array.shape[2]))
    return array if not any(after for _, after in pad) else jnp.pad(array, pad)


@functools.partial(jax.jit, static_argnames=(
    "scale", "block_n", "splits", "split_size", "interpret", "num_warps", "num_stages"))
def _tree_attention(q, k_prefix, v_prefix, k_tree, v_tree, pairs, length, *, scale, block_n,
                    splits, split_size, interpret, num_warps, num_stages):
    heads, nodes, size = q.shape
    group = heads // k_tree.shape[0]            # query heads per key/value head
    rows, size_pad = _power_of_two_at_least(nodes), _power_of_two_at_least(size)
    q, k_tree, v_tree = (_pad_to(x, rows, size_pad) for x in (q, k_tree, v_tree))
    low, high = (jnp.pad(pairs[:, half], (0, rows - nodes)) for half in (0, 1))
    params = plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages)
    tile = pl.BlockSpec((None, rows, size_pad), lambda h, *_: (h, 0, 0))
    kv_tile = pl.BlockSpec((None, rows, size_pad), lambda h, *_: (h // group, 0, 0))
    word = pl.BlockSpec((rows,), lambda h: (0,))
    tree_out, tree_lse = pl.pallas_call(
        functools.partial(_tree_kernel, scale=scale, nodes=nodes),
        grid=(heads,),
        in_specs=[tile, kv_tile, kv_tile, word, word],
        out_specs=[tile, pl.BlockSpec((None, rows), lambda h: (h, 0))],
        out_shape=[jax.ShapeDtypeStruct((heads, rows, size_pad), jnp.float32),
                   jax.ShapeDtypeStruct((heads, rows), jnp.float32)],
        compiler_params=params, interpret=interpret, name="tree_attention_tree",
    )(q, k_tree, v_tree, low, high)
    outs, lses = tree_out[:, None], tree_lse[:, None]
    if splits:
        k_prefix, v_prefix = (_pad_to(x, splits * split_size, size_pad)
                              for x in (k_prefix, v_prefix))
        keys = pl.BlockSpec((None, split_size, size_pad), lambda h, s: (h // group, s, 0))
        prefix_out, prefix_lse = pl.pallas_call(
            functools.partial(_prefix_kernel, scale=scale, block_n=block_n,
                              split_size=split_size),
            grid=(heads, splits),
            in_specs=[tile, keys, keys, pl.BlockSpec((), lambda h, s: ())],
            out_specs=[pl.BlockSpec((None, None, rows, size_pad), lambda h, s: (h, s, 0, 0)),
                       pl.BlockSpec((None, None, rows), lambda h, s: (h, s, 0))],
            out_shape=[jax.ShapeDtypeStruct((heads, splits, rows, size_pad), jnp.float32),
                       jax.ShapeDtypeStruct((heads, splits, rows), jnp.float32)],
            compiler_params=params, interpret=interpret, name="tree_attention_prefix",
        )(q, k_prefix, v_prefix, length)
        outs = jnp.concatenate([prefix_out, outs], axis=1)
        lses = jnp.concatenate([prefix_lse, lses], axis=1)
    return _merge(outs, lses)[:, :nodes, :size].astype(q.dtype)


def _cores(array: jax.Array) -> int:
    """Multiprocessors of the GPU holding ``array`` (132, an H100's, if jax does not say)."""
    return int(getattr(devices(array)[0], "core_count", None) or 132)


def tree_attention_pallas(q: jax.Array, k_prefix: jax.Array, v_prefix: jax.Array,
                          k_tree: jax.Array, v_tree: jax.Array, ancestor_words: Any,
                          scale: float | None = None, *,
                          prefix_length: int | jax.Array | None = None,
                          interpret: bool | None = None, split_size: int | None = None,
                          block_n: int = 64, num_warps: int = 4,
                          num_stages: int = 2) -> jax.Array:
    """Tree attention (the reference's contract) with the Pallas kernels.

    Args:
        q, k_prefix, v_prefix, k_tree, v_tree: ``(heads, T | P, d)`` float32, float16 or
            bfloat16 jax arrays of one dtype (``T <= 64``, ``d <= 256``); the keys and values
            may have ``kv_heads`` heads dividing q's (grouped-query attention).
        ancestor_words: the packed tree mask in any form
            :func:`~diagrammar.kernels.jax_reference.word_pairs` takes (int64 words from
            NumPy, torch or jax with x64 on, or int32 ``[low, high]`` pairs).
        scale: the score scale, ``1 / sqrt(d)`` by default.
        prefix_length: visible prefix keys (default all ``P``; a traced scalar is fine).
        interpret: run in Pallas' interpreter (default: when ``q`` is on a CPU).
        split_size: prefix keys per program, a multiple of ``block_n`` (default: see
            :func:`plan_splits`).
        block_n: prefix keys per block (a power of two of at least 16; lowered to the buffer
            length rounded up to a power of two when that is shorter).
        num_warps, num_stages: Triton compiler parameters (compiled mode only).
    """
    check_jax_inputs(q, k_prefix, v_prefix, k_tree, v_tree, grouped=True)
    if q.dtype not in DTYPES:
        raise ValueError(f"the Pallas tree attention takes float32, float16 or bfloat16; got "
                         f"{q.dtype} (float64: use the JAX reference)")
    heads, nodes, size = q.shape
    if nodes > MAX_TREE_NODES:
        raise ValueError(f"a tree block of {nodes} nodes: the bit-packed mask holds at most "
                         f"{MAX_TREE_NODES}")
    if _power_of_two_at_least(size) > MAX_HEAD_SIZE:
        raise ValueError(f"head size {size} exceeds {MAX_HEAD_SIZE}")
    if block_n < MIN_BLOCK or block_n & (block_n - 1):
        raise ValueError(f"block_n must be a power of two of at least {MIN_BLOCK}, got "
                         f"{block_n}")
    pairs = word_pairs(ancestor_words, nodes)
    interpret = on_cpu(q) if interpret is None else bool(interpret)
    capacity = k_prefix.shape[1]
    if split_size is None:
        block_n = min(block_n, _power_of_two_at_least(capacity))
    cores = None if interpret else _cores(q)
    splits, split_size = plan_splits(capacity, heads, block_n, cores, split_size)
    scale = 1.0 / math.sqrt(size) if scale is None else float(scale)
    length = capacity if prefix_length is None else prefix_length
    return _tree_attention(q, k_prefix, v_prefix, k_tree, v_tree, pairs,
                           jnp.asarray(length, jnp.int32), scale=scale, block_n=block_n,
                           splits=splits, split_size=split_size, interpret=interpret,
                           num_warps=num_warps, num_stages=num_stages)


__all__ = ["DTYPES", "MAX_HEAD_SIZE", "plan_splits", "tree_attention_pallas"]
