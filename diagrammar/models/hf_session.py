"""The KV-cache session of a generic Hugging Face causal LM, scored tree by tree.

The cache always holds every committed token but the last one (the *root*). Verifying a tree
feeds the root and the tree's nodes together, so the root's scores (the next token when the
whole draft is rejected) come from the same pass.

**The session owns its cache.** It hands the model a ``DynamicCache`` whose layers never
evict (:class:`GrowingLayer`: cache index == position, always), written in place into a
buffer per layer that grows by doubling. So ``keep`` copies only the accepted tail (the path's
entries, when it is not the tree's first branch) and ``truncate`` only moves an end marker:
O(path) per step, never O(context) (a plain ``DynamicLayer`` concatenates, copying its whole
cache at every forward pass).

**Sliding-window attention** (Mistral, Qwen2 with ``use_sliding_window``, Starcoder2, Gemma2,
Gemma3, ...) is a mask, not an eviction: a query at position ``p`` sees the keys at positions
``p - window + 1 .. p`` (Hugging Face's ``kv_idx > q_idx - sliding_window``). For a chain the
model builds that mask itself over the full cache; for a branching tree the session passes its
own masks, built from each node's *position* (``cache_length + depth``): a single 4-D mask when
every attention layer is of one kind, else the dict ``{"full_attention": ...,
"sliding_attention": ...}`` that transformers 5 models with mixed layers accept. The cost: a
sliding layer keeps (and attends over, masked) the whole context instead of its last
``window - 1`` positions, and a buffer holds up to twice the positions in use. For the lengths
we decode that is little; it is the price of exact rollback at any length.

**Trees need position ids.** A model whose forward takes no ``position_ids`` (Bloom, whose
ALiBi biases come from key indices; MPT; Falcon with ``alibi``) scores chains exactly, but a
branching tree raises :class:`~diagrammar.models.errors.ModelError` naming the model type
(Bloom could take trees with per-node ALiBi biases; that is not done yet).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from diagrammar.models.hf import HFCausalLM
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=64, n_embd=16, n_layer=1,
...                                    n_head=2))
>>> session = TreeSession(HFCausalLM(model, fast=False), [1, 2, 3])
>>> scores = session.verify(3, tokens=[4, 5, 6], parents=[-1, 0, -1])
>>> tuple(scores.shape)
(4, 32)
>>> session.keep([0, 1]); session.cache_length
5
>>> session.synchronize()     # waits for an accelerator; nothing to do on the CPU
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from diagrammar.models.errors import ModelError
from diagrammar.models.session import CachedSession, synchronize_device
from diagrammar.models.tree_mask import is_chain, tree_layout

if TYPE_CHECKING:
    from diagrammar.models.hf import HFCausalLM

_FULL, _SLIDING = "full_attention", "sliding_attention"
#: Layer types that hold no attention cache of their own.
_NO_ATTENTION = frozenset({"dummy", "moe", "mlp"})


class GrowingLayer(DynamicLayer):
    """A full-attention cache layer written in place into a buffer that grows by doubling.

    ``keys`` and ``values`` are views of the first ``length`` positions of the buffers, so
    everything that reads a ``DynamicLayer`` reads them as usual; appending writes only the new
    positions, :meth:`move` only the moved ones, :meth:`set_length` nothing. It never evicts:
    position ``i`` of the sequence stays at index ``i``.
    """

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.length = 0
        self._keys = key_states.new_empty((*key_states.shape[:-2], 0, key_states.shape[-1]))
        self._values = value_states.new_empty(
            (*value_states.shape[:-2], 0, value_states.shape[-1]))
        self.keys, self.values = self._keys, self._values
        self.is_initialized = True

    def _reserve(self, length: int) -> None:
        capacity = self._keys.shape[-2]
        if length <= capacity:
            return
        capacity = max(64, 2 * capacity, length)
        grown = []
        for old in (self._keys, self._values):
            new = old.new_empty((*old.shape[:-2], capacity, old.shape[-1]))
            new[..., :self.length, :] = old[..., :self.length, :]
            grown.append(new)
        self._keys, self._values = grown

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.length
        end = start + key_states.shape[-2]
        self._reserve(end)
        self._keys[..., start:end, :] = key_states
        self._values[..., start:end, :] = value_states
        self.set_length(end)
        return self.keys, self.values

    def set_length(self, length: int) -> None:
        """Keeps the first ``length`` positions (a marker: nothing is copied or freed)."""
        self.length = length
        self.keys = self._keys[..., :length, :]
        self.values = self._values[..., :length, :]

    def move(self, sources: torch.Tensor, destination: int) -> None:
        """Copies the positions ``sources`` to ``destination`` onwards."""
        end = destination + sources.numel()
        self._keys[..., destination:end, :] = self._keys.index_select(-2, sources)
        self._values[..., destination:end, :] = self._values.index_select(-2, sources)

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop() takes a negative count of positions to remove")
        if self.is_initialized:
            self.set_length(self.length + tokens_to_remove)


def _new_cache() -> DynamicCache:
    cache = DynamicCache()      # layers appended on first use: all of them GrowingLayers
    cache.layer_class_to_replicate = GrowingLayer
    return cache


@functools.cache
def _takes_mask_dict(model_class: type) -> bool:
    """Whether ``model_class.forward`` accepts one attention mask per layer type (a dict)."""
    try:
        source = inspect.getsource(model_class.forward)
    except (OSError, TypeError):
        return False
    return "attention_mask, dict)" in source


class _Attention:
    """What a model's attention needs from a tree: its layer kinds, window, and support."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        if hasattr(config, "get_text_config"):
            config = config.get_text_config(decoder=True)
        self.model_type = getattr(model.config, "model_type", type(model).__name__)
        window = getattr(config, "sliding_window", None)
        self.window: int | None = int(window) if window is not None else None
        types = getattr(config, "layer_types", None)
        if types is None:
            types = [_SLIDING if self.window is not None else _FULL]
        kinds = set(types) - _NO_ATTENTION
        if self.window is None:
            kinds = {_FULL if kind == _SLIDING else kind for kind in kinds}
        self.kinds = kinds or {_FULL}
        self._model = model
        self._checked = False
        self._refusal: str | None = None

    def refusal(self) -> str | None:
        """Why this model cannot score a branching tree, or None when it can."""
        if not self._checked:
            self._refusal = self._why_not()
            self._checked = True
        return self._refusal

    def _why_not(self) -> str | None:
        model = self._model
        if "position_ids" not in inspect.signature(model.forward).parameters:
            return ("its forward takes no position_ids, so the nodes of a tree cannot get "
                    "their own positions (ALiBi models such as Bloom bias attention by key index)")
        if getattr(model.config, "alibi", False):
            return "it biases attention with ALiBi by key index, not by position_ids"
        unknown = self.kinds - {_FULL, _SLIDING}
        if unknown:
            return (f"it has {', '.join(sorted(unknown))} layers; tree masks are built for "
                    "full and sliding-window attention only")
        if len(self.kinds) > 1 and not _takes_mask_dict(type(model.base_model)):
            return ("it mixes full and sliding-window layers but its forward takes no "
                    "per-layer-type attention masks")
        return None


class _TreeMasks:
    """Additive attention masks for a tree after ``cache_length`` committed positions.

    Preallocated buffers that grow by doubling: the full-attention one holds zeros (visible)
    and the sliding-window one the dtype's minimum (hidden); each step writes only the block
    that differs (the tree's columns, and for the sliding window the committed keys within
    reach of the tree) and puts it back after the forward pass.
    """

    def __init__(self, kinds: set[str], window: int | None, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.kinds = kinds
        self.window = window
        self.device = device
        self.dtype = dtype
        self.hidden = torch.finfo(dtype).min
        self.buffers: dict[str, torch.Tensor] = {}
        self._dirty: list[tuple[torch.Tensor, int, int, int, float]] = []

    def _buffer(self, kind: str, rows: int, columns: int) -> torch.Tensor:
        buffer = self.buffers.get(kind)
        if buffer is None or buffer.shape[0] < rows or buffer.shape[1] < columns:
            old_rows, old_columns = buffer.shape if buffer is not None else (0, 0)
            shape = (max(16, 2 * old_rows, rows), max(64, 2 * old_columns, columns))
            shape = (shape[0], -(-shape[1] // 64) * 64)     # rows stay 64-element aligned
            fill = 0.0 if kind == _FULL else self.hidden
            buffer = torch.full(shape, fill, dtype=self.dtype, device=self.device)
            self.buffers[kind] = buffer
        return buffer

    def build(self, length: int, depths: torch.Tensor, ancestors: torch.Tensor
              ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The mask (or masks by layer type) of a tree of ``depths``/``ancestors`` (on the
        device) after ``length`` committed positions."""
        n = depths.numel()
        end = length + n
        masks = {}
        if _FULL in self.kinds:
            full = self._buffer(_FULL, n, end)
            full[:n, length:end].masked_fill_(~ancestors, self.hidden)
            self._dirty.append((full, n, length, end, 0.0))
            masks[_FULL] = full[None, None, :n, :end]
        if _SLIDING in self.kinds:
            window = self.window
            sliding = self._buffer(_SLIDING, n, end)
            start = max(0, length - window + 1)         # no node sees a key before this one
            key_positions = torch.cat([torch.arange(start, length, device=self.device),
                                       depths + length])
            seen = depths[:, None] + length - key_positions[None, :] < window
            seen[:, length - start:] &= ancestors
            block = sliding[:n, start:end]
            block.fill_(0.0).masked_fill_(~seen, self.hidden)
            self._dirty.append((sliding, n, start, end, self.hidden))
            masks[_SLIDING] = sliding[None, None, :n, :end]
        if len(masks) == 1:
            return next(iter(masks.values()))
        return masks

    def clear(self) -> None:
        """Puts back what :meth:`build` wrote."""
        for buffer, rows, start, end, fill in self._dirty:
            buffer[:rows, start:end].fill_(fill)
        self._dirty.clear()


class TreeSession(CachedSession):
    """The KV cache of one sequence under a Hugging Face causal LM, scored tree by tree.

    The contract of :class:`~diagrammar.models.session.CachedSession`; see the module
    docstring for the cache it owns, sliding windows and what needs position ids.

    Attributes:
        cache_length: how many committed tokens the cache holds (all but the root).
        cache: the ``DynamicCache`` of :class:`GrowingLayer` s the model reads and writes.
    """

    def __init__(self, lm: HFCausalLM, prompt_ids: Sequence[int]) -> None:
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        super().__init__(0)
        self.lm = lm
        self.model = lm.model
        self.device = torch.device(lm.device)
        self.dtype = lm.dtype
        self.cache_argument = lm.cache_argument
        self.attention = _Attention(self.model)
        self._masks = _TreeMasks(self.attention.kinds, self.attention.window, self.device,
                                 self.dtype)
        self.cache = _new_cache()
        if len(ids) > 1:
            with torch.inference_mode():
                self.model(input_ids=torch.tensor([ids[:-1]], device=self.device),
                           use_cache=True, logits_to_keep=1, **{self.cache_argument: self.cache})
            self.cache_length = len(ids) - 1

    def synchronize(self) -> None:
        """Waits until the device has finished the forward passes queued so far."""
        synchronize_device(self.device)

    def _score(self, ids: list[int], parents: Sequence[int]) -> torch.Tensor:
        input_ids = torch.tensor([ids], device=self.device)
        kwargs: dict[str, Any] = {self.cache_argument: self.cache}
        chain = is_chain(parents)
        if not chain:
            reason = self.attention.refusal()
            if reason is not None:
                raise ModelError(
                    f"a {self.attention.model_type} model cannot verify a branching draft "
                    f"tree: {reason}. Chain drafts (a single branch) work with this model.")
            depths, ancestors = tree_layout(parents)
            depths = torch.tensor(depths, device=self.device)
            kwargs["position_ids"] = (depths + self.cache_length)[None]
            kwargs["attention_mask"] = self._masks.build(self.cache_length, depths,
                                                         ancestors.to(self.device))
        try:
            with torch.inference_mode():
                out = self.model(input_ids=input_ids, use_cache=True, **kwargs)
        finally:
            if not chain:
                self._masks.clear()
        return out.logits[0]

    def _layers(self) -> list[GrowingLayer]:
        return [layer for layer in self.cache.layers
                if isinstance(layer, GrowingLayer) and layer.is_initialized]

    def _move(self, sources: list[int], destination: int) -> None:
        with torch.inference_mode():
            index = torch.tensor(sources, device=self.device)
            for layer in self._layers():
                layer.move(index.to(layer.device), destination)

    def _truncate(self, length: int) -> None:
        for layer in self._layers():
            layer.set_length(length)


__all__ = ["GrowingLayer", "TreeSession"]
