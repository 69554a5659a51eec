"""Exact speculative sampling: acceptance rules whose output follows the target's distribution.

Greedy acceptance reproduces the target's argmax. These rules reproduce its *sampling*
distribution (after temperature, top-k and top-p, applied identically to the target and to the
residuals): whatever the drafts, every committed token is distributed exactly as plain sampling
from the target would draw it.

- :func:`speculative_sample` walks the tree from the root. At each node it runs rounds of
  rejection sampling over the node's drafted children, against a target distribution ``p``
  that each rejection replaces by its residual:

  - a draw ``x`` from the drafter's distribution ``q`` is accepted with probability
    ``min(1, p(x) / q(x))``; on rejection ``p <- norm(max(0, p - q))`` (Leviathan et al.,
    "Fast Inference from Transformers via Speculative Decoding"; Chen et al., "Accelerating
    Large Language Model Decoding with Speculative Sampling" for chains). Several independent
    draws at one node are tried in turn, each against the previous residual: SpecInfer's
    multi-round speculative sampling ("SpecInfer: Accelerating Generative LLM Serving with
    Tree-based Speculative Inference and Verification").
  - draws made *without replacement* (Gumbel top-k) are verified as in Recursive Speculative
    Decoding ("Recursive Speculative Decoding: Accelerating LLM Inference via Sampling Without
    Replacement"): after rejecting ``x`` also ``q <- norm(q without x)``.
  - a deterministic candidate (prompt lookup, Token Recycling, retrieval; a child with no
    :class:`~diagrammar.decoding.tree.Proposal`) is a one-hot ``q``: accepted with probability
    ``p(x)``, after which ``p <- norm(p without x)``.

  When every round rejects, the token is sampled from the last residual. Either way, if the
  chosen token has a node in the tree the walk goes on below it (the subtree's drafts were
  drawn independently of this choice, given the prefix), else the step ends with it.
- :func:`spectr_accept` replaces the rounds over a node's independent draws by SpecTr's
  k-sequential selection ("SpecTr: Fast Speculative Decoding via Optimal Transport"): with
  ``k`` i.i.d. draws from ``q``, draw ``i`` is accepted with probability
  ``min(1, p(x) / (rho q(x)))`` and, if all are rejected, the token comes from the residual
  ``p - min(q, p / rho) (1 - (1 - beta)^k) / beta`` (normalised), where
  ``beta = sum min(q, p / rho)`` and ``rho`` in ``[1, k]`` is the smallest value with
  ``(1 - (1 - beta)^k) / beta <= rho`` (found by bisection), which keeps the residual
  non-negative. With ``k = 1`` it is the rule above.

At temperature 0 the warped target is one-hot at its argmax, so these rules accept exactly what
greedy acceptance accepts: a sampling pipeline decodes greedily when asked to.

>>> import numpy as np
>>> from diagrammar.decoding.config import GenerationConfig
>>> from diagrammar.decoding.tree import DraftTree
>>> tree = DraftTree.chain([2, 3])
>>> scores = np.log(np.array([[.1, .1, .7, .1], [.1, .1, .1, .7], [.7, .1, .1, .1]]))
>>> rng = np.random.default_rng(0)
>>> speculative_sample(tree, scores, GenerationConfig(temperature=1.0), rng).path
(0, 1)
>>> speculative_sample(tree, scores, GenerationConfig(), rng)      # temperature 0: greedy
Acceptance(path=(0, 1), tokens=(2, 3, 0))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.state import Acceptance
from diagrammar.decoding.tree import DraftTree, Proposal

__all__ = ["warp", "score_row", "sample_token", "residual", "spectr_rho",
           "speculative_sample", "spectr_accept", "draw_with_replacement",
           "draw_without_replacement"]


def score_row(scores: Any, row: int) -> np.ndarray:
    """One row of a scores array (torch, NumPy, JAX) as a float64 NumPy vector.

    >>> score_row(np.array([[1, 2], [3, 4]]), 1).tolist()
    [3.0, 4.0]
    """
    value = scores[row]
    if hasattr(value, "detach"):  # torch: to the host, in float32 first (bf16/fp16 safe)
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def warp(logits: np.ndarray, config: GenerationConfig) -> np.ndarray:
    """The distribution a generation config samples from, given one row of logits.

    Temperature 0 gives the one-hot distribution of the argmax (the first, on ties). Otherwise:
    divide by the temperature, keep the ``top_k`` largest logits (ties with the k-th kept),
    keep the smallest most-likely set whose probability reaches ``top_p``, and softmax — the
    order Hugging Face's ``generate`` applies them in.

    >>> warp(np.log(np.array([0.5, 0.3, 0.2])), GenerationConfig(temperature=1, top_p=0.7))
    array([0.625, 0.375, 0.   ])
    >>> warp(np.array([1.0, 3.0, 2.0]), GenerationConfig()).tolist()
    [0.0, 1.0, 0.0]
    """
    logits = np.asarray(logits, dtype=np.float64)
    if config.greedy:
        probs = np.zeros_like(logits)
        probs[int(np.argmax(logits))] = 1.0
        return probs
    logits = logits / config.temperature
    if config.top_k is not None and config.top_k < logits.shape[-1]:
        kth = np.partition(logits, -config.top_k)[-config.top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - np.max(logits))
    probs /= probs.sum()
    if config.top_p is not None and config.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]   # mass of the more likely tokens
        drop = order[before >= config.top_p]
        probs[drop] = 0.0
        probs /= probs.sum()
    return probs


def sample_token(probs: np.ndarray, rng: np.random.Generator) -> int:
    """One token drawn from ``probs`` (never a token of probability 0).

    >>> sample_token(np.array([0.0, 1.0, 0.0]), np.random.default_rng(0))
    1
    """
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    if index >= len(probs) or probs[index] <= 0:  # rounding at the top end
        index = int(np.flatnonzero(probs)[-1])
    return index


def draw_with_replacement(probs: np.ndarray, count: int, rng: np.random.Generator
                          ) -> tuple[int, ...]:
    """``count`` independent draws from ``probs``.

    >>> draw_with_replacement(np.array([0.0, 1.0]), 3, np.random.default_rng(0))
    (1, 1, 1)
    """
    return tuple(sample_token(probs, rng) for _ in range(count))


def draw_without_replacement(probs: np.ndarray, count: int, rng: np.random.Generator
                             ) -> tuple[int, ...]:
    """Up to ``count`` distinct tokens drawn one after another, each from ``probs`` with the
    earlier draws removed (the Gumbel top-k trick: one Gumbel key per token, best keys first).

    >>> sorted(draw_without_replacement(np.array([0.5, 0.0, 0.5]), 3, np.random.default_rng(0)))
    [0, 2]
    """
    support = np.flatnonzero(probs > 0)
    keys = np.log(probs[support]) + rng.gumbel(size=len(support))
    best = np.argsort(-keys, kind="stable")[:count]
    return tuple(int(t) for t in support[best])


def residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``norm(max(0, p - q))``: what the target still owes after a rejected draw from ``q``
    (``p`` itself when nothing is owed, which only rounding can cause).

    >>> residual(np.array([0.5, 0.5, 0.0]), np.array([0.8, 0.1, 0.1])).tolist()
    [0.0, 1.0, 0.0]
    """
    left = np.maximum(p - q, 0.0)
    total = left.sum()
    return left / total if total > 0 else p


def _without(q: np.ndarray, token: int) -> np.ndarray:
    q = q.copy()
    q[token] = 0.0
    total = q.sum()
    return q / total if total > 0 else q


def _one_hot_round(p: np.ndarray, token: int, rng: np.random.Generator
                   ) -> tuple[bool, np.ndarray]:
    """A deterministic candidate: accepted with probability ``p(token)``."""
    if rng.random() < p[token]:
        return True, p
    return False, _without(p, token)


def _rejection_rounds(p: np.ndarray, proposal: Proposal, rng: np.random.Generator
                      ) -> tuple[int | None, np.ndarray]:
    """Speculative sampling over one proposal's draws (recursive when without replacement)."""
    q = np.asarray(proposal.distribution, dtype=np.float64)
    for token in proposal.draws:
        qx = q[token]
        if qx <= 0:  # a draw the proposal could not make: skip it (no information)
            continue
        if rng.random() * qx < p[token]:
            return token, p
        p = residual(p, q)
        if not proposal.replacement:
            q = _without(q, token)
    return None, p


def spectr_rho(p: np.ndarray, q: np.ndarray, k: int, iterations: int = 40) -> float:
    """SpecTr's ``rho`` for ``k`` draws: the smallest ``rho`` in ``[1, k]`` with
    ``(1 - (1 - beta)^k) / beta <= rho``, where ``beta = sum min(q, p / rho)``.

    >>> spectr_rho(np.array([0.5, 0.5]), np.array([0.5, 0.5]), 3)    # q = p: accept at once
    1.0
    """

    def excess(rho: float) -> float:
        beta = float(np.minimum(q, p / rho).sum())
        owed = k if beta <= 1e-300 else (1.0 - (1.0 - beta) ** k) / beta
        return owed - rho

    if excess(1.0) <= 1e-12:
        return 1.0
    low, high = 1.0, float(k)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if excess(middle) <= 0:
            high = middle
        else:
            low = middle
    return high


def _k_sequential(p: np.ndarray, proposal: Proposal, rng: np.random.Generator
                  ) -> tuple[int | None, np.ndarray]:
    """SpecTr's k-sequential selection over one proposal's i.i.d. draws."""
    q = np.asarray(proposal.distribution, dtype=np.float64)
    k = len(proposal.draws)
    rho = spectr_rho(p, q, k)
    for token in proposal.draws:
        qx = q[token]
        if qx > 0 and rng.random() * rho * qx < p[token]:
            return token, p
    capped = np.minimum(q, p / rho)
    beta = capped.sum()
    owed = float(k) if beta <= 1e-300 else (1.0 - (1.0 - beta) ** k) / beta
    left = np.maximum(p - capped * owed, 0.0)
    total = left.sum()
    return None, (left / total if total > 0 else p)


def _children(tree: DraftTree) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for node, parent in enumerate(tree.parents):
        children.setdefault(parent, []).append(node)
    return children


Round = Callable[[np.ndarray, Proposal, np.random.Generator], tuple[Any, np.ndarray]]


def _walk(tree: DraftTree, scores: Any, config: GenerationConfig, rng: np.random.Generator,
          independent_round: Round) -> Acceptance:
    children = _children(tree)
    path: list[int] = []
    tokens: list[int] = []
    node = -1
    while True:
        p = warp(score_row(scores, node + 1), config)
        chosen: int | None = None
        drawn: set[int] = set()
        for proposal in tree.proposals.get(node, ()):
            drawn.update(proposal.draws)
            rounds = independent_round if proposal.replacement else _rejection_rounds
            chosen, p = rounds(p, proposal, rng)
            if chosen is not None:
                break
        if chosen is None:
            for child in children.get(node, ()):
                token = tree.tokens[child]
                if token in drawn:
                    continue
                accepted, p = _one_hot_round(p, token, rng)
                if accepted:
                    chosen = token
                    break
        if chosen is None:
            chosen = sample_token(p, rng)
        tokens.append(int(chosen))
        child = tree.child(node, int(chosen))
        if child is None:
            return Acceptance(tuple(path), tuple(tokens))
        path.append(child)
        node = child


def speculative_sample(tree: DraftTree, scores: Any, config: GenerationConfig,
                       rng: np.random.Generator) -> Acceptance:
    """Exact speculative sampling over a draft tree (chains, SpecInfer trees, RSD trees and
    deterministic candidates alike; see the module docstring).

    Args:
        tree: the draft tree; its :attr:`~DraftTree.proposals` say how sampled children were
            drawn, and children without one are deterministic candidates.
        scores: the target's logits, row 0 for the root and row ``i + 1`` for node ``i``.
        config: temperature, top-k and top-p (temperature 0: greedy).
        rng: the generation's random generator.
    """
    return _walk(tree, scores, config, rng, _rejection_rounds)


def spectr_accept(tree: DraftTree, scores: Any, config: GenerationConfig,
                  rng: np.random.Generator) -> Acceptance:
    """Exact speculative sampling with SpecTr's k-sequential selection over each node's
    independent draws (other children as in :func:`speculative_sample`).

    >>> from diagrammar.decoding.tree import DraftTree, Proposal
    >>> tree = DraftTree()
    >>> tree.propose(-1, Proposal(np.array([0.5, 0.5, 0.0]), (0, 0)))
    >>> scores = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))
    >>> spectr_accept(tree, scores, GenerationConfig(), np.random.default_rng(0)).tokens
    (0, 2)
    """
    return _walk(tree, scores, config, rng, _k_sequential)
