"""Text in and out of a model through its Hugging Face tokenizer: what every backend's
language model shares (torch's :class:`~diagrammar.models.hf.HFCausalLM`, JAX's
:class:`~diagrammar.models.jax.model.JaxCausalLM`).

>>> class Words(TokenizerText):
...     def __init__(self, tokenizer): self.tokenizer = tokenizer
>>> Words(None).encode("hi")
Traceback (most recent call last):
...
diagrammar.models.errors.ModelLoadError: this model has no tokenizer: pass token ids, or load \
the model from a folder that holds a tokenizer
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagrammar.models.errors import ModelLoadError


class TokenizerText:
    """``encode``/``decode`` through ``self.tokenizer`` (``None``: token ids only)."""

    tokenizer: Any

    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ModelLoadError("this model has no tokenizer: pass token ids, or load the model "
                                 "from a folder that holds a tokenizer")
        return self.tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, with the tokenizer's usual special tokens (e.g. BOS)."""
        return list(self._require_tokenizer()(text)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special tokens dropped."""
        return self._require_tokenizer().decode(list(ids), skip_special_tokens=True)


__all__ = ["TokenizerText"]
