"""The verification cost curve: how much longer one pass scoring ``n`` tokens takes than one.

``t(n)/t(1)`` is what speculative decoding trades against: a step that verifies ``n - 1``
draft tokens pays ``t(n)`` and must accept enough of them to beat ``t(1)`` per token.

Example (needs a model ``lm`` and a context ``ids``, so not a doctest)::

    curve = measure_cost_curve(lm, ids[:300], [1, 2, 4], repeats=3)
    curve["sizes"], curve["ratio"][0]   # ([1, 2, 4], 1.0)
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["measure_cost_curve"]


def measure_cost_curve(lm: Any, context_ids: Sequence[int], sizes: Sequence[int],
                       repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Times one tree verification pass of ``n`` tokens for every ``n`` in ``sizes``.

    A pass of ``n`` tokens (root included, so ``n - 1`` draft tokens in a chain) runs over a
    cache of ``len(context_ids) - 1`` tokens. Sizes are timed in a shuffled order on every
    repeat (after one untimed pass each), the cache is rolled back after every pass, and the
    median of the repeats is kept.

    Args:
        lm: an :class:`~diagrammar.models.hf.HFCausalLM` (anything with ``session``).
        context_ids: the context; its last token is the root of every pass.
        sizes: tokens per pass; sizes that would overflow the model's context are dropped.
        repeats: timed passes per size.
        seed: seed of the shuffles.

    Returns:
        ``sizes``, ``median_seconds`` and ``ratio`` (``t(n)/t(1)``) as lists in increasing
        size, ``context_tokens`` (tokens in the cache), ``repeats`` and ``n_counts`` (what
        ``n`` counts, in words).

    Raises:
        ValueError: size 1 is missing, or no size fits the model's context.
    """
    context = list(context_ids)
    sizes = sorted(set(int(n) for n in sizes))
    if lm.max_positions is not None:
        sizes = [n for n in sizes if len(context) + n <= lm.max_positions]
    if not sizes or sizes[0] != 1:
        raise ValueError("the cost curve needs size 1 and sizes that fit the model's context")
    session = lm.session(context)
    base = session.cache_length
    root = context[-1]
    pool = (context * (1 + max(sizes) // len(context)))[:max(sizes)]
    rng = random.Random(seed)
    times: dict[int, list[float]] = {n: [] for n in sizes}

    def one(n: int) -> float:
        draft = pool[:n - 1]
        began = time.perf_counter()
        session.verify(root, draft, list(range(-1, n - 2)))
        elapsed = time.perf_counter() - began
        session.truncate(base)
        return elapsed

    for n in sizes:
        one(n)
    for _ in range(repeats):
        order = list(sizes)
        rng.shuffle(order)
        for n in order:
            times[n].append(one(n))
    medians = [statistics.median(times[n]) for n in sizes]
    return {
        "sizes": sizes,
        "median_seconds": medians,
        "ratio": [m / medians[0] for m in medians],
        "context_tokens": base,
        "repeats": repeats,
        "n_counts": "tokens scored in one pass, the root included (n - 1 draft tokens)",
    }
