"""ADED: draft trees searched in an adaptive tri-gram model of the target.

The method of "Adaptive Draft-Verification for Efficient Large Language Model Decoding"
(Liu, Lei, Zhang and Xu, 2024).  Two parts:

* **A tri-gram representation of the target** (:class:`TrigramTable`): for each context of two
  tokens ``(a, b)``, a short list of likely next tokens with weights, read as the approximate
  next-token distribution ``q(. | a, b)``.  It adapts: every verification pass feeds it the
  target's own top-k distribution at every scored position and the tokens the step committed,
  and older evidence decays, so the table follows the target on the text being generated.
* **A draft search that balances exploration and exploitation** (:func:`search_draft`): a
  Monte Carlo tree search below the last committed token.  Each simulation descends by a
  PUCT score (value plus ``c * prior * sqrt(N_parent) / (1 + N_child)``), expands the leaf it
  reaches from the table, and backs the leaf's evaluation up the path, counting visits.  The
  draft tree is read from the search tree: the most visited nodes, then the most valuable.

Kept from the paper: the tri-gram matrix pruned to the top ``k`` next tokens per context (the
paper's released code prunes its corpus table to 12), the online adaptation from the target's
verified output, the MCTS draft construction with a prior-weighted UCB (PUCT) score, visit
counts, several simulations per draft and a tree read from the most visited branches.

Changed, for a CPU and for this framework:

* The corpus is optional.  The paper builds its table from a large text corpus before
  decoding; :meth:`AdedDrafter.seed` does the same from any token array (e.g. a retrieval
  datastore of the model's training corpus: :func:`corpus_arrays` counts its tri-grams and
  keeps the ``max_contexts`` most frequent contexts, each scaled to a few pseudo-counts so that
  the target's own evidence soon outweighs it).  Without one the table starts from the
  prompt's tri-grams at :meth:`AdedDrafter.start`.  Either way it learns online (and persists
  across generations with ``hot_start``; :meth:`AdedDrafter.save` / :meth:`AdedDrafter.load`
  carry it between runs).
* Sparse and bounded: a dict of contexts, each with at most ``top_k`` weighted next tokens
  (not a dense ``vocab^2 x vocab`` matrix), with a bigram table as the fallback for unseen
  contexts, and at most ``max_contexts`` contexts per table (the least recently updated ones
  are dropped first).
* Decay is explicit: each update of a context first multiplies its weights (and its total
  mass) by ``decay``; a context's probability of a token is its weight over the total mass,
  so the evidence pruned away still counts as "some other token" and probabilities sum to at
  most 1.
* The leaf evaluation is an optimistic bound rather than a sampled rollout: a chain's value is
  its expected number of accepted tokens under the table (the sum of its prefix probabilities),
  and an unexpanded node is valued at the most any chain through it could reach.  Values are
  backed up by maximum, so with exploration ``0`` the search is a best-first search that
  provably finds the chain of highest value once it has enough simulations (it stops early
  then); with exploration above ``0`` the prior term spreads visits over plausible siblings.
  The search is deterministic; no random numbers are drawn.
* Children per search node are capped by ``branching`` (the table may keep more candidates),
  and the tree depth by ``min(max_depth, state.draft_budget)``.

>>> from diagrammar.decoding.state import DecodeState
>>> state = DecodeState(None, [1, 2, 3, 1, 2], prompt_length=5, max_new_tokens=8,
...                     vocab_size=10)
>>> drafter = AdedDrafter(max_nodes=4, max_depth=3)
>>> drafter.start(state)                         # seeds the prompt's tri-grams
>>> drafter(state).tokens                        # after (1, 2): 3, then 1, then 2
[3, 1, 2]
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.scores import top_k_probabilities
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

__all__ = ["AdedDrafter", "SearchTree", "TrigramTable", "corpus_arrays", "search_draft"]

#: Written into saved tables; a file without it (or with another value) is refused.
FILE_FORMAT = "diagrammar.aded.trigram.v1"

Ranked = tuple[tuple[int, float], ...]


class _Context:
    """One context's next-token weights, their decayed total mass and a ranked-read cache."""

    __slots__ = ("weights", "total", "ranked")

    def __init__(self) -> None:
        self.weights: dict[int, float] = {}
        self.total = 0.0
        self.ranked: Ranked | None = None

    def add(self, tokens: Sequence[int], weights: Sequence[float], mass: float, decay: float,
            top_k: int) -> None:
        held = self.weights
        if decay != 1.0:
            for token in held:
                held[token] *= decay
        self.total = self.total * decay + mass
        for token, weight in zip(tokens, weights):
            if weight > 0.0:
                held[token] = held.get(token, 0.0) + weight
        if len(held) > top_k:
            self.weights = dict(sorted(held.items(), key=_heaviest_first)[:top_k])
        self.ranked = None

    def rank(self) -> Ranked:
        ranked = self.ranked
        if ranked is None:
            total = self.total
            ranked = tuple((token, weight / total) for token, weight
                           in sorted(self.weights.items(), key=_heaviest_first)) if total else ()
            self.ranked = ranked
        return ranked


def _heaviest_first(item: tuple[int, float]) -> tuple[float, int]:
    return -item[1], item[0]


class TrigramTable:
    """A sparse, decaying tri-gram model ``q(next | a, b)`` with a bigram fallback ``q(next | b)``.

    Every update of a context ``(a, b)`` with evidence ``(tokens, weights, mass)`` multiplies
    the context's weights and total mass by ``decay``, then adds ``weights`` to ``tokens`` and
    ``mass`` to the total; only the ``top_k`` heaviest tokens are kept (ties: the smaller id).
    The same evidence updates the bigram context ``b``.  ``q`` is weight over total mass.

    Args:
        top_k: next tokens kept per context, at least 1.
        decay: factor applied to a context's old evidence at each of its updates, in (0, 1].
        max_contexts: contexts kept per table (tri-gram, bigram); the least recently updated
            go first.

    Example:
        >>> table = TrigramTable(top_k=2, decay=0.5)
        >>> table.record([4, 5, 6, 4, 5, 7])     # tri-grams (4,5)->6, (5,6)->4, (6,4)->5, (4,5)->7
        >>> table.ranked(4, 5)                   # (4,5)->6 decayed once before 7 arrived
        ((7, 0.6666666666666666), (6, 0.3333333333333333))
        >>> table.ranked(9, 5) == table.ranked(-1, 5)   # unseen (9, 5): the bigram of 5
        True
    """

    def __init__(self, top_k: int = 12, decay: float = 0.9, max_contexts: int = 1 << 15) -> None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must lie in (0, 1], got {decay!r}")
        if isinstance(max_contexts, bool) or not isinstance(max_contexts, int) or max_contexts < 1:
            raise ValueError(f"max_contexts must be an integer >= 1, got {max_contexts!r}")
        self.top_k = top_k
        self.decay = float(decay)
        self.max_contexts = max_contexts
        self.trigrams: dict[tuple[int, int], _Context] = {}
        self.bigrams: dict[int, _Context] = {}

    def __len__(self) -> int:
        """Contexts held, tri-gram and bigram."""
        return len(self.trigrams) + len(self.bigrams)

    def clear(self) -> None:
        """Forget every context.

        Example:
            >>> table = TrigramTable()
            >>> table.record([1, 2, 3]); table.clear(); len(table)
            0
        """
        self.trigrams.clear()
        self.bigrams.clear()

    def update(self, previous: int, token: int, next_tokens: Sequence[int],
               weights: Sequence[float], mass: float | None = None) -> None:
        """Add evidence that ``next_tokens`` follow ``(previous, token)`` with ``weights``.

        Args:
            previous: the token before ``token``; negative when there is none (then only the
                bigram context of ``token`` is updated).
            token: the last token of the context.
            next_tokens: the tokens seen next (repeats add up).
            weights: their weights (non-positive ones are skipped).
            mass: the evidence's total mass (default ``sum(weights)``): more than the weights
                when the evidence is a distribution only partly listed.

        Example:
            >>> table = TrigramTable()
            >>> table.update(1, 2, [3, 4], [0.5, 0.25], mass=1.0)
            >>> table.ranked(1, 2)
            ((3, 0.5), (4, 0.25))
        """
        total = float(sum(weights)) if mass is None else float(mass)
        if previous >= 0:
            self._context(self.trigrams, (previous, token)).add(
                next_tokens, weights, total, self.decay, self.top_k)
        self._context(self.bigrams, token).add(next_tokens, weights, total, self.decay,
                                               self.top_k)

    def _context(self, table: dict, key: object) -> _Context:
        """``key``'s context, moved to the most recent end (created, evicting, if missing)."""
        context = table.pop(key, None)
        if context is None:
            context = _Context()
            if len(table) >= self.max_contexts:
                del table[next(iter(table))]
        table[key] = context
        return context

    def record(self, tokens: Sequence[int], weight: float = 1.0) -> None:
        """Count every tri-gram (and the leading bigram) of a token sequence, in order.

        Example:
            >>> table = TrigramTable()
            >>> table.record([1, 2, 3])
            >>> table.weights(1, 2), table.weights(-1, 1)
            ({3: 1.0}, {2: 1.0})
        """
        if weight <= 0.0:
            return
        for i in range(1, len(tokens)):
            previous = tokens[i - 2] if i >= 2 else -1
            self.update(previous, tokens[i - 1], (tokens[i],), (weight,), weight)

    def ranked(self, previous: int, token: int) -> Ranked:
        """``(next token, q)`` pairs after ``(previous, token)``, most likely first.

        The tri-gram context when it is held (and ``previous >= 0``), else the bigram context
        of ``token``, else ``()``.

        Example:
            >>> table = TrigramTable()
            >>> table.record([1, 2, 3, 1, 2, 3, 5, 2, 4])
            >>> table.ranked(1, 2), table.ranked(5, 2), table.ranked(0, 9)
            (((3, 1.0),), ((4, 1.0),), ())
            >>> [(t, round(q, 3)) for t, q in table.ranked(-1, 2)]   # the bigram of 2
            [(3, 0.631), (4, 0.369)]
        """
        context = self.trigrams.get((previous, token)) if previous >= 0 else None
        if context is None:
            context = self.bigrams.get(token)
            if context is None:
                return ()
        return context.rank()

    def weights(self, previous: int, token: int) -> dict[int, float]:
        """A copy of the raw weights of context ``(previous, token)`` (bigram ``token`` when
        ``previous`` is negative); ``{}`` when unseen.  No fallback.

        Example:
            >>> table = TrigramTable(decay=0.5)
            >>> table.record([1, 2, 3, 1, 2, 4])
            >>> table.weights(1, 2), table.weights(9, 2)
            ({3: 0.5, 4: 1.0}, {})
        """
        context = self._held(previous, token)
        return dict(context.weights) if context is not None else {}

    def total(self, previous: int, token: int) -> float:
        """The decayed total mass of a context (as :meth:`weights` picks it); 0 when unseen.

        Example:
            >>> table = TrigramTable(decay=0.5)
            >>> table.update(1, 2, [3], [0.5], mass=1.0); table.update(1, 2, [3], [0.5], mass=1.0)
            >>> table.total(1, 2), table.weights(1, 2)
            (1.5, {3: 0.75})
        """
        context = self._held(previous, token)
        return context.total if context is not None else 0.0

    def _held(self, previous: int, token: int) -> _Context | None:
        if previous >= 0:
            return self.trigrams.get((previous, token))
        return self.bigrams.get(token)

    # ------------------------------------------------------------------ packing

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The table as arrays (contexts in least-to-most recently updated order).

        Keys: ``trigram_keys`` ``(n, 2)`` and ``bigram_keys`` ``(m,)`` (``int64``), and per
        table ``*_totals`` (``float64``), ``*_ids`` (``int64``, ``-1`` = empty slot) and
        ``*_weights`` (``float64``), the last two of width ``top_k``.

        Example:
            >>> table = TrigramTable(top_k=2)
            >>> table.record([1, 2, 3])
            >>> arrays = table.to_arrays()
            >>> arrays["trigram_keys"].tolist(), arrays["trigram_ids"].tolist()
            ([[1, 2]], [[3, -1]])
        """
        arrays: dict[str, np.ndarray] = {}
        for name, table in (("trigram", self.trigrams), ("bigram", self.bigrams)):
            keys = list(table)
            ids = np.full((len(keys), self.top_k), -1, dtype=np.int64)
            weights = np.zeros((len(keys), self.top_k), dtype=np.float64)
            totals = np.zeros(len(keys), dtype=np.float64)
            for row, context in enumerate(table.values()):
                totals[row] = context.total
                held = list(context.weights.items())
                if held:
                    ids[row, : len(held)] = [token for token, _ in held]
                    weights[row, : len(held)] = [weight for _, weight in held]
            shape = (len(keys), 2) if name == "trigram" else (len(keys),)
            arrays[f"{name}_keys"] = np.array(keys, dtype=np.int64).reshape(shape)
            arrays[f"{name}_totals"] = totals
            arrays[f"{name}_ids"] = ids
            arrays[f"{name}_weights"] = weights
        return arrays

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Replace the contents with arrays written by :meth:`to_arrays` (same ``top_k``).

        Raises:
            ValueError: arrays missing, or of a width other than ``top_k``.

        Example:
            >>> table, copy = TrigramTable(top_k=2), TrigramTable(top_k=2)
            >>> table.record([1, 2, 3, 1, 2, 4])
            >>> copy.load_arrays(table.to_arrays())
            >>> copy.ranked(1, 2) == table.ranked(1, 2)
            True
        """
        loaded: dict[str, dict] = {}
        for name in ("trigram", "bigram"):
            try:
                keys, totals = arrays[f"{name}_keys"], arrays[f"{name}_totals"]
                ids, weights = arrays[f"{name}_ids"], arrays[f"{name}_weights"]
            except KeyError as missing:
                raise ValueError(f"not an ADED tri-gram table: no array {missing}") from None
            if ids.shape[1:] != (self.top_k,) or weights.shape != ids.shape:
                raise ValueError(f"the table holds {ids.shape[-1]} next tokens per "
                                 f"context, not top_k={self.top_k}")
            table: dict = {}
            for key, total, row_ids, row_weights in zip(keys.tolist(), totals.tolist(),
                                                        ids.tolist(), weights.tolist()):
                context = _Context()
                context.total = total
                context.weights = {t: w for t, w in zip(row_ids, row_weights) if t >= 0}
                table[tuple(key) if name == "trigram" else key] = context
            while len(table) > self.max_contexts:
                del table[next(iter(table))]
            loaded[name] = table
        self.trigrams, self.bigrams = loaded["trigram"], loaded["bigram"]

    def memory_bytes(self) -> int:
        """Bytes of the table in its packed form (:meth:`to_arrays`, what a save writes):
        per context its key, total, and ``top_k`` ids and weights.  The live Python dicts
        take several times more (about 1.5 kB per context at ``top_k = 12``, so some 50 MB
        for the default ``max_contexts`` when full).

        Example:
            >>> table = TrigramTable(top_k=2)
            >>> table.record([1, 2, 3])                  # 1 tri-gram, 2 bigram contexts
            >>> table.memory_bytes() == (16 + 8 + 32) + 2 * (8 + 8 + 32)
            True
        """
        row = 8 + 16 * self.top_k
        return len(self.trigrams) * (row + 16) + len(self.bigrams) * (row + 8)


@dataclass(slots=True)
class SearchTree:
    """The search tree of one draft: node 0 is the root (the last committed token).

    Per node: ``tokens``, ``parents`` (``-1`` for the root), ``depths`` (root 0), ``priors``
    (the table's ``q`` of the token given its two predecessors), ``prefixes`` (the product of
    priors from the root: the chance the whole path is accepted, by the table), ``gains``
    (the sum of the prefixes along the path: the chain's expected accepted tokens), ``values``
    (an upper bound of the best chain gain through the node, exact once solved), ``visits``
    and ``children`` (``None`` until expanded).

    Example:
        >>> table = TrigramTable()
        >>> table.record([1, 2, 3])
        >>> found = search_draft(table, 1, 2, depth_limit=2)
        >>> found.tokens, found.parents, found.priors, found.children
        ([2, 3], [-1, 0], [1.0, 1.0], [[1], []])
    """

    tokens: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    priors: list[float] = field(default_factory=list)
    prefixes: list[float] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    children: list[list[int] | None] = field(default_factory=list)
    simulations: int = 0

    def best_path(self) -> list[int]:
        """Tokens of the chain followed by highest value from the root (first child on ties).

        Example:
            >>> table = TrigramTable()
            >>> table.record([1, 2, 3, 4])
            >>> search_draft(table, 1, 2, depth_limit=3).best_path()
            [3, 4]
        """
        path: list[int] = []
        node = 0
        while self.children[node]:
            kids = self.children[node]
            node = max(kids, key=lambda kid: (self.values[kid], -kids.index(kid)))
            path.append(self.tokens[node])
        return path

    def draft(self, max_nodes: int) -> DraftTree:
        """The draft: the ``max_nodes`` nodes with the most visits, then the highest value.

        A parent has at least its child's visits and value, so ordering by ``(visits, value,
        shallower first)`` keeps every node's parent in the draft.  Each node's ``prob`` is
        its prior.

        Example:
            >>> table = TrigramTable()
            >>> table.record([1, 2, 3, 1, 2, 5])
            >>> search_draft(table, 1, 2, depth_limit=2).draft(2).tokens   # 3 -> 1 beats 5
            [3, 1]
        """
        tree = DraftTree()
        ranked = heapq.nsmallest(
            max_nodes, range(1, len(self.tokens)),
            key=lambda n: (-self.visits[n], -self.values[n], self.depths[n], n))
        mapping = {0: -1}
        for node in ranked:
            mapping[node] = tree.add(mapping[self.parents[node]], self.tokens[node],
                                     self.priors[node])
        return tree


def search_draft(table: TrigramTable, previous: int, root: int, depth_limit: int,
                 simulations: int = 32, exploration: float = 0.5,
                 branching: int = 4) -> SearchTree:
    """MCTS below ``root`` (preceded by ``previous``; negative when none) in ``table``.

    Each simulation descends from the root by the PUCT score ``value + exploration * prior *
    sqrt(visits(parent)) / (1 + visits(child))`` (first child on ties; children are in the
    table's rank order) until it reaches an unexpanded node, expands it with the table's top
    ``branching`` next tokens (none at ``depth_limit``), and backs up visits and values.  A
    node's value is the largest gain any chain through it may reach: an unexpanded node's
    bound is ``gain + prefix * (depth_limit - depth)``, an expanded one's the maximum over
    its children (its own gain when it has none).  With ``exploration == 0`` a simulation that
    reaches a solved leaf proves it optimal and the search stops.

    Example:
        >>> table = TrigramTable()
        >>> table.record([7, 8, 9, 7, 8, 9])
        >>> found = search_draft(table, 8, 9, depth_limit=3, exploration=0.0)
        >>> found.best_path(), found.simulations
        ([7, 8, 9], 4)
    """
    found = SearchTree([root], [-1], [0], [1.0], [1.0], [0.0], [float(depth_limit)], [0], [None])
    if depth_limit <= 0:
        found.children[0] = []
        return found
    values, visits, children = found.values, found.visits, found.children
    scale = float(exploration)
    path: list[int] = []
    for _ in range(simulations):
        node = 0
        path.clear()
        path.append(0)
        while True:
            kids = children[node]
            if kids is None:
                _expand(found, table, node, previous, depth_limit, branching)
                expanded = True
                break
            if not kids:
                expanded = False
                break
            node = _select(kids, values, found.priors, visits, scale * math.sqrt(visits[node]))
            path.append(node)
        _back_up(found, path)
        found.simulations += 1
        if not children[0] or (not expanded and scale == 0.0):
            break
    return found


def _select(kids: list[int], values: list[float], priors: list[float], visits: list[int],
            spread: float) -> int:
    """The child with the highest PUCT score (the first on ties)."""
    best, best_score = kids[0], -1.0
    for kid in kids:
        score = values[kid] + spread * priors[kid] / (1 + visits[kid])
        if score > best_score:
            best, best_score = kid, score
    return best


def _expand(found: SearchTree, table: TrigramTable, node: int, previous: int,
            depth_limit: int, branching: int) -> None:
    """Create ``node``'s children from the table (none at the depth limit)."""
    depth = found.depths[node] + 1
    kids: list[int] = []
    found.children[node] = kids
    if depth > depth_limit:
        return
    parent = found.parents[node]
    before = found.tokens[parent] if parent >= 0 else previous
    prefix, gain, left = found.prefixes[node], found.gains[node], depth_limit - depth
    for token, prior in table.ranked(before, found.tokens[node])[:branching]:
        child_prefix = prefix * prior
        child_gain = gain + child_prefix
        kids.append(len(found.tokens))
        found.tokens.append(token)
        found.parents.append(node)
        found.depths.append(depth)
        found.priors.append(prior)
        found.prefixes.append(child_prefix)
        found.gains.append(child_gain)
        found.values.append(child_gain + child_prefix * left)
        found.visits.append(0)
        found.children.append([] if left == 0 else None)  # at the limit: a solved leaf


def _back_up(found: SearchTree, path: list[int]) -> None:
    """Count a visit on every node of ``path`` and refresh their values, deepest first."""
    values, visits, children, gains = found.values, found.visits, found.children, found.gains
    for node in reversed(path):
        visits[node] += 1
        kids = children[node]
        values[node] = max([values[kid] for kid in kids]) if kids else gains[node]


def _counted(contexts: np.ndarray, following: np.ndarray, top_k: int, max_contexts: int,
             pseudo_counts: float) -> tuple[np.ndarray, ...]:
    """Per context (the most frequent ``max_contexts``, rarest first): its ``top_k`` most
    frequent next tokens and their weights, the context total scaled to ``pseudo_counts``."""
    if not len(following):
        return (np.zeros(0, dtype=np.int64), np.zeros(0), np.full((0, top_k), -1, np.int64),
                np.zeros((0, top_k)))
    span = int(following.max()) + 1
    pairs, counts = np.unique(contexts * span + following, return_counts=True)
    context, token = pairs // span, pairs % span
    order = np.lexsort((token, -counts, context))     # by context, most frequent next first
    context, token, counts = context[order], token[order], counts[order]
    starts = np.flatnonzero(np.r_[True, context[1:] != context[:-1]])
    totals = np.add.reduceat(counts, starts).astype(np.float64)
    rank = np.arange(len(context)) - np.repeat(starts, np.diff(np.r_[starts, len(context)]))
    keep = np.argsort(totals, kind="stable")[-max_contexts:]           # rarest first
    row_of = np.full(len(starts), -1)
    row_of[keep] = np.arange(len(keep))
    rows = row_of[np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(context)]))]
    scale = np.minimum(1.0, pseudo_counts / totals[keep])
    ids = np.full((len(keep), top_k), -1, dtype=np.int64)
    weights = np.zeros((len(keep), top_k), dtype=np.float64)
    listed = (rows >= 0) & (rank < top_k)
    ids[rows[listed], rank[listed]] = token[listed]
    weights[rows[listed], rank[listed]] = counts[listed] * scale[rows[listed]]
    return context[starts[keep]], totals[keep] * scale, ids, weights


def corpus_arrays(tokens: np.ndarray, top_k: int = 12, max_contexts: int = 1 << 15,
                  pseudo_counts: float = 4.0) -> dict[str, np.ndarray]:
    """A tri-gram table counted from a corpus, in :meth:`TrigramTable.to_arrays`' format.

    Args:
        tokens: token ids; negative ids (document separators) break the n-grams.
        top_k: next tokens kept per context.
        max_contexts: the most frequent contexts kept, per table (tri-gram, bigram).
        pseudo_counts: a context's total evidence is scaled down to at most this, so that
            the target's own distributions (mass 1 per pass) soon count as much.

    Example:
        >>> arrays = corpus_arrays(np.array([1, 2, 3, -1, 1, 2, 3, 1, 2, 4]), top_k=2)
        >>> table = TrigramTable(top_k=2)
        >>> table.load_arrays(arrays)
        >>> [(t, round(q, 3)) for t, q in table.ranked(1, 2)]
        [(3, 0.667), (4, 0.333)]
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    a, b, c = tokens[:-2], tokens[1:-1], tokens[2:]
    whole = (a >= 0) & (b >= 0) & (c >= 0)
    span = max(1, int(tokens.max()) + 1) if len(tokens) else 1
    keys, totals, ids, weights = _counted(a[whole] * span + b[whole], c[whole], top_k,
                                          max_contexts, pseudo_counts)
    arrays = {"trigram_keys": np.stack([keys // span, keys % span], axis=1).reshape(-1, 2),
              "trigram_totals": totals, "trigram_ids": ids, "trigram_weights": weights}
    pair = (tokens[:-1] >= 0) & (tokens[1:] >= 0)
    keys, totals, ids, weights = _counted(tokens[:-1][pair], tokens[1:][pair], top_k,
                                          max_contexts, pseudo_counts)
    arrays.update(bigram_keys=keys, bigram_totals=totals, bigram_ids=ids,
                  bigram_weights=weights)
    return arrays


class AdedDrafter(BaseDrafter):
    """Drafts a tree by MCTS in an adaptive tri-gram model of the target (ADED).

    Args:
        top_k: next tokens kept per tri-gram context (the paper keeps 12).
        decay: weight kept by a context's old evidence at each of its updates, in (0, 1]
            (1 = plain counting).
        simulations: search simulations per draft, at least 1.
        exploration: the PUCT exploration constant ``c``, at least 0 (0 = pure best-first).
        max_nodes: nodes per draft tree, at least 0.
        max_depth: draft depth, at least 1 (also capped by the generation budget left).
        branching: children per search node, at least 1 (at most ``top_k`` are known).
        commit_weight: weight of the committed tokens (and of the prompt's tri-grams), next to
            the target's top-k distribution (weight 1) at every scored position; at least 0.
        max_contexts: contexts kept per table (tri-gram, bigram), at least 1.
        hot_start: keep the table from one generation to the next; ``False`` clears it at
            every :meth:`start`.
        frozen: never update the table (not even from the prompt): reproducible runs, e.g.
            after :meth:`load`.

    Attributes:
        table: the :class:`TrigramTable`.

    Example:
        >>> AdedDrafter(max_nodes=8).learns(), AdedDrafter(frozen=True).learns()
        (True, False)
    """

    def __init__(
        self,
        top_k: int = 12,
        decay: float = 0.9,
        simulations: int = 32,
        exploration: float = 0.5,
        max_nodes: int = 16,
        max_depth: int = 6,
        branching: int = 4,
        commit_weight: float = 1.0,
        max_contexts: int = 1 << 15,
        hot_start: bool = True,
        frozen: bool = False,
    ) -> None:
        _check_count("simulations", simulations, 1)
        _check_count("max_nodes", max_nodes, 0)
        _check_count("max_depth", max_depth, 1)
        _check_count("branching", branching, 1)
        if not exploration >= 0.0 or math.isinf(exploration):
            raise ValueError(f"exploration must be a finite number >= 0, got {exploration!r}")
        if not commit_weight >= 0.0 or math.isinf(commit_weight):
            raise ValueError(f"commit_weight must be a finite number >= 0, got {commit_weight!r}")
        self.table = TrigramTable(top_k, decay, max_contexts)
        self.top_k = top_k
        self.simulations = simulations
        self.exploration = float(exploration)
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.branching = branching
        self.commit_weight = float(commit_weight)
        self.hot_start = hot_start
        self.frozen = frozen
        self._seed: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ table

    def seed(self, tokens: np.ndarray, pseudo_counts: float = 4.0) -> None:
        """Start the table from a corpus's tri-grams (:func:`corpus_arrays`), as the paper
        does; :meth:`reset` returns to this seed.

        Example:
            >>> drafter = AdedDrafter(top_k=2)
            >>> drafter.seed(np.array([7, 8, 9, 7, 8, 9]))
            >>> drafter.candidates(7, 8)
            [(9, 1.0)]
        """
        self._seed = corpus_arrays(tokens, self.top_k, self.table.max_contexts, pseudo_counts)
        self.table.load_arrays(self._seed)

    def reset(self) -> None:
        """Forget what was learned: back to the corpus seed, or to an empty table.

        Example:
            >>> drafter = AdedDrafter()
            >>> drafter.table.record([1, 2, 3]); drafter.reset(); len(drafter.table)
            0
        """
        self.table.clear()
        if self._seed is not None:
            self.table.load_arrays(self._seed)

    def memory_bytes(self) -> int:
        """Bytes of the table in packed form (see :meth:`TrigramTable.memory_bytes`).

        Example:
            >>> AdedDrafter().memory_bytes()
            0
        """
        return self.table.memory_bytes()

    def candidates(self, previous: int, token: int) -> list[tuple[int, float]]:
        """The table's ``(next token, probability)`` pairs after ``(previous, token)``.

        Example:
            >>> drafter = AdedDrafter()
            >>> drafter.table.record([1, 2, 3])
            >>> drafter.candidates(1, 2)
            [(3, 1.0)]
        """
        return list(self.table.ranked(previous, token))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table to an ``.npz`` file (with its format tag and ``top_k``).

        Example:
            >>> import os, tempfile
            >>> drafter, again = AdedDrafter(), AdedDrafter()
            >>> drafter.table.record([1, 2, 3])
            >>> path = os.path.join(tempfile.mkdtemp(), "aded.npz")
            >>> drafter.save(path); again.load(path); again.candidates(1, 2)
            [(3, 1.0)]
        """
        np.savez(path, format=np.array(FILE_FORMAT), top_k=np.int64(self.top_k),
                 **self.table.to_arrays())

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the table with one written by :meth:`save`.

        Raises:
            ValueError: the file is no ADED table, or was written with another ``top_k``.

        Example:
            >>> import os, tempfile
            >>> path = os.path.join(tempfile.mkdtemp(), "aded.npz")
            >>> AdedDrafter(top_k=4).save(path)
            >>> AdedDrafter(top_k=8).load(path)
            Traceback (most recent call last):
            ...
            ValueError: ... holds a table for top_k=4, not top_k=8
        """
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) != FILE_FORMAT:
                raise ValueError(f"{path} is not an ADED table file (no {FILE_FORMAT!r} tag)")
            saved_k = int(data["top_k"])
            if saved_k != self.top_k:
                raise ValueError(f"{path} holds a table for top_k={saved_k}, "
                                 f"not top_k={self.top_k}")
            self.table.load_arrays({name: data[name] for name in data.files})

    # ------------------------------------------------------------------ drafter protocol

    def start(self, state: DecodeState) -> None:
        """Clear the table unless ``hot_start``; then count the prompt's tri-grams.

        Example:
            >>> from diagrammar.decoding.state import DecodeState
            >>> drafter = AdedDrafter()
            >>> drafter.start(DecodeState(None, [4, 5, 6], prompt_length=3, max_new_tokens=2))
            >>> drafter.candidates(4, 5)
            [(6, 1.0)]
        """
        if not self.hot_start:
            self.reset()
        if not self.frozen:
            self.table.record(state.tokens[: state.prompt_length], self.commit_weight)

    def learns(self) -> bool:
        """Whether verification passes update the table (not when ``frozen``).

        Example:
            >>> AdedDrafter(frozen=True).learns()
            False
        """
        return not self.frozen

    def __call__(self, state: DecodeState) -> DraftTree:
        """Search below the last committed token and return the draft tree.

        Example:
            >>> from diagrammar.decoding.state import DecodeState
            >>> drafter = AdedDrafter(max_nodes=2)
            >>> state = DecodeState(None, [4, 5, 6, 4, 5], prompt_length=5, max_new_tokens=9)
            >>> drafter.start(state); drafter(state).tokens
            [6, 4]
        """
        depth_limit = min(self.max_depth, state.draft_budget)
        if depth_limit <= 0 or self.max_nodes == 0 or not state.tokens:
            return DraftTree()
        tokens = state.tokens
        previous = tokens[-2] if len(tokens) >= 2 else -1
        found = search_draft(self.table, previous, tokens[-1], depth_limit, self.simulations,
                             self.exploration, self.branching)
        return found.draft(self.max_nodes)

    def observe(self, state: DecodeState, verification: Verification) -> None:
        """Learn from a verification pass: at the root and at every scored node, the target's
        top-``k`` distribution (mass 1), plus ``commit_weight`` on the token committed there.

        Example:
            >>> import numpy as np
            >>> from diagrammar.decoding.state import Acceptance, DecodeState, Verification
            >>> state = DecodeState(None, [1, 2], prompt_length=2, max_new_tokens=4)
            >>> drafter = AdedDrafter(top_k=2, commit_weight=0.0)
            >>> scores = np.log(np.array([[0.1, 0.2, 0.1, 0.6]]))   # after (1, 2): 3 likeliest
            >>> drafter.observe(state, Verification(2, DraftTree(), scores))
            >>> [(t, round(p, 3)) for t, p in drafter.candidates(1, 2)]
            [(3, 0.6), (1, 0.2)]
        """
        if self.frozen:
            return
        tree = verification.tree
        scored = [verification.root, *tree.tokens]
        before = [_token_before_root(state, verification),
                  *(scored[parent + 1] for parent in tree.parents)]
        ids, probs = top_k_probabilities(verification.scores[: len(scored)], self.top_k)
        committed = _committed_next(verification)
        update, weight = self.table.update, self.commit_weight
        for row, (next_ids, next_probs) in enumerate(zip(ids.tolist(), probs.tolist())):
            mass = 1.0
            follow = committed.get(row)
            if follow is not None and weight > 0.0:
                next_ids.append(follow)
                next_probs.append(weight)
                mass += weight
            update(before[row], scored[row], next_ids, next_probs, mass)


def _committed_next(verification: Verification) -> dict[int, int]:
    """Scored row -> the token committed right after it (row 0 = root, row i + 1 = node i)."""
    acceptance = verification.acceptance
    if acceptance is None:
        return {}
    rows = [0, *(node + 1 for node in acceptance.path)]
    return dict(zip(rows, acceptance.tokens))


def _token_before_root(state: DecodeState, verification: Verification) -> int:
    """The committed token before the pass's root, or ``-1`` when it cannot be placed.

    After a commit the root sits before the step's new tokens; a state not yet committed to
    ends with the root.
    """
    tokens, root = state.tokens, verification.root
    places = [len(tokens) - 1]
    if verification.acceptance is not None and state.accepted_per_step:
        places.insert(0, len(tokens) - state.accepted_per_step[-1] - 1)
    for place in places:
        if 1 <= place < len(tokens) and tokens[place] == root:
            return tokens[place - 1]
    return -1


def _check_count(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
