"""The neural part of NSR's dependency parser: a feed-forward scorer of transitions from a
parser state's features (Chen & Manning's design, scaled down), as NSR's syntax module uses.

A state is described by ``slots`` items (the top of the stack and the front of the buffer),
each as three integers: its symbol (``0`` pads an empty slot, ``1`` stands for an unknown
symbol), its arity code and how many children it has; plus one flag (whether ``swap`` is
allowed). The scorer embeds them, concatenates and returns one logit per transition;
invalid transitions are masked by the caller.

>>> scorer = TransitionScorer(symbols=10)
>>> features = torch.zeros(3, scorer.slots, 3, dtype=torch.long)
>>> scorer(features, torch.zeros(3, dtype=torch.long)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

import torch
from torch import nn

#: The symbol ids that mean "no item here" and "a symbol the parser does not know".
PAD_SYMBOL, UNKNOWN_SYMBOL = 0, 1
#: Arity codes: 0, 1, 2, unknown, and no item.
ARITY_CODES = 5
CHILD_CODES = 4


class TransitionScorer(nn.Module):
    """Logits over ``transitions`` transitions from ``slots`` items' features."""

    def __init__(self, symbols: int, *, slots: int = 5, dim: int = 32, hidden: int = 128,
                 transitions: int = 4) -> None:
        super().__init__()
        self.slots = slots
        self.symbol = nn.Embedding(symbols, dim)
        self.arity = nn.Embedding(ARITY_CODES, dim)
        self.child_count = nn.Embedding(CHILD_CODES, dim)
        self.swap = nn.Embedding(2, dim)
        self.network = nn.Sequential(nn.Linear((slots + 1) * dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, transitions))

    def forward(self, features: torch.Tensor, swap: torch.Tensor) -> torch.Tensor:
        items = (self.symbol(features[..., 0]) + self.arity(features[..., 1])
                 + self.child_count(features[..., 2]))
        joined = torch.cat([items.flatten(1), self.swap(swap)], dim=1)
        return self.network(joined)
