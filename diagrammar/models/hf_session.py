"""The KV-cache session of a generic Hugging Face causal LM, scored tree by tree.

The cache always holds every committed token but the last one (the *root*). Verifying a tree
feeds the root and the tree's nodes together, so the root's scores (the next token when the
whole draft is rejected) come from the same pass.

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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diagrammar.models.tree_mask import is_chain, tree_layout


class TreeSession:
    """The KV cache of one sequence, scored tree by tree.

    Attributes:
        cache_length: how many committed tokens the cache holds (all but the root).
    """

    def __init__(self, lm: HFCausalLM, prompt_ids: Sequence[int]) -> None:
        self.lm = lm
        self.cache = None
        self.cache_length = 0
        self._tree_length = 0
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        if len(ids) > 1:
            with torch.inference_mode():
                out = lm.model(input_ids=torch.tensor([ids[:-1]], device=lm.device),
                               use_cache=True, logits_to_keep=1)
            self.cache = out[lm.cache_argument]
            self.cache_length = len(ids) - 1

    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> torch.Tensor:
        """Scores the root and a draft tree below it in one forward pass.

        Args:
            root: the last committed token (not yet in the cache).
            tokens: the draft tree's tokens, parents before children.
            parents: for each node, the index of its parent node, or -1 for the root.

        Returns:
            logits of shape ``(1 + len(tokens), vocab)``: row 0 scores the token after the root,
            row ``i + 1`` the token after node ``i``.
        """
        n = len(tokens) + 1
        lm = self.lm
        device = lm.device
        input_ids = torch.tensor([[root, *tokens]], device=device)
        kwargs = {}
        if not is_chain(parents):
            depths, ancestors = tree_layout(parents)
            dtype = lm.dtype
            mask = torch.zeros((1, 1, n, self.cache_length + n), dtype=dtype, device=device)
            mask[0, 0, :, self.cache_length:].masked_fill_(~ancestors.to(device),
                                                           torch.finfo(dtype).min)
            kwargs["attention_mask"] = mask
            kwargs["position_ids"] = torch.tensor(
                [[self.cache_length + d for d in depths]], device=device)
        with torch.inference_mode():
            kwargs[lm.cache_argument] = self.cache
            out = lm.model(input_ids=input_ids, use_cache=True, **kwargs)
        self.cache = out[lm.cache_argument]
        self._tree_length = n
        return out.logits[0]

    def keep(self, path: Sequence[int]) -> None:
        """After :meth:`verify`, keeps the root's and the accepted nodes' cache entries.

        Args:
            path: indices of the accepted draft nodes, root to leaf.
        """
        if self._tree_length == 0:
            raise RuntimeError("keep() must follow verify()")
        start = self.cache_length
        path = list(path)
        if path == list(range(len(path))):
            self._truncate_cache(start + 1 + len(path))
        else:
            index = torch.tensor([*range(start + 1), *(start + 1 + i for i in path)],
                                 device=self.lm.device)
            self._select_cache(index)
        self.cache_length = start + 1 + len(path)
        self._tree_length = 0

    def truncate(self, length: int) -> None:
        """Rolls the cache back to its first ``length`` tokens."""
        if not 0 <= length <= self.cache_length:
            raise ValueError(f"cannot roll back to {length} tokens: the cache holds "
                             f"{self.cache_length}")
        self._truncate_cache(length)
        self.cache_length = length
        self._tree_length = 0

    def _layers(self):
        layers = getattr(self.cache, "layers", None)
        if layers is None:
            raise NotImplementedError(
                f"cache type {type(self.cache).__name__} has no per-layer tensors; tree "
                "verification needs a transformers DynamicCache")
        return layers

    def _truncate_cache(self, length: int) -> None:
        if self.cache is None:
            return
        for layer in self._layers():
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]

    def _select_cache(self, index: torch.Tensor) -> None:
        for layer in self._layers():
            expected = self.cache_length + self._tree_length
            if layer.keys.shape[-2] != expected:
                raise NotImplementedError(
                    f"cache layer {type(layer).__name__} holds {layer.keys.shape[-2]} positions, "
                    f"not {expected}: sliding-window caches do not support branching trees yet")
            layer.keys = layer.keys.index_select(-2, index)
            layer.values = layer.values.index_select(-2, index)


__all__ = ["TreeSession"]
