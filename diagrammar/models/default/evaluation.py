"""Held-out scoring of the default model: next-token loss and accuracy on unseen modules.

The held-out modules (``HELDOUT_MODULES`` of :mod:`diagrammar.models.default.corpus`) are never
trained on; :func:`evaluate` scores a model on their token streams, in float32, and its result
goes into each size's manifest (``heldout_loss``, ``heldout_accuracy``, per module).

Example (an untrained one-layer model scores about ln(vocab) nats/token):
    >>> import numpy as np, torch
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> from diagrammar.models.default.evaluation import evaluate
    >>> _ = torch.manual_seed(0)
    >>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1,
    ...                                    n_head=1, bos_token_id=0, eos_token_id=0))
    >>> result = evaluate(model, {"m": np.arange(21)}, seq_len=8)
    >>> result.tokens, bool(abs(result.loss - np.log(50)) < 0.5)
    (20, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import GPT2LMHeadModel

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """Held-out cross-entropy (nats/token), next-token accuracy and token count."""

    loss: float
    accuracy: float
    tokens: int
    per_module: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-serialisable data."""
        return dataclasses.asdict(self)


@torch.inference_mode()
def evaluate(
    model: GPT2LMHeadModel,
    streams: dict[str, np.ndarray],
    seq_len: int = 1024,
    batch_size: int = 4,
) -> EvalResult:
    """Next-token loss and accuracy of ``model`` on each stream, in float32.

    Each stream is cut into consecutive, non-overlapping windows of up to ``seq_len + 1``
    tokens; every token after the first of a window is predicted from the tokens before it
    in that window.  The model's train/eval mode is restored afterwards.

    Args:
        model: the model to score.
        streams: token ids of each held-out module, keyed by module name.
        seq_len: tokens of context per window (at most the model's ``n_positions``).
        batch_size: windows per forward pass.

    Returns:
        Token-weighted loss and accuracy over all streams, the number of predicted tokens,
        and the same three numbers per module.
    """
    was_training = model.training
    model.eval()
    total_loss, total_correct, total = 0.0, 0, 0
    per_module: dict[str, dict[str, float]] = {}
    for name, ids in streams.items():
        windows = [
            torch.from_numpy(ids[s : s + seq_len + 1].astype(np.int64))
            for s in range(0, max(1, len(ids) - 1), seq_len)
        ]
        windows = [w for w in windows if len(w) >= 2]
        m_loss, m_correct, m_total = 0.0, 0, 0
        # Same-length windows batch together; the last (shorter) one goes alone.
        for i in range(0, len(windows), batch_size):
            group = windows[i : i + batch_size]
            for chunk in _same_length_groups(group):
                batch = torch.stack(chunk)
                inputs = batch[:, :-1]
                mask = torch.ones_like(inputs)  # eos doubles as pad: say there is no padding
                logits = model(input_ids=inputs, attention_mask=mask).logits.float()
                target = batch[:, 1:]
                loss = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
                )
                m_loss += float(loss)
                m_correct += int((logits.argmax(-1) == target).sum())
                m_total += target.numel()
        per_module[name] = {
            "loss": m_loss / max(1, m_total),
            "accuracy": m_correct / max(1, m_total),
            "tokens": m_total,
        }
        total_loss += m_loss
        total_correct += m_correct
        total += m_total
    model.train(was_training)
    return EvalResult(
        loss=total_loss / max(1, total),
        accuracy=total_correct / max(1, total),
        tokens=total,
        per_module=per_module,
    )


def _same_length_groups(windows: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[int, list[torch.Tensor]] = {}
    for w in windows:
        groups.setdefault(len(w), []).append(w)
    return list(groups.values())
