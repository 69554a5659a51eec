"""A draft model: a smaller causal LM sharing the target's tokenizer drafts a chain or a tree.

Classic speculative decoding ("Fast Inference from Transformers via Speculative Decoding",
Leviathan et al.; "Accelerating Large Language Model Decoding with Speculative Sampling",
Chen et al.): the draft model writes ``num_tokens`` tokens one forward pass each, with its own
KV cache kept in step with the target's accepted path; the target verifies them in one pass.

Keeping the caches in step costs nothing extra: the draft session keeps what it has scored, and
at the next call rolls back to the longest prefix it shares with the committed context and
scores the missing tokens (the accepted ones and the target's bonus token) in the same pass
that gives the first draft token.

Trees (``branches``): at depth ``i`` each node gets ``branches[i]`` children (the last entry
repeats), one draft-model pass per level scoring the whole tree so far. Greedy decoding takes
the draft model's top-``b`` tokens (deterministic candidates). Sampling draws them from the
draft model's distribution, warped by the same temperature / top-k / top-p as the target, and
records each node's draws as a :class:`~diagrammar.decoding.tree.Proposal` for the exact
sampling acceptance rules: ``sampling="iid"`` draws independently (a chain: Leviathan et al.;
a tree: SpecInfer's token tree from one small model), ``"without-replacement"`` draws distinct
tokens by the Gumbel top-k trick (Recursive Speculative Decoding's constant-branching tree),
and ``"sequences"`` draws ``branches[0]`` independent sequences, a node reached by ``m`` of them
getting ``m`` draws below it (SpecTr's k drafts).

Cost-aware drafting (``cost``): a draft model only pays when its accepted tokens outweigh its
own forward passes and the longer verification. With a
:class:`~diagrammar.decoding.cost.CostModel` of the target, the drafter measures online what
a drafted step costs (its own seconds, the nodes verified) and brings (draft tokens accepted),
and drafts nothing for a step when ``(1 + gain) / (t(nodes + 1) + draft seconds)`` is
predicted below ``1 / t(1)``; every ``EXPLORE_EVERY``-th skipped step drafts anyway to keep
the estimates current. On a GPU with a good draft model it drafts every step; with a weak
draft model on a CPU it falls back to the target alone.

Adaptive length (``stop_threshold``), the SpecDec++ idea ("SpecDec++: Boosting Speculative
Decoding via Adaptive Candidate Lengths") without its trained acceptance head: drafting stops
once the estimated probability that some token of the chain is rejected exceeds the threshold.
The per-token acceptance estimate is the draft model's own probability of its token, calibrated
on the fly: drafted tokens are binned by that probability and each bin's observed acceptance
(first rejection included, later tokens not) replaces the raw probability as evidence grows.

>>> import numpy as np
>>> calibration = AcceptanceCalibration(bins=4, prior_weight=2.0)
>>> round(calibration.estimate(0.9), 3)          # no evidence yet: the bin's centre
0.875
>>> for _ in range(8):
...     calibration.record(0.9, accepted=False)
>>> round(calibration.estimate(0.9), 3)          # overconfident draft: lowered
0.175
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.sampling import (
    draw_with_replacement,
    draw_without_replacement,
    sample_token,
    score_row,
    warp,
)
from diagrammar.decoding.scores import top_k_probabilities
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree, Proposal

__all__ = ["EXPLORE_EVERY", "AcceptanceCalibration", "DraftModelDrafter", "RunningMean",
           "SAMPLING_MODES"]


class AcceptanceCalibration:
    """Observed acceptance of draft tokens, binned by the draft model's own probability.

    Args:
        bins: equal-width probability bins on [0, 1].
        prior_weight: pseudo-observations at the bin's centre before any evidence.
    """

    def __init__(self, bins: int = 10, prior_weight: float = 4.0) -> None:
        if bins < 1:
            raise ValueError(f"bins must be at least 1, got {bins}")
        if prior_weight <= 0:
            raise ValueError(f"prior_weight must be positive, got {prior_weight}")
        self.bins = bins
        self.prior_weight = prior_weight
        self.drafted = [0] * bins
        self.accepted = [0] * bins

    def _bin(self, probability: float) -> int:
        return min(self.bins - 1, max(0, int(probability * self.bins)))

    def record(self, probability: float, accepted: bool) -> None:
        """Count one drafted token of draft probability ``probability``."""
        b = self._bin(probability)
        self.drafted[b] += 1
        self.accepted[b] += int(accepted)

    def estimate(self, probability: float) -> float:
        """The estimated chance that a token drafted with ``probability`` is accepted."""
        b = self._bin(probability)
        centre = (b + 0.5) / self.bins
        return (self.accepted[b] + self.prior_weight * centre) / (
            self.drafted[b] + self.prior_weight
        )


#: How a sampling draft model draws the children of a node (see the module docstring).
SAMPLING_MODES = ("iid", "without-replacement", "sequences")
#: A cost-aware draft model that skips drafting drafts anyway after this many skipped steps.
EXPLORE_EVERY = 16


class RunningMean:
    """A mean that forgets (each new value weighs ``1 - decay`` of the past), starting from a
    prior worth ``weight`` observations.

    >>> mean = RunningMean(prior=1.0, weight=2.0)
    >>> mean.value
    1.0
    >>> mean.add(4.0); round(mean.value, 3)     # (0.95 * 2 + 4) / (0.95 * 2 + 1)
    2.034
    """

    def __init__(self, prior: float, weight: float = 2.0, decay: float = 0.95) -> None:
        self.total, self.count, self.decay = prior * weight, weight, decay

    def add(self, value: float) -> None:
        self.total = self.total * self.decay + value
        self.count = self.count * self.decay + 1.0

    @property
    def value(self) -> float:
        return self.total / self.count


class DraftModelDrafter(BaseDrafter):
    """Drafts a chain or a tree with a draft language model (classic speculative decoding).

    Args:
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel` sharing the target's
            token ids (e.g. ``default:tiny`` for ``default:small``).
        num_tokens: the longest chain (the deepest tree).
        stop_threshold: stop drafting once the estimated probability that the chain holds a
            rejected token exceeds it (adaptive length; chains only); ``None`` drafts
            ``num_tokens`` always.
        branches: children per node at each depth (the last entry repeats); ``None`` is a
            chain.
        sampling: how a sampling generation draws children: ``"iid"``,
            ``"without-replacement"`` or ``"sequences"``.
        frozen: keep the calibration as it is (no updates: reproducible runs).
        cost: the target's verification cost model; with it, a step drafts only when that is
            predicted faster than not drafting (see the module docstring).

    Attributes:
        calibration: the draft-probability -> acceptance estimate (updated from every pass).
        forward_passes: draft-model forward passes so far (all generations).
    """

    def __init__(self, model: Any, num_tokens: int = 4,
                 stop_threshold: float | None = None,
                 branches: Sequence[int] | None = None, sampling: str = "iid",
                 frozen: bool = False, cost: CostModel | None = None) -> None:
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be at least 1, got {num_tokens}")
        if stop_threshold is not None and not 0.0 < stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must lie in (0, 1), got {stop_threshold}")
        if branches is not None and (not branches or any(b < 1 for b in branches)):
            raise ValueError(f"branches must be a non-empty list of counts >= 1, got {branches}")
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got "
                             f"{sampling!r}")
        if stop_threshold is not None and branches is not None:
            raise ValueError("an adaptive length (stop_threshold) applies to chains only")
        self.model = model
        self.num_tokens = num_tokens
        self.stop_threshold = stop_threshold
        self.branches = None if branches is None else tuple(int(b) for b in branches)
        self.sampling = sampling
        self.frozen = frozen
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a CostModel, got {type(cost).__name__}")
        self.cost = cost
        #: Online estimates of a drafted step: draft tokens accepted, nodes, drafter seconds.
        self.gain = RunningMean(prior=1.0)
        self.nodes = RunningMean(prior=float(num_tokens))
        self.seconds = RunningMean(prior=0.0, weight=1e-9)
        #: Steps drafted and skipped so far (cost-aware drafting).
        self.drafted_steps = self.skipped_steps = 0
        self._skipped_in_row = 0
        self._drafted_now = False
        self.calibration = AcceptanceCalibration()
        self.forward_passes = 0
        self._session: Any = None
        self._cached: list[int] = []  # the tokens the draft session's cache holds
        self._chain: list[tuple[int, float]] = []  # the last draft: (token, draft probability)

    def start(self, state: DecodeState) -> None:
        """Prefill the draft model on the prompt (its cache holds all but the last token)."""
        vocab = getattr(self.model, "vocab_size", None)
        if vocab is not None and state.tokens and max(state.tokens) >= vocab:
            raise ValueError(
                f"the draft model's vocabulary has {vocab} tokens but the prompt holds id "
                f"{max(state.tokens)}: a draft model must share the target's tokenizer")
        self.model.check_length(len(state.tokens), state.max_new_tokens)
        self._session = self.model.session(state.tokens)
        self._cached = list(state.tokens[:-1])
        self._chain = []

    def learns(self) -> bool:
        """An adaptive length (its calibration) and cost-aware drafting (its estimates) learn
        from the passes, unless frozen."""
        return (self.stop_threshold is not None or self.cost is not None) and not self.frozen

    def worth_drafting(self) -> bool:
        """Whether drafting this step is predicted faster than the target alone (always,
        without a cost model).

        >>> from diagrammar.decoding.cost import CostModel
        >>> drafter = DraftModelDrafter(None, cost=CostModel([1, 8], [1.0, 1.2]))
        >>> drafter.seconds.add(3.0); drafter.worth_drafting()    # drafting costs 3 steps
        False
        """
        cost = self.cost
        if cost is None or self._skipped_in_row >= EXPLORE_EVERY:
            return True
        drafted = (1.0 + self.gain.value) / (
            cost.time(max(1, round(self.nodes.value + 1))) + self.seconds.value
            + cost.overhead)
        return drafted > 1.0 / (cost.time(1) + cost.overhead)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the calibration (drafted and accepted counts per bin) to an ``.npz`` file."""
        np.savez(path, drafted=np.array(self.calibration.drafted, dtype=np.int64),
                 accepted=np.array(self.calibration.accepted, dtype=np.int64))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a calibration written by :meth:`save`.

        Raises:
            ValueError: the file holds another number of bins.
        """
        with np.load(path, allow_pickle=False) as data:
            if "drafted" not in data.files or len(data["drafted"]) != self.calibration.bins:
                raise ValueError(f"{path} holds no draft-model calibration of "
                                 f"{self.calibration.bins} bins")
            self.calibration.drafted = [int(n) for n in data["drafted"]]
            self.calibration.accepted = [int(n) for n in data["accepted"]]

    def _catch_up(self, state: DecodeState) -> Any:
        """Brings the draft cache to the committed tokens (rolling back where they part) and
        returns the draft model's scores after the last one (its cache then holds them all)."""
        session, tokens = self._session, state.tokens
        limit = min(len(self._cached), len(tokens) - 1)
        cached = self._cached
        common = limit
        if cached[:limit] != tokens[:limit]:  # a rollback: find where they part
            common = next(i for i in range(limit) if cached[i] != tokens[i])
        if common < session.cache_length:
            session.truncate(common)
        # Catch up on the committed tokens and score the first draft position in one pass.
        missing = tokens[common + 1:]
        scores = session.verify(tokens[common], missing, list(range(-1, len(missing) - 1)))
        session.keep(list(range(len(missing))))
        self.forward_passes += 1
        self._cached = list(tokens)
        return scores[-1:]

    def __call__(self, state: DecodeState) -> DraftTree:
        self._chain = []
        self._drafted_now = False
        wanted = min(self.num_tokens, state.draft_budget)
        if wanted == 0:
            return DraftTree()
        if not self.worth_drafting():
            self.skipped_steps += 1
            self._skipped_in_row += 1
            return DraftTree()
        began = time.perf_counter()
        tree = self._draft(state, wanted)
        if self.cost is not None and not self.frozen:
            self.seconds.add(time.perf_counter() - began)
            self.nodes.add(float(len(tree)))
        self.drafted_steps += 1
        self._skipped_in_row = 0
        self._drafted_now = True
        return tree

    def _draft(self, state: DecodeState, wanted: int) -> DraftTree:
        scores = self._catch_up(state)
        if self.branches is not None:
            return self._tree(state, scores, wanted)
        return self._chain_draft(state, scores, wanted)

    def _chain_draft(self, state: DecodeState, scores: Any, wanted: int) -> DraftTree:
        """A chain: the draft model's top token at each position when decoding greedily, else a
        draw from its warped distribution, recorded as a proposal."""
        tree, session = DraftTree(), self._session
        sampling = not state.config.greedy
        survival, parent = 1.0, -1
        for depth in range(wanted):
            if sampling:
                q = warp(score_row(scores, 0), state.config)
                token = sample_token(q, state.rng)
                probability = float(q[token])
                tree.propose(parent, Proposal(q, (token,)))
                parent = tree.child(parent, token)
                tree.probs[parent] = probability
            else:
                ids, probs = top_k_probabilities(scores, 1)
                token, probability = int(ids[0, 0]), float(probs[0, 0])
                parent = tree.add(parent, token, prob=probability)
            self._chain.append((token, probability))
            if self.stop_threshold is not None:
                survival *= self.calibration.estimate(probability)
                if 1.0 - survival > self.stop_threshold:
                    break
            if depth + 1 < wanted:
                scores = session.verify(token, [], [])
                session.keep([])
                self.forward_passes += 1
                self._cached.append(token)
        return tree

    def _children(self, state: DecodeState, tree: DraftTree, node: int, scores: Any, row: int,
                  count: int) -> list[tuple[int, int]]:
        """Adds ``count`` children (draws) below ``node``; returns (child, times drawn)."""
        config = state.config
        if config.greedy:
            ids, probs = top_k_probabilities(scores[row:row + 1], count)
            return [(tree.add(node, int(t), float(p)), 1) for t, p in zip(ids[0], probs[0])]
        q = warp(score_row(scores, row), config)
        if self.sampling == "without-replacement":
            draws = draw_without_replacement(q, count, state.rng)
        else:
            draws = draw_with_replacement(q, count, state.rng)
        tree.propose(node, Proposal(q, draws, replacement=self.sampling != "without-replacement"))
        children = []
        for token, times in Counter(draws).items():
            child = tree.child(node, token)
            tree.probs[child] = float(q[token])
            children.append((child, times))
        return children

    def _tree(self, state: DecodeState, scores: Any, wanted: int) -> DraftTree:
        """Level by level: one draft pass scores the whole tree so far (then is dropped)."""
        session, tokens = self._session, state.tokens
        session.truncate(session.cache_length - 1)  # the last token becomes the tree's root
        self._cached = list(tokens[:-1])
        branches = self.branches
        sequences = self.sampling == "sequences" and not state.config.greedy
        tree = DraftTree()
        frontier = [(-1, 0, branches[0])]  # (node, its scores row, draws below it)
        for depth in range(wanted):
            width = branches[min(depth, len(branches) - 1)]
            grown = []
            for node, row, times in frontier:
                count = times if sequences else width
                grown.extend(self._children(state, tree, node, scores, row, count))
            if depth + 1 == wanted or not grown:
                break
            scores = session.verify(tokens[-1], tree.tokens, tree.parents)
            session.truncate(session.cache_length)
            self.forward_passes += 1
            frontier = [(child, child + 1, times) for child, times in grown]
        return tree

    def observe(self, state: DecodeState, verification: Verification) -> None:
        """Calibrate: each chain token up to the first rejection, accepted or not; and, for
        cost-aware drafting, how many draft tokens a drafted step got accepted."""
        if self.frozen:
            return
        if self.cost is not None and self._drafted_now and verification.acceptance is not None:
            self.gain.add(float(len(verification.acceptance.path)))
        accepted = verification.acceptance.tokens if verification.acceptance else ()
        for depth, (token, probability) in enumerate(self._chain):
            if depth >= len(accepted):
                break
            hit = accepted[depth] == token
            self.calibration.record(probability, hit)
            if not hit:
                break
