"""The JAX transformer's forward pass: a draft tree scored over a fixed-capacity KV cache.

Pure functions of arrays, jitted by :class:`~diagrammar.models.jax.model.JaxCausalLM`:

- :func:`forward` runs ``T`` new tokens (the root and the draft nodes, padded to a bucketed
  size) after the ``start`` cached ones. Each new token attends to every cached key before
  ``start`` and, inside the new block, to the keys ``tree_mask`` allows (its ancestors and
  itself); its position id is ``start`` plus its depth.
- :func:`compact` copies a few cache positions down (the accepted path, after verification).

The cache is one array per layer (a slice of a stacked array would be copied on a CPU).
Attention has two parts, merged by their log-sum-exp: the *prefix*, the cached keys before
``start`` (all visible), and the *tree block*, the ``T`` new keys (visible as ``tree_mask``
says). Every row sees at least itself, so no row is empty. Grouped-query attention groups the
query heads per key/value head instead of repeating the cache. Each layer first writes its new
keys and values at ``start`` and then attends (the prefix is read only before ``start``, so
the write does not change it): writing first lets XLA update a donated cache in place, where
reading it and then writing it makes XLA copy the whole cache every pass. With
``write=False`` the layers return their new keys and values instead, so that a caller can run
passes of several sizes under ``lax.switch`` without the branches writing the cache (a branch
that writes an operand gets a copy of it) and write the new rows after the switch
(:func:`write_rows`; the compiled decoding loop does this).

**Attention implementations** (``attention=``, static): ``"xla"`` (the default) is
:func:`attend_blocked`: the prefix is read in blocks of :data:`PREFIX_BLOCK` keys, only as far
as ``start`` (a ``fori_loop`` with an online softmax), so a pass costs what the context holds,
not what the cache could hold (reading the cache is what a CPU step spends its attention time
on); ``"pallas"`` is the
tree-attention kernel of :mod:`diagrammar.kernels.pallas_tree` (:func:`attend_pallas`): the
prefix is the cache before ``start`` read in place (``prefix_length=start``), the tree block
the ``T`` new keys and values, masked by ``tree_mask`` packed into ancestor words
(:func:`~diagrammar.kernels.jax_reference.mask_word_pairs`), with the query heads grouped per
key/value head inside the kernel. The kernel is compiled by Pallas' Triton lowering on a GPU
and run by Pallas' interpreter when JAX's default backend is a CPU (an emulator: correct, and
slow). Its tree block holds at most 64 keys, so a pass of more rows (a long prefill, a tree
of more than 63 draft nodes) uses :func:`attend_blocked`; float64 has no kernel (use
``"xla"``).

Arithmetic follows Hugging Face's: GPT-2 (learned positions, LayerNorm, ``gelu_new``, tied
head) and Llama (RMSNorm, rotary embeddings with ``rotate_half``, SiLU-gated MLP). Products
use ``Precision.HIGHEST`` (no TF32 on a GPU); normalisation and softmax run in float32 for
float16/bfloat16 weights, in the weights' dtype otherwise. (Hugging Face's Llama computes
RMSNorm and the rotary tables in float32 even for a float64 model; here float64 stays
float64.)

>>> import jax.numpy as jnp
>>> rotate_half(jnp.array([1.0, 2.0, 3.0, 4.0])).tolist()
[-3.0, -4.0, 1.0, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from diagrammar.models.jax.architecture import Architecture

HIGHEST = lax.Precision.HIGHEST
#: The attention implementations :func:`forward` takes.
ATTENTIONS = ("xla", "pallas")
#: The most rows a pass runs through the Pallas kernel (its tree block's bit-packed mask
#: holds 64 nodes, :data:`diagrammar.kernels.ancestor_words.MAX_TREE_NODES`).
PALLAS_MAX_ROWS = 64
#: A KV cache: one ``(kv_heads, capacity, head_dim)`` array per layer.
Cache = tuple[jax.Array, ...]


def compute_dtype(dtype: Any) -> Any:
    """The dtype normalisation and softmax run in: float32 for half types, else ``dtype``."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def dot(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` at full precision."""
    return jnp.matmul(x, w, precision=HIGHEST)


def layer_norm(x: jax.Array, weight: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    h = x.astype(compute_dtype(x.dtype))
    mean = h.mean(-1, keepdims=True)
    centred = h - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    return (centred * lax.rsqrt(variance + eps)).astype(x.dtype) * weight + bias


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    h = x.astype(compute_dtype(x.dtype))
    h = h * lax.rsqrt((h * h).mean(-1, keepdims=True) + eps)
    return weight * h.astype(x.dtype)


def activation(name: str, x: jax.Array) -> jax.Array:
    """The MLP activation by its Hugging Face name (see ``architecture.ACTIVATIONS``)."""
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return jax.nn.gelu(x, approximate=False)
    if name == "relu":
        return jax.nn.relu(x)
    return x * jax.nn.sigmoid(x)                     # silu / swish


def rotate_half(x: jax.Array) -> jax.Array:
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rotary(positions: jax.Array, inv_freq: tuple[float, ...], dtype: Any
           ) -> tuple[jax.Array, jax.Array]:
    """``cos`` and ``sin`` tables ``(T, 1, head_dim)`` of the rotary embedding at
    ``positions`` (computed in float32, or float64 for float64 weights)."""
    compute = jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32
    freqs = positions.astype(compute)[:, None] * jnp.asarray(inv_freq, compute)[None, :]
    angles = jnp.concatenate([freqs, freqs], axis=-1)[:, None, :]
    return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


#: Keys per block of :func:`attend_blocked`'s prefix (a cache whose capacity is not a multiple
#: of it is read as one block).
PREFIX_BLOCK = 128


def attend_blocked(q: jax.Array, keys: jax.Array, values: jax.Array, k_new: jax.Array,
                   v_new: jax.Array, tree_mask: jax.Array, start: jax.Array, scale: Any
                   ) -> jax.Array:
    """Tree attention of ``q`` ``(T, heads, d)``: over the cache ``(kv_heads, C, d)`` before
    ``start`` (every key visible), read block by block only up to ``start``, and over the new
    keys and values ``(T, kv_heads, d)`` where ``tree_mask`` ``(T, T)`` allows; the parts are
    merged by an online softmax. Returns ``(T, heads * d)``.

    Row 0 below sees three cached zero keys (score 0, value 0) and itself (score 2, value 1),
    so it gets ``e**2 / (e**2 + 3)``:

    >>> import jax.numpy as jnp
    >>> q = jnp.ones((2, 2, 4)); cache = jnp.zeros((1, 8, 4)); new = jnp.ones((2, 1, 4))
    >>> out = attend_blocked(q, cache, cache, new, new, jnp.tril(jnp.ones((2, 2), bool)),
    ...                      jnp.int32(3), 0.5)
    >>> out.shape, round(float(out[0, 0]), 4), round(math.e**2 / (math.e**2 + 3), 4)
    ((2, 8), 0.7112, 0.7112)
    """
    nodes, heads, size = q.shape
    kv_heads, capacity = keys.shape[0], keys.shape[1]
    compute = compute_dtype(q.dtype)
    grouped = q.reshape(nodes, kv_heads, heads // kv_heads, size)
    # The tree block first: every row sees itself, so the running maximum is finite.
    scores = jnp.einsum("tgrd,sgd->grts", grouped, k_new, precision=HIGHEST)
    scores = jnp.where(tree_mask, scores.astype(compute) * scale, -jnp.inf)
    highest = scores.max(-1)
    weights = jnp.exp(scores - highest[..., None])
    total = weights.sum(-1)
    out = jnp.einsum("grts,sgd->grtd", weights, v_new.astype(compute), precision=HIGHEST)
    block = PREFIX_BLOCK if capacity % PREFIX_BLOCK == 0 else capacity   # blocks tile it
    offsets = jnp.arange(block)

    def prefix_block(index, state):
        highest, total, out = state
        begin = index * block
        k = lax.dynamic_slice_in_dim(keys, begin, block, axis=1)
        v = lax.dynamic_slice_in_dim(values, begin, block, axis=1)
        scores = jnp.einsum("tgrd,gcd->grtc", grouped, k, precision=HIGHEST)
        scores = jnp.where(begin + offsets < start, scores.astype(compute) * scale, -jnp.inf)
        new_highest = jnp.maximum(highest, scores.max(-1))
        weights = jnp.exp(scores - new_highest[..., None])
        shrink = jnp.exp(highest - new_highest)
        out = out * shrink[..., None] + jnp.einsum("grtc,gcd->grtd", weights,
                                                   v.astype(compute), precision=HIGHEST)
        return new_highest, total * shrink + weights.sum(-1), out

    blocks = (start + block - 1) // block
    _, total, out = lax.fori_loop(0, blocks, prefix_block, (highest, total, out))
    out = (out / total[..., None]).astype(q.dtype)
    return out.transpose(2, 0, 1, 3).reshape(nodes, heads * size)


def attend_pallas(q: jax.Array, keys: jax.Array, values: jax.Array, k_new: jax.Array,
                  v_new: jax.Array, words: jax.Array, start: jax.Array, scale: Any
                  ) -> jax.Array:
    """:func:`attend` with the Pallas tree-attention kernel: ``q`` ``(T, heads, d)`` over the
    cache ``(kv_heads, C, d)`` before ``start`` and the new keys and values ``(T, kv_heads,
    d)`` as ``words`` (int32 ``[low, high]`` pairs ``(T, 2)``) allow; returns ``(T, heads *
    d)``. Interpreted when JAX's default backend is a CPU."""
    from diagrammar.kernels.jax_reference import on_cpu
    from diagrammar.kernels.pallas_tree import tree_attention_pallas

    nodes, heads, size = q.shape
    out = tree_attention_pallas(
        q.transpose(1, 0, 2), keys, values, k_new.transpose(1, 0, 2), v_new.transpose(1, 0, 2),
        words, float(scale), prefix_length=start, interpret=on_cpu(q))
    return out.transpose(1, 0, 2).reshape(nodes, heads * size)


def _write(cache: jax.Array, new: jax.Array, start: jax.Array) -> jax.Array:
    """One layer's cache ``(kv_heads, C, d)`` with ``new`` ``(T, kv_heads, d)`` at ``start``."""
    zero = jnp.zeros((), start.dtype)
    return lax.dynamic_update_slice(cache, new.transpose(1, 0, 2), (zero, start, zero))


def _attention(q, k, v, keys, values, start, mask, scale):
    """The layer's attention of ``q`` by the implementation ``mask`` holds: ``("xla",
    tree_mask)`` (:func:`attend_blocked`) or ``("pallas", words)`` with the tree block's
    ancestor words. Both read the cache only before ``start``."""
    kind, what = mask
    if kind == "pallas":
        return attend_pallas(q, keys, values, k, v, what, start, scale)
    return attend_blocked(q, keys, values, k, v, what, start, scale)


def _gpt2_block(arch: Architecture, x, p, keys, values, index, start, mask, cos_sin, write):
    nodes = x.shape[0]
    h = layer_norm(x, p["ln1_w"], p["ln1_b"], arch.eps)
    q, k, v = jnp.split(dot(h, p["qkv_w"]) + p["qkv_b"], 3, axis=-1)
    shape = (nodes, arch.heads, arch.head_dim)
    q, k, v = q.reshape(shape), k.reshape(shape), v.reshape(shape)
    if write:
        keys, values = _write(keys, k, start), _write(values, v, start)
    scale = arch.scale / (index + 1) if arch.inverse_layer_scale else arch.scale
    attended = _attention(q, k, v, keys, values, start, mask, scale)
    x = x + dot(attended, p["o_w"]) + p["o_b"]
    h = layer_norm(x, p["ln2_w"], p["ln2_b"], arch.eps)
    h = activation(arch.activation, dot(h, p["fc_w"]) + p["fc_b"])
    return x + dot(h, p["proj_w"]) + p["proj_b"], *((keys, values) if write else (k, v))


def _linear(p: dict, name: str, x: jax.Array) -> jax.Array:
    y = dot(x, p[name + "_w"])
    return y + p[name + "_b"] if name + "_b" in p else y


def _llama_block(arch: Architecture, x, p, keys, values, index, start, mask, cos_sin, write):
    nodes = x.shape[0]
    cos, sin = cos_sin
    h = rms_norm(x, p["ln1_w"], arch.eps)
    q = _linear(p, "q", h).reshape(nodes, arch.heads, arch.head_dim)
    k = _linear(p, "k", h).reshape(nodes, arch.kv_heads, arch.head_dim)
    v = _linear(p, "v", h).reshape(nodes, arch.kv_heads, arch.head_dim)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    if write:
        keys, values = _write(keys, k, start), _write(values, v, start)
    attended = _attention(q, k, v, keys, values, start, mask, arch.scale)
    x = x + _linear(p, "o", attended)
    h = rms_norm(x, p["ln2_w"], arch.eps)
    gated = activation(arch.activation, _linear(p, "gate", h)) * _linear(p, "up", h)
    return x + _linear(p, "down", gated), *((keys, values) if write else (k, v))


def forward(params: dict[str, Any], keys: Cache, values: Cache, ids: jax.Array,
            positions: jax.Array, tree_mask: jax.Array, start: jax.Array, *,
            arch: Architecture, logits: bool = True, attention: str = "xla",
            write: bool = True) -> tuple[jax.Array | None, Cache, Cache]:
    """Runs ``ids`` after the ``start`` cached tokens and writes their keys and values there.

    Args:
        params: the parameter tree of :mod:`.weights`, as jax arrays.
        keys, values: the cache, one ``(kv_heads, capacity, head_dim)`` array per layer.
        ids, positions: ``(T,)`` int32 token ids and position ids of the new tokens.
        tree_mask: ``(T, T)`` bool, row ``i`` sees new token ``j``.
        start: int32 scalar, the number of cached tokens (``start + T <= capacity``).
        arch: the model's architecture (static).
        logits: whether to compute the output head (a prefill does not need it).
        attention: ``"xla"`` or ``"pallas"`` (static; see the module docstring).
        write: write the new keys and values into the cache (static); ``False`` returns
            them instead, one ``(T, kv_heads, head_dim)`` array per layer (see
            :func:`write_rows`).

    Returns:
        ``(scores (T, vocab) or None, keys, values)``: the cache, or the new rows.
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}: choose one of "
                         f"{', '.join(map(repr, ATTENTIONS))}")
    x = params["embedding"][ids]
    if arch.family == "gpt2":
        x = x + params["positions"][positions]
        block, cos_sin = _gpt2_block, None
    else:
        block, cos_sin = _llama_block, rotary(positions, arch.inv_freq, x.dtype)
    nodes = ids.shape[0]
    if attention == "pallas" and nodes <= PALLAS_MAX_ROWS:
        from diagrammar.kernels.jax_reference import mask_word_pairs

        mask = ("pallas", mask_word_pairs(tree_mask))
    else:
        mask = ("xla", tree_mask)
    new_keys, new_values = [], []
    for index, p in enumerate(params["blocks"]):
        x, k, v = block(arch, x, p, keys[index], values[index], index, start, mask, cos_sin,
                        write)
        new_keys.append(k)
        new_values.append(v)
    if not logits:
        return None, tuple(new_keys), tuple(new_values)
    if arch.family == "gpt2":
        x = layer_norm(x, params["final_w"], params["final_b"], arch.eps)
    else:
        x = rms_norm(x, params["final_w"], arch.eps)
    scores = jnp.einsum("td,vd->tv", x, params["head"], precision=HIGHEST)
    return scores, tuple(new_keys), tuple(new_values)


def write_rows(keys: Cache, values: Cache, new_keys: Sequence[jax.Array],
               new_values: Sequence[jax.Array], start: jax.Array) -> tuple[Cache, Cache]:
    """The cache with each layer's new rows ``(T, kv_heads, head_dim)`` written at
    ``start``."""
    return (tuple(_write(cache, new, start) for cache, new in zip(keys, new_keys, strict=True)),
            tuple(_write(cache, new, start)
                  for cache, new in zip(values, new_values, strict=True)))


def compact(keys: Cache, values: Cache, sources: jax.Array, destination: jax.Array
            ) -> tuple[Cache, Cache]:
    """The cache with positions ``sources`` copied to ``destination`` onwards (all layers)."""
    zero = jnp.zeros((), destination.dtype)
    at = (zero, destination, zero)

    def move(cache: jax.Array) -> jax.Array:
        return lax.dynamic_update_slice(cache, jnp.take(cache, sources, axis=1), at)

    return tuple(map(move, keys)), tuple(map(move, values))


__all__ = ["ATTENTIONS", "PALLAS_MAX_ROWS", "PREFIX_BLOCK", "activation", "attend_blocked",
           "attend_pallas", "compact", "compute_dtype", "dot", "forward", "layer_norm",
           "rms_norm", "rotary", "rotate_half", "write_rows"]
