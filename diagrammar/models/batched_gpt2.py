"""The lean GPT-2 forward over a batch of sequences, each with its own cache length and tree.

:class:`GPT2Batch` holds up to ``max_batch`` rows in one KV buffer per layer, shaped
``(slots, heads, capacity, head_dim)``; rows always occupy the first slots (a row that leaves
is replaced by the last one, one row's cache copied). A pass verifies every requested row's
tree at once: trees are padded to the largest with dummy nodes (children of the root, so
no query is ever fully masked), row ``b``'s new keys are written from its own cache length
``L_b`` on, its queries see its prefix (keys before ``L_b``) and, in its tree block, their
ancestors only, at positions ``L_b + depth``. Logits are computed for the real nodes only.

Each row is a :class:`GPT2Row`, a :class:`~diagrammar.models.session.CachedSession`: ``keep``
compacts that row's accepted path, ``truncate`` rolls it back, and ``verify`` alone runs a
pass of that row. The arithmetic is :mod:`diagrammar.models.fast_gpt2`'s, batched; tests
check every row's scores against a single-sequence session (float64: 1e-9).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=64, n_embd=16, n_layer=1,
...                                    n_head=2)).eval()
>>> batch = GPT2Batch(model, max_batch=4)
>>> first, second = batch.add([[1, 2, 3], [4, 5]])
>>> scores = batch.verify_rows([(first, 3, [4, 5], [-1, 0]), (second, 5, [6], [-1])])
>>> [tuple(s.shape) for s in scores]
[(3, 32), (2, 32)]
>>> first.keep([0]); second.keep([]); first.cache_length, second.cache_length
(4, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from diagrammar.models.fast_gpt2 import GPT2Weights
from diagrammar.models.session import CachedSession, synchronize_device
from diagrammar.models.tree_mask import tree_layout


class GPT2Row(CachedSession):
    """One row of a :class:`GPT2Batch`: the session of one sequence (the ``Session``
    contract), verified alone or with the others through :meth:`GPT2Batch.verify_rows`."""

    def __init__(self, batch: GPT2Batch, slot: int, cache_length: int) -> None:
        super().__init__(cache_length)
        self.batch = batch
        self.slot = slot

    @property
    def device(self) -> torch.device:
        return self.batch.device

    def synchronize(self) -> None:
        self.batch.synchronize()

    def _score(self, ids: list[int], parents: Sequence[int]) -> torch.Tensor:
        return self.batch._pass([(self, ids, list(parents))])[0]

    def _move(self, sources: list[int], destination: int) -> None:
        self.batch._move(self.slot, sources, destination)

    def _truncate(self, length: int) -> None:
        """Nothing to free: the row's ``cache_length`` marks its end."""


class GPT2Batch:
    """The KV caches of up to ``max_batch`` sequences under a GPT-2 model, verified together
    (the :class:`~diagrammar.decoding.protocols.BatchSession` contract).

    Args:
        model: a GPT-2 LM head model the lean forward supports
            (:func:`diagrammar.models.fast_gpt2.supports`).
        max_batch: the most rows held at once.
    """

    def __init__(self, model: torch.nn.Module, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.weights = weights = GPT2Weights(model)
        self.wte, self.wpe = weights.wte, weights.wpe
        self.width, self.heads, self.head_dim = weights.width, weights.heads, weights.head_dim
        self.scale, self.layers = weights.scale, weights.layers
        self.device, self.dtype = weights.device, weights.dtype
        self.max_batch = max_batch
        self.rows: list[GPT2Row] = []
        self.capacity = 0

    # -- storage -------------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Waits until the device has finished the passes queued so far."""
        synchronize_device(self.device)

    def _reserve(self, capacity: int) -> None:
        """Makes room for ``capacity`` positions per row (doubling; rows keep their entries)."""
        if capacity <= self.capacity:
            return
        capacity = max(64, 2 * self.capacity, capacity)
        shape = (self.max_batch, self.heads, capacity, self.head_dim)
        used = len(self.rows)
        for layer in self.layers:
            # zeros, not empty: a row's pass reads (masked) positions no row has written yet,
            # and a masked NaN still poisons attention (0 * NaN)
            keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
            values = torch.zeros(shape, dtype=self.dtype, device=self.device)
            if self.capacity and used:
                keys[:used, :, :self.capacity] = layer.keys[:used]
                values[:used, :, :self.capacity] = layer.values[:used]
            layer.keys, layer.values = keys, values
        self.capacity = capacity

    def _move(self, slot: int, sources: list[int], destination: int) -> None:
        index = torch.tensor(sources, device=self.device)
        end = destination + len(sources)
        with torch.inference_mode():
            for layer in self.layers:
                layer.keys[slot, :, destination:end] = layer.keys[slot].index_select(1, index)
                layer.values[slot, :, destination:end] = layer.values[slot].index_select(
                    1, index)

    # -- rows coming and going -----------------------------------------------------------------
    def add(self, prompts: Sequence[Sequence[int]]) -> list[GPT2Row]:
        """Prefills each prompt (all but its last token) into a new row, in one pass."""
        prompts = [list(prompt) for prompt in prompts]
        if any(not prompt for prompt in prompts):
            raise ValueError("a prompt is empty: give at least one token")
        if len(self.rows) + len(prompts) > self.max_batch:
            raise ValueError(f"{len(self.rows)} rows held and {len(prompts)} more asked for, "
                             f"but max_batch is {self.max_batch}")
        self._reserve(max((len(p) for p in prompts), default=1) * 2)
        new = [GPT2Row(self, len(self.rows) + i, 0) for i in range(len(prompts))]
        self.rows.extend(new)
        for row, prompt in zip(new, prompts, strict=True):
            if len(prompt) > 1:
                self._prefill(row, prompt[:-1])
        return new

    def _prefill(self, row: GPT2Row, ids: list[int]) -> None:
        """Runs a prompt into an empty row, causally (no explicit mask: the fast attention)."""
        n = len(ids)
        slot = row.slot
        heads, head_dim, width, weights = self.heads, self.head_dim, self.width, self.weights
        with torch.inference_mode():
            x = F.embedding(torch.tensor(ids, device=self.device), self.wte) + self.wpe[:n]
            for layer in self.layers:
                q, k, v = weights.qkv(x, layer)
                layer.keys[slot, :, :n] = k.view(n, heads, head_dim).transpose(0, 1)
                layer.values[slot, :, :n] = v.view(n, heads, head_dim).transpose(0, 1)
                attended = F.scaled_dot_product_attention(
                    q.view(n, heads, head_dim).transpose(0, 1), layer.keys[slot, :, :n],
                    layer.values[slot, :, :n], is_causal=True, scale=self.scale)
                x = weights.rest(x, attended.transpose(0, 1).reshape(n, width), layer)
        row.cache_length = n

    def remove(self, row: GPT2Row) -> None:
        """Frees ``row``'s slot: the last row moves into it (its cache copied once)."""
        if row.batch is not self or self.rows[row.slot] is not row:
            raise ValueError("this row does not belong to this batch (or was removed)")
        last = self.rows.pop()
        if last is not row:
            slot, length = row.slot, last.cache_length + last._tree_length
            with torch.inference_mode():
                for layer in self.layers:
                    layer.keys[slot, :, :length] = layer.keys[last.slot, :, :length]
                    layer.values[slot, :, :length] = layer.values[last.slot, :, :length]
            last.slot = slot
            self.rows[slot] = last
        row.batch = None      # a removed row can no longer run

    # -- verification --------------------------------------------------------------------------
    def verify_rows(self, requests: Sequence[tuple[GPT2Row, int, Sequence[int], Sequence[int]]]
                    ) -> list[torch.Tensor]:
        """Scores every ``(row, root, tokens, parents)`` in one pass; each row's scores as its
        own ``verify`` would return them."""
        entries = []
        seen = set()
        for row, root, tokens, parents in requests:
            if row.batch is not self:
                raise ValueError("a request names a row of another batch (or a removed one)")
            if row.slot in seen:
                raise ValueError(f"row {row.slot} is requested twice in one pass")
            seen.add(row.slot)
            entries.append((row, row._check_tree(root, tokens, parents), list(parents)))
        order = sorted(range(len(entries)), key=lambda i: entries[i][0].slot)
        scores = self._pass([entries[i] for i in order])
        for row, ids, _ in entries:
            row._tree_length = len(ids)
        result: list[Any] = [None] * len(entries)
        for position, i in enumerate(order):
            result[i] = scores[position]
        return result

    def _layout(self, entries: Sequence[tuple[GPT2Row, list[int], list[int]]], n: int,
                lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions ``(rows, n)`` and the attention mask ``(rows, 1, n, kv)``."""
        rows = len(entries)
        depths, blocks = [], []
        for _, ids, parents in entries:
            padded = parents + [-1] * (n - len(ids))     # dummy nodes: children of the root
            row_depths, ancestors = tree_layout(padded)
            depths.append(row_depths)
            blocks.append(ancestors)
        device = self.device
        positions = lengths[:, None] + torch.tensor(depths, device=device)
        kv = int(lengths.max()) + n
        columns = torch.arange(kv, device=device)
        mask = (columns[None, :] < lengths[:, None])[:, None, :].repeat(1, n, 1)
        block = lengths[:, None, None] + torch.arange(n, device=device)[None, None, :]
        mask[torch.arange(rows, device=device)[:, None, None],
             torch.arange(n, device=device)[None, :, None], block] = torch.stack(blocks).to(
            device)
        return positions, mask[:, None]

    def _pass(self, entries: Sequence[tuple[GPT2Row, list[int], list[int]]]
              ) -> list[torch.Tensor]:
        """Runs every entry's ids after its row's cache (entries in slot order); returns each
        row's scores. When the entries are all the rows, the buffers are read in place; a
        subset of rows is gathered (a copy of their caches)."""
        rows = len(entries)
        n = max(len(ids) for _, ids, _ in entries)
        device = self.device
        lengths = torch.tensor([row.cache_length for row, _, _ in entries], device=device)
        self._reserve(int(lengths.max()) + n)
        slots = [row.slot for row, _, _ in entries]
        every = slots == list(range(len(self.rows)))
        slot_index = torch.tensor(slots, device=device)
        ids = torch.tensor([ids + [0] * (n - len(ids)) for _, ids, _ in entries], device=device)
        positions, mask = self._layout(entries, n, lengths)
        kv = mask.shape[-1]
        write = lengths[:, None] + torch.arange(n, device=device)[None, :]   # (rows, n)
        heads, head_dim, width, weights = self.heads, self.head_dim, self.width, self.weights
        with torch.inference_mode():
            x = F.embedding(ids, self.wte) + F.embedding(positions, self.wpe)   # (rows, n, w)
            x = x.view(rows * n, width)
            for layer in self.layers:
                q, k, v = weights.qkv(x, layer)
                k = k.view(rows, n, heads, head_dim)
                v = v.view(rows, n, heads, head_dim)
                layer.keys[slot_index[:, None], :, write] = k
                layer.values[slot_index[:, None], :, write] = v
                if every:
                    keys, values = layer.keys[:rows, :, :kv], layer.values[:rows, :, :kv]
                else:
                    keys = layer.keys[:, :, :kv].index_select(0, slot_index)
                    values = layer.values[:, :, :kv].index_select(0, slot_index)
                attended = F.scaled_dot_product_attention(
                    q.view(rows, n, heads, head_dim).transpose(1, 2), keys, values,
                    attn_mask=mask, scale=self.scale)
                x = weights.rest(x, attended.transpose(1, 2).reshape(rows * n, width), layer)
            sizes = [len(ids) for _, ids, _ in entries]
            if all(size == n for size in sizes):
                real = x
            else:
                keep = torch.cat([torch.arange(size, device=device) + row * n
                                  for row, size in enumerate(sizes)])
                real = x.index_select(0, keep)
            return list(weights.logits(real).split(sizes))


__all__ = ["GPT2Batch", "GPT2Row"]
