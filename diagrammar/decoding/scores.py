"""Backend-neutral reads of the target's scores: the top-k token ids of every row.

Scores come from whichever backend runs the target (a torch tensor, a NumPy or JAX array);
drafters that learn from them (:mod:`~diagrammar.decoding.drafters.token_recycling`) need the
best ``k`` ids of each row without importing a tensor library.  An array with a ``topk`` method
(torch) uses it, where the work stays on the array's device until the small result is copied;
anything else goes through NumPy.

>>> import numpy as np
>>> scores = np.array([[0.1, 0.9, 0.5, 0.0], [3.0, 1.0, 2.0, 4.0]])
>>> top_k_ids(scores, 2).tolist()
[[1, 2], [3, 0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["top_k_ids", "top_k_probabilities"]


def top_k_ids(scores: Any, k: int) -> np.ndarray:
    """The ids of the ``k`` highest scores of each row, best first.

    Args:
        scores: a ``(rows, vocab)`` array (torch, NumPy, JAX or anything ``np.asarray`` takes).
        k: how many ids per row, at least 1; more than ``vocab`` gives ``vocab``.

    Returns:
        An ``int64`` array of shape ``(rows, min(k, vocab))``; ties in any order.

    Raises:
        ValueError: ``k`` below 1, or ``scores`` not two-dimensional.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(getattr(scores, "shape", ())) != 2:
        raise ValueError(f"scores must be a (rows, vocab) array, got shape {scores.shape!r}")
    k = min(k, int(scores.shape[-1]))
    topk = getattr(scores, "topk", None)
    if callable(topk):  # torch
        return np.asarray(topk(k, -1).indices.tolist(), dtype=np.int64).reshape(-1, k)
    array = np.asarray(scores)
    if k == array.shape[-1]:
        part = np.broadcast_to(np.arange(k), array.shape)
    else:
        part = np.argpartition(-array, k - 1, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(array, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1).astype(np.int64)


def top_k_probabilities(scores: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most likely ids of every row of logits, with their softmax probabilities.

    Args:
        scores: a ``(rows, vocab)`` array of logits (torch, NumPy, JAX, ...).
        k: how many per row, at least 1 (at most ``vocab`` are returned).

    Returns:
        ``(ids, probabilities)``: an ``int64`` and a ``float32`` array of shape
        ``(rows, min(k, vocab))``, most likely first.

    Example:
        >>> import numpy as np
        >>> ids, probs = top_k_probabilities(np.log(np.array([[0.2, 0.5, 0.3]])), 2)
        >>> ids.tolist(), [[round(float(p), 6) for p in row] for row in probs]
        ([[1, 2]], [[0.5, 0.3]])
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(getattr(scores, "shape", ())) != 2:
        raise ValueError(f"scores must be a (rows, vocab) array, got shape {scores.shape!r}")
    k = min(k, int(scores.shape[-1]))
    if callable(getattr(scores, "topk", None)):  # torch: on the device, then a small copy
        found = scores.float().softmax(-1).topk(k, -1)
        ids = np.asarray(found.indices.tolist(), dtype=np.int64).reshape(-1, k)
        return ids, np.asarray(found.values.tolist(), dtype=np.float32).reshape(-1, k)
    logits = np.asarray(scores, dtype=np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    ids = top_k_ids(probs, k)
    return ids, np.take_along_axis(probs, ids, axis=-1).astype(np.float32)
