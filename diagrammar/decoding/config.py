"""The generation config that travels on the ``Context`` wire: how to pick tokens.

Greedy decoding (``temperature=0``, the default) is token-identical to the target model's own
greedy decoding. A positive temperature asks for sampling, with optional top-k / top-p
truncation, from one random generator per generation, seeded by ``seed``.

>>> config = GenerationConfig(temperature=0.7, top_k=50, seed=1)
>>> config.greedy, GenerationConfig().greedy
(False, True)
>>> int(config.rng().integers(1000)) == int(GenerationConfig(seed=1).rng().integers(1000))
True
>>> GenerationConfig(top_p=1.5)
Traceback (most recent call last):
...
ValueError: top_p must be in (0, 1], got 1.5
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GenerationConfig:
    """How tokens are chosen.

    Args:
        temperature: 0 for greedy decoding; above 0, the softmax temperature of sampling.
        top_k: sample among the ``top_k`` most likely tokens only (``None``: all).
        top_p: sample among the smallest set of tokens whose probability reaches ``top_p``.
        seed: seeds the generation's random generator (``None``: fresh entropy).
    """

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) \
                or not 0.0 <= self.temperature < float("inf"):
            raise ValueError(f"temperature must be a number >= 0, got {self.temperature!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool)
                                       or not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {self.top_k!r}")
        if self.top_p is not None and (isinstance(self.top_p, bool)
                                       or not isinstance(self.top_p, (int, float))
                                       or not 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        """Whether tokens are chosen by argmax (temperature 0)."""
        return self.temperature == 0.0

    def rng(self) -> np.random.Generator:
        """A fresh random generator for one generation, reproducible from ``seed``."""
        return np.random.default_rng(self.seed)

    def as_dict(self) -> dict[str, Any]:
        """The config as JSON data."""
        return asdict(self)


__all__ = ["GenerationConfig"]
