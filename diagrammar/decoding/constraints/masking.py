"""Applying a grammar's masks to a verification pass's scores, whatever array they are.

Row ``i`` of the masks says which tokens may follow position ``i`` of the pass (the root, then
each draft node); a row of ``None`` leaves that position's scores as they are (a node the
grammar refused, which acceptance can never reach). Disallowed tokens get ``-inf``, so greedy
acceptance takes the best allowed token and sampling renormalises over the allowed ones.

>>> import numpy as np
>>> scores = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 1.0]])
>>> mask_scores(scores, [np.array([True, False, True]), None]).tolist()
[[1.0, -inf, 2.0], [5.0, 0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _stack(masks: Sequence[np.ndarray | None], width: int) -> np.ndarray:
    rows = np.ones((len(masks), width), dtype=bool)
    for index, mask in enumerate(masks):
        if mask is not None:
            length = min(width, len(mask))
            rows[index, :length] = mask[:length]
            rows[index, length:] = False
    return rows


def mask_scores(scores: Any, masks: Sequence[np.ndarray | None]) -> Any:
    """``scores`` (rows x vocab: NumPy, torch or JAX) with the disallowed tokens at ``-inf``.

    A mask shorter than the scores' rows disallows the ids beyond it (ids the tokenizer does
    not have).
    """
    if len(masks) != len(scores):
        raise ValueError(f"{len(masks)} masks for {len(scores)} rows of scores")
    allowed = _stack(masks, scores.shape[-1])
    if isinstance(scores, np.ndarray):
        return np.where(allowed, scores, -np.inf)
    if hasattr(scores, "masked_fill"):                               # torch
        import torch

        blocked = torch.from_numpy(~allowed).to(scores.device)
        return scores.masked_fill(blocked, float("-inf"))
    if hasattr(scores, "at"):                                        # JAX
        return scores.at[~allowed].set(-np.inf)
    raise TypeError(f"cannot mask scores of type {type(scores).__name__}")


__all__ = ["mask_scores"]
