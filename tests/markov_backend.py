"""A second-order Markov "language model" for exactness tests: its next-token logits depend on
the last two tokens only, so the exact distribution of short continuations is a product of
table rows and can be enumerated; it follows the ``LanguageModel``/``Session`` contracts, so
every drafter and acceptance rule runs on it unchanged, and fast."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.sampling import warp


class MarkovSession:
    """The cache is the list of committed tokens; scores are looked up, not computed."""

    def __init__(self, table: np.ndarray, prompt: Sequence[int]) -> None:
        self.table = table
        self.cached = list(prompt[:-1])
        self.cache_length = len(self.cached)
        self._pending: list[int] | None = None

    def _previous(self) -> int:
        return self.cached[-1] if self.cached else 0

    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> np.ndarray:
        assert self._pending is None, "verify() twice"
        assert len(tokens) == len(parents)
        previous = [self._previous()] + [root if p < 0 else tokens[p] for p in parents]
        current = [root, *tokens]
        self._pending = current
        return self.table[previous, current]

    def keep(self, path: Sequence[int]) -> None:
        pending = self._pending
        self._pending = None
        self.cached += [pending[0]] + [pending[node + 1] for node in path]
        self.cache_length = len(self.cached)

    def truncate(self, length: int) -> None:
        assert 0 <= length <= self.cache_length
        self._pending = None
        del self.cached[length:]
        self.cache_length = length


class MarkovModel:
    """A target or draft model over ``vocab`` tokens with random second-order logits."""

    eos_token_ids: frozenset[int] = frozenset()

    def __init__(self, vocab: int, seed: int, sharpness: float = 1.5,
                 base: MarkovModel | None = None, noise: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        table = rng.normal(size=(vocab, vocab, vocab)) * sharpness
        if base is not None:  # a draft model: the target's table plus noise
            table = base.table + noise * table
        self.table = table
        self.vocab_size = vocab

    def encode(self, text: str) -> list[int]:
        raise ValueError("the Markov test model has no tokenizer")

    def decode(self, ids: Sequence[int]) -> str:
        raise ValueError("the Markov test model has no tokenizer")

    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        pass

    def session(self, prompt_ids: Sequence[int]) -> MarkovSession:
        return MarkovSession(self.table, prompt_ids)

    def continuation_distribution(self, prompt: Sequence[int], length: int,
                                  config: GenerationConfig) -> dict[tuple[int, ...], float]:
        """The exact probability of every continuation of ``length`` tokens when sampling
        with ``config``."""
        exact = {}
        for continuation in itertools.product(range(self.vocab_size), repeat=length):
            tokens, probability = list(prompt), 1.0
            for token in continuation:
                probability *= warp(self.table[tokens[-2], tokens[-1]], config)[token]
                tokens.append(token)
            exact[continuation] = probability
        return exact
