"""A lean forward pass for Hugging Face GPT-2 models, with a preallocated KV cache.

The Hugging Face forward spends much of a single-token step in Python (module hooks, mask
construction, cache bookkeeping). For GPT-2 models, :class:`FastGPT2Session` runs the same
arithmetic directly on the model's own weights — the same ``addmm``, ``layer_norm``,
activation and ``scaled_dot_product_attention`` calls — into a KV buffer that grows by
doubling, behind the :class:`~diagrammar.models.session.CachedSession` contract.

Tests check its logits against the Hugging Face forward (float64: 1e-9) and its decodes
against ``generate``.

**Attention.** ``attention`` picks how a pass attends (:data:`ATTENTIONS`):

- ``"sdpa"`` (the default): PyTorch's ``scaled_dot_product_attention`` over the whole buffer
  slice with a dense boolean mask. The fastest where measured: on a CPU the reference is 1.07
  to 1.32 times slower per verify pass (``benchmarks/kernel_attention_bench.py``); Triton has
  not been timed on a GPU yet;
- ``"reference"``, ``"triton"``: the tree-attention kernels of :mod:`diagrammar.kernels`. The
  prefix is the cached slice of the KV buffer (every key visible), the tree block is this
  pass's keys and values (the root, then the draft nodes; or the prompt at prefill), visible
  along ancestor paths read from packed ancestor words built from the tree's parents.
  ``"triton"`` needs the ``triton`` package and float32 or float16 weights (bfloat16 too on a
  CUDA GPU); on a CPU it runs only in Triton's interpreter (``TRITON_INTERPRET=1`` set before
  Triton is first imported; slow, for tests). ``"reference"`` runs anywhere, in any float dtype.

One int64 word holds the mask of at most 64 nodes, so a pass over a block of more than 64
tokens (a tree of more than 63 draft nodes, a prompt of more than 65 tokens at prefill) runs
``"sdpa"`` instead, whatever the choice; :attr:`FastGPT2Session.fallback_passes` counts them.
:class:`~diagrammar.models.hf.HFCausalLM` passes its ``attention`` option (or the
``DIAGRAMMAR_ATTENTION`` environment variable) down to its sessions. An unknown name, or a
kernel that cannot run on the model's device and dtype, is a clear error when the session is
created. Batched verification (:mod:`diagrammar.models.batched_gpt2`) always runs ``"sdpa"``.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=64, n_embd=16, n_layer=1,
...                                    n_head=2)).eval()
>>> supports(model)
True
>>> session = FastGPT2Session(model, [1, 2, 3])
>>> tuple(session.verify(3, [4, 5], [-1, -1]).shape)
(3, 32)
>>> kernel = FastGPT2Session(model, [1, 2, 3], attention="reference")
>>> plain = FastGPT2Session(model, [1, 2, 3])
>>> torch.allclose(kernel.verify(3, [4, 5], [-1, -1]), plain.verify(3, [4, 5], [-1, -1]),
...                atol=1e-5)
True
>>> FastGPT2Session(model, [1, 2, 3], attention="flash")
Traceback (most recent call last):
...
ValueError: unknown attention 'flash': choose one of 'sdpa', 'reference', 'triton'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from diagrammar.kernels.ancestor_words import MAX_TREE_NODES, ancestor_words, with_root
from diagrammar.models.session import CachedSession, synchronize_device
from diagrammar.models.tree_mask import is_chain, tree_layout

#: The attention implementations of the lean session (see the module docstring).
ATTENTIONS = ("sdpa", "reference", "triton")

#: A tree-attention function: ``(q, k_prefix, v_prefix, k_tree, v_tree, words, scale)``.
TreeAttention = Callable[..., torch.Tensor]


def attention_kernel(attention: str, device: torch.device, dtype: torch.dtype
                     ) -> TreeAttention | None:
    """The tree-attention function that ``attention`` names (``None`` for ``"sdpa"``), after
    checking that it runs on ``device`` in ``dtype``: a ``ValueError`` for an unknown name or
    a dtype the kernel does not take, a ``RuntimeError`` for a kernel that cannot run here.

    >>> attention_kernel("sdpa", torch.device("cpu"), torch.float32) is None
    True
    >>> attention_kernel("reference", torch.device("cpu"), torch.float64).__name__
    'tree_attention_reference'
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}: choose one of "
                         f"{', '.join(map(repr, ATTENTIONS))}")
    if attention == "sdpa":
        return None
    if attention == "reference":
        from diagrammar.kernels.reference import tree_attention_reference

        return tree_attention_reference
    from diagrammar.kernels import choose_impl

    try:        # triton installed, and a CUDA device or the interpreter requested
        choose_impl(torch.empty(0, dtype=dtype, device=device), "triton")
    except RuntimeError as error:
        raise RuntimeError(f"attention='triton' cannot run here: {error}") from None
    from diagrammar.kernels import triton_tree

    if dtype not in triton_tree.DTYPES or (dtype == torch.bfloat16
                                           and triton_tree.interpreted()):
        takes = "float32 or float16" + ("" if triton_tree.interpreted() else " or bfloat16")
        raise ValueError(f"attention='triton' takes {takes} weights here; this model's are "
                         f"{dtype}: cast the model, or use attention='reference' or 'sdpa'")
    if device.type != "cuda" and not triton_tree.interpreted():
        raise RuntimeError(f"attention='triton' on {device} needs Triton's interpreter, but "
                           "Triton's kernels were first imported without TRITON_INTERPRET=1: "
                           "set it before anything imports Triton, or use "
                           "attention='reference'")
    return triton_tree.tree_attention_triton


def _depths(parents: Sequence[int]) -> list[int]:
    """The depth of the root and of every draft node, checking the parents as
    :func:`~diagrammar.models.tree_mask.tree_layout` does (without building its mask)."""
    depths = [0]
    for node, parent in enumerate(parents):
        if not -1 <= parent < node:
            raise ValueError(f"node {node} has parent {parent}: parents must come before "
                             "their children")
        depths.append(depths[parent + 1] + 1)
    return depths


def supports(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a plain GPT-2 LM head model that the lean forward reproduces."""
    if type(model).__name__ != "GPT2LMHeadModel":
        return False
    config = model.config
    tied = model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    return (tied and not getattr(config, "scale_attn_by_inverse_layer_idx", False)
            and not getattr(config, "reorder_and_upcast_attn", False)
            and getattr(config, "scale_attn_weights", True)
            and getattr(config, "add_cross_attention", False) is False)


class _Layer:
    __slots__ = ("ln1_w", "ln1_b", "attn_w", "attn_b", "proj_w", "proj_b", "ln2_w", "ln2_b",
                 "fc_w", "fc_b", "fc2_w", "fc2_b", "act", "keys", "values")

    def __init__(self, block: torch.nn.Module) -> None:
        self.ln1_w, self.ln1_b = block.ln_1.weight, block.ln_1.bias
        self.attn_w, self.attn_b = block.attn.c_attn.weight, block.attn.c_attn.bias
        self.proj_w, self.proj_b = block.attn.c_proj.weight, block.attn.c_proj.bias
        self.ln2_w, self.ln2_b = block.ln_2.weight, block.ln_2.bias
        self.fc_w, self.fc_b = block.mlp.c_fc.weight, block.mlp.c_fc.bias
        self.fc2_w, self.fc2_b = block.mlp.c_proj.weight, block.mlp.c_proj.bias
        self.act = block.mlp.act.forward


class GPT2Weights:
    """A GPT-2 model's weights and shapes, read once, and the arithmetic of a block around its
    attention (shared by the single-sequence and the batched lean forward)."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        transformer = model.transformer
        self.wte = transformer.wte.weight
        self.wpe = transformer.wpe.weight
        self.lnf_w, self.lnf_b = transformer.ln_f.weight, transformer.ln_f.bias
        self.eps = config.layer_norm_epsilon
        self.width = config.n_embd
        self.heads = config.n_head
        self.head_dim = self.width // self.heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.layers = [_Layer(block) for block in transformer.h]
        self.device = self.wte.device
        self.dtype = self.wte.dtype

    def qkv(self, x: torch.Tensor, layer: _Layer) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values of ``x`` (tokens x width) in ``layer``."""
        h = F.layer_norm(x, (self.width,), layer.ln1_w, layer.ln1_b, self.eps)
        return torch.addmm(layer.attn_b, h, layer.attn_w).split(self.width, dim=1)

    def rest(self, x: torch.Tensor, attended: torch.Tensor, layer: _Layer) -> torch.Tensor:
        """The block after attention: projection, residual, MLP, residual."""
        x = torch.addmm(layer.proj_b, attended, layer.proj_w) + x
        h = F.layer_norm(x, (self.width,), layer.ln2_w, layer.ln2_b, self.eps)
        h = layer.act(torch.addmm(layer.fc_b, h, layer.fc_w))
        return torch.addmm(layer.fc2_b, h, layer.fc2_w) + x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The final layer norm and the tied output embedding."""
        x = F.layer_norm(x, (self.width,), self.lnf_w, self.lnf_b, self.eps)
        return F.linear(x, self.wte)


class FastGPT2Session(CachedSession):
    """The KV cache of one sequence under a GPT-2 model, scored tree by tree.

    The contract of :class:`~diagrammar.models.session.CachedSession`: the cache holds every
    committed token but the last (the root); ``verify`` scores root and tree in one pass;
    ``keep`` keeps the accepted path.

    Args:
        model: a plain GPT-2 LM head model (:func:`supports`).
        prompt_ids: the prompt; all but its last token are prefilled.
        attention: ``"sdpa"`` (default), ``"reference"`` or ``"triton"`` (see the module
            docstring); checked here, before the prefill.

    Attributes:
        attention: the implementation chosen.
        fallback_passes: passes over more than 64 tokens that ran ``"sdpa"`` instead of the
            chosen kernel (always 0 for ``"sdpa"``).
    """

    def __init__(self, model: torch.nn.Module, prompt_ids: Sequence[int],
                 attention: str = "sdpa") -> None:
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        self.weights = weights = GPT2Weights(model)
        self.wte, self.wpe = weights.wte, weights.wpe
        self.width, self.heads, self.head_dim = weights.width, weights.heads, weights.head_dim
        self.scale, self.layers = weights.scale, weights.layers
        self.device, self.dtype = weights.device, weights.dtype
        self._kernel = attention_kernel(attention, self.device, self.dtype)
        self.attention = attention
        self.fallback_passes = 0
        self._chain_words: dict[int, torch.Tensor] = {}
        self.capacity = 0
        self._allocate(max(64, 2 * len(ids)))
        super().__init__(0)
        if len(ids) > 1:
            with torch.inference_mode():
                self._forward(ids[:-1], None, None, logits=False)
            self.cache_length = len(ids) - 1

    def synchronize(self) -> None:
        """Waits until the device has finished the forward passes queued so far."""
        synchronize_device(self.device)

    def _allocate(self, capacity: int) -> None:
        shape = (self.heads, capacity, self.head_dim)
        for layer in self.layers:
            keys = torch.empty(shape, dtype=self.dtype, device=self.device)
            values = torch.empty(shape, dtype=self.dtype, device=self.device)
            if self.capacity:
                keys[:, :self.capacity] = layer.keys
                values[:, :self.capacity] = layer.values
            layer.keys, layer.values = keys, values
        self.capacity = capacity

    def _kernel_runs(self, n: int) -> bool:
        """Whether a pass over ``n`` tokens runs the chosen kernel (not ``"sdpa"``)."""
        return self._kernel is not None and n <= MAX_TREE_NODES

    def _forward(self, ids: list[int], positions: torch.Tensor | None,
                 mask: torch.Tensor | None, logits: bool = True,
                 words: torch.Tensor | None = None) -> torch.Tensor | None:
        """Runs ``ids`` after the cache; writes their keys and values at ``cache_length``.

        ``mask`` (for sdpa) or ``words`` (for a kernel) describe a tree; both ``None`` means a
        chain (each token sees the cache and the tokens before it).
        """
        n = len(ids)
        start = self.cache_length
        end = start + n
        if end > self.capacity:
            self._allocate(max(2 * self.capacity, end))
        if positions is None:
            positions = torch.arange(start, end, device=self.device)
        kernel = None
        if self._kernel is not None:
            if n <= MAX_TREE_NODES:
                kernel = self._kernel
                if words is None:
                    words = self._chain(n)
            else:
                self.fallback_passes += 1
        if kernel is None and mask is None and n > 1:
            mask = torch.ones((n, end), dtype=torch.bool, device=self.device)
            mask[:, start:] = torch.ones((n, n), dtype=torch.bool, device=self.device).tril_()
        heads, head_dim, width = self.heads, self.head_dim, self.width
        weights = self.weights
        x = F.embedding(torch.tensor(ids, device=self.device), self.wte) + F.embedding(
            positions, self.wpe)
        for layer in self.layers:
            q, k, v = weights.qkv(x, layer)
            layer.keys[:, start:end] = k.view(n, heads, head_dim).transpose(0, 1)
            layer.values[:, start:end] = v.view(n, heads, head_dim).transpose(0, 1)
            q = q.view(n, heads, head_dim).transpose(0, 1)
            if kernel is None:
                attended = F.scaled_dot_product_attention(
                    q, layer.keys[:, :end], layer.values[:, :end], attn_mask=mask,
                    scale=self.scale)
            else:       # prefix: the cached slice; tree block: this pass's keys and values
                attended = kernel(q, layer.keys[:, :start], layer.values[:, :start],
                                  layer.keys[:, start:end], layer.values[:, start:end], words,
                                  self.scale)
            x = weights.rest(x, attended.transpose(0, 1).reshape(n, width), layer)
        if not logits:
            return None
        return weights.logits(x)

    def _chain(self, n: int) -> torch.Tensor:
        """The ancestor words of a chain of ``n`` tokens (cached per length)."""
        words = self._chain_words.get(n)
        if words is None:
            words = ancestor_words(list(range(-1, n - 1)), device=self.device)
            self._chain_words[n] = words
        return words

    def _score(self, ids: list[int], parents: Sequence[int]) -> torch.Tensor:
        n = len(ids)
        start = self.cache_length
        positions = mask = words = None
        if not is_chain(parents):
            if self._kernel_runs(n):
                depths = _depths(parents)
                words = ancestor_words(with_root(parents), device=self.device)
            else:
                depths, ancestors = tree_layout(parents)
                mask = torch.ones((n, start + n), dtype=torch.bool, device=self.device)
                mask[:, start:] = ancestors.to(self.device)
            positions = torch.tensor([start + d for d in depths], device=self.device)
        with torch.inference_mode():
            return self._forward(ids, positions, mask, words=words)

    def _move(self, sources: list[int], destination: int) -> None:
        index = torch.tensor(sources, device=self.device)
        end = destination + len(sources)
        with torch.inference_mode():
            for layer in self.layers:
                layer.keys[:, destination:end] = layer.keys.index_select(1, index)
                layer.values[:, destination:end] = layer.values.index_select(1, index)

    def _truncate(self, length: int) -> None:
        """Nothing to free: the buffer is preallocated and ``cache_length`` marks its end."""


__all__ = ["ATTENTIONS", "FastGPT2Session", "GPT2Weights", "attention_kernel", "supports"]
