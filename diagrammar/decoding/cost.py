"""A cost model of verification: how long a pass of ``n`` tokens takes, and which tree size pays.

Speculative decoding trades a longer verification pass for more tokens per pass. With
``t(n)`` the time of a pass scoring ``n`` tokens (the root and ``n - 1`` draft nodes) and
``g(m)`` the expected number of draft tokens accepted from the first ``m`` nodes of a tree,
a step of ``m`` nodes yields ``1 + g(m)`` tokens (the bonus token included) in ``t(m + 1)``;
:meth:`CostModel.best_size` picks the ``m`` that maximises that rate. The curve is measured on
the machine at hand (``diagrammar.bench.cost_curve.measure_cost_curve``), so the same drafter
sizes its trees small on a CPU, where a pass of 16 tokens costs about two single steps, and
large on a GPU, where it costs about one.

>>> cost = CostModel([1, 2, 4, 8], [1.0, 1.1, 1.3, 2.0])
>>> round(cost.time(3), 6), round(cost.time(16), 6)
(1.2, 3.4)
>>> cost.best_size([0.0, 0.9, 1.5, 1.8, 1.9])   # expected accepted tokens of 0..4 nodes
3
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CostModel"]


class CostModel:
    """Verification time by tokens per pass, from a measured curve.

    Args:
        sizes: tokens per pass, strictly increasing, starting at 1.
        seconds: the measured time of each size, in seconds.
        overhead: seconds a step spends outside verification (drafting, acceptance, commit);
            :meth:`observe_step` re-tunes it from measured step times.

    Raises:
        ValueError: sizes that do not start at 1 or do not increase, non-positive times, or
            lists of different lengths.
    """

    def __init__(self, sizes: Sequence[int], seconds: Sequence[float],
                 overhead: float = 0.0) -> None:
        sizes, seconds = [int(n) for n in sizes], [float(s) for s in seconds]
        if len(sizes) != len(seconds) or not sizes:
            raise ValueError("a cost curve needs one time per size, and at least one size")
        if sizes[0] != 1 or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
            raise ValueError(f"cost curve sizes must increase from 1, got {sizes}")
        if any(s <= 0 for s in seconds):
            raise ValueError("cost curve times must be positive")
        if overhead < 0:
            raise ValueError(f"overhead must be non-negative, got {overhead}")
        self.sizes, self.seconds = sizes, seconds
        self.overhead = float(overhead)

    @classmethod
    def from_curve(cls, curve: Mapping[str, Any]) -> CostModel:
        """From ``measure_cost_curve``'s result (its ``sizes`` and ``median_seconds``)."""
        return cls(curve["sizes"], curve["median_seconds"])

    def time(self, n: int) -> float:
        """Predicted time of a pass of ``n`` tokens: linear between measured sizes, and along
        the last segment's slope beyond the largest."""
        if n < 1:
            raise ValueError(f"a pass scores at least 1 token, got {n}")
        sizes, seconds = self.sizes, self.seconds
        if len(sizes) == 1:
            return seconds[0] * n
        i = min(max(bisect.bisect_left(sizes, n), 1), len(sizes) - 1)
        (n0, t0), (n1, t1) = (sizes[i - 1], seconds[i - 1]), (sizes[i], seconds[i])
        return t0 + (t1 - t0) * (n - n0) / (n1 - n0)

    def rate(self, nodes: int, accepted: float) -> float:
        """Predicted tokens per unit time of a step verifying ``nodes`` draft nodes of which
        ``accepted`` are expected to be accepted."""
        return (1.0 + accepted) / (self.time(nodes + 1) + self.overhead)

    def observe_step(self, nodes: int, seconds: float, weight: float = 0.1) -> None:
        """Re-tune :attr:`overhead` from one measured step that verified ``nodes`` draft nodes
        in ``seconds`` all told: an exponential moving average of the time beyond the curve's
        prediction (never below zero)."""
        beyond = max(0.0, seconds - self.time(nodes + 1))
        self.overhead += weight * (beyond - self.overhead)

    def best_size(self, gains: Sequence[float]) -> int:
        """The number of nodes ``m`` (an index into ``gains``) with the highest :meth:`rate`.

        Args:
            gains: ``gains[m]`` is the expected number of accepted draft tokens when the
                first ``m`` nodes are verified; ``gains[0]`` is 0.

        Returns:
            The best ``m``; the smallest on ties, within a relative 1e-9 (0 when drafting does
            not pay).
        """
        best, best_rate = 0, self.rate(0, 0.0)
        for m in range(1, len(gains)):
            rate = self.rate(m, gains[m])
            if rate > best_rate * (1 + 1e-9):
                best, best_rate = m, rate
        return best
