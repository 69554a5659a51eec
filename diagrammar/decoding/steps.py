"""The step wiring, backend-neutral: each box's implementation as a function of its wires.

A step is ``Context -> Context``; its boxes exchange a :class:`DecodeState` (``Context``), a
:class:`DraftTree` (``Draft``), the target's scores (``Scores``) and an :class:`Acceptance`
(``Accepted``). The functions here take and return those values; they use only the
:class:`~diagrammar.decoding.protocols.Session` contract, so every backend (torch, NumPy, JAX)
runs the same wiring with its own session class.

>>> from diagrammar.decoding.drafters import PromptLookupDrafter
>>> from diagrammar.decoding.state import DecodeState
>>> class Oracle:                      # a session whose model always predicts 7
...     cache_length = 0
...     def verify(self, root, tokens, parents):
...         import numpy as np
...         scores = np.zeros((len(tokens) + 1, 10)); scores[:, 7] = 1
...         return scores
...     def keep(self, path): pass
>>> state = DecodeState(Oracle(), [7, 7, 7], prompt_length=3, max_new_tokens=4)
>>> draft = DrafterStep(PromptLookupDrafter(num_tokens=2))
>>> draft.start(state)
>>> state, tree = draft(state)
>>> state, tree, scores = verify_step(state, tree)
>>> state, accepted = greedy_accept_step(state, tree, scores)
>>> commit_step(state, accepted)[0].tokens
[7, 7, 7, 7, 7]
"""

from __future__ import annotations

from typing import Any

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.commit import commit
from diagrammar.decoding.drafters.base import learns
from diagrammar.decoding.sampling import spectr_accept, speculative_sample
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.decoding.tree import DraftTree


class DecodingError(RuntimeError):
    """A step broke the decoding contract (bad draft ids, a step that makes no progress)."""


class DrafterStep:
    """Wires a drafter ``state -> DraftTree`` as ``Context -> Context @ Draft``.

    ``start`` prepares the drafter and, when it learns (its ``observe`` does something),
    registers it to receive every verification pass.

    Args:
        drafter: a :class:`~diagrammar.decoding.protocols.Drafter` (or any callable
            ``state -> DraftTree``; ``start``/``observe`` are then optional).
    """

    __slots__ = ("drafter",)

    def __init__(self, drafter: Any) -> None:
        self.drafter = drafter

    def start(self, state: DecodeState) -> None:
        start = getattr(self.drafter, "start", None)
        if start is not None:
            start(state)
        if learns(self.drafter):
            state.observers.append(self.drafter)

    def __call__(self, state: DecodeState) -> tuple[DecodeState, DraftTree]:
        return state, self.drafter(state)


class UnwiredDrafter:
    """The inverse of :class:`DrafterStep`: a ``Context -> Context @ Draft`` implementation as a
    drafter ``state -> DraftTree`` (for merging drafters whose implementation is custom)."""

    __slots__ = ("implementation",)

    def __init__(self, implementation: Any) -> None:
        self.implementation = implementation

    def start(self, state: DecodeState) -> None:
        start = getattr(self.implementation, "start", None)
        if start is not None:
            start(state)

    def __call__(self, state: DecodeState) -> DraftTree:
        return self.implementation(state)[1]


def as_drafter(implementation: Any) -> Any:
    """The drafter behind a drafter box's implementation."""
    if isinstance(implementation, DrafterStep):
        return implementation.drafter
    return UnwiredDrafter(implementation)


def prepare_verification(state: DecodeState, tree: DraftTree) -> DraftTree:
    """The tree a verification pass scores: enforces the contract drafters may break.

    Nodes deeper than the budget left are pruned (they could never be committed), and token
    ids outside the vocabulary are an error.
    """
    if len(tree) > state.draft_budget and tree.depth() > state.draft_budget:
        tree = tree.prune(state.draft_budget)
    if state.vocab_size is not None and tree.tokens and not (
            0 <= min(tree.tokens) and max(tree.tokens) < state.vocab_size):
        bad = next(t for t in tree.tokens if not 0 <= t < state.vocab_size)
        raise DecodingError(f"the drafter proposed token id {bad}, outside the model's "
                            f"vocabulary of {state.vocab_size}")
    return tree


def record_verification(state: DecodeState, tree: DraftTree, scores: Any) -> Any:
    """Records a verification pass (the nodes verified, and the pass for learning drafters)
    and returns its scores, masked by the grammar when a ``Constrain`` box set masks, and
    without the tokens a ``Check`` box excluded at the root (row 0)."""
    if state.score_masks is not None:
        from diagrammar.decoding.constraints.masking import mask_scores

        scores = mask_scores(scores, _masks_for(tree, *state.score_masks))
        state.score_masks = None
    if state.excluded:                        # a Check box backed off: not these tokens next
        scores = exclude_first(scores, state.excluded)
        state.excluded = frozenset()
    state.draft_nodes_per_step.append(len(tree))
    if state.observers:                       # only drafters that learn need the record
        state.verification = Verification(state.tokens[-1], tree, scores)
    return scores


def exclude_first(scores: Any, excluded: frozenset[int]) -> Any:
    """``scores`` with the ``excluded`` tokens at ``-inf`` in row 0 (the root's row).

    When nothing else is left in row 0 (a grammar already blocked every other token), the
    scores are returned unchanged: the exclusion cannot apply, and the ``Check`` box counts
    the repeated failure towards giving up.

    >>> import numpy as np
    >>> exclude_first(np.zeros((2, 3)), frozenset({1})).tolist()
    [[0.0, -inf, 0.0], [0.0, 0.0, 0.0]]
    >>> exclude_first(np.array([[-np.inf, 0.0, -np.inf]]), frozenset({1})).tolist()
    [[-inf, 0.0, -inf]]
    """
    import numpy as np

    from diagrammar.decoding.constraints.masking import mask_scores

    allowed = np.ones(scores.shape[-1], dtype=bool)
    allowed[[token for token in excluded if 0 <= token < len(allowed)]] = False
    masked = mask_scores(scores, [allowed] + [None] * (len(scores) - 1))
    return masked if float(masked[0].max()) > float("-inf") else scores


def _masks_for(tree: DraftTree, constrained: DraftTree, masks: list[Any]) -> list[Any]:
    """The masks of the rows of ``tree``: the constrained tree's, node by node (the verified
    tree may be a cut of it: pruned to the budget, or by a batch policy)."""
    if tree is constrained:
        return masks
    rows, mapping = [masks[0]], {-1: -1}
    for node, (token, parent) in enumerate(zip(tree.tokens, tree.parents)):
        source = constrained.child(mapping[parent], token)
        if source is None:
            raise DecodingError(f"draft node {node} (token {token}) was added after the "
                                "Constrain box: constrain the final tree, just before Verify")
        mapping[node] = source
        rows.append(masks[source + 1])
    return rows


def verify_step(state: DecodeState, tree: DraftTree) -> tuple[DecodeState, DraftTree, Any]:
    """Scores the root and the whole tree in one forward pass of the target model.

    The tree is checked and pruned by :func:`prepare_verification`; the number of nodes
    verified is recorded in ``state.draft_nodes_per_step``. (A batched decode runs the same
    two halves around one pass for all rows: :mod:`diagrammar.decoding.batch`.)
    """
    if state.done:                            # a box ended the generation (a grammar)
        return state, tree, None
    tree = prepare_verification(state, tree)
    scores = state.session.verify(state.tokens[-1], tree.tokens, tree.parents)
    return state, tree, record_verification(state, tree, scores)


class GreedyAcceptStep:
    """Lossless greedy acceptance (the ``GreedyAccept`` box); refuses a sampling config."""

    __slots__ = ()

    def start(self, state: DecodeState) -> None:
        if not state.config.greedy:
            raise DecodingError(
                f"GreedyAccept decodes greedily, but the generation config asks for sampling "
                f"(temperature={state.config.temperature}): use temperature 0, or a pipeline "
                "whose acceptance samples")

    def __call__(self, state: DecodeState, tree: DraftTree, scores: Any
                 ) -> tuple[DecodeState, Acceptance]:
        if scores is None:                    # nothing verified: the generation ended
            return state, Acceptance((), ())
        return state, greedy_accept(tree, scores)


greedy_accept_step = GreedyAcceptStep()


class SamplingAcceptStep:
    """Exact speculative sampling (the ``SpeculativeSampling`` and ``SpecTrAccept`` boxes):
    the committed tokens follow the target's distribution under the generation config
    (temperature, top-k, top-p), drawn with the generation's random generator; at temperature
    0 they are the greedy tokens.

    Args:
        rule: ``"speculative"`` (chains, SpecInfer and RSD trees) or ``"spectr"``
            (k-sequential selection over independent draws).
    """

    RULES = {"speculative": speculative_sample, "spectr": spectr_accept}

    __slots__ = ("rule",)

    def __init__(self, rule: str = "speculative") -> None:
        if rule not in self.RULES:
            raise ValueError(f"unknown sampling rule {rule!r}; known: {sorted(self.RULES)}")
        self.rule = self.RULES[rule]

    def __call__(self, state: DecodeState, tree: DraftTree, scores: Any
                 ) -> tuple[DecodeState, Acceptance]:
        if scores is None:                    # nothing verified: the generation ended
            return state, Acceptance((), ())
        return state, self.rule(tree, scores, state.config, state.rng)


def commit_step(state: DecodeState, accepted: Acceptance) -> tuple[DecodeState]:
    """Commits the accepted tokens (see :func:`~diagrammar.decoding.commit.commit`)."""
    commit(state, accepted)
    return (state,)


__all__ = ["DecodingError", "DrafterStep", "UnwiredDrafter", "as_drafter", "verify_step",
           "prepare_verification", "record_verification", "exclude_first",
           "GreedyAcceptStep", "greedy_accept_step", "SamplingAcceptStep", "commit_step"]
