"""The batch-aware tree policy: how deep to verify the rows' trees when B rows share a pass.

Alone, a sequence verifies a tree of 16 nodes for about two single steps on a CPU, so
speculation pays easily. In a batch, the pass scores ``B x (1 + nodes)`` tokens: the bigger B,
the less of a verification is free, and beyond some B fixed-size speculation costs more than
it brings. Each step, :class:`BatchCostPolicy` picks the depth ``d`` to which every row's tree
is cut (0: verify no draft at all, plain batched decoding for that step) by maximising the
predicted throughput

    sum over rows of (1 + g_row(d))  /  (t(B, 1 + max_row nodes_row(d)) + overhead)

where ``t(B, n)`` is the measured time of a pass of B rows of ``n`` tokens (measured on the
batch itself the first time it is needed: dummy trees verified and rolled back), ``overhead``
the measured time of the rest of a step, and ``g_row(d)`` the expected accepted draft tokens of
that row's tree cut to depth ``d``: for greedy acceptance, a tree cut to depth ``d`` accepts
exactly ``min(accepted, d)``, so every verified step tells what each shallower cut would have
brought. Estimates are kept per row (its prompt) and pooled over rows, and a row's estimate is
shrunk towards the pooled one until it has its own data. Every ``explore_every`` steps the
policy verifies one level deeper than it would, so estimates keep coming in.

>>> policy = BatchCostPolicy()
>>> policy.gain(None, 2)           # no data yet: the prior (each level accepted at 1/2)
0.75
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.tree import DraftTree

#: Pass widths measured (tokens per row); a width in between is interpolated.
WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Mean:
    __slots__ = ("total", "count")

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1


class BatchCostPolicy:
    """Cuts every row's tree to the depth that maximises the batch's predicted tokens/s.

    Args:
        prior_accept: the acceptance rate per level assumed before any data.
        prior_weight: how many observations a row's own estimate needs to weigh as much as
            the pooled one.
        explore_every: every this many steps, verify one level deeper than chosen.
        repeats: passes timed per measured width (the median is kept).
    """

    def __init__(self, prior_accept: float = 0.5, prior_weight: float = 4.0,
                 explore_every: int = 16, repeats: int = 3) -> None:
        if not 0.0 <= prior_accept <= 1.0:
            raise ValueError(f"prior_accept must lie in [0, 1], got {prior_accept}")
        if prior_weight < 0 or explore_every < 1 or repeats < 1:
            raise ValueError("prior_weight must be >= 0, explore_every and repeats >= 1")
        self.prior_accept, self.prior_weight = prior_accept, prior_weight
        self.explore_every, self.repeats = explore_every, repeats
        self.times: dict[tuple[int, int], float] = {}
        self.overhead = 0.0
        self._overhead_steps = 0
        self._pooled: dict[int, _Mean] = {}
        self._rows: dict[int, dict[int, _Mean]] = {}
        self._caps: dict[int, int] = {}
        self._steps = 0
        self.chosen: list[int] = []

    # -- estimates -------------------------------------------------------------------------------
    def gain(self, state: DecodeState | None, depth: int) -> float:
        """Expected accepted draft tokens of a tree cut to ``depth`` for this row (pooled over
        rows when ``state`` is ``None``)."""
        if depth <= 0:
            return 0.0
        pooled = self._pooled.get(depth)
        if pooled is not None and pooled.count:
            prior = pooled.total / pooled.count
        else:
            a = self.prior_accept
            prior = sum(a ** level for level in range(1, depth + 1))
        if state is None:
            return prior
        mine = self._row(state).get(depth)
        if mine is None or not mine.count:
            return prior
        weight = self.prior_weight
        return (mine.total + weight * prior) / (mine.count + weight)

    def _row(self, state: DecodeState) -> dict[int, _Mean]:
        return self._rows.setdefault(id(state), {})

    def forget(self, state: DecodeState) -> None:
        """Drops a finished row's own estimates (its slot's next prompt starts afresh)."""
        self._rows.pop(id(state), None)
        self._caps.pop(id(state), None)

    # -- pass times ------------------------------------------------------------------------------
    def _measure(self, batch: Any, rows: Sequence[DecodeState], width: int) -> float:
        requests = [(state.session, state.tokens[-1], [state.tokens[-1]] * (width - 1),
                     [-1] * (width - 1)) for state in rows]     # a star: positions fit
        timings = []
        for _ in range(self.repeats):
            began = time.perf_counter()
            batch.verify_rows(requests)
            synchronize = getattr(batch, "synchronize", None)
            if synchronize is not None:
                synchronize()
            timings.append(time.perf_counter() - began)
            for state in rows:                       # roll the dummy tree back
                state.session.truncate(state.session.cache_length)
        return sorted(timings)[len(timings) // 2]

    def pass_time(self, batch: Any, rows: Sequence[DecodeState], width: int) -> float:
        """Seconds of a pass of ``len(rows)`` rows and ``width`` tokens each (measured once per
        batch size and listed width, interpolated in between)."""
        size = len(rows)
        below = max(w for w in WIDTHS if w <= width) if width <= WIDTHS[-1] else WIDTHS[-1]
        above = min((w for w in WIDTHS if w >= width), default=WIDTHS[-1])
        for w in {below, above}:
            if (size, w) not in self.times:
                self.times[size, w] = self._measure(batch, rows, w)
        low, high = self.times[size, below], self.times[size, above]
        if above == below:
            return low * max(1.0, width / above)
        return low + (high - low) * (width - below) / (above - below)

    # -- the choice ------------------------------------------------------------------------------
    def choose(self, batch: Any, drafts: Sequence[tuple[DecodeState, DraftTree]]) -> int:
        """The depth every row's tree is cut to this step (0: verify no draft)."""
        depths = [tree.depths() for _, tree in drafts]
        deepest = max((max(d, default=0) for d in depths), default=0)
        self._steps += 1
        if deepest == 0:
            return 0
        states = [state for state, _ in drafts]
        best, best_rate = 0, 0.0
        for cap in range(deepest + 1):
            width = 1 + max(sum(1 for d in row if d <= cap) for row in depths)
            tokens = sum(1.0 + self.gain(state, min(cap, max(row, default=0)))
                         for state, row in zip(states, depths, strict=True))
            rate = tokens / (self.pass_time(batch, states, width) + self.overhead)
            if rate > best_rate:
                best, best_rate = cap, rate
        if best < deepest and self._steps % self.explore_every == 0:
            best += 1
        self.chosen.append(best)
        for state, row in zip(states, depths, strict=True):
            self._caps[id(state)] = min(best, max(row, default=0))
        return best

    def observe(self, drafts: Sequence[tuple[DecodeState, DraftTree]],
                overhead_seconds: float) -> None:
        """Learns from a verified step: what each cut would have accepted, and the time the
        step spent outside its verification pass."""
        self._overhead_steps += 1
        weight = max(0.05, 1.0 / self._overhead_steps)
        self.overhead += weight * (overhead_seconds - self.overhead)
        for state, tree in drafts:
            verified = self._caps.pop(id(state), 0)
            verified = min(verified, tree.depth())
            if not verified or not state.accepted_per_step:
                continue
            accepted = max(0, state.accepted_per_step[-1] - 1)
            mine = self._row(state)
            for depth in range(1, verified + 1):
                value = float(min(accepted, depth))
                mine.setdefault(depth, _Mean()).add(value)
                self._pooled.setdefault(depth, _Mean()).add(value)

    def report(self) -> dict[str, Any]:
        """The measured pass times, the step overhead, the pooled gains and the caps chosen."""
        caps: dict[int, int] = {}
        for cap in self.chosen:
            caps[cap] = caps.get(cap, 0) + 1
        return {
            "pass_seconds": {f"{b}x{w}": t for (b, w), t in sorted(self.times.items())},
            "overhead_seconds": self.overhead,
            "pooled_gain": {d: m.total / m.count for d, m in sorted(self._pooled.items())
                            if m.count},
            "depth_caps": dict(sorted(caps.items())),
        }


__all__ = ["BatchCostPolicy", "WIDTHS"]
