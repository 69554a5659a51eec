"""Drafters as array functions: the ``Context -> Context @ Draft`` boxes of a compiled step.

Each draws the same tree as its per-step twin in :mod:`diagrammar.decoding.drafters` (the
tests compare them on random contexts), with a static number of slots:

- :class:`NoDraftArray`: no slot.
- :class:`PromptLookupArray`: a chain of ``num_tokens`` slots copied from the token buffer
  after the latest match of the context's last n-gram (longest n first; of the latest
  ``scan_limit`` matches, the latest with a full-length continuation, else the earliest of
  them), exactly as :class:`~diagrammar.decoding.drafters.PromptLookupDrafter` chooses, by
  comparing the whole buffer at once instead of keeping an index.
- :class:`TokenRecyclingArray`: the static template filled breadth first from the adjacency
  matrix, the first ``max_nodes`` nodes that exist kept (as
  :class:`~diagrammar.decoding.drafters.TokenRecyclingDrafter` does); after each pass the
  rows of the scored tokens are overwritten with the target's top-``k``, the root and the
  accepted path written last. The matrix lives in the carry and goes back to the drafter
  object when the decode ends, so hot starts, ``save_state`` and ``load_state`` work across
  both loops.

>>> import jax.numpy as jnp
>>> from diagrammar.decoding.compiled.carry import Carry
>>> tokens = jnp.array([7, 8, 9, 4, 7, 8, 0, 0], jnp.int32)
>>> carry = Carry(tokens, jnp.int32(6), jnp.int32(6), jnp.int32(10), (), (), jnp.int32(5),
...               jnp.bool_(False), jnp.int32(0), tokens, tokens, ())
>>> _, tree = PromptLookupArray(num_tokens=3, max_ngram=2)(None, carry)
>>> tree.tokens.tolist(), tree.valid.tolist()
([9, 4, 7], [True, True, True])
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diagrammar.decoding.compiled.carry import Carry
from diagrammar.decoding.compiled.env import StepEnv
from diagrammar.decoding.compiled.trees import ArrayAcceptance, ArrayTree, chain, empty_tree
from diagrammar.decoding.state import DecodeState


def top_k_rows(logits: jax.Array, k: int, chunk: int = 64) -> tuple[jax.Array, jax.Array]:
    """``lax.top_k`` of every row (values and ids, best first, ties to the lower id), in two
    small stages: the rows' chunks of ``chunk`` entries ranked by their maxima, then the
    entries of the ``k`` best chunks (which hold the top ``k``). Inside a compiled loop XLA's
    CPU backend can lower a plain ``top_k`` of a whole score row to a full sort (about 10 ms
    for 17 rows of 4096 on this machine); the two stages sort ``k * chunk`` entries.

    >>> import jax.numpy as jnp
    >>> rows = jnp.stack([jnp.arange(300.0)[::-1] % 7, jnp.cos(jnp.arange(300.0))])
    >>> values, ids = top_k_rows(rows, 3)
    >>> ids.tolist(), ids.tolist() == lax.top_k(rows, 3)[1].tolist()
    ([[6, 13, 20], [0, 44, 289]], True)
    """
    rows, vocab = logits.shape
    chunks = -(-vocab // chunk)
    if chunks <= k:
        return lax.top_k(logits, k)
    padded = jnp.pad(logits, ((0, 0), (0, chunks * chunk - vocab)), constant_values=-jnp.inf)
    blocks = padded.reshape(rows, chunks, chunk)
    _, best = lax.top_k(blocks.max(-1), k)
    best = jnp.sort(best, axis=-1)             # ascending: ties keep going to the lower id
    candidates = jnp.take_along_axis(blocks, best[:, :, None], axis=1).reshape(rows, -1)
    values, where = lax.top_k(candidates, k)
    ids = best[jnp.arange(rows)[:, None], where // chunk] * chunk + where % chunk
    return values, ids.astype(jnp.int32)


class NoDraftArray:
    """The empty draft."""

    #: Draft slots (the most nodes a tree of this drafter has).
    slots = 0

    def __call__(self, env: StepEnv, carry: Carry) -> tuple[Carry, ArrayTree]:
        return carry, empty_tree()


class PromptLookupArray:
    """Prompt lookup over the token buffer (a chain; see the module docstring).

    Args:
        num_tokens: the chain's length (its slots).
        max_ngram, min_ngram: the n-gram sizes tried, longest first.
        scan_limit: how many of the latest matches are considered.
    """

    def __init__(self, num_tokens: int = 10, max_ngram: int = 3, min_ngram: int = 1,
                 scan_limit: int = 64) -> None:
        self.num_tokens = self.slots = num_tokens
        self.sizes = tuple(range(max_ngram, min_ngram - 1, -1))
        self.scan_limit = scan_limit

    def matches(self, tokens: jax.Array, length: jax.Array) -> jax.Array:
        """Positions ``p`` where the n-gram before ``p`` equals the context's last n-gram, for
        the longest ``n`` that matches anywhere (all false when none does)."""
        capacity = tokens.shape[0]
        positions = jnp.arange(capacity, dtype=jnp.int32)
        found = jnp.zeros((capacity,), bool)
        for n in self.sizes:
            match = (positions >= n) & (positions < length) & (length >= n)
            for offset in range(n):
                earlier = jnp.take(tokens, positions - n + offset, mode="clip")
                latest = tokens[jnp.clip(length - n + offset, 0, capacity - 1)]
                match &= earlier == latest
            found = jnp.where(jnp.any(found), found, match)
        return found

    def __call__(self, env: StepEnv, carry: Carry) -> tuple[Carry, ArrayTree]:
        tokens, length = carry.tokens, carry.length
        capacity = tokens.shape[0]
        positions = jnp.arange(capacity, dtype=jnp.int32)
        match = self.matches(tokens, length)
        wanted = jnp.minimum(self.num_tokens, carry.draft_budget)
        # Of the latest scan_limit matches: the latest with a full continuation, else the
        # earliest of them (the one whose continuation is longest).
        later = jnp.cumsum(match[::-1], dtype=jnp.int32)[::-1] - match
        window = match & (later < self.scan_limit)
        full = window & (length - positions >= wanted)
        latest_full = jnp.max(jnp.where(full, positions, -1))
        earliest = jnp.min(jnp.where(window, positions, capacity))
        best = jnp.where(latest_full >= 0, latest_full, earliest)
        count = jnp.where(jnp.any(match) & (wanted > 0),
                          jnp.minimum(wanted, length - best), 0)
        drafted = jnp.take(tokens, best + jnp.arange(self.num_tokens), mode="fill",
                           fill_value=0)
        return carry, chain(drafted, count)


class TokenRecyclingArray:
    """Token Recycling's static template over an adjacency matrix kept in the carry.

    Args:
        drafter: the :class:`~diagrammar.decoding.drafters.TokenRecyclingDrafter` whose
            template, ``max_nodes``, ``k``, ``frozen`` and matrix it uses (static templates
            only: a dynamic tree has no array implementation).
    """

    #: Set by the compiler: this box's entry in ``Carry.boxes``.
    slot: int = -1

    def __init__(self, drafter: Any) -> None:
        if drafter.dynamic:
            raise ValueError("dynamic Token Recycling trees have no array implementation")
        self.drafter = drafter
        template = drafter.template
        index = {path: i for i, path in enumerate(template)}
        self.parents = np.array([index[p[:-1]] if len(p) > 1 else -1 for p in template],
                                dtype=np.int32)
        self.ranks = np.array([p[-1] for p in template], dtype=np.int32)
        self.depths = np.array([len(p) for p in template], dtype=np.int32)
        self.max_nodes = self.slots = min(drafter.max_nodes, len(template))
        self.levels = [np.flatnonzero(self.depths == d)
                       for d in range(1, int(self.depths.max(initial=0)) + 1)]

    # -- host side --------------------------------------------------------------------------
    def start(self, state: DecodeState) -> tuple[jax.Array, jax.Array]:
        """The drafter's ``start`` (sizes or resets the matrix), then the matrix on device."""
        self.drafter.start(state)
        rows = max(len(self.drafter.matrix) if self.drafter.matrix is not None else 0,
                   state.vocab_size or 0)
        matrix = self.drafter._ensure_rows(rows)
        return jnp.asarray(matrix), jnp.asarray(self.drafter.probs)

    def finish(self, state: tuple[jax.Array, jax.Array]) -> None:
        """Gives the matrix the decode learned back to the drafter."""
        if not self.drafter.frozen:
            self.drafter.matrix = np.array(state[0], dtype=np.int32)
            self.drafter.probs = np.array(state[1], dtype=np.float32)

    # -- traced ---------------------------------------------------------------------------------
    def __call__(self, env: StepEnv, carry: Carry) -> tuple[Carry, ArrayTree]:
        if not self.drafter.frozen:
            env.observers.append(self.observe)
        matrix = carry.boxes[self.slot][0]
        template = len(self.parents)
        if self.max_nodes == 0 or template == 0:
            return carry, empty_tree()
        root = carry.tokens[carry.length - 1]
        tokens = jnp.zeros((template,), jnp.int32)
        exists = jnp.zeros((template,), bool)
        for depth, nodes in enumerate(self.levels, start=1):
            parents = self.parents[nodes]
            if depth == 1:
                above, alive = jnp.full(len(nodes), root), jnp.ones(len(nodes), bool)
            else:
                above, alive = tokens[parents], exists[parents]
            candidate = matrix[above, self.ranks[nodes]]
            tokens = tokens.at[nodes].set(candidate)
            exists = exists.at[nodes].set(alive & (candidate >= 0)
                                          & (depth <= carry.draft_budget))
        order = jnp.cumsum(exists, dtype=jnp.int32) - 1
        kept = exists & (order < self.max_nodes)
        slot = jnp.where(kept, order, self.max_nodes)
        parent_slot = jnp.where(self.parents >= 0, order[np.maximum(self.parents, 0)], -1)
        slots = self.max_nodes
        tree = ArrayTree(
            tokens=jnp.zeros((slots,), jnp.int32).at[slot].set(tokens, mode="drop"),
            parents=jnp.full((slots,), -1, jnp.int32).at[slot].set(parent_slot, mode="drop"),
            valid=jnp.arange(slots) < jnp.sum(kept, dtype=jnp.int32),
            max_depth=len(self.levels))
        return carry, tree

    def observe(self, env: StepEnv, boxes: tuple[Any, ...], root: jax.Array,
                accepted: ArrayAcceptance) -> tuple[Any, ...]:
        """Recycles the target's top-``k`` at the root and every node of the pass."""
        tree, scores = accepted.tree, accepted.scores
        matrix, probs = boxes[self.slot]
        k = matrix.shape[1]
        rows = tree.slots + 1
        scored = jnp.concatenate([root[None], tree.tokens])
        valid = jnp.concatenate([jnp.ones((1,), bool), tree.valid])
        # Write priority: the other nodes in slot order, then the root, then the path.
        index = jnp.arange(rows, dtype=jnp.int32)
        path = jnp.where(accepted.path >= 0, accepted.path, rows)     # -1: past the path
        on_path = jnp.zeros((rows,), jnp.int32).at[path].set(
            jnp.arange(1, accepted.path.shape[0] + 1, dtype=jnp.int32), mode="drop")
        priority = jnp.where(on_path > 0, rows + on_path, jnp.where(index == 0, rows, index))
        priority = jnp.where(valid, priority, -1)
        beaten = jnp.any((scored[None, :] == scored[:, None])
                         & (priority[None, :] > priority[:, None]), axis=1)
        write = valid & ~beaten
        width = min(k, scores.shape[-1])
        logits = scores.astype(jnp.float32)
        top, ids = top_k_rows(logits, width)
        highest = logits.max(-1, keepdims=True)         # the softmax, without cancellation
        chances = jnp.exp(top - highest) / jnp.exp(logits - highest).sum(-1, keepdims=True)
        if width < k:
            ids = jnp.pad(ids, ((0, 0), (0, k - width)), constant_values=-1)
            chances = jnp.pad(chances, ((0, 0), (0, k - width)))
        target = jnp.where(write, scored, matrix.shape[0])
        matrix = matrix.at[target].set(ids.astype(matrix.dtype), mode="drop")
        probs = probs.at[target].set(chances.astype(probs.dtype), mode="drop")
        boxes = list(boxes)
        boxes[self.slot] = (matrix, probs)
        return tuple(boxes)


__all__ = ["NoDraftArray", "PromptLookupArray", "TokenRecyclingArray", "top_k_rows"]
