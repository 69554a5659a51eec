"""How much of a continuation repeats itself: the looping share next to MAT.

A greedy continuation that loops is easy for any copy-based drafter, so acceptance measured on
it says more about the model than about the drafter. A continuation *loops* when more than
:data:`LOOP_THRESHOLD` of its tokens lie inside an n-gram (n = :data:`LOOP_NGRAM`) that
already occurred earlier in the same continuation.

Example:
    >>> repeated_ngram_fraction([1, 2, 3, 4] * 4, n=4)
    0.75
    >>> repeated_ngram_fraction(list(range(16)), n=4), is_looping([5] * 20)
    (0.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LOOP_NGRAM", "LOOP_THRESHOLD", "is_looping", "repeated_ngram_fraction"]

#: The n-gram length whose repeats count.
LOOP_NGRAM = 8
#: A continuation loops when more than this share of its tokens sits in a repeated n-gram.
LOOP_THRESHOLD = 0.3


def repeated_ngram_fraction(tokens: Sequence[int], n: int = LOOP_NGRAM) -> float:
    """The share of ``tokens`` covered by an n-gram that occurred earlier in ``tokens``.

    Args:
        tokens: a continuation.
        n: the n-gram length.

    Returns:
        A number from 0 (no n-gram repeats) to 1; 0 for fewer than ``n`` tokens.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(tokens) < n:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    covered = [False] * len(tokens)
    for start in range(len(tokens) - n + 1):
        gram = tuple(tokens[start:start + n])
        if gram in seen:
            covered[start:start + n] = [True] * n
        else:
            seen.add(gram)
    return sum(covered) / len(tokens)


def is_looping(tokens: Sequence[int], n: int = LOOP_NGRAM,
               threshold: float = LOOP_THRESHOLD) -> bool:
    """Whether more than ``threshold`` of ``tokens`` sits in a repeated n-gram."""
    return repeated_ngram_fraction(tokens, n) > threshold
