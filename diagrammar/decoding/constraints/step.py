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

from typing import Any

from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import DecodingError
from diagrammar.decoding.tree import DraftTree


class ConstrainStep:
    """Wires a compiled grammar as ``Context @ Draft -> Context @ Draft`` (see the module).

    Args:
        grammar: a :class:`~.protocol.CompiledGrammar` (``matcher()`` per sequence).

    Attributes:
        nodes_pruned: draft nodes pruned since :meth:`start` (they left the language).
        mask_seconds: time spent computing masks since :meth:`start`.
    """

    def __init__(self, grammar: Any) -> None:
        self.grammar = grammar
        self.matcher: Any = None
        self._consumed = 0
        self.nodes_pruned = 0
        self.mask_seconds = 0.0

    def start(self, state: DecodeState) -> None:
        self.matcher = self.grammar.matcher()
        self._consumed = state.prompt_length
        self.nodes_pruned = 0
        self.mask_seconds = 0.0

    def _catch_up(self, state: DecodeState) -> None:
        new = state.tokens[self._consumed:]
        if new and not self.matcher.advance(new):
            raise DecodingError(
                f"the committed tokens {new} leave the grammar: the step committed a token "
                "its Constrain box did not allow (is Constrain placed before Verify?)")
        self._consumed = len(state.tokens)

    def __call__(self, state: DecodeState, tree: DraftTree) -> tuple[DecodeState, DraftTree]:
        import time

        began = time.perf_counter()
        if self.matcher is None:
            self.start(state)
        self._catch_up(state)
        matcher = self.matcher
        root = matcher.allowed()
        if not root.any():
            state.done = True
            state.stop_reason = ("the grammar allows no further token (the output is complete "
                                 "and no end token is allowed)")
            state.score_masks = None
            self.mask_seconds += time.perf_counter() - began
            return state, DraftTree()
        sampling = bool(tree.proposals)
        kept = DraftTree()
        masks: list[Any] = [root]
        mapping: dict[int, int] = {-1: -1}
        node_mask: dict[int, Any] = {-1: root}
        path: list[int] = []            # draft nodes the matcher has consumed, root first
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
            # move the matcher from the current path to the parent's path, then onto node
            ancestors = tree.path_to(parent) if parent >= 0 else []
            common = 0
            while common < min(len(path), len(ancestors)) and path[common] == ancestors[common]:
                common += 1
            if len(path) > common:
                matcher.rollback(len(path) - common)
                del path[common:]
            for step in ancestors[common:]:
                matcher.advance([tree.tokens[step]])
                path.append(step)
            matcher.advance([token])
            path.append(node)
            mask = matcher.allowed()
            if not mask.any():       # nothing may follow it, not even an end token: a node
                self.nodes_pruned += 1       # accepted there would need a bonus token
                continue
            mapping[node] = kept.add(mapping[parent], token, tree.probs[node])
            node_mask[node] = mask
            masks.append(mask)
        if path:
            matcher.rollback(len(path))
        for parent, proposals in tree.proposals.items():
            if parent in mapping:
                kept.proposals[mapping[parent]] = list(proposals)
        state.score_masks = (kept, masks)
        self.mask_seconds += time.perf_counter() - began
        return state, kept


__all__ = ["ConstrainStep"]
