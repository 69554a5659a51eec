"""The JAX session: one sequence's KV cache on the device, scored tree by tree.

:class:`JaxSession` follows the :class:`~diagrammar.models.session.CachedSession` contract
(the cache holds every committed token but the root; ``verify`` scores root and tree in one
pass; ``keep`` keeps the accepted path; ``truncate`` rolls back) over a preallocated cache: one
``(kv_heads, capacity, head_dim)`` array of keys and one of values per layer.

Shapes are bucketed so that compiles are bounded: a pass of the root and ``n`` draft nodes runs
padded to the root plus :func:`bucket` ``(n)`` nodes (0, 1, 2, 4, 8, 16, 32, 64, ...: passes of
1, 2, 3, 5, 9, 17, 33, 65 rows, so that the usual trees of 8 or 16 nodes pad nothing; padded
rows see only themselves and are dropped), a prefill in passes of :data:`PREFILL_CHUNK` tokens
and a last pass of the rest padded likewise (a prompt of 270 tokens runs 129 + 129 + 17 rows,
not 513), a
compaction of a path of ``n`` nodes to :func:`bucket` ``(n)``, and the capacity is a power of
two that doubles when a pass would not fit. A pass compiles once per (rows, capacity) and a
compaction once per (path bucket, capacity); the model counts them
(:attr:`~diagrammar.models.jax.model.JaxCausalLM.compiled`). With the Pallas attention, a pass
of 34 to 64 tokens runs padded to 64 rows rather than 65 (:func:`pass_rows`), the most the
kernel's tree block holds (a pass of more rows runs the einsum).

Host work per pass is a few small NumPy arrays: the padded ids, the position ids (the cache
length plus each node's depth) and the tree mask (:func:`tree_layout`).

>>> [bucket(n) for n in (0, 1, 5, 16, 17)], [padded_rows(n) for n in (1, 2, 11, 17, 18)]
([0, 1, 8, 16, 32], [1, 2, 17, 17, 33])
>>> [pass_rows(n, "pallas") for n in (17, 34, 64, 65)], pass_rows(34, "xla")
([17, 64, 64, 65], 65)
>>> depths, ancestors = tree_layout([-1, 0, -1])
>>> depths.tolist(), ancestors.astype(int).tolist()
([0, 1, 2, 1], [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from diagrammar.models.jax.transformer import PALLAS_MAX_ROWS
from diagrammar.models.session import CachedSession

if TYPE_CHECKING:
    from diagrammar.models.jax.model import JaxCausalLM

#: The smallest cache capacity a session allocates.
MIN_CAPACITY = 128
#: Prompt tokens per prefill pass (a pass of 129 rows pads nothing; one compile serves every
#: long prompt, and a prompt pads at most its last chunk).
PREFILL_CHUNK = 129


def bucket(n: int) -> int:
    """The padded size of ``n >= 0`` nodes: the next power of two (0 for 0)."""
    return 1 << (n - 1).bit_length() if n else 0


def padded_rows(n: int) -> int:
    """The rows a pass of ``n >= 1`` tokens (a root and ``n - 1`` nodes) runs padded to."""
    return 1 + bucket(n - 1)


def pass_rows(n: int, attention: str = "xla") -> int:
    """The rows a pass of ``n >= 1`` tokens runs padded to under ``attention``:
    :func:`padded_rows`, capped at the Pallas kernel's 64 rows where ``n`` fits them."""
    rows = padded_rows(n)
    if attention == "pallas" and n <= PALLAS_MAX_ROWS < rows:
        return PALLAS_MAX_ROWS
    return rows


def tree_layout(parents: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Depths of the root and every draft node, and the ancestor mask (root first), in NumPy.

    ``ancestors[k, j]`` is true when position ``j`` is ``k`` itself or one of its ancestors
    (the NumPy twin of :func:`diagrammar.models.tree_mask.tree_layout`).
    """
    n = len(parents) + 1
    depths = np.zeros(n, dtype=np.int32)
    ancestors = np.eye(n, dtype=bool)
    for node, parent in enumerate(parents, start=1):
        if not -1 <= parent < node - 1:
            raise ValueError(f"node {node - 1} has parent {parent}: parents must come before "
                             "their children")
        depths[node] = depths[parent + 1] + 1
        ancestors[node] |= ancestors[parent + 1]
    return depths, ancestors


def _is_chain(parents: Sequence[int]) -> bool:
    return all(parent == index - 1 for index, parent in enumerate(parents))


_CHAINS: dict[int, np.ndarray] = {}


def _chain_mask(size: int) -> np.ndarray:
    """The causal mask of ``size`` tokens (cached: read-only)."""
    mask = _CHAINS.get(size)
    if mask is None:
        mask = _CHAINS[size] = np.tril(np.ones((size, size), dtype=bool))
        mask.setflags(write=False)
    return mask


class JaxSession(CachedSession):
    """The KV cache of one sequence under a :class:`JaxCausalLM`, on its device.

    Args:
        model: the model (weights and jitted functions).
        prompt_ids: the prompt; all but its last token are prefilled.
        capacity: cache positions to allocate at first (rounded up to a power of two, at least
            :data:`MIN_CAPACITY`); the cache doubles when a pass would not fit.

    Attributes:
        keys, values: the cache, one ``(kv_heads, capacity, head_dim)`` jax array per layer.
        capacity: cache positions allocated.
    """

    def __init__(self, model: JaxCausalLM, prompt_ids: Sequence[int],
                 capacity: int | None = None) -> None:
        ids = [int(token) for token in prompt_ids]
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        super().__init__(0)
        self.model = model
        self.device = model.device
        self.capacity = bucket(max(MIN_CAPACITY, capacity or 0, len(ids) + 65))
        self.keys, self.values = model.empty_cache(self.capacity)
        prefix = ids[:-1]
        for begin in range(0, len(prefix), PREFILL_CHUNK):
            chunk = prefix[begin:begin + PREFILL_CHUNK]
            self._run(chunk, None, logits=False)
            self.cache_length += len(chunk)

    def synchronize(self) -> None:
        """Waits until the device has finished the passes queued so far."""
        for array in (*self.keys, *self.values):
            array.block_until_ready()

    def _ensure(self, end: int) -> None:
        """Grows the cache (to the next power of two) so that ``end`` positions fit."""
        if end <= self.capacity:
            return
        capacity = bucket(end)
        self.keys, self.values = self.model.grow_cache(self.keys, self.values, capacity)
        self.capacity = capacity

    def _run(self, ids: list[int], parents: Sequence[int] | None, logits: bool = True) -> Any:
        """Runs ``ids`` after the cache (a chain when ``parents`` is None or a chain)."""
        n = len(ids)
        size = pass_rows(n, getattr(self.model, "attention", "xla"))
        start = self.cache_length
        self._ensure(start + size)
        tokens = np.zeros(size, dtype=np.int32)
        tokens[:n] = ids
        positions = np.full(size, start, dtype=np.int32)
        if parents is None or _is_chain(parents):
            positions[:n] += np.arange(n, dtype=np.int32)
            mask = _chain_mask(size)
        else:
            depths, ancestors = tree_layout(parents)
            positions[:n] += depths
            mask = np.eye(size, dtype=bool)
            mask[:n, :n] = ancestors
        scores, self.keys, self.values = self.model.run_forward(
            self.keys, self.values, tokens, positions, mask, start, logits=logits)
        if scores is None:
            return None
        return np.asarray(scores)[:n] if self.model.host_scores else scores[:n]

    def _score(self, ids: list[int], parents: Sequence[int]) -> Any:
        return self._run(ids, parents)

    def _move(self, sources: list[int], destination: int) -> None:
        size = bucket(len(sources))
        self._ensure(destination + size)
        padded = np.arange(destination, destination + size, dtype=np.int32)   # identity
        padded[:len(sources)] = sources
        self.keys, self.values = self.model.run_compact(self.keys, self.values, padded,
                                                        destination)

    def _truncate(self, length: int) -> None:
        """Nothing to free: the cache is preallocated and ``cache_length`` marks its end."""


__all__ = ["MIN_CAPACITY", "PREFILL_CHUNK", "JaxSession", "bucket", "padded_rows", "pass_rows",
           "tree_layout"]
