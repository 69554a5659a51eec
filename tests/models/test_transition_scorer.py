"""The transition scorer of NSR's parser."""

import torch

from diagrammar.models.transition_scorer import PAD_SYMBOL, TransitionScorer


def test_scores_every_transition_and_learns():
    torch.manual_seed(0)
    scorer = TransitionScorer(symbols=6, dim=8, hidden=16)
    features = torch.tensor([[[2, 0, 0]] + [[PAD_SYMBOL, 4, 3]] * 4,
                             [[3, 1, 1]] * 5])
    swap = torch.tensor([0, 1])
    target = torch.tensor([0, 3])
    optimiser = torch.optim.Adam(scorer.parameters(), lr=0.05)
    for _ in range(50):
        loss = torch.nn.functional.cross_entropy(scorer(features, swap), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert scorer(features, swap).argmax(-1).tolist() == [0, 3]
