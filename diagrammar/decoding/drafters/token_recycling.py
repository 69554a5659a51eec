"""Token Recycling: draft trees read from an adjacency matrix of the target's own candidates.

The method of "Turning Trash into Treasure: Accelerating Inference of Large Language Models
with Token Recycling" (Luo et al., 2024).  Every verification pass scores a whole tree, and
the target's runner-up tokens at each node are normally thrown away; Token Recycling keeps
them.  An adjacency matrix ``M`` of shape ``vocab x k`` holds, for each token ``t``, the
target's top-``k`` next tokens the last time ``t`` was scored.  To draft, a static tree
template (paths of candidate ranks, e.g. ``(0, 1)`` = "the best candidate after the last
token, then the second-best after that") is filled breadth-first from ``M``; after each pass,
the rows of every scored token (root and all tree nodes) are overwritten with the target's
new top-``k``.  The matrix persists across generations (hot start) unless reset.

Kept from the paper: the ``vocab x k`` matrix (``k = 8``), updates from every node of every
pass, breadth-first filling of a static imbalanced template, and the hot start.  The default
template has the paper's level sizes (8, 21, 25, 15, 8 and 3 nodes: 80 in all) but its paths
are built by :func:`recycling_template` from a rank prior rather than copied.  Changed: when
one token occurs at several scored positions of a pass, the root and the accepted path are
written last, so their (real-context) candidates win; the prompt's own positions are not used
(sessions score only the last prompt token), so the matrix starts from the first pass or from
the previous generation.  On a CPU, 80 nodes cost about five single-token steps; pass
``max_nodes`` (or let a cost model pick it) to verify a smaller prefix of the template.

Added (``dynamic=True``): instead of the static template, the tree grows greedily by
estimated path probability, as in DySpec ("DySpec: Faster Speculative Decoding with Dynamic
Token Tree Structure"): the matrix also keeps the target's probability of each candidate, a
path's estimate is the product of those along it, and the ``max_nodes`` most probable nodes
(each with its parent) are drafted, best first.  With a :class:`~diagrammar.decoding.cost.
CostModel` (``cost=``) the tree is then cut to the size that maximises the predicted tokens per
second: the expected number of accepted tokens of the first ``m`` nodes is the sum of their
path estimates, calibrated on the fly against how often such paths were accepted, and the
time a step spends outside verification is re-tuned from the measured time between calls.

>>> import numpy as np
>>> from diagrammar.decoding.state import Acceptance, DecodeState, Verification
>>> from diagrammar.decoding.tree import DraftTree
>>> drafter = TokenRecyclingDrafter(k=2, template=((0,), (1,), (0, 0)))
>>> state = DecodeState(None, [5], prompt_length=1, max_new_tokens=8, vocab_size=10)
>>> drafter.start(state)
>>> len(drafter(state))                                 # nothing recycled yet
0
>>> scores = np.zeros((2, 10)); scores[0, [7, 3]] = [2, 1]; scores[1, [1, 2]] = [2, 1]
>>> tree = DraftTree.chain([7])
>>> drafter.observe(state, Verification(5, tree, scores, Acceptance((0,), (7, 1))))
>>> drafter.candidates(5), drafter.candidates(7)
([7, 3], [1, 2])
>>> drafter(state).tokens                              # after 5: 7 or 3; after 7: 1
[7, 3, 1]
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Sequence

import numpy as np

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.drafters.draft_model import AcceptanceCalibration
from diagrammar.decoding.scores import top_k_probabilities
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

__all__ = [
    "DEFAULT_LEVEL_SIZES",
    "DEFAULT_TEMPLATE",
    "TokenRecyclingDrafter",
    "check_template",
    "default_template",
    "recycling_template",
]

#: Nodes per depth of the paper's default tree (80 nodes, 6 levels).
DEFAULT_LEVEL_SIZES: tuple[int, ...] = (8, 21, 25, 15, 8, 3)

Template = tuple[tuple[int, ...], ...]


def recycling_template(
    level_sizes: Sequence[int] = DEFAULT_LEVEL_SIZES, k: int = 8, decay: float = 0.5
) -> Template:
    """An imbalanced tree template: at each depth, the most promising rank paths.

    A path's prior is the product of ``decay ** rank`` over its ranks (the best candidate is
    accepted most often, the next ones geometrically less); each level takes the
    ``level_sizes[d]`` children of the previous level with the highest prior.  The result is
    deep along the best candidates and wide near the root, like the paper's template.

    Args:
        level_sizes: how many nodes each depth holds (non-increasing sizes give a tree that
            narrows with depth; a level cannot exceed ``k`` times the one above it).
        k: ranks available per node (the matrix width).
        decay: the prior's ratio between successive ranks, in (0, 1).

    Returns:
        The rank paths, breadth first; within a level, in decreasing prior.

    Raises:
        ValueError: a level larger than its parents can hold, ``k`` below 1, or ``decay``
            outside (0, 1).

    Example:
        >>> recycling_template((2, 2), k=2)
        ((0,), (1,), (0, 0), (0, 1))
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    paths: list[tuple[int, ...]] = []
    level: list[tuple[float, tuple[int, ...]]] = [(1.0, ())]
    for depth, size in enumerate(level_sizes):
        if size > k * len(level):
            raise ValueError(
                f"level {depth + 1} asks for {size} nodes but {len(level)} parents with "
                f"{k} candidates each hold at most {k * len(level)}"
            )
        children = [
            (prior * decay**rank, path + (rank,)) for prior, path in level for rank in range(k)
        ]
        # Highest prior first; equal priors keep the parent order, then the rank order.
        level = heapq.nsmallest(size, children, key=lambda c: (-c[0], c[1]))
        paths.extend(path for _, path in level)
    return tuple(paths)


#: The default template: :func:`recycling_template` with the paper's level sizes and k = 8.
DEFAULT_TEMPLATE: Template = recycling_template()


def default_template(k: int = 8) -> Template:
    """The default template for ``k`` candidates per token.

    :data:`DEFAULT_TEMPLATE` for ``k = 8``; for another ``k``, the paper's level sizes, each
    clipped to what ``k`` candidates per node can hold, filled by :func:`recycling_template`.

    Example:
        >>> default_template(8) == DEFAULT_TEMPLATE, len(default_template(1))
        (True, 6)
    """
    if k == 8:
        return DEFAULT_TEMPLATE
    sizes, above = [], 1
    for size in DEFAULT_LEVEL_SIZES:
        above = min(size, k * above)
        sizes.append(above)
    return recycling_template(sizes, k)


def check_template(template: Sequence[Sequence[int]], k: int) -> Template:
    """Validate a template and return it breadth first (stable within a depth).

    Raises:
        ValueError: an empty or repeated path, a rank outside ``[0, k)``, or a path whose
            parent path is missing.

    Example:
        >>> check_template([(0, 0), (0,)], k=2)
        ((0,), (0, 0))
    """
    paths = [tuple(int(r) for r in p) for p in template]
    seen = set(paths)
    if len(seen) != len(paths):
        raise ValueError("a template path occurs twice")
    for path in paths:
        if not path:
            raise ValueError("a template path is empty (the root is implicit)")
        if any(not 0 <= r < k for r in path):
            raise ValueError(f"template path {path} has a rank outside [0, {k})")
        if len(path) > 1 and path[:-1] not in seen:
            raise ValueError(f"template path {path} has no parent path {path[:-1]}")
    return tuple(sorted(paths, key=len))


class TokenRecyclingDrafter(BaseDrafter):
    """Drafts a tree from the target's recycled top-k candidates (Token Recycling).

    Args:
        k: candidates kept per token (the matrix width).
        template: rank paths filled breadth first; default :func:`default_template` of ``k``.
        max_nodes: verify at most this many template nodes (a breadth-first prefix); default
            the whole template.
        hot_start: keep the matrix from one generation to the next (the paper's setting);
            ``False`` resets it at every :meth:`start`.
        frozen: never update the matrix (reproducible runs after :meth:`load`).
        dynamic: grow each tree by estimated path probability (DySpec-style) instead of
            filling the template; ``max_nodes`` (default: the template's size) bounds it.
        cost: a cost model of the target's verification; with ``dynamic``, each tree is cut
            to the size with the highest predicted tokens per second.

    Attributes:
        matrix: the ``rows x k`` adjacency matrix (``int32``, ``-1`` = unknown), or ``None``
            before the first generation.
        probs: the target's probability of each candidate when it was recorded (``float32``,
            same shape).
    """

    def __init__(
        self,
        k: int = 8,
        template: Sequence[Sequence[int]] | None = None,
        max_nodes: int | None = None,
        hot_start: bool = True,
        frozen: bool = False,
        dynamic: bool = False,
        cost: CostModel | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if max_nodes is not None and max_nodes < 0:
            raise ValueError(f"max_nodes must be non-negative, got {max_nodes}")
        self.k = k
        self.template = check_template(default_template(k) if template is None else template, k)
        self.max_nodes = len(self.template) if max_nodes is None else max_nodes
        self.hot_start = hot_start
        self.frozen = frozen
        self.dynamic = dynamic
        self.cost = cost
        #: Path-probability estimate -> observed acceptance (used with ``cost``).
        self.calibration = AcceptanceCalibration()
        self._drafted: DraftTree | None = None
        self._last_call: float | None = None  # when the previous step's draft began
        self.matrix: np.ndarray | None = None
        self.probs: np.ndarray | None = None
        index = {path: i for i, path in enumerate(self.template)}
        # (template index of the parent or -1 for the root, rank, depth) per template node.
        self._plan = [
            (index[p[:-1]] if len(p) > 1 else -1, p[-1], len(p)) for p in self.template
        ]

    # ------------------------------------------------------------------ matrix

    @property
    def memory_bytes(self) -> int:
        """Bytes the adjacency matrix and its probabilities take (0 before the first generation)."""
        if self.matrix is None or self.probs is None:
            return 0
        return int(self.matrix.nbytes + self.probs.nbytes)

    def reset(self) -> None:
        """Forget every recycled candidate."""
        if self.matrix is not None and self.probs is not None:
            self.matrix.fill(-1)
            self.probs.fill(0.0)

    def candidates(self, token: int) -> list[int]:
        """The recycled candidates after ``token``, best first (``[]`` when unknown)."""
        if self.matrix is None or not 0 <= token < len(self.matrix):
            return []
        return [int(t) for t in self.matrix[token] if t >= 0]

    def _ensure_rows(self, rows: int) -> np.ndarray:
        matrix = self.matrix
        if matrix is None or self.probs is None or len(matrix) < rows:
            grown = np.full((rows, self.k), -1, dtype=np.int32)
            grown_probs = np.zeros((rows, self.k), dtype=np.float32)
            if matrix is not None and self.probs is not None:
                grown[: len(matrix)] = matrix
                grown_probs[: len(matrix)] = self.probs
            self.matrix, self.probs = grown, grown_probs
            matrix = grown
        return matrix

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the matrix, its probabilities and ``k`` to an ``.npz`` file."""
        matrix = self.matrix if self.matrix is not None else np.full((0, self.k), -1, np.int32)
        probs = self.probs if self.probs is not None else np.zeros((0, self.k), np.float32)
        np.savez(path, matrix=matrix, probs=probs, k=np.int64(self.k))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a matrix written by :meth:`save`.

        Raises:
            ValueError: the file was written with another ``k``.
        """
        with np.load(path) as data:
            if int(data["k"]) != self.k:
                raise ValueError(f"{path} holds a matrix for k={int(data['k'])}, not k={self.k}")
            self.matrix = np.array(data["matrix"], dtype=np.int32)
            self.probs = np.array(data["probs"], dtype=np.float32)

    # ------------------------------------------------------------------ drafter protocol

    def start(self, state: DecodeState) -> None:
        """Size the matrix for the target's vocabulary; reset it unless ``hot_start``."""
        if not self.hot_start:
            self.reset()
        self._last_call = None  # the prefill between generations is no step
        if state.vocab_size:
            self._ensure_rows(state.vocab_size)

    def learns(self) -> bool:
        """Whether verification passes update the matrix (not when ``frozen``)."""
        return not self.frozen

    def __call__(self, state: DecodeState) -> DraftTree:
        tree = DraftTree()
        matrix = self.matrix
        depth_limit = state.draft_budget
        if matrix is None or depth_limit == 0 or self.max_nodes == 0:
            return tree
        if self.dynamic:
            if self.cost is not None:
                now = time.perf_counter()
                if self._last_call is not None and self._drafted is not None and not self.frozen:
                    self.cost.observe_step(len(self._drafted), now - self._last_call)
                self._last_call = now
            tree = self._grow(state.tokens[-1], depth_limit)
            if self.cost is not None:
                tree = self._sized(tree)
            self._drafted = tree
            return tree
        rows = len(matrix)
        nodes: list[int | None] = [None] * len(self._plan)
        tokens = tree.tokens
        root = state.tokens[-1]
        for i, (parent, rank, depth) in enumerate(self._plan):
            if depth > depth_limit:
                break
            if parent < 0:
                node, token = -1, root
            else:
                node = nodes[parent]
                if node is None:
                    continue
                token = tokens[node]
            if token >= rows:
                continue
            candidate = int(matrix[token, rank])
            if candidate >= 0:
                nodes[i] = tree.add(node, candidate)
                if len(tree) >= self.max_nodes:
                    break
        return tree

    def _grow(self, root: int, depth_limit: int) -> DraftTree:
        """DySpec-style: the ``max_nodes`` nodes of highest estimated path probability."""
        tree = DraftTree()
        matrix, probs = self.matrix, self.probs
        assert matrix is not None and probs is not None
        rows = len(matrix)
        # (-path probability, tie-break counter, parent node, its token, its depth)
        frontier: list[tuple[float, int, int, int, int]] = []
        counter = 0

        def expand(node: int, token: int, weight: float, depth: int) -> None:
            nonlocal counter
            if depth >= depth_limit or token >= rows:
                return
            for rank in range(self.k):
                candidate = int(matrix[token, rank])
                if candidate < 0:
                    break
                p = weight * float(probs[token, rank])
                if p > 0.0:
                    heapq.heappush(frontier, (-p, counter, node, candidate, depth + 1))
                    counter += 1

        expand(-1, root, 1.0, 0)
        while frontier and len(tree) < self.max_nodes:
            negative, _, parent, token, depth = heapq.heappop(frontier)
            before = len(tree)
            node = tree.add(parent, token, prob=-negative)
            if len(tree) > before:
                expand(node, token, -negative, depth)
        return tree

    def _sized(self, tree: DraftTree) -> DraftTree:
        """The prefix of ``tree`` (nodes in the order grown) the cost model predicts fastest."""
        assert self.cost is not None
        gains = [0.0]
        for prob in tree.probs:
            gains.append(gains[-1] + self.calibration.estimate(float(prob or 0.0)))
        keep = self.cost.best_size(gains)
        if keep == len(tree):
            return tree
        return DraftTree.from_parents(tree.tokens[:keep], tree.parents[:keep],
                                      probs=tree.probs[:keep])

    def _calibrate(self, accepted: tuple[int, ...]) -> None:
        """Each drafted node's estimate against whether its whole path was accepted."""
        tree = self._drafted
        if tree is None:
            return
        on_path: list[bool] = []
        depths = tree.depths()
        for node, (token, parent) in enumerate(zip(tree.tokens, tree.parents, strict=True)):
            depth = depths[node]
            hit = (parent < 0 or on_path[parent]) and depth <= len(accepted) and (
                accepted[depth - 1] == token)
            on_path.append(hit)
            self.calibration.record(float(tree.probs[node] or 0.0), hit)

    def observe(self, state: DecodeState, verification: Verification) -> None:
        """Recycle the target's top-k at the root and at every node of the pass."""
        if self.frozen:
            return
        if self.cost is not None and verification.acceptance is not None:
            self._calibrate(verification.acceptance.tokens)
        tree = verification.tree
        scored = [verification.root, *tree.tokens]
        ids, candidate_probs = top_k_probabilities(verification.scores[: len(scored)], self.k)
        # Write order: tree nodes, then the root and the accepted path, so that when a token
        # occurs more than once its candidates in the real context win.
        accepted = verification.acceptance.path if verification.acceptance else ()
        on_path = set(accepted)
        order = [i + 1 for i in range(len(tree)) if i not in on_path]
        order += [0, *(i + 1 for i in accepted)]
        last: dict[int, int] = {}
        for row in order:
            last[scored[row]] = row
        targets = np.fromiter(last.keys(), dtype=np.int64, count=len(last))
        matrix = self._ensure_rows(int(targets.max()) + 1)
        assert self.probs is not None
        width = ids.shape[1]
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        matrix[targets, :width] = ids[rows]
        self.probs[targets, :width] = candidate_probs[rows]
        if width < self.k:
            matrix[targets, width:] = -1
            self.probs[targets, width:] = 0.0
