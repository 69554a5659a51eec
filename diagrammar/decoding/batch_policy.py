"""The batch-aware tree policy: how much of each row's tree to verify when B rows share a pass.

Alone, a sequence verifies a tree of 16 nodes for about two single steps on a CPU, so
speculation pays easily. In a batch, one pass scores ``B x width`` tokens (every tree padded
to the widest): the bigger B, the less of a verification is free, and beyond some B
fixed-size speculation costs more than it brings. Each step, :class:`BatchCostPolicy` cuts
row ``b``'s tree to a depth ``d_b`` (0: no draft for that row this step) to maximise the
predicted throughput

    sum over rows of (1 + g_b(d_b))  /  (t(B, width) + overhead)

where ``width`` is one plus the largest cut tree, ``t`` the predicted time of the pass and
``overhead`` the measured time of the rest of a step (drafting, acceptance, commit). For a
given width every row takes the deepest cut that fits (more accepted tokens cost nothing
more), so the policy only searches the widths.

**Pass time** ``t = a + b * (tokens) + c * (keys read)``, with ``tokens = B x width`` (the
matrix products) and ``keys read = B x (longest cache + width)`` (attention reads every row's
keys up to the longest), fitted by least squares to every pass the batch runs: a few dummy
passes measured on the batch itself before the first choice (trees verified and rolled back),
then each real pass. On a CPU ``b`` dominates and big batches make wide trees expensive; on an
accelerator ``b`` is small until the device saturates.

**Gains** ``g_b(d) = sum over levels l <= d of p_1 ... p_l``, with ``p_l`` the chance that
the draft's level ``l`` is accepted once the levels above it were: for greedy acceptance a
tree cut to depth ``d`` accepts exactly ``min(accepted, d)``, so every verified step is a
trial of each level it reached. Rates are kept per row (its current prompt) and pooled over
rows; a row's rate is shrunk towards the pooled one until it has data of its own. Every
``explore_every`` steps the policy verifies one level deeper than it chose, so estimates keep
coming in.

>>> policy = BatchCostPolicy()
>>> policy.gain(None, 2)           # no data yet: the prior (each level accepted at 1/2)
0.75
>>> def seconds(rows, width, longest):   # a machine: 2 ms a pass, 50 us a token, ...
...     return 0.002 + 5e-5 * rows * width + 1e-6 * rows * (longest + width)
>>> policy.fit([(b, w, 300, seconds(b, w, 300)) for b in (1, 4) for w in (1, 16)])
>>> round(policy.pass_time(16, 8, 500) * 1000, 2), round(seconds(16, 8, 500) * 1000, 2)
(16.53, 16.53)
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.tree import DraftTree

#: Widths (tokens per row) of the dummy passes measured before the first choice.
CALIBRATION_WIDTHS = (1, 4, 16)


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
        repeats: how many times each calibration pass is timed.
        forget: weight kept by past passes when a new one is fitted (recent passes count
            more, as the context grows and the batch changes).
    """

    def __init__(self, prior_accept: float = 0.5, prior_weight: float = 4.0,
                 explore_every: int = 16, repeats: int = 2, forget: float = 0.97) -> None:
        if not 0.0 <= prior_accept <= 1.0:
            raise ValueError(f"prior_accept must lie in [0, 1], got {prior_accept}")
        if prior_weight < 0 or explore_every < 1 or repeats < 1 or not 0 < forget <= 1:
            raise ValueError("prior_weight must be >= 0, explore_every and repeats >= 1, "
                             "forget in (0, 1]")
        self.prior_accept, self.prior_weight = prior_accept, prior_weight
        self.explore_every, self.repeats, self.forget = explore_every, repeats, forget
        self.overhead = 0.0
        self._overhead_steps = 0
        self._xtx = np.zeros((3, 3))
        self._xty = np.zeros(3)
        self._coef: np.ndarray | None = None
        self._pooled: dict[int, _Mean] = {}
        self._rows: dict[int, dict[int, _Mean]] = {}
        self._caps: dict[int, int] = {}
        self._pending: tuple[int, int, int] | None = None
        self._steps = 0
        self._draft_costs: dict[int, float] = {}
        self._pooled_draft_cost = 0.0
        self._skipped: dict[int, int] = {}
        self._drafting: dict[int, bool] = {}
        self.widths: Counter[int] = Counter()

    # -- accepted tokens -------------------------------------------------------------------------
    def accept_rate(self, state: DecodeState | None, level: int) -> float:
        """The estimated chance that the draft's token at ``level`` is accepted when the levels
        above it were (this row's, shrunk towards the pooled one; pooled when ``state`` is
        ``None``)."""
        pooled = self._pooled.get(level)
        rate = self.prior_accept
        if pooled is not None:
            rate = (pooled.total + rate) / (pooled.count + 1)
        if state is None:
            return rate
        mine = self._rows.get(id(state), {}).get(level)
        if mine is None or not mine.count:
            return rate
        weight = self.prior_weight
        return (mine.total + weight * rate) / (mine.count + weight)

    def gains(self, state: DecodeState | None, depth: int) -> list[float]:
        """Expected accepted draft tokens of a tree cut to each depth ``0 .. depth`` for this
        row (pooled over rows when ``state`` is ``None``): the running sum over levels of the
        chance to get that far."""
        total, reach, cumulative = 0.0, 1.0, [0.0]
        for level in range(1, depth + 1):
            reach *= self.accept_rate(state, level)
            total += reach
            cumulative.append(total)
        return cumulative

    def gain(self, state: DecodeState | None, depth: int) -> float:
        """Expected accepted draft tokens of a tree cut to ``depth`` (see :meth:`gains`)."""
        return self.gains(state, max(depth, 0))[-1]

    def forget_row(self, state: DecodeState) -> None:
        """Drops a finished row's own estimates (its slot's next prompt starts afresh)."""
        for table in (self._rows, self._caps, self._draft_costs, self._skipped,
                      self._drafting):
            table.pop(id(state), None)

    # -- pass time -------------------------------------------------------------------------------
    @staticmethod
    def _features(rows: int, width: int, longest: int) -> np.ndarray:
        return np.array([1.0, rows * width, rows * (longest + width)])

    def fit(self, passes: Sequence[tuple[int, int, int, float]]) -> None:
        """Adds measured passes ``(rows, width, longest cache, seconds)`` to the time model."""
        for rows, width, longest, seconds in passes:
            x = self._features(rows, width, longest)
            self._xtx = self.forget * self._xtx + np.outer(x, x)
            self._xty = self.forget * self._xty + x * seconds
        ridge = 1e-12 * np.trace(self._xtx) * np.eye(3)
        coef = np.linalg.solve(self._xtx + ridge, self._xty)
        if (coef < 0).any():                          # a cost cannot be negative: refit without
            keep = coef > 0
            keep[0] = True
            sub = np.linalg.solve(self._xtx[np.ix_(keep, keep)] + ridge[np.ix_(keep, keep)],
                                  self._xty[keep])
            coef = np.zeros(3)
            coef[keep] = np.maximum(sub, 0.0)
        self._coef = coef

    def pass_time(self, rows: int, width: int, longest: int) -> float:
        """Predicted seconds of a pass of ``rows`` rows, ``width`` tokens each, after caches of
        at most ``longest`` tokens."""
        if self._coef is None:
            raise RuntimeError("no pass measured yet: fit() or choose() first")
        return float(self._features(rows, width, longest) @ self._coef)

    def _calibrate(self, batch: Any, states: Sequence[DecodeState]) -> None:
        """Times dummy passes (star trees, rolled back) of the listed widths on the batch; the
        widest runs once first untimed (it grows the buffers), and each width keeps its
        fastest time (noise only ever adds)."""
        rows = len(states)
        longest = max(state.session.cache_length for state in states)
        synchronize = getattr(batch, "synchronize", None)
        measured = []
        for index, width in enumerate((CALIBRATION_WIDTHS[-1], *CALIBRATION_WIDTHS)):
            requests = [(state.session, state.tokens[-1], [state.tokens[-1]] * (width - 1),
                         [-1] * (width - 1)) for state in states]   # a star: positions fit
            timings = []
            for _ in range(1 if index == 0 else self.repeats):
                began = time.perf_counter()
                batch.verify_rows(requests)
                if synchronize is not None:
                    synchronize()
                timings.append(time.perf_counter() - began)
                for state in states:                    # roll the dummy tree back
                    state.session.truncate(state.session.cache_length)
            if index:
                measured.append((rows, width, longest, min(timings)))
        self.fit(measured)

    # -- the choice ------------------------------------------------------------------------------
    def wants_draft(self, state: DecodeState) -> bool:
        """Whether this row should run its drafter this step: not while its drafts were
        predicted not to pay for their drafting time, except every ``explore_every`` steps."""
        key = id(state)
        skipped = self._skipped.get(key)
        if skipped is None:
            self._drafting[key] = True
            return True
        self._skipped[key] = skipped + 1
        self._drafting[key] = (skipped + 1) % self.explore_every == 0
        return self._drafting[key]

    def _draft_cost(self, state: DecodeState) -> float:
        return self._draft_costs.get(id(state), self._pooled_draft_cost)

    def choose(self, batch: Any, drafts: Sequence[tuple[DecodeState, DraftTree]],
               draft_seconds: Sequence[float] | None = None) -> list[int]:
        """The depth each row's tree is cut to this step (0: verify no draft for that row).

        Args:
            batch: the batch session (its passes are timed the first time).
            drafts: each row's state and drafted tree.
            draft_seconds: the time each row's drafter took this step; a row whose drafts
                are predicted not to pay for it stops drafting (see :meth:`wants_draft`).
        """
        self._steps += 1
        states = [state for state, _ in drafts]
        seconds = list(draft_seconds) if draft_seconds is not None else [0.0] * len(drafts)
        for state, spent in zip(states, seconds, strict=True):
            if self._drafting.pop(id(state), True):
                previous = self._draft_costs.get(id(state))
                self._draft_costs[id(state)] = spent if previous is None \
                    else previous + 0.2 * (spent - previous)
                self._pooled_draft_cost += 0.05 * (spent - self._pooled_draft_cost)
        depths = [tree.depths() for _, tree in drafts]
        deepest = max((max(d, default=0) for d in depths), default=0)
        if deepest == 0:
            self._pending = None
            return [0] * len(drafts)
        if self._coef is None:
            self._calibrate(batch, states)
        longest = max(state.session.cache_length for state in states)
        # nodes[b][d]: row b's nodes at depth <= d
        nodes = []
        for row in depths:
            counts = [0] * (max(row, default=0) + 1)
            for d in row:
                counts[d] += 1
            nodes.append(list(itertools.accumulate(counts)))
        # gains[b][d]: row b's tree cut to depth d
        gains = [self.gains(state, len(row) - 1) for state, row in zip(states, nodes,
                                                                        strict=True)]
        costs = [self._draft_cost(state) for state in states]
        rows = len(states)

        def rate_of(caps: list[int]) -> tuple[float, int]:
            width = 1 + max(row[cap] for row, cap in zip(nodes, caps, strict=True))
            tokens = rows + sum(g[cap] for g, cap in zip(gains, caps, strict=True))
            spent = sum(cost for cost, cap in zip(costs, caps, strict=True) if cap)
            return tokens / (self.pass_time(rows, width, longest) + self.overhead + spent), width

        best_caps: list[int] = [0] * rows
        best_rate, best_width = rate_of(best_caps)
        for width in sorted({1 + n for row in nodes for n in row[1:]}):
            caps = [bisect.bisect_right(row, width - 1) - 1 for row in nodes]
            rate, _ = rate_of(caps)
            # a row whose accepted tokens do not pay for its drafting time drafts nothing
            caps = [cap if gain[cap] >= rate * cost else 0
                    for cap, gain, cost in zip(caps, gains, costs, strict=True)]
            rate, used = rate_of(caps)
            if rate > best_rate:
                best_caps, best_rate, best_width = caps, rate, used
        if self._steps % self.explore_every == 0:
            best_caps = [min(cap + 1, len(row) - 1) for cap, row in zip(best_caps, nodes,
                                                                         strict=True)]
            best_width = 1 + max(row[cap] for cap, row in zip(best_caps, nodes, strict=True))
        for state, cap, row in zip(states, best_caps, nodes, strict=True):
            self._caps[id(state)] = cap
            if cap:
                self._skipped.pop(id(state), None)
            elif row[-1]:                          # it drafted, and the draft did not pay
                self._skipped.setdefault(id(state), 0)
        self._pending = (rows, best_width, longest)
        self.widths[best_width] += 1
        return best_caps

    def observe(self, drafts: Sequence[tuple[DecodeState, DraftTree]], pass_seconds: float,
                overhead_seconds: float) -> None:
        """Learns from a verified step: what each cut would have accepted, the pass's time,
        and the time the step spent outside its verification pass."""
        self._overhead_steps += 1
        weight = max(0.05, 1.0 / self._overhead_steps)
        self.overhead += weight * (overhead_seconds - self.overhead)
        if self._pending is not None:
            self.fit([(*self._pending, pass_seconds)])
            self._pending = None
        for state, tree in drafts:
            verified = min(self._caps.pop(id(state), 0), tree.depth())
            if not verified or not state.accepted_per_step:
                continue
            accepted = max(0, state.accepted_per_step[-1] - 1)
            mine = self._rows.setdefault(id(state), {})
            for level in range(1, min(accepted + 1, verified) + 1):   # levels it reached
                hit = float(accepted >= level)
                mine.setdefault(level, _Mean()).add(hit)
                self._pooled.setdefault(level, _Mean()).add(hit)

    def report(self) -> dict[str, Any]:
        """The fitted time model, the step overhead, the pooled gains and the widths chosen."""
        coef = [] if self._coef is None else [float(c) for c in self._coef]
        return {
            "pass_time": dict(zip(("seconds", "per_token", "per_key_read"), coef)),
            "overhead_seconds": self.overhead,
            "pooled_accept_rate": {level: self.accept_rate(None, level)
                                   for level in sorted(self._pooled)},
            "widths": dict(sorted(self.widths.items())),
        }


__all__ = ["BatchCostPolicy", "CALIBRATION_WIDTHS"]
