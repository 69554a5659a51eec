"""A language given as a finite automaton over token ids, behind the ``Matcher`` contract.

The smallest grammar there is: a transition table ``(state, token) -> state`` from state 0
and a set of accepting states, where the end token may come. It is what grammar-aligned
sampling is measured on (:mod:`.aligned`, ``benchmarks/gad_kl.py``: its conditionals can be
enumerated exactly), and a stand-in for a compiled grammar in tests. :meth:`TokenAutomaton.random`
draws a random one.

>>> automaton = TokenAutomaton({(0, 1): 1, (1, 2): 0}, accepting={0}, vocab=3, end=0)
>>> automaton.accepts((1, 2)), automaton.accepts((1,))
(True, False)
>>> matcher = automaton.matcher()
>>> matcher.allowed().tolist(), matcher.advance([1]), matcher.allowed().tolist()
([True, True, False], True, [False, False, True])
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np


class TokenAutomaton:
    """A regular language over the tokens other than ``end``.

    Args:
        table: ``(state, token) -> state``; the start state is 0.
        accepting: the states where the output may end (with ``end``).
        vocab: the vocabulary size (the masks' length).
        end: the token that ends an output.
    """

    def __init__(self, table: Mapping[tuple[int, int], int], accepting: set[int], vocab: int,
                 end: int = 0) -> None:
        self.table = dict(table)
        self.accepting = set(accepting)
        self.vocab, self.end = vocab, end

    @classmethod
    def random(cls, seed: int, vocab: int, end: int = 0, states: int = 3,
               density: float = 0.5) -> TokenAutomaton:
        """A random automaton: each (state, token) has a transition with chance ``density``;
        each state accepts with chance 1/2."""
        rng = random.Random(seed)
        table = {}
        for state in range(states):
            for token in range(vocab):
                if token != end and rng.random() < density:
                    table[state, token] = rng.randrange(states)
        accepting = {state for state in range(states) if rng.random() < 0.5}
        return cls(table, accepting, vocab, end)

    def run(self, content: Sequence[int]) -> int | None:
        """The state after ``content`` (no end token), or ``None`` where it leaves the
        language."""
        state: int | None = 0
        for token in content:
            state = self.table.get((state, token))
            if state is None:
                return None
        return state

    def accepts(self, content: Sequence[int]) -> bool:
        """Whether ``content`` followed by the end token is in the language."""
        return self.run(content) in self.accepting

    def matcher(self) -> AutomatonMatcher:
        return AutomatonMatcher(self)


class AutomatonMatcher:
    """The ``Matcher`` contract over a :class:`TokenAutomaton` (the end token allowed where
    the state accepts)."""

    def __init__(self, automaton: TokenAutomaton) -> None:
        self.automaton = automaton
        self.states = [0]

    def allowed(self) -> np.ndarray:
        mask = np.zeros(self.automaton.vocab, dtype=bool)
        for source, token in self.automaton.table:
            mask[token] |= source == self.states[-1]
        mask[self.automaton.end] = self.is_accepting()
        return mask

    def advance(self, tokens: Sequence[int]) -> bool:
        states = list(self.states)
        for token in tokens:
            following = self.automaton.table.get((states[-1], int(token)))
            if following is None:
                return False
            states.append(following)
        self.states = states
        return True

    def rollback(self, count: int) -> None:
        del self.states[len(self.states) - count:]

    def is_accepting(self) -> bool:
        return self.states[-1] in self.automaton.accepting

    def is_stopped(self) -> bool:
        return False


__all__ = ["AutomatonMatcher", "TokenAutomaton"]
