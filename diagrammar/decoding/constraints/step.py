"""The ``Constrain`` box's implementation: the grammar follows the committed tokens, prunes
the draft and masks the verification.

Each step, :class:`ConstrainStep` first advances its :class:`~.protocol.Matcher` over the
tokens committed since the last step (the constraint state follows the accepted path; nothing
else was ever consumed, so there is nothing to roll back), then walks the draft tree in order:
a node whose token the grammar does not allow after its parent is pruned with its subtree;
every kept node's mask (the tokens allowed after it) is computed with the matcher advanced
along that node's path and rolled back afterwards; a node after which nothing at all is
allowed is pruned too (acceptance always adds a token after the last accepted node; that
token comes as the root's, next step). The masks go on the state (``state.score_masks``:
the kept tree and one mask per position) and ``Verify`` applies them to the pass's scores,
so acceptance — greedy or sampling — only ever chooses allowed tokens: the constrained
speculative output is the constrained greedy output, and sampling follows the target's
distribution restricted to the grammar.

For sampling drafts (trees whose siblings were drawn by a draft model and carry a
``Proposal``), a refused node is kept — rejection sampling rejects it (its target probability
is 0) and the proposal's other draws stay intact — and only its children are pruned.

When the grammar allows no token at all (the output is complete and the model has no end
token the grammar accepts), the generation ends with ``state.stop_reason`` saying so.

>>> import numpy as np
>>> from diagrammar.decoding.state import DecodeState
>>> from diagrammar.decoding.tree import DraftTree
>>> class Digits:                    # a toy matcher: tokens 0-9 are digits, at most 3 of them
...     def __init__(self): self.seen = []
...     def allowed(self):
...         mask = np.zeros(12, dtype=bool); mask[:10] = len(self.seen) < 3; mask[11] = True
...         return mask
...     def advance(self, tokens):
...         if any(t >= 10 and t != 11 for t in tokens): return False
...         self.seen += list(tokens); return True
...     def rollback(self, count): del self.seen[len(self.seen) - count:]
...     def is_accepting(self): return True
...     def is_stopped(self): return len(self.seen) >= 3
>>> class Grammar:
...     def matcher(self): return Digits()
>>> step = ConstrainStep(Grammar())
>>> state = DecodeState(None, [11], prompt_length=1, max_new_tokens=8)
>>> step.start(state)
>>> tree = DraftTree.from_parents([4, 10, 5, 6, 7], [-1, -1, 0, 2, 3])
>>> state, pruned = step(state, tree)
>>> pruned.tokens, pruned.parents           # 10 is not a digit; a fourth digit is too many
([4, 5, 6], [-1, 0, 1])
>>> [int(mask.sum()) for mask in state.score_masks[1]]
[11, 11, 11, 1]
"""

from __future__ import annotations

import time
from typing import Any

from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import DecodingError
from diagrammar.decoding.tree import DraftTree


class ConstrainStep:
    """Wires a compiled grammar as ``Context @ Draft -> Context @ Draft`` (see the module).

    Args:
        grammar: a :class:`~.protocol.CompiledGrammar` (``matcher()`` per sequence).
        draft_forced: at most this many tokens the grammar forces (the key names, the
            punctuation of a schema) are drafted below the root and below each leaf of a
            greedy draft, where the matcher offers ``forced_tokens``; 0 drafts none.

    Attributes:
        nodes_pruned: draft nodes pruned since :meth:`start` (they left the language).
        nodes_forced: forced tokens drafted since :meth:`start`.
        mask_seconds: time spent computing masks since :meth:`start`.
    """

    def __init__(self, grammar: Any, draft_forced: int = 16) -> None:
        if draft_forced < 0:
            raise ValueError(f"draft_forced must be >= 0, not {draft_forced}")
        self.grammar = grammar
        self.draft_forced = draft_forced
        self.matcher: Any = None
        self._consumed = 0
        self.nodes_pruned = 0
        self.nodes_forced = 0
        self.mask_seconds = 0.0

    def start(self, state: DecodeState) -> None:
        """A fresh matcher for ``state``'s generation; a grammar with ``matcher_for_prompt``
        (one that reads the prompt, like a monitor of the code before it) gets the prompt."""
        for_prompt = getattr(self.grammar, "matcher_for_prompt", None)
        self.matcher = (for_prompt(list(state.tokens[:state.prompt_length]))
                        if for_prompt is not None else self.grammar.matcher())
        self._consumed = state.prompt_length
        self.nodes_pruned = 0
        self.nodes_forced = 0
        self.mask_seconds = 0.0

    def counters(self) -> dict[str, float]:
        """What this box did since :meth:`start` (reported in the decode's stats)."""
        return {"nodes_pruned": self.nodes_pruned, "nodes_forced": self.nodes_forced,
                "mask_seconds": self.mask_seconds}

    def _catch_up(self, state: DecodeState) -> None:
        if len(state.tokens) < self._consumed:    # a Check box rolled tokens back
            self.matcher.rollback(self._consumed - len(state.tokens))
            self._consumed = len(state.tokens)
        new = state.tokens[self._consumed:]
        if new and not self.matcher.advance(new):
            raise DecodingError(
                f"the committed tokens {new} leave the grammar: the step committed a token "
                "its Constrain box did not allow (is Constrain placed before Verify?)")
        self._consumed = len(state.tokens)

    def __call__(self, state: DecodeState, tree: DraftTree) -> tuple[DecodeState, DraftTree]:
        began = time.perf_counter()
        if self.matcher is None:
            self.start(state)
        self._catch_up(state)
        earlier = _earlier_masks(state, tree)
        root = _both(self.matcher.allowed(), earlier[0])
        if not root.any():
            state.done = True
            state.stop_reason = ("the grammar allows no further token (the output is complete "
                                 "and no end token is allowed)")
            state.score_masks = None
            self.mask_seconds += time.perf_counter() - began
            return state, DraftTree()
        walk = _Walk(self.matcher, tree)
        kept = DraftTree()
        masks: list[Any] = [root]
        mapping: dict[int, int] = {-1: -1}
        node_mask: dict[int, Any] = {-1: root}
        sampling = bool(tree.proposals)
        for node, (token, parent) in enumerate(zip(tree.tokens, tree.parents)):
            if parent not in mapping:
                continue                                   # below a pruned or refused node
            parent_mask = node_mask.get(parent)
            allowed = parent_mask is not None and token < len(parent_mask) \
                and bool(parent_mask[token])
            if not allowed and not sampling:
                self.nodes_pruned += 1
                continue
            if not allowed:                                # kept for rejection only
                kept.add(mapping[parent], token, tree.probs[node])
                masks.append(None)
                continue
            walk.to(node)
            mask = _both(self.matcher.allowed(), earlier[node + 1])
            if not mask.any():       # nothing may follow it, not even an end token: a node
                self.nodes_pruned += 1       # accepted there would need a bonus token
                continue
            mapping[node] = kept.add(mapping[parent], token, tree.probs[node])
            node_mask[node] = mask
            masks.append(mask)
        if self.draft_forced and not sampling and earlier[0] is None:
            self._draft_forced(tree, walk, kept, masks, mapping)
        walk.to(-1)
        for parent, proposals in tree.proposals.items():
            if parent in mapping:
                kept.proposals[mapping[parent]] = list(proposals)
        state.score_masks = (kept, masks)
        self.mask_seconds += time.perf_counter() - began
        return state, kept

    def _draft_forced(self, tree: DraftTree, walk: _Walk, kept: DraftTree, masks: list[Any],
                      mapping: dict[int, int]) -> None:
        """Below the root and each leaf of ``kept``, the tokens the grammar forces there."""
        forcing = getattr(self.matcher, "forced_tokens", None)
        if forcing is None:
            return
        has_child = set(kept.parents)
        leaves = [node for node, index in mapping.items() if index not in has_child]
        for node in leaves:
            walk.to(node)
            forced = forcing(self.draft_forced)
            parent = mapping[node]
            added = 0
            for token in forced:
                self.matcher.advance([token])
                added += 1
                mask = self.matcher.allowed()
                if not mask.any():
                    break
                parent = kept.add(parent, token, 1.0)
                masks.append(mask)
                self.nodes_forced += 1
            if added:
                self.matcher.rollback(added)


class _Walk:
    """Moves a matcher between the paths of a draft tree's nodes (rolling back to the common
    ancestor, then advancing), so each node's mask costs the tokens between two paths."""

    def __init__(self, matcher: Any, tree: DraftTree) -> None:
        self.matcher = matcher
        self.tree = tree
        self.path: list[int] = []            # draft nodes the matcher has consumed

    def to(self, node: int) -> None:
        """The matcher after the root and ``node``'s path (``-1``: the root alone)."""
        target = self.tree.path_to(node) if node >= 0 else []
        common = 0
        while common < min(len(self.path), len(target)) and self.path[common] == target[common]:
            common += 1
        if len(self.path) > common:
            self.matcher.rollback(len(self.path) - common)
            del self.path[common:]
        for step in target[common:]:
            if not self.matcher.advance([self.tree.tokens[step]]):
                raise DecodingError(f"the grammar refused draft token {self.tree.tokens[step]}"
                                    " it had allowed")
            self.path.append(step)


def _earlier_masks(state: DecodeState, tree: DraftTree) -> list[Any]:
    """The masks an earlier ``Constrain`` box of the same step left for ``tree`` (root first;
    ``None`` where it set none): a second box intersects its masks with them."""
    earlier = state.score_masks
    if earlier is not None and earlier[0] is tree:
        return list(earlier[1])
    return [None] * (len(tree.tokens) + 1)


def _both(mask: Any, earlier: Any) -> Any:
    return mask if earlier is None else mask & earlier


__all__ = ["ConstrainStep"]
