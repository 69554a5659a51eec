"""The ``PredictSpeed`` functor: a step diagram becomes its predicted decoding speed.

A cost model of the target on this machine (the measured verification curve ``t(n)``, a
:class:`~diagrammar.decoding.cost.CostModel`) and what earlier runs observed of each box (an
:class:`AcceptanceProfile` per drafter box, seconds per step of the other boxes: a
:class:`StepProfile`) predict how fast a pipeline decodes, before it runs.

The functor maps every box to a :class:`StepCost`, an element of a commutative monoid (overhead
seconds, draft nodes, expected accepted draft tokens, verification passes, all added up):

* a drafter box to its profile's mean draft nodes, mean accepted tokens and mean seconds per
  step (``NoDraft``: nothing but its observed seconds);
* the verify box to one verification pass (its time comes from the cost model, not from
  observations);
* every other box (accept, commit, ...) to its observed seconds per step, or 0 when not
  observed; swaps to nothing.

Composition, sequential (``>>``) or parallel (``@``), maps to the sum, so a diagram's cost is
the sum of its boxes' costs. :meth:`PredictSpeed.evaluate` reads a cost out as a
:class:`SpeedPrediction`: a step takes ``passes * t(nodes + 1)`` plus the overhead seconds plus
the profile's time outside any box, and yields ``1 + accepted`` tokens (the bonus token
counted).

Merged drafters (``Merge``) with no profile of their own are combined from their parts'
profiles, conservatively: the union tree has at most the sum of the parts' nodes (shared
prefixes are verified once, so it may have fewer), and accepts at least as much as the best
part on average (the union holds every part's paths), so the merge gets the sum of nodes, the
largest of the mean accepted tokens, and the sum of seconds (the parts draft one after
another). A drafter box with neither a profile nor profiled parts raises
:class:`MissingProfileError`, unless a ``default`` profile is given to stand in for it.

>>> from diagrammar.decoding.cost import CostModel
>>> from diagrammar.diagrams import PromptLookup, autoregressive, speculative
>>> cost = CostModel([1, 2, 4, 8], [0.010, 0.011, 0.013, 0.020])
>>> lookup = speculative(PromptLookup())
>>> profile = StepProfile({"PromptLookup": AcceptanceProfile(nodes=3.0, accepted=1.5)})
>>> predict = PredictSpeed(cost, profile)
>>> fast = predict(lookup)
>>> round(fast.seconds_per_step, 6), fast.tokens_per_step, round(fast.tokens_per_second, 1)
(0.013, 2.5, 192.3)
>>> round(predict(autoregressive()).tokens_per_second, 1)       # 1 / t(1)
100.0
>>> round(fast.speedup_over(predict.no_draft()), 3)
1.923
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from discopy import symmetric

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.stats import DecodeStats
from diagrammar.diagrams.boxes import Merge, NoDraft, StepBox

__all__ = ["AcceptanceProfile", "MissingProfileError", "PredictSpeed", "SpeedPrediction",
           "StepCost", "StepProfile"]


class MissingProfileError(KeyError):
    """A drafter box has no observations to predict from (and no default profile was given)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class AcceptanceProfile:
    """What a drafter box was observed to do per decoding step.

    Attributes:
        nodes: mean draft nodes verified per step (the tree after pruning).
        accepted: mean draft tokens accepted per step, the bonus token not counted.
        seconds: mean seconds the box took per step.
        gains: optionally, ``gains[m]`` the expected accepted tokens when only the first ``m``
            nodes are verified (``gains[0] == 0``), for :meth:`PredictSpeed.best_nodes`.

    Raises:
        ValueError: negative figures, more accepted tokens than nodes, or gains that do not
            start at 0.

    >>> AcceptanceProfile(nodes=4.0, accepted=1.2, seconds=1e-4).accepted
    1.2
    >>> AcceptanceProfile(nodes=1.0, accepted=2.0)
    Traceback (most recent call last):
    ...
    ValueError: a drafter cannot accept more tokens (2.0) than it drafts (1.0)
    """

    nodes: float
    accepted: float
    seconds: float = 0.0
    gains: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if min(self.nodes, self.accepted, self.seconds) < 0:
            raise ValueError(f"profile figures must be non-negative, got nodes={self.nodes}, "
                             f"accepted={self.accepted}, seconds={self.seconds}")
        if self.accepted > self.nodes + 1e-9:
            raise ValueError(f"a drafter cannot accept more tokens ({self.accepted}) than it "
                             f"drafts ({self.nodes})")
        if self.gains is not None:
            object.__setattr__(self, "gains", tuple(float(g) for g in self.gains))
            if not self.gains or self.gains[0] != 0:
                raise ValueError("gains[0] (the expected accepted tokens of no node) must be 0")

    @classmethod
    def from_stats(cls, runs: Iterable[DecodeStats | Mapping[str, Any]],
                   box: str) -> AcceptanceProfile:
        """The profile of drafter box ``box`` from the statistics of decodes that ran it.

        Means are over all steps of all runs (a long run weighs more than a short one).

        Args:
            runs: :class:`~diagrammar.decoding.stats.DecodeStats`, or their ``as_dict()``.
            box: the drafter box's name (a key of the runs' ``box_seconds``; missing: 0 s).

        Raises:
            ValueError: no steps, or runs that did not record their draft nodes.

        >>> stats = DecodeStats(steps=4, new_tokens=10, prefill_seconds=0.1, decode_seconds=0.4,
        ...                     box_seconds={"PromptLookup": 0.02},
        ...                     draft_nodes_per_step=[5, 5, 3, 3])
        >>> AcceptanceProfile.from_stats([stats], "PromptLookup")
        AcceptanceProfile(nodes=4.0, accepted=1.5, seconds=0.005, gains=None)
        """
        totals = _Totals.of(runs)
        return cls(nodes=totals.nodes / totals.steps,
                   accepted=(totals.new_tokens - totals.steps) / totals.steps,
                   seconds=totals.box_seconds.get(box, 0.0) / totals.steps)


@dataclass(frozen=True)
class StepProfile:
    """Observations of a pipeline's boxes, per decoding step.

    Attributes:
        drafters: an :class:`AcceptanceProfile` per drafter box name.
        box_seconds: mean seconds per step of the other boxes, by box name (accept, commit,
            ...; a verify box's entry is ignored: the cost model predicts it).
        outside_seconds: mean seconds per step spent outside every box (the decode loop, and
            the prefill and call overhead amortised over the steps).

    >>> StepProfile({"NoDraft": AcceptanceProfile(0.0, 0.0)}, {"Commit": 1e-5}).outside_seconds
    0.0
    """

    drafters: Mapping[str, AcceptanceProfile] = field(default_factory=dict)
    box_seconds: Mapping[str, float] = field(default_factory=dict)
    outside_seconds: float = 0.0

    @classmethod
    def from_stats(cls, diagram: symmetric.Diagram,
                   runs: Sequence[DecodeStats | Mapping[str, Any]],
                   wall_seconds: Sequence[float] | None = None) -> StepProfile:
        """The profile of ``diagram``'s boxes from the statistics of decodes it ran.

        The step's acceptance is the drafter box's; the time not spent in any box goes to
        :attr:`outside_seconds`.

        Args:
            diagram: the step that ran.
            runs: its decodes' :class:`~diagrammar.decoding.stats.DecodeStats` (or
                ``as_dict()``).
            wall_seconds: the wall time of each run's whole call; by default its stats'
                prefill plus decode time.

        Raises:
            ValueError: more than one drafter box (merge them with ``|``), no steps, runs
                without draft node counts, or ``wall_seconds`` of another length.

        >>> from diagrammar.diagrams import PromptLookup, speculative
        >>> stats = DecodeStats(2, 6, 0.1, 0.3, {"PromptLookup": 0.02, "Verify": 0.2,
        ...                     "Commit": 0.04}, draft_nodes_per_step=[4, 4])
        >>> profile = StepProfile.from_stats(speculative(PromptLookup()), [stats])
        >>> profile.drafters["PromptLookup"].accepted, profile.box_seconds
        (2.0, {'GreedyAccept': 0.0, 'Commit': 0.02})
        >>> round(profile.outside_seconds, 6)     # (0.4 s - 0.26 s in boxes) / 2 steps
        0.07
        """
        boxes = [box for box in diagram.boxes if isinstance(box, StepBox)]
        drafters = [box for box in boxes if box.role == "drafter"]
        if len(drafters) > 1:
            raise ValueError("a step's acceptance cannot be split between drafter boxes "
                             f"{', '.join(repr(b.name) for b in drafters)}: merge them into one "
                             "with |")
        totals = _Totals.of(runs)
        walls = totals.seconds if wall_seconds is None else list(wall_seconds)
        if len(walls) != totals.runs:
            raise ValueError(f"{len(walls)} wall times for {totals.runs} runs")
        profiles = {box.name: AcceptanceProfile.from_stats(runs, box.name) for box in drafters}
        seconds = {box.name: totals.box_seconds.get(box.name, 0.0) / totals.steps
                   for box in boxes if box.role not in ("drafter", "verify")}
        outside = (sum(walls) - sum(totals.box_seconds.values())) / totals.steps
        return cls(profiles, seconds, max(0.0, outside))


@dataclass(frozen=True)
class StepCost:
    """What a box (or a diagram) adds to a step: the functor's values, added by ``+``.

    Attributes:
        seconds: overhead seconds outside verification.
        nodes: draft nodes verified.
        accepted: expected draft tokens accepted.
        passes: verification passes (one per verify box).

    >>> StepCost(seconds=0.1, nodes=2.0) + StepCost(passes=1) == StepCost(0.1, 2.0, 0.0, 1)
    True
    """

    seconds: float = 0.0
    nodes: float = 0.0
    accepted: float = 0.0
    passes: int = 0

    def __add__(self, other: StepCost) -> StepCost:
        return StepCost(self.seconds + other.seconds, self.nodes + other.nodes,
                        self.accepted + other.accepted, self.passes + other.passes)


@dataclass(frozen=True)
class SpeedPrediction:
    """A pipeline's predicted speed.

    Attributes:
        tokens_per_second: tokens per step over seconds per step.
        seconds_per_step: verification, box overheads and the time outside boxes.
        tokens_per_step: ``1 +`` the expected accepted draft tokens (the bonus token counted).
        nodes_per_step: draft nodes verified per step.

    >>> SpeedPrediction(50.0, 0.04, 2.0, 3.0).speedup_over(SpeedPrediction(25.0, 0.04, 1.0, 0.0))
    2.0
    """

    tokens_per_second: float
    seconds_per_step: float
    tokens_per_step: float
    nodes_per_step: float

    def speedup_over(self, baseline: SpeedPrediction) -> float:
        """How many times faster than ``baseline`` (e.g. :meth:`PredictSpeed.no_draft`)."""
        return self.tokens_per_second / baseline.tokens_per_second

    def as_dict(self) -> dict[str, float]:
        """The prediction as JSON data.

        >>> sorted(SpeedPrediction(1.0, 1.0, 1.0, 0.0).as_dict())
        ['nodes_per_step', 'seconds_per_step', 'tokens_per_second', 'tokens_per_step']
        """
        return asdict(self)


class PredictSpeed:
    """The functor from step diagrams to predicted speed (see the module's description).

    Args:
        cost: the target's verification cost model, or a measured cost curve
            (``measure_cost_curve``'s result). Its ``overhead`` is not added: the profile's
            box and outside seconds account for the time beyond verification.
        profile: what earlier runs observed; none: drafters need ``default``, and every other
            box costs 0 seconds.
        default: the profile of a drafter box that has none; ``None`` (the default): such a
            box raises :class:`MissingProfileError`.

    >>> from diagrammar.diagrams import PromptLookup, speculative
    >>> PredictSpeed(CostModel([1], [0.01]))(speculative(PromptLookup()))
    Traceback (most recent call last):
    ...
    diagrammar.functors.predict.MissingProfileError: no observations of drafter box \
'PromptLookup' to predict from (profiled: none): run it first (StepProfile.from_stats), or \
pass PredictSpeed(..., default=AcceptanceProfile(...))
    """

    def __init__(self, cost: CostModel | Mapping[str, Any], profile: StepProfile | None = None,
                 default: AcceptanceProfile | None = None) -> None:
        self.cost = cost if isinstance(cost, CostModel) else CostModel.from_curve(cost)
        self.profile = profile if profile is not None else StepProfile()
        self.default = default

    def drafter(self, box: StepBox) -> AcceptanceProfile:
        """The profile of a drafter box: its own, its parts' combined (a merge), or the default.

        >>> from diagrammar.diagrams import PromptLookup, TokenRecycling
        >>> profile = StepProfile({"PromptLookup": AcceptanceProfile(4.0, 2.0, 0.001),
        ...                        "TokenRecycling": AcceptanceProfile(8.0, 1.5, 0.002)})
        >>> merged = PredictSpeed(CostModel([1], [0.01]), profile).drafter(
        ...     PromptLookup() | TokenRecycling())
        >>> merged.nodes, merged.accepted, round(merged.seconds, 6)
        (12.0, 2.0, 0.003)

        Raises:
            MissingProfileError: no profile for the box (nor one of a merge's parts), and no
                default.
        """
        known = self.profile.drafters.get(box.name)
        if known is not None:
            return known
        if isinstance(box, NoDraft):
            return AcceptanceProfile(0.0, 0.0, self.profile.box_seconds.get(box.name, 0.0))
        if isinstance(box, Merge):
            parts = [self.drafter(part) for part in box.drafters]
            return AcceptanceProfile(nodes=sum(p.nodes for p in parts),
                                     accepted=max(p.accepted for p in parts),
                                     seconds=sum(p.seconds for p in parts))
        if self.default is not None:
            return self.default
        profiled = ", ".join(repr(name) for name in self.profile.drafters) or "none"
        raise MissingProfileError(
            f"no observations of drafter box {box.name!r} to predict from (profiled: "
            f"{profiled}): run it first (StepProfile.from_stats), or pass PredictSpeed(..., "
            "default=AcceptanceProfile(...))")

    def box(self, box: Any) -> StepCost:
        """The functor on one box.

        >>> from diagrammar.diagrams import Commit, Verify
        >>> observed = StepProfile(box_seconds={"Commit": 2e-4})
        >>> predict = PredictSpeed(CostModel([1], [0.01]), observed)
        >>> predict.box(Verify()), predict.box(Commit()).seconds
        (StepCost(seconds=0.0, nodes=0.0, accepted=0.0, passes=1), 0.0002)
        """
        if not isinstance(box, StepBox):
            return StepCost()                  # a swap: wiring, no time
        if box.role == "drafter":
            profile = self.drafter(box)
            return StepCost(profile.seconds, profile.nodes, profile.accepted)
        if box.role == "verify":
            return StepCost(passes=1)
        return StepCost(seconds=self.profile.box_seconds.get(box.name, 0.0))

    def cost_of(self, diagram: symmetric.Diagram) -> StepCost:
        """The functor on a diagram: the sum of its boxes' costs (the identity costs nothing).

        >>> from diagrammar.diagrams import Verify, Commit, GreedyAccept
        >>> PredictSpeed(CostModel([1], [0.01])).cost_of(Verify() >> GreedyAccept() >> Commit())
        StepCost(seconds=0.0, nodes=0.0, accepted=0.0, passes=1)
        """
        total = StepCost()
        for _left, box, _right in diagram.inside:
            total = total + self.box(box)
        return total

    def evaluate(self, cost: StepCost) -> SpeedPrediction:
        """Reads a step's cost out as its speed: every pass verifies the step's whole draft in
        ``t(nodes + 1)``; the profile's outside seconds are added once.

        Raises:
            ValueError: a step predicted to take no time (no pass, no overhead).

        >>> predict = PredictSpeed(CostModel([1, 2], [0.01, 0.012]))
        >>> predict.evaluate(StepCost(nodes=1.0, accepted=0.5, passes=1)).tokens_per_step
        1.5
        """
        verify = cost.passes * self.cost.time(cost.nodes + 1) if cost.passes else 0.0
        seconds = verify + cost.seconds + self.profile.outside_seconds
        if seconds <= 0:
            raise ValueError("this step is predicted to take no time: it has no verification "
                             "pass and no observed overhead")
        tokens = 1.0 + cost.accepted
        return SpeedPrediction(tokens / seconds, seconds, tokens, cost.nodes)

    def __call__(self, diagram: symmetric.Diagram) -> SpeedPrediction:
        """The predicted speed of a step diagram."""
        return self.evaluate(self.cost_of(diagram))

    def no_draft(self, overhead: float | None = None) -> SpeedPrediction:
        """The no-draft pipeline's speed: one token per ``t(1) + overhead``.

        Args:
            overhead: seconds per step beyond ``t(1)``; by default the profile's outside
                seconds.

        >>> PredictSpeed(CostModel([1], [0.02])).no_draft(overhead=0.005).tokens_per_second
        40.0
        """
        extra = self.profile.outside_seconds if overhead is None else overhead
        seconds = self.cost.time(1) + extra
        return SpeedPrediction(1.0 / seconds, seconds, 1.0, 0.0)

    def best_nodes(self, profile: AcceptanceProfile, overhead: float = 0.0) -> int:
        """The draft size the cost model predicts fastest for a drafter exposing its ``gains``
        (:meth:`CostModel.best_size`, with the drafter's seconds plus ``overhead`` per step).

        Raises:
            ValueError: the profile has no gains.

        >>> predict = PredictSpeed(CostModel([1, 2, 4, 8], [1.0, 1.1, 1.3, 2.0]))
        >>> predict.best_nodes(AcceptanceProfile(4, 1.9, gains=(0.0, 0.9, 1.5, 1.8, 1.9)))
        3
        """
        if profile.gains is None:
            raise ValueError("best_nodes needs the drafter's gains (expected accepted tokens "
                             "of its first m nodes)")
        cost = CostModel(self.cost.sizes, self.cost.seconds, overhead=overhead + profile.seconds)
        return cost.best_size(profile.gains)


@dataclass
class _Totals:
    """Sums over runs' statistics (DecodeStats or their ``as_dict()``)."""

    runs: int
    steps: int
    new_tokens: int
    nodes: float
    seconds: list[float]
    box_seconds: dict[str, float]

    @classmethod
    def of(cls, runs: Iterable[DecodeStats | Mapping[str, Any]]) -> _Totals:
        totals = cls(0, 0, 0, 0.0, [], {})
        for run in runs:
            data = run.as_dict() if isinstance(run, DecodeStats) else run
            mean_nodes = data.get("mean_draft_nodes")
            if mean_nodes is None and data["steps"]:
                raise ValueError("these decode statistics do not record draft nodes per step "
                                 "(DecodeStats.draft_nodes_per_step)")
            totals.runs += 1
            totals.steps += data["steps"]
            totals.new_tokens += data["new_tokens"]
            totals.nodes += (mean_nodes or 0.0) * data["steps"]
            totals.seconds.append(data["prefill_seconds"] + data["decode_seconds"])
            for name, seconds in data["box_seconds"].items():
                totals.box_seconds[name] = totals.box_seconds.get(name, 0.0) + seconds
        if not totals.steps:
            raise ValueError("no decoding steps to profile")
        return totals
