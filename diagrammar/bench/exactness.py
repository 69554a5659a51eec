"""Exactness: where a method's tokens leave the reference's, and whether that is a near-tie.

Each method's tokens are compared with the reference's (``hf/greedy``). At the first divergence
the target's logits after the reference prefix are recomputed with one plain forward pass
(:func:`logit_margin`), and the margin between its top two logits is kept. A margin below the
tie threshold (:data:`DEFAULT_TIE_MARGIN` unless configured) is a *near-tie*: float32 batched
and sequential passes differ in the last bits, so either token is the target's greedy choice.
Any other divergence of a lossless method is a bug.

Example:
    >>> compare([1, 2, 3], [1, 2, 3], margin_after=lambda prefix: 1.0) is None
    True
    >>> compare([1, 2, 3], [1, 5, 3], margin_after=lambda prefix: 2e-5)
    Divergence(position=1, expected=2, got=5, margin=2e-05, near_tie=True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_TIE_MARGIN", "Divergence", "compare", "first_divergence", "logit_margin"]

#: Top-1 minus top-2 logit margin below which a divergence counts as a float near-tie.
DEFAULT_TIE_MARGIN = 1e-3


@dataclass
class Divergence:
    """Where a method's tokens first differ from the reference, and how close the call was.

    Attributes:
        position: index among the new tokens.
        expected: the reference token there (``None`` if the reference had ended).
        got: the method's token there (``None`` if it had ended).
        margin: the target's top-1 minus top-2 logit after the reference prefix.
        near_tie: ``margin`` is below the tie threshold.
    """

    position: int
    expected: int | None
    got: int | None
    margin: float
    near_tie: bool

    @property
    def kind(self) -> str:
        """``"near-tie"`` (a float tie, reported) or ``"MISMATCH"`` (a bug if lossless).

        Example:
            >>> Divergence(3, 10, 11, margin=0.7, near_tie=False).kind
            'MISMATCH'
        """
        return "near-tie" if self.near_tie else "MISMATCH"


def first_divergence(reference: Sequence[int], tokens: Sequence[int]) -> int | None:
    """Index of the first difference of two token lists.

    Args:
        reference: the reference's tokens.
        tokens: the tokens to check.

    Returns:
        The first index where they differ (the shorter length when one is a prefix of the
        other), or ``None`` when they are equal.

    Example:
        >>> first_divergence([1, 2, 3], [1, 2, 3]), first_divergence([1, 2, 3], [1, 5, 3])
        (None, 1)
        >>> first_divergence([1, 2], [1, 2, 3])
        2
    """
    for index, (a, b) in enumerate(zip(reference, tokens)):
        if a != b:
            return index
    return None if len(reference) == len(tokens) else min(len(reference), len(tokens))


def compare(reference: Sequence[int], tokens: Sequence[int],
            margin_after: Callable[[list[int]], float],
            tie_margin: float = DEFAULT_TIE_MARGIN) -> Divergence | None:
    """Checks ``tokens`` against ``reference`` and classifies a divergence.

    Args:
        reference: the reference's new tokens.
        tokens: a method's new tokens for the same prompt.
        margin_after: the target's top-1 minus top-2 logit margin after a prefix of the
            reference's new tokens (the runner passes :func:`logit_margin` on the prompt plus
            that prefix); called only when the lists differ.
        tie_margin: margins below this are near-ties.

    Returns:
        ``None`` when the lists are equal, else the :class:`Divergence`.

    Example:
        >>> compare([1, 2], [1, 2, 3], margin_after=lambda prefix: 0.5, tie_margin=1e-3)
        Divergence(position=2, expected=None, got=3, margin=0.5, near_tie=False)
    """
    where = first_divergence(reference, tokens)
    if where is None:
        return None
    margin = float(margin_after(list(reference[:where])))
    return Divergence(where, reference[where] if where < len(reference) else None,
                      tokens[where] if where < len(tokens) else None, margin,
                      margin < tie_margin)


def logit_margin(lm: Any, ids: Sequence[int]) -> float:
    """Top-1 minus top-2 logit of the model's next token after ``ids`` (one full forward).

    Args:
        lm: an :class:`~diagrammar.models.hf.HFCausalLM`.
        ids: the token ids before the position to check.

    Returns:
        The margin, in logits (float64 arithmetic on the model's logits).

    Example (needs a model ``lm``)::

        logit_margin(lm, lm.encode("def f(")) >= 0   # True
    """
    import torch

    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([list(ids)], device=lm.device)).logits[0, -1]
    top = torch.topk(logits.double(), 2).values
    return float(top[0] - top[1])
