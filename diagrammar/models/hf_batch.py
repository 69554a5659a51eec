"""Several sequences under a generic Hugging Face causal LM, their trees verified in one pass.

:class:`HFBatchSession` is the :class:`~diagrammar.decoding.protocols.BatchSession` of any HF
causal LM that :class:`~diagrammar.models.hf_session.TreeSession` serves (Llama, Qwen2,
Mistral and other sliding-window models, GPT-2 with ``fast=False``, ...); it builds on
TreeSession's ideas, one batch dimension up.

**One buffer per layer, one row per sequence.** The model gets a ``DynamicCache`` of
:class:`BatchedLayer` s, each holding keys and values ``(max_batch, heads, capacity,
head_dim)`` (capacity grows by doubling, zero-filled: a pass hands attention positions a row
never wrote, masked, and a masked NaN from uninitialised memory would still poison the sum).
Rows occupy the first slots; a row that leaves is replaced by the last one (that row's entries
copied once). Each row has its own cache length
``L_b``; a pass writes row ``b``'s new entries from ``L_b`` on and hands attention the buffer
up to ``max_b(L_b + width)``.

**A pass, its masks and positions.** Trees are padded to the largest (``width`` = 1 + its
nodes) with dummy nodes that see the prefix, the root and themselves (so no query is fully
masked). The additive 4-D mask ``(rows, 1, width, kv)`` lets row ``b``'s node ``i`` see the
keys before ``L_b`` and, in its tree block, its ancestors and itself; position ids are
``L_b + depth``. Sliding-window models get the window applied on top, from each key's
position (one mask, or a dict of masks by layer kind when full and sliding layers mix: the
rules of TreeSession). Entries past a row's ``L_b`` are never visible, so ``keep`` only moves
a non-first branch's entries down and ``truncate`` frees nothing.

**Which rows a pass runs.** A pass runs the *contiguous slot range* spanning the requested
rows (views of the buffers: nothing gathered, nothing copied). A row inside that range that
was not requested runs a dummy all-padding tree written after its cache *and* its pending
tree, so a verified-but-not-yet-kept row is never disturbed. The decoding loop requests every
row, so its passes have no dummy rows; a row verified on its own runs a pass of one row.

**Logits for real nodes only.** During a pass a pre-hook on the output embedding gathers the
hidden states of the real (non-padding) nodes, so the head (and any soft-capping or scaling
the model applies after it) runs on those alone.

**Prefill.** :meth:`HFBatchSession.add` prefills the new prompts (all but their last token)
together, right-padded, under the model's own causal (and sliding-window) mask: padding comes
after every real token, so no real query sees it, and it lies past the row's cache length.

**What cannot batch.** Models whose forward takes no ``position_ids`` (Bloom, MPT, Falcon
with ALiBi), or whose layer kinds TreeSession cannot mask, raise
:class:`~diagrammar.models.errors.ModelError` when the batch session is made: rows with
different cache lengths need per-row positions and a 4-D mask even for chains. Such a model
decodes prompts one at a time (:class:`~diagrammar.decoding.batch.SerialBatch`).

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from diagrammar.models.hf import HFCausalLM
>>> torch.manual_seed(0) and None
>>> model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
...                                      num_hidden_layers=1, num_attention_heads=2))
>>> batch = HFBatchSession(HFCausalLM(model), max_batch=4)
>>> first, second = batch.add([[1, 2, 3], [4, 5]])
>>> scores = batch.verify_rows([(first, 3, [4, 5, 6], [-1, 0, -1]), (second, 5, [6], [-1])])
>>> [tuple(s.shape) for s in scores]
[(4, 32), (2, 32)]
>>> first.keep([2]); second.keep([]); first.cache_length, second.cache_length
(4, 2)
>>> batch.remove(first); len(batch.rows), second.slot
(1, 0)
>>> batch.synchronize()     # waits for an accelerator; nothing to do on the CPU
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from diagrammar.models.errors import ModelError
from diagrammar.models.hf_session import _FULL, _SLIDING, _Attention
from diagrammar.models.session import CachedSession, synchronize_device
from diagrammar.models.tree_mask import tree_layout

if TYPE_CHECKING:
    from diagrammar.models.hf import HFCausalLM


@dataclass
class _Plan:
    """Where the pass under way writes: slots ``start:stop``, from one common ``offset`` on,
    or at the positions ``write`` ``(rows, width)``; attention sees ``length`` positions."""

    start: int = 0
    stop: int = 0
    offset: int | None = 0
    write: torch.Tensor | None = None
    slots: torch.Tensor | None = None
    length: int = 0
    past: int = 0


class BatchedLayer(DynamicLayer):
    """A cache layer holding one row per sequence, each written at its own offset.

    The buffers are ``(max_batch, heads, capacity, head_dim)``, grown by doubling along the
    positions; :meth:`update` writes the pass's rows where the shared :class:`_Plan` says and
    returns views of those rows up to the plan's length (everything a ``DynamicLayer`` reader
    needs, nothing copied).
    """

    def __init__(self, plan: _Plan, max_batch: int) -> None:
        super().__init__()
        self.plan = plan
        self.max_batch = max_batch

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self._keys = key_states.new_empty(
            (self.max_batch, key_states.shape[1], 0, key_states.shape[-1]))
        self._values = value_states.new_empty(
            (self.max_batch, value_states.shape[1], 0, value_states.shape[-1]))
        self.keys, self.values = self._keys, self._values
        self.is_initialized = True

    def _reserve(self, length: int) -> None:
        capacity = self._keys.shape[-2]
        if length <= capacity:
            return
        capacity = max(64, 2 * capacity, length)
        grown = []
        for old in (self._keys, self._values):     # zeros: a masked NaN still poisons a sum
            new = old.new_zeros((*old.shape[:-2], capacity, old.shape[-1]))
            new[..., :old.shape[-2], :] = old
            grown.append(new)
        self._keys, self._values = grown

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        plan = self.plan
        self._reserve(plan.length)
        start, stop = plan.start, plan.stop
        if plan.offset is not None:
            end = plan.offset + key_states.shape[-2]
            self._keys[start:stop, :, plan.offset:end] = key_states
            self._values[start:stop, :, plan.offset:end] = value_states
        else:       # advanced indices around a slice: the indexed view is (rows, width, h, d)
            self._keys[plan.slots, :, plan.write] = key_states.transpose(1, 2)
            self._values[plan.slots, :, plan.write] = value_states.transpose(1, 2)
        self.keys = self._keys[start:stop, :, :plan.length]
        self.values = self._values[start:stop, :, :plan.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        """The positions before the pass's queries (0 in a prefill, where the model builds its
        own causal mask from it)."""
        return self.plan.past

    def move(self, slot: int, sources: torch.Tensor, destination: int) -> None:
        """Copies row ``slot``'s positions ``sources`` to ``destination`` onwards."""
        end = destination + sources.numel()
        for buffer in (self._keys, self._values):
            buffer[slot, :, destination:end] = buffer[slot].index_select(1, sources)

    def copy_row(self, source: int, destination: int, length: int) -> None:
        """Copies the first ``length`` positions of slot ``source`` into slot ``destination``."""
        for buffer in (self._keys, self._values):
            buffer[destination, :, :length] = buffer[source, :, :length]


class HFBatchRow(CachedSession):
    """One row of an :class:`HFBatchSession`: the session of one sequence (the ``Session``
    contract), verified alone (a pass of this row) or with others through
    :meth:`HFBatchSession.verify_rows`.

    Attributes:
        cache_length: how many committed tokens the row's cache holds (all but the root).
        slot: the row's index in the batch buffers (it changes when an earlier row leaves).
    """

    def __init__(self, batch: HFBatchSession, slot: int, cache_length: int) -> None:
        super().__init__(cache_length)
        self.batch: HFBatchSession | None = batch
        self.slot = slot
        self._staged: torch.Tensor | None = None

    @property
    def pending(self) -> int:
        """Positions written by a ``verify`` not yet kept or dropped (root and nodes)."""
        return self._tree_length

    def _owner(self) -> HFBatchSession:
        if self.batch is None:
            raise RuntimeError("this row was removed from its batch: it holds no cache")
        return self.batch

    def synchronize(self) -> None:
        """Waits until the device has finished the passes queued so far."""
        self._owner().synchronize()

    def _score(self, ids: list[int], parents: Sequence[int]) -> torch.Tensor:
        if self._staged is not None:        # scored already, by the batch's pass
            return self._staged
        return self._owner()._pass([(self, ids, list(parents))])[0]

    def _move(self, sources: list[int], destination: int) -> None:
        self._owner()._move(self.slot, sources, destination)

    def _truncate(self, length: int) -> None:
        """Nothing to free: the row's ``cache_length`` marks its end."""


class HFBatchSession:
    """The KV caches of up to ``max_batch`` sequences under a Hugging Face causal LM, verified
    together (the :class:`~diagrammar.decoding.protocols.BatchSession` contract); see the
    module docstring for the buffers, masks and which rows a pass runs.

    Args:
        lm: the wrapped model (its ``model``, ``device``, ``dtype`` and cache argument).
        max_batch: the most rows held at once.

    Attributes:
        rows: the row sessions held now (in the order they were added, not by slot).
        batched: ``True``: one forward pass per :meth:`verify_rows` (``SerialBatch`` says
            ``False``).

    Raises:
        ModelError: the model cannot take per-row positions and masks (see the module
            docstring).
    """


    def __init__(self, lm: HFCausalLM, max_batch: int) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        self.lm = lm
        self.model = lm.model
        self.attention = _Attention(self.model)
        reason = self.attention.refusal()
        if reason is not None:
            raise ModelError(
                f"a {self.attention.model_type} model cannot verify rows in a batch: {reason}. "
                "Decode its prompts one at a time (diagrammar.decoding.batch.SerialBatch "
                "verifies rows one by one).")
        self.device = torch.device(lm.device)
        self.dtype = lm.dtype
        self.max_batch = max_batch
        self.rows: list[HFBatchRow] = []
        self._slots: list[HFBatchRow] = []
        self._plan = _Plan()
        self.cache = DynamicCache()
        self.cache.layer_class_to_replicate = functools.partial(BatchedLayer, self._plan,
                                                                max_batch)
        self._head = self.model.get_output_embeddings()

    def synchronize(self) -> None:
        """Waits until the device has finished the passes queued so far."""
        synchronize_device(self.device)

    def _layers(self) -> list[BatchedLayer]:
        return [layer for layer in self.cache.layers
                if isinstance(layer, BatchedLayer) and layer.is_initialized]

    def _move(self, slot: int, sources: list[int], destination: int) -> None:
        with torch.inference_mode():
            index = torch.tensor(sources, device=self.device)
            for layer in self._layers():
                layer.move(slot, index.to(layer.device), destination)

    # -- rows coming and going -----------------------------------------------------------------
    def add(self, prompts: Sequence[Sequence[int]]) -> list[HFBatchRow]:
        """Prefills each prompt (all but its last token) into a new row, in one pass.

        Raises:
            ValueError: an empty prompt, or more rows than ``max_batch``.
        """
        prompts = [[int(token) for token in prompt] for prompt in prompts]
        if any(not prompt for prompt in prompts):
            raise ValueError("a prompt is empty: give at least one token")
        if len(self._slots) + len(prompts) > self.max_batch:
            raise ValueError(f"{len(self._slots)} rows held and {len(prompts)} more asked for, "
                             f"but max_batch is {self.max_batch}")
        first = len(self._slots)
        new = [HFBatchRow(self, first + i, 0) for i in range(len(prompts))]
        width = max((len(prompt) - 1 for prompt in prompts), default=0)
        if width:
            self._prefill(first, [prompt[:-1] for prompt in prompts], width)
        for row, prompt in zip(new, prompts, strict=True):
            row.cache_length = len(prompt) - 1
        self._slots.extend(new)
        self.rows.extend(new)
        return new

    def _prefill(self, first: int, prefixes: list[list[int]], width: int) -> None:
        """Runs the prefixes, right-padded (with their own first token), into slots ``first``
        onwards, under the model's own causal mask."""
        rows = len(prefixes)
        padded = [prefix + [prefix[0] if prefix else 0] * (width - len(prefix))
                  for prefix in prefixes]
        device = self.device
        plan = self._plan
        plan.start, plan.stop, plan.offset, plan.length, plan.past = (
            first, first + rows, 0, width, 0)
        with torch.inference_mode():
            self.model(input_ids=torch.tensor(padded, device=device),
                       position_ids=torch.arange(width, device=device)[None].expand(rows, -1),
                       use_cache=True, logits_to_keep=1, **{self.lm.cache_argument: self.cache})

    def remove(self, row: HFBatchRow) -> None:
        """Frees ``row``'s slot: the last row moves into it (its entries copied once)."""
        if row.batch is not self or self._slots[row.slot] is not row:
            raise ValueError("this row does not belong to this batch (or was removed)")
        last = self._slots.pop()
        if last is not row:
            length = last.cache_length + last.pending
            with torch.inference_mode():
                for layer in self._layers():
                    layer.copy_row(last.slot, row.slot, length)
            last.slot = row.slot
            self._slots[row.slot] = last
        self.rows = [other for other in self.rows if other is not row]
        row.batch = None

    # -- verification --------------------------------------------------------------------------
    def verify_rows(self, requests: Sequence[tuple[HFBatchRow, int, Sequence[int],
                                                   Sequence[int]]]) -> list[torch.Tensor]:
        """Scores every ``(row, root, tokens, parents)`` in one pass: one ``(1 + nodes, vocab)``
        tensor per request, as that row's own ``verify`` would return.

        Raises:
            ValueError: a row of another batch, a row named twice, mismatched tokens and
                parents, or parents after their children.
            RuntimeError: a row verified and not yet kept.
        """
        entries = []
        seen: set[int] = set()
        for row, root, tokens, parents in requests:
            if row.batch is not self:
                raise ValueError("a request names a row of another batch (or a removed one)")
            if id(row) in seen:
                raise ValueError(f"the row in slot {row.slot} is requested twice in one pass")
            seen.add(id(row))
            if row.pending:
                raise RuntimeError("verify() called twice: call keep() or truncate() in between")
            if len(tokens) != len(parents):
                raise ValueError(f"{len(tokens)} tokens but {len(parents)} parents")
            entries.append((row, [int(root), *map(int, tokens)], [int(p) for p in parents]))
        if not entries:
            return []
        scores = self._pass(entries)
        for (row, root, tokens, parents), row_scores in zip(requests, scores, strict=True):
            row._staged = row_scores
            try:
                row.verify(root, tokens, parents)
            finally:
                row._staged = None
        return scores

    def _pass(self, entries: Sequence[tuple[HFBatchRow, list[int], list[int]]]
              ) -> list[torch.Tensor]:
        """Runs every entry's ids (root, then nodes) after its row's cache, over the slot range
        spanning the entries (other rows in it run dummy trees); each entry's scores."""
        layouts = [tree_layout(parents) for _, _, parents in entries]    # checks the parents
        width = max(len(ids) for _, ids, _ in entries)
        start = min(row.slot for row, _, _ in entries)
        stop = max(row.slot for row, _, _ in entries) + 1
        rows = stop - start
        requested = {row.slot: (ids, layout)
                     for (row, ids, _), layout in zip(entries, layouts, strict=True)}
        diagonal = torch.arange(width)
        input_ids = torch.zeros((rows, width), dtype=torch.long)
        depths = torch.zeros((rows, width), dtype=torch.long)
        ancestors = torch.zeros((rows, width, width), dtype=torch.bool)
        ancestors[:, diagonal, diagonal] = True     # padding sees itself, the root, the prefix
        ancestors[:, :, 0] = True
        lengths, offsets = [], []
        for slot in range(start, stop):
            row = self._slots[slot]
            lengths.append(row.cache_length)
            found = requested.get(slot)
            if found is None:       # a dummy tree, written after the row's pending one
                offsets.append(row.cache_length + row.pending)
                continue
            ids, (tree_depths, tree_ancestors) = found
            n = len(ids)
            offsets.append(row.cache_length)
            input_ids[slot - start, :n] = torch.tensor(ids)
            input_ids[slot - start, n:] = ids[0]
            depths[slot - start, :n] = torch.tensor(tree_depths)
            ancestors[slot - start, :n, :n] = tree_ancestors
        kv_length = max(offsets) + width
        device = self.device
        lengths_t = torch.tensor(lengths, device=device)
        offsets_t = torch.tensor(offsets, device=device)
        positions = lengths_t[:, None] + depths.to(device)
        write = offsets_t[:, None] + torch.arange(width, device=device)
        masks = self._masks(lengths_t, write, positions, ancestors.to(device), kv_length)
        gather = torch.cat([torch.arange(len(ids)) + (row.slot - start) * width
                            for row, ids, _ in entries]).to(device)
        plan = self._plan
        plan.start, plan.stop, plan.length, plan.past = start, stop, kv_length, max(offsets)
        plan.offset = offsets[0] if len(set(offsets)) == 1 else None
        plan.write = write
        plan.slots = torch.arange(start, stop, device=device)[:, None]
        fired = []

        def real_nodes(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            hidden = args[0]
            fired.append(True)
            flat = hidden.reshape(-1, hidden.shape[-1]).index_select(0, gather)
            return (flat[None], *args[1:])

        hook = self._head.register_forward_pre_hook(real_nodes) if self._head is not None else None
        try:
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids.to(device), position_ids=positions,
                                    attention_mask=masks, use_cache=True,
                                    **{self.lm.cache_argument: self.cache}).logits
        finally:
            if hook is not None:
                hook.remove()
            plan.write = plan.slots = None
        if fired:
            logits = logits[0]
        else:                       # no head module was called: slice the full logits
            logits = logits.reshape(-1, logits.shape[-1]).index_select(0, gather)
        return list(logits.split([len(ids) for _, ids, _ in entries]))

    def _masks(self, lengths: torch.Tensor, write: torch.Tensor, positions: torch.Tensor,
               ancestors: torch.Tensor, kv_length: int
               ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The additive masks ``(rows, 1, width, kv_length)``: one tensor, or one per layer
        kind when the model mixes full and sliding-window layers."""
        rows, width = write.shape
        columns = torch.arange(kv_length, device=self.device)
        seen = (columns[None, :] < lengths[:, None])[:, None, :].repeat(1, width, 1)
        seen.scatter_(2, write[:, None, :].expand(rows, width, width), ancestors)
        visible = {}
        if _FULL in self.attention.kinds:
            visible[_FULL] = seen
        if _SLIDING in self.attention.kinds:
            keys = columns[None, :].repeat(rows, 1).scatter_(1, write, positions)
            near = positions[:, :, None] - keys[:, None, :] < self.attention.window
            visible[_SLIDING] = seen & near
        hidden = torch.finfo(self.dtype).min
        masks = {kind: torch.zeros((rows, 1, width, kv_length), dtype=self.dtype,
                                   device=self.device).masked_fill_(~shown[:, None], hidden)
                 for kind, shown in visible.items()}
        if len(masks) == 1:
            return next(iter(masks.values()))
        return masks


__all__ = ["BatchedLayer", "HFBatchRow", "HFBatchSession"]
