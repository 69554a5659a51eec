"""The JAX transformer's forward pass: a draft tree scored over a fixed-capacity KV cache.

Pure functions of arrays, jitted by :class:`~diagrammar.models.jax.model.JaxCausalLM`:

- :func:`forward` runs ``T`` new tokens (the root and the draft nodes, padded to a bucketed
  size) after the ``start`` cached ones. Each new token attends to every cached key before
  ``start`` and, inside the new block, to the keys ``tree_mask`` allows (its ancestors and
  itself); its position id is ``start`` plus its depth.
- :func:`compact` copies a few cache positions down (the accepted path, after verification).

The cache is one array per layer (a slice of a stacked array would be copied on a CPU), and
each layer first writes its ``T`` new keys and values at ``start`` and then attends over the
whole capacity with one mask: the prefix columns before ``start``, the tree block's columns as
``tree_mask`` says, nothing after. Writing first lets XLA update a donated cache in place
(reading the old cache and then writing it would make it copy the cache every pass). Every row
sees at least itself, so no row is empty. Grouped-query attention groups the query heads per
key/value head instead of repeating the cache.

**Attention implementations** (``attention=``, static): ``"xla"`` (the default) is the einsum
of :func:`attend` over the whole capacity with the dense mask above; ``"pallas"`` is the
tree-attention kernel of :mod:`diagrammar.kernels.pallas_tree` (:func:`attend_pallas`): the
prefix is the cache before ``start`` read in place (``prefix_length=start``), the tree block
the ``T`` new keys and values, masked by ``tree_mask`` packed into ancestor words
(:func:`~diagrammar.kernels.jax_reference.mask_word_pairs`), with the query heads grouped per
key/value head inside the kernel. The kernel is compiled by Pallas' Triton lowering on a GPU
and run by Pallas' interpreter when JAX's default backend is a CPU (an emulator: correct, and
slow). Its tree block holds at most 64 keys, so a pass of more rows (a long prefill, a tree
of more than 63 draft nodes) uses the einsum; float64 has no kernel (use ``"xla"``).

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


def attend(q: jax.Array, keys: jax.Array, values: jax.Array, visible: jax.Array,
           scale: Any) -> jax.Array:
    """Masked attention of ``q`` ``(T, heads, d)`` over one layer's cache ``(kv_heads, C, d)``
    where ``visible`` ``(T, C)``; returns ``(T, heads * d)``. Query heads are grouped per
    key/value head (grouped-query attention without repeating the cache)."""
    nodes, heads, size = q.shape
    kv_heads = keys.shape[0]
    q = q.reshape(nodes, kv_heads, heads // kv_heads, size)
    scores = jnp.einsum("tgrd,gcd->grtc", q, keys, precision=HIGHEST) * scale
    scores = jnp.where(visible, scores, -jnp.inf)
    weights = jax.nn.softmax(scores.astype(compute_dtype(q.dtype)), axis=-1).astype(q.dtype)
    out = jnp.einsum("grtc,gcd->tgrd", weights, values, precision=HIGHEST)
    return out.reshape(nodes, heads * size)


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
    visible)`` with the dense ``(T, C)`` mask, ``("pallas", words)`` with the tree block's
    ancestor words (the cache already holds ``k`` and ``v`` at ``start``)."""
    kind, what = mask
    if kind == "pallas":
        return attend_pallas(q, keys, values, k, v, what, start, scale)
    return attend(q, keys, values, what, scale)


def _gpt2_block(arch: Architecture, x, p, keys, values, index, start, mask, cos_sin):
    nodes = x.shape[0]
    h = layer_norm(x, p["ln1_w"], p["ln1_b"], arch.eps)
    q, k, v = jnp.split(dot(h, p["qkv_w"]) + p["qkv_b"], 3, axis=-1)
    shape = (nodes, arch.heads, arch.head_dim)
    q, k, v = q.reshape(shape), k.reshape(shape), v.reshape(shape)
    keys, values = _write(keys, k, start), _write(values, v, start)
    scale = arch.scale / (index + 1) if arch.inverse_layer_scale else arch.scale
    attended = _attention(q, k, v, keys, values, start, mask, scale)
    x = x + dot(attended, p["o_w"]) + p["o_b"]
    h = layer_norm(x, p["ln2_w"], p["ln2_b"], arch.eps)
    h = activation(arch.activation, dot(h, p["fc_w"]) + p["fc_b"])
    return x + dot(h, p["proj_w"]) + p["proj_b"], keys, values


def _linear(p: dict, name: str, x: jax.Array) -> jax.Array:
    y = dot(x, p[name + "_w"])
    return y + p[name + "_b"] if name + "_b" in p else y


def _llama_block(arch: Architecture, x, p, keys, values, index, start, mask, cos_sin):
    nodes = x.shape[0]
    cos, sin = cos_sin
    h = rms_norm(x, p["ln1_w"], arch.eps)
    q = _linear(p, "q", h).reshape(nodes, arch.heads, arch.head_dim)
    k = _linear(p, "k", h).reshape(nodes, arch.kv_heads, arch.head_dim)
    v = _linear(p, "v", h).reshape(nodes, arch.kv_heads, arch.head_dim)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    keys, values = _write(keys, k, start), _write(values, v, start)
    attended = _attention(q, k, v, keys, values, start, mask, arch.scale)
    x = x + _linear(p, "o", attended)
    h = rms_norm(x, p["ln2_w"], arch.eps)
    gated = activation(arch.activation, _linear(p, "gate", h)) * _linear(p, "up", h)
    return x + _linear(p, "down", gated), keys, values


def forward(params: dict[str, Any], keys: Cache, values: Cache, ids: jax.Array,
            positions: jax.Array, tree_mask: jax.Array, start: jax.Array, *,
            arch: Architecture, logits: bool = True, attention: str = "xla"
            ) -> tuple[jax.Array | None, Cache, Cache]:
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

    Returns:
        ``(scores (T, vocab) or None, keys, values)``.
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
    nodes, capacity = ids.shape[0], keys[0].shape[1]
    if attention == "pallas" and nodes <= PALLAS_MAX_ROWS:
        from diagrammar.kernels.jax_reference import mask_word_pairs

        mask = ("pallas", mask_word_pairs(tree_mask))
    else:
        zero = jnp.zeros((), start.dtype)
        in_tree = lax.dynamic_update_slice(jnp.zeros((nodes, capacity), bool), tree_mask,
                                           (zero, start))
        mask = ("xla", (jnp.arange(capacity) < start)[None, :] | in_tree)
    new_keys, new_values = [], []
    for index, p in enumerate(params["blocks"]):
        x, k, v = block(arch, x, p, keys[index], values[index], index, start, mask, cos_sin)
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


def compact(keys: Cache, values: Cache, sources: jax.Array, destination: jax.Array
            ) -> tuple[Cache, Cache]:
    """The cache with positions ``sources`` copied to ``destination`` onwards (all layers)."""
    zero = jnp.zeros((), destination.dtype)
    at = (zero, destination, zero)

    def move(cache: jax.Array) -> jax.Array:
        return lax.dynamic_update_slice(cache, jnp.take(cache, sources, axis=1), at)

    return tuple(map(move, keys)), tuple(map(move, values))


__all__ = ["ATTENTIONS", "PALLAS_MAX_ROWS", "activation", "attend", "attend_pallas", "compact",
           "compute_dtype", "dot", "forward", "layer_norm", "rms_norm", "rotary", "rotate_half"]
