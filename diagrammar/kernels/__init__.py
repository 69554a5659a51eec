"""Tree-attention kernels behind one dispatch function, :func:`tree_attention`.

Verification scores a draft tree in one pass: each tree node attends to the whole cached
prefix and to its ancestors in the tree (the contract is in :mod:`.reference`). The
implementations:

- ``"reference"``: plain torch operations (:mod:`.reference`), any device, float16 to float64;
- ``"triton"``: a Triton kernel (:mod:`.triton_tree`), compiled on a CUDA GPU or run by
  Triton's interpreter on a CPU (``TRITON_INTERPRET=1`` set before Triton is first imported;
  this is how CI tests it). Triton comes with the ``kernels`` extra, on Linux.

For jax arrays (the JAX backend; jax comes with the ``qnlp`` extra) the result is a jax array:

- ``"jax-reference"``: plain ``jax.numpy`` operations (:mod:`.jax_reference`);
- ``"pallas"``: a Pallas kernel (:mod:`.pallas_tree`), compiled on a GPU, run by Pallas'
  interpreter on a CPU.

The tree comes as ``parents`` (a list or NumPy array, node 0 the root) or as its packed
ancestor words (an int64 torch tensor, :func:`.ancestor_words.ancestor_words`; with jax arrays
also a jax array: int64 words with x64 on, or int32 ``[low, high]`` pairs, see
:mod:`.jax_reference`).

>>> import torch
>>> torch.manual_seed(0) and None
>>> q, k_tree, v_tree = torch.randn(3, 2, 4, 16).unbind(0)
>>> k_prefix, v_prefix = torch.randn(2, 2, 9, 16).unbind(0)
>>> out = tree_attention(q, k_prefix, v_prefix, k_tree, v_tree, [-1, 0, 1, 0])
>>> tuple(out.shape)
(2, 4, 16)
>>> reference = tree_attention(q, k_prefix, v_prefix, k_tree, v_tree, [-1, 0, 1, 0],
...                            impl="reference")
>>> torch.allclose(out, reference, atol=1e-5)
True

This layer may import torch, jax and triton, and nothing else of diagrammar. Triton is
imported only when the Triton implementation is chosen, so that the interpreter setting is
read as late as possible; torch only when torch tensors are given, so that the JAX kernels
(:mod:`.jax_reference`, :mod:`.pallas_tree`) run without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

#: The implementations :func:`tree_attention` can be asked for, for torch tensors.
IMPLS = ("auto", "reference", "triton")
#: The implementations for jax arrays.
JAX_IMPLS = ("auto", "jax-reference", "pallas")


def is_jax_array(value: object) -> bool:
    """Whether ``value`` is a jax array (or tracer); jax is not imported to find out."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(value, jax.Array)


def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def interpret_requested() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's interpreter (as Triton reads it)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "yes", "on")


def choose_impl(q: torch.Tensor, impl: str = "auto") -> str:
    """The implementation that runs ``q``'s attention: ``impl`` itself when it is available
    (a clear error when it is not), or for ``"auto"`` Triton on a CUDA GPU (and on a CPU only
    when the interpreter is requested), the reference otherwise. For a jax ``q``: Pallas on
    a GPU (float32, float16, bfloat16), the JAX reference otherwise; ``"pallas"`` asked for on
    a CPU runs in Pallas' interpreter."""
    if is_jax_array(q):
        if impl not in JAX_IMPLS:
            raise ValueError(f"unknown tree-attention impl {impl!r} for jax arrays; choose one "
                             f"of {JAX_IMPLS}")
        if impl == "auto":
            from diagrammar.kernels.jax_reference import on_gpu

            kernel_dtypes = ("float32", "float16", "bfloat16")
            usable = on_gpu(q) and np.dtype(q.dtype).name in kernel_dtypes
            return "pallas" if usable else "jax-reference"
        return impl
    if impl not in IMPLS:
        hint = " for torch tensors (it takes jax arrays)" if impl in JAX_IMPLS else ""
        raise ValueError(f"unknown tree-attention impl {impl!r}{hint}; choose one of {IMPLS}")
    if impl == "reference":
        return impl
    import torch

    interpreter_dtypes = (torch.float32, torch.float16)
    if impl == "auto":
        usable = triton_installed() and (
            (q.device.type == "cuda" and q.dtype in (*interpreter_dtypes, torch.bfloat16))
            or (interpret_requested() and q.dtype in interpreter_dtypes))
        return "triton" if usable else "reference"
    if not triton_installed():
        raise RuntimeError("impl='triton' needs the triton package, which is not installed: "
                           "pip install 'diagrammar[kernels]' (Linux only)")
    if q.device.type != "cuda" and not interpret_requested():
        raise RuntimeError(f"impl='triton' on {q.device} tensors runs only in Triton's "
                           "interpreter: set TRITON_INTERPRET=1 before Triton is first imported "
                           "(slow; for tests), move the tensors to a CUDA GPU, or use "
                           "impl='reference'")
    return impl


def tree_attention(q: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor,
                   k_tree: torch.Tensor, v_tree: torch.Tensor,
                   parents_or_words: Sequence[int] | np.ndarray | torch.Tensor,
                   impl: str = "auto", scale: float | None = None) -> torch.Tensor:
    """Attention of the tree's nodes over the prefix and their ancestors.

    Args:
        q, k_tree, v_tree: ``(heads, T, d)``; k_prefix, v_prefix: ``(heads, P, d)``, P >= 0.
        parents_or_words: the tree as parents (list, tuple or NumPy array; ``-1`` for node 0,
            the root; every other parent before its child), or as packed ancestor words (an
            int64 torch tensor of shape ``(T,)``; any bits, so hand-made masks too).
        impl: ``"auto"``, ``"reference"`` or ``"triton"``; for jax arrays ``"auto"``,
            ``"jax-reference"`` or ``"pallas"`` (see :func:`choose_impl`).
        scale: the score scale, ``1 / sqrt(d)`` by default.

    Returns:
        ``(heads, T, d)`` in ``q``'s dtype (a jax array for jax inputs).
    """
    if is_jax_array(q):
        return _tree_attention_jax(q, k_prefix, v_prefix, k_tree, v_tree, parents_or_words,
                                   impl, scale)
    import torch

    from diagrammar.kernels.ancestor_words import ancestor_words
    from diagrammar.kernels.reference import tree_attention_reference

    if isinstance(parents_or_words, torch.Tensor):
        words = parents_or_words.to(q.device)
    else:
        words = ancestor_words(parents_or_words, device=q.device)
    if choose_impl(q, impl) == "triton":
        from diagrammar.kernels.triton_tree import tree_attention_triton

        return tree_attention_triton(q, k_prefix, v_prefix, k_tree, v_tree, words, scale)
    return tree_attention_reference(q, k_prefix, v_prefix, k_tree, v_tree, words, scale)


def _tree_attention_jax(q, k_prefix, v_prefix, k_tree, v_tree, parents_or_words, impl, scale):
    """:func:`tree_attention` for jax arrays: words as they are (torch or jax), parents packed
    to int32 pairs."""
    from diagrammar.kernels.jax_reference import (
        ancestor_word_pairs,
        tree_attention_jax_reference,
    )

    words = parents_or_words
    torch = sys.modules.get("torch")     # torch words are taken as they are, if torch is loaded
    if not ((torch is not None and isinstance(words, torch.Tensor)) or is_jax_array(words)):
        words = ancestor_word_pairs(words)
    if choose_impl(q, impl) == "pallas":
        from diagrammar.kernels.pallas_tree import tree_attention_pallas

        return tree_attention_pallas(q, k_prefix, v_prefix, k_tree, v_tree, words, scale)
    return tree_attention_jax_reference(q, k_prefix, v_prefix, k_tree, v_tree, words, scale)


__all__ = ["IMPLS", "JAX_IMPLS", "choose_impl", "interpret_requested", "is_jax_array",
           "tree_attention", "triton_installed"]
