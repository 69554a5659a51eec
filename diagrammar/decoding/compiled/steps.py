"""Verification, greedy acceptance and commit as array functions: the rest of a compiled step.

- :class:`VerifyArray` (``Context @ Draft -> Context @ Draft @ Scores``): one forward pass of
  the root and the tree's slots over the carry's KV cache, with the tree's ancestor mask and
  depth-based position ids. The pass runs only as many rows as the tree fills, rounded up to
  a bucket (1, 2, 3, 5, 9, 17, ... rows, capped at the slots): ``lax.switch`` picks the
  bucket's branch, so a step without a draft costs one row even in a prompt-lookup pipeline.
  The branches read the cache and return the new keys and values, written after the switch
  (rows past the pass are padding, beyond the cache's length).
- :class:`GreedyAcceptArray` (``Context @ Draft @ Scores -> Context @ Accepted``): follows the
  target's argmax from the root while a valid child matches, then the bonus token: the array
  twin of :func:`~diagrammar.decoding.acceptance.greedy_accept`.
- :class:`CommitArray` (``Context @ Accepted -> Context``): keeps the accepted path's cache
  entries (one gather per layer), appends the tokens cut at the budget and after the first end
  token (as :func:`~diagrammar.decoding.commit.commit`), records the step, then lets the
  drafters that learn observe the pass.

>>> row_buckets(11), row_buckets(1), row_buckets(17)
((1, 2, 3, 5, 9, 11), (1,), (1, 2, 3, 5, 9, 17))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from diagrammar.decoding.compiled.carry import Carry
from diagrammar.decoding.compiled.env import StepEnv
from diagrammar.decoding.compiled.trees import (
    ArrayAcceptance,
    ArrayTree,
    rows_of,
    tree_layout,
)
from diagrammar.models.jax import transformer


def row_buckets(rows: int) -> tuple[int, ...]:
    """The pass sizes a tree of ``rows - 1`` slots runs at: 1 plus powers of two, then
    ``rows``."""
    sizes, extra = [1], 1
    while 1 + extra < rows:
        sizes.append(1 + extra)
        extra *= 2
    if sizes[-1] != rows:
        sizes.append(rows)
    return tuple(sizes)


class VerifyArray:
    """Scores the root and the draft tree in one pass over the carry's cache, running only
    the rows the tree fills (rounded up to :func:`row_buckets`)."""

    def __call__(self, env: StepEnv, carry: Carry, tree: ArrayTree
                 ) -> tuple[Carry, ArrayTree, jax.Array]:
        ancestors, depths = tree_layout(tree)
        rows = tree.slots + 1
        root = carry.tokens[carry.length - 1]
        ids = jnp.concatenate([root[None], tree.tokens.astype(jnp.int32)])
        start = carry.cache_length
        positions = (start + depths).astype(jnp.int32)

        def run(size: int):
            def branch(cache):
                scores, new_keys, new_values = transformer.forward(
                    env.params, cache[0], cache[1], ids[:size], positions[:size],
                    ancestors[:size, :size], start, arch=env.architecture, write=False,
                    **self._attention(env))
                pad = ((0, rows - size), (0, 0))
                return (jnp.pad(scores, pad),
                        tuple(jnp.pad(rows_, pad + ((0, 0),)) for rows_ in new_keys),
                        tuple(jnp.pad(rows_, pad + ((0, 0),)) for rows_ in new_values))
            return branch

        # Several sizes: the branches only read the cache and the new rows are written after
        # the switch (a branch writing the cache would make XLA copy it into the branch).
        sizes = row_buckets(rows)
        if len(sizes) == 1:                  # one size: the pass writes the cache itself
            scores, keys, values = transformer.forward(
                env.params, carry.keys, carry.values, ids, positions, ancestors, start,
                arch=env.architecture, **self._attention(env))
        else:
            branch = jnp.searchsorted(jnp.asarray(sizes), 1 + tree.count)
            scores, new_keys, new_values = lax.switch(
                branch, [run(size) for size in sizes], (carry.keys, carry.values))
            keys, values = transformer.write_rows(carry.keys, carry.values, new_keys,
                                                  new_values, start)
        return carry._replace(keys=keys, values=values), tree, scores

    @staticmethod
    def _attention(env: StepEnv) -> dict[str, str]:
        return {} if env.attention == "xla" else {"attention": env.attention}


class GreedyAcceptArray:
    """Lossless greedy acceptance over an array tree."""

    def __call__(self, env: StepEnv, carry: Carry, tree: ArrayTree, scores: jax.Array
                 ) -> tuple[Carry, ArrayAcceptance]:
        best = jnp.argmax(scores, axis=-1).astype(jnp.int32)
        valid, parent, tokens = rows_of(tree)
        depth = tree.max_depth
        node = jnp.int32(0)
        alive = jnp.bool_(True)
        length = jnp.int32(0)
        path = jnp.full((depth,), -1, jnp.int32)
        for index in range(depth):
            match = valid & (parent == node) & (tokens == best[node])
            found = alive & jnp.any(match)
            child = jnp.argmax(match).astype(jnp.int32)
            path = path.at[index].set(jnp.where(found, child, -1))
            node = jnp.where(found, child, node)
            length = length + found.astype(jnp.int32)
            alive = found
        taken = jnp.where(jnp.arange(depth) < length, tokens[jnp.maximum(path, 0)], 0)
        out = jnp.concatenate([taken, jnp.zeros((1,), jnp.int32)]).at[length].set(best[node])
        return carry, ArrayAcceptance(path, length, out, tree, scores)


class CommitArray:
    """Keeps the accepted path, appends its tokens, records the step (see the module
    docstring)."""

    def __call__(self, env: StepEnv, carry: Carry, accepted: ArrayAcceptance
                 ) -> tuple[Carry]:
        count = accepted.length + 1
        left = carry.budget - carry.generated
        done = count >= left
        new = jnp.minimum(count, left)
        ends = env.is_end(accepted.tokens) & (jnp.arange(accepted.tokens.shape[0]) < new)
        ended = jnp.any(ends)
        new = jnp.where(ended, jnp.argmax(ends).astype(jnp.int32) + 1, new)
        tokens = lax.dynamic_update_slice(carry.tokens, accepted.tokens, (carry.length,))
        # The cache: the root stays where it is, the path's entries move right after it.
        destination = carry.cache_length + 1
        depth = accepted.path.shape[0]
        keys, values = carry.keys, carry.values
        if depth:
            offsets = jnp.arange(depth, dtype=jnp.int32)
            sources = jnp.where(offsets < accepted.length,
                                carry.cache_length + accepted.path, destination + offsets)
            keys, values = transformer.compact(keys, values, sources, destination)
        boxes = carry.boxes
        root = carry.tokens[carry.length - 1]
        for observe in env.observers:
            boxes = observe(env, boxes, root, accepted)
        return (carry._replace(
            tokens=tokens, length=carry.length + new, keys=keys, values=values,
            cache_length=destination + accepted.length, done=carry.done | done | ended,
            steps=carry.steps + 1,
            accepted=carry.accepted.at[carry.steps].set(new),
            drafted=carry.drafted.at[carry.steps].set(accepted.tree.count), boxes=boxes),)


__all__ = ["CommitArray", "GreedyAcceptArray", "VerifyArray", "row_buckets"]
