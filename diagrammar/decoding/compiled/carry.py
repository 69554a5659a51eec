"""The ``Context`` wire of a compiled step: everything one sequence's decoding carries from step
to step, as device arrays (the loop state of ``lax.while_loop``).

The token buffer and the KV cache have the same static capacity ``L``: the prompt, the budget
and one draft tree fit (see :func:`capacity_for`). ``length`` tokens of the buffer are real;
the cache holds all of them but the last (the root), as in the per-step loop. The per-step
statistics are arrays of ``L`` entries (a step commits at least one token, so there are at
most ``budget <= L`` steps). ``boxes`` holds the state of the boxes that keep one (Token
Recycling's matrix), one entry per such box.

>>> capacity_for(prompt_length=100, max_new_tokens=200, rows=17)
512
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

#: The smallest capacity a compiled decode allocates (fewer distinct compiles for short runs).
MIN_CAPACITY = 128


def capacity_for(prompt_length: int, max_new_tokens: int, rows: int) -> int:
    """The buffer and cache capacity of a decode: a power of two holding the prompt, the
    budget and a last pass of ``rows`` rows (at least :data:`MIN_CAPACITY`)."""
    needed = max(MIN_CAPACITY, prompt_length + max_new_tokens + rows)
    return 1 << (needed - 1).bit_length()


class Carry(NamedTuple):
    """One sequence's decoding state on the device.

    Attributes:
        tokens: ``(L,)`` int32, the prompt and the tokens generated so far, then garbage.
        length: how many entries of ``tokens`` are real.
        prompt_length: how many of them are the prompt.
        budget: ``max_new_tokens``.
        keys, values: the KV cache, one ``(kv_heads, L, head_dim)`` array per layer.
        cache_length: tokens in the cache (``length - 1`` between steps).
        done: whether the generation has ended (budget or end token).
        steps: steps run.
        accepted: ``(L,)`` int32, tokens committed at each step.
        drafted: ``(L,)`` int32, draft nodes verified at each step.
        boxes: the state of the boxes that keep one, in the step's order.
    """

    tokens: jax.Array
    length: jax.Array
    prompt_length: jax.Array
    budget: jax.Array
    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]
    cache_length: jax.Array
    done: jax.Array
    steps: jax.Array
    accepted: jax.Array
    drafted: jax.Array
    boxes: tuple[Any, ...]

    @property
    def generated(self) -> jax.Array:
        """Tokens generated so far."""
        return self.length - self.prompt_length

    @property
    def draft_budget(self) -> jax.Array:
        """The deepest draft worth verifying: new tokens left, minus the bonus token."""
        return jnp.maximum(0, self.budget - self.generated - 1)


__all__ = ["Carry", "MIN_CAPACITY", "capacity_for"]
