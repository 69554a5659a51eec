"""Any drafter's tree cut to the size a cost model predicts fastest, with acceptance learned
online.

A fixed draft size is right on one machine and wrong on another: on a GPU a pass of 16 tokens
costs about one of 1, on this CPU about two. :class:`CostSizedDrafter` wraps a drafter (prompt
lookup, a merge of drafters, RASD, ...) and, every step, keeps the prefix of its tree that
maximises the predicted tokens per second ``(1 + g(m)) / (t(m + 1) + overhead)``
(:class:`~diagrammar.decoding.cost.CostModel`), where ``g(m)`` sums the estimated probabilities
that the first ``m`` nodes are accepted.

A node's probability of acceptance is the product, along its path, of *conditional*
acceptance rates: how often a node like it was accepted when its parent was. "Like it" is a
small key: its depth (capped), whether it is its parent's first child, and the drafter's own
probability of it (binned) when the drafter gives one — so a copy drafter's deep nodes, a
Token Recycling node of probability 0.9 and a second sibling each get their own rate. Rates
start at a neutral prior and are re-estimated from every verification pass (only drafted
nodes whose parent was accepted are evidence), and the time a step spends outside
verification is re-tuned from the time between calls, as for dynamic Token Recycling.

This is the drafting suite's "tree sized to what a verification pass costs on the machine at
hand" for drafters without a sizing of their own (DySpec's and Token Recycling's estimates
apply to their own trees only).

>>> from diagrammar.decoding.cost import CostModel
>>> from diagrammar.decoding.state import DecodeState
>>> from diagrammar.decoding.tree import DraftTree
>>> cost = CostModel([1, 2, 4, 8], [1.0, 1.0, 1.0, 4.0])   # up to 4 tokens cost one pass
>>> sized = CostSizedDrafter(lambda state: DraftTree.chain(range(1, 8)), cost)
>>> len(sized(DecodeState(None, [0], prompt_length=1, max_new_tokens=16)))
3
"""

from __future__ import annotations

import time
from typing import Any

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters.base import BaseDrafter, learns
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

__all__ = ["CostSizedDrafter", "node_keys"]

#: Depths beyond this share one acceptance rate.
MAX_KEY_DEPTH = 8
#: Bins of the drafter's own probability (nodes without one have their own key).
PROB_BINS = 5

Key = tuple[int, bool, int]


def node_keys(tree: DraftTree) -> list[Key]:
    """Each node's key: (depth capped at 8, first child of its parent, probability bin or -1).

    >>> tree = DraftTree.chain([5, 6])
    >>> _ = tree.add(-1, 7, prob=0.95)
    >>> node_keys(tree)
    [(1, True, -1), (2, True, -1), (1, False, 4)]
    """
    keys: list[Key] = []
    seen: set[int] = set()
    depths = tree.depths()
    for node, (parent, prob) in enumerate(zip(tree.parents, tree.probs)):
        first = parent not in seen
        seen.add(parent)
        bin_ = -1 if prob is None else min(PROB_BINS - 1, int(prob * PROB_BINS))
        keys.append((min(depths[node], MAX_KEY_DEPTH), first, bin_))
    return keys


class CostSizedDrafter(BaseDrafter):
    """Cuts another drafter's trees to the size a cost model predicts fastest.

    Args:
        drafter: any drafter (``state -> DraftTree``, with optional ``start``/``observe``).
        cost: the target's verification cost model on this machine.
        prior: the conditional acceptance rate assumed before any evidence.
        prior_weight: how many observations the prior counts as.
        frozen: keep the learned rates and overhead as they are.

    Attributes:
        accepted, drafted: per node key, the evidence so far.
    """

    def __init__(self, drafter: Any, cost: CostModel, prior: float = 0.5,
                 prior_weight: float = 2.0, frozen: bool = False) -> None:
        if not callable(drafter):
            raise TypeError(f"drafter must be a drafter (state -> DraftTree), got "
                            f"{type(drafter).__name__}")
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a CostModel, got {type(cost).__name__}")
        if not 0.0 < prior < 1.0 or prior_weight <= 0:
            raise ValueError(f"prior must lie in (0, 1) and prior_weight be positive, got "
                             f"{prior} and {prior_weight}")
        self.drafter, self.cost = drafter, cost
        self.prior, self.prior_weight, self.frozen = prior, prior_weight, frozen
        self.accepted: dict[Key, float] = {}
        self.drafted: dict[Key, float] = {}
        self._last: DraftTree | None = None
        self._last_call: float | None = None

    def parts(self) -> list[Any]:
        """The wrapped drafter."""
        return [self.drafter]

    def rate(self, key: Key) -> float:
        """The estimated chance that a node with ``key`` is accepted when its parent is."""
        return (self.accepted.get(key, 0.0) + self.prior * self.prior_weight) / (
            self.drafted.get(key, 0.0) + self.prior_weight)

    def start(self, state: DecodeState) -> None:
        start = getattr(self.drafter, "start", None)
        if start is not None:
            start(state)
        self._last_call = None   # the prefill between generations is no step
        self._last = None

    def __call__(self, state: DecodeState) -> DraftTree:
        now = time.perf_counter()
        if self._last_call is not None and self._last is not None and not self.frozen:
            self.cost.observe_step(len(self._last), now - self._last_call)
        self._last_call = now
        tree = self.drafter(state)
        self._last = tree = self._cut(tree) if len(tree) else tree
        return tree

    def _cut(self, tree: DraftTree) -> DraftTree:
        paths: list[float] = []
        for parent, key in zip(tree.parents, node_keys(tree)):
            paths.append((paths[parent] if parent >= 0 else 1.0) * self.rate(key))
        order = sorted(range(len(tree)), key=lambda node: (-paths[node], node))
        gains = [0.0]
        for node in order:
            gains.append(gains[-1] + paths[node])
        keep = self.cost.best_size(gains)
        if keep == len(tree):
            return tree
        kept = sorted(order[:keep])        # parents before children, as in the tree
        index = {-1: -1}
        cut = DraftTree()
        for node in kept:
            index[node] = cut.add(index[tree.parents[node]], tree.tokens[node],
                                  tree.probs[node])
        for parent, proposals in tree.proposals.items():
            if parent in index:
                cut.proposals[index[parent]] = list(proposals)
        return cut

    def learns(self) -> bool:
        return not self.frozen or learns(self.drafter)

    def observe(self, state: DecodeState, verification: Verification) -> None:
        observe = getattr(self.drafter, "observe", None)
        if observe is not None and learns(self.drafter):
            observe(state, verification)
        if self.frozen or verification.acceptance is None:
            return
        tree = verification.tree
        on_path = set(verification.acceptance.path)
        for node, (parent, key) in enumerate(zip(tree.parents, node_keys(tree))):
            if parent < 0 or parent in on_path:
                self.drafted[key] = self.drafted.get(key, 0.0) + 1.0
                self.accepted[key] = self.accepted.get(key, 0.0) + (node in on_path)
