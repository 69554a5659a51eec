"""Hugging Face causal language models with token-tree verification over a KV cache.

:class:`HFCausalLM` wraps any ``AutoModelForCausalLM`` and its tokenizer. A
:class:`TreeSession` holds the KV cache of one sequence and scores a whole token tree in one
forward pass, with a tree attention mask and tree position ids; afterwards it keeps only the
cache entries of the accepted path.

The cache always holds every committed token but the last one (the *root*). Verifying a tree
feeds the root and the tree's nodes together, so the root's scores (the next token when the
whole draft is rejected) come from the same pass.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=64, n_embd=16, n_layer=1,
...                                    n_head=2))
>>> lm = HFCausalLM(model)
>>> session = lm.session([1, 2, 3])
>>> scores = session.verify(3, tokens=[4, 5, 6], parents=[-1, 0, -1])
>>> tuple(scores.shape)
(4, 32)
>>> session.keep([0, 1]); session.cache_length
5
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any
from pathlib import Path

import torch

from diagrammar.models.errors import ContextTooLongError, ModelLoadError


class HFCausalLM:
    """A Hugging Face causal LM (and optionally its tokenizer), ready for tree verification.

    Works with any decoder-only model whose forward accepts ``position_ids``, a 4-D additive
    ``attention_mask`` and a ``DynamicCache`` (GPT-2, Llama, Mistral, Qwen, ... in
    transformers >= 5). For GPT-2 models, ``fast=True`` (the default) uses the lean forward of
    :mod:`diagrammar.models.fast_gpt2` on the same weights.
    """

    def __init__(self, model: torch.nn.Module, tokenizer=None, fast: bool = True) -> None:
        from diagrammar.models import fast_gpt2

        self.model = model.eval()
        self.fast = fast and fast_gpt2.supports(model)
        self.tokenizer = tokenizer
        config = model.config
        self.config = config
        self.vocab_size: int = int(model.get_output_embeddings().weight.shape[0])
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = getattr(config, "eos_token_id", None)
        if eos is None and tokenizer is not None:
            eos = tokenizer.eos_token_id
        self.eos_token_ids: frozenset[int] = frozenset(
            e for e in (eos if isinstance(eos, (list, tuple)) else [eos])
            if e is not None and 0 <= e < self.vocab_size
        )
        # transformers renamed ``past_key_values`` to ``cache`` during the 5.x series.
        params = inspect.signature(model.forward).parameters
        self.cache_argument = "cache" if "cache" in params else "past_key_values"
        self.max_positions: int | None = (
            getattr(config, "n_positions", None)
            or getattr(config, "max_position_embeddings", None)
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu") -> HFCausalLM:
        """Loads a model and its tokenizer from a local folder (never from the network)."""
        return load_model(path, dtype=dtype, device=device)

    # -- text -----------------------------------------------------------------------------------
    def _require_tokenizer(self):
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

    # -- sessions -------------------------------------------------------------------------------
    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        """Raises :class:`ContextTooLongError` when prompt plus new tokens cannot fit."""
        if prompt_length < 1:
            raise ValueError("the prompt is empty: give at least one token")
        if self.max_positions is not None and prompt_length + max_new_tokens > self.max_positions:
            raise ContextTooLongError(
                f"the prompt has {prompt_length} tokens and {max_new_tokens} new tokens were "
                f"asked for, but the model's context holds {self.max_positions}: shorten the "
                "prompt or ask for fewer new tokens"
            )

    def session(self, prompt_ids: Sequence[int]) -> Any:
        """Prefills the cache with the prompt (all but its last token) and returns the session."""
        if self.fast:
            from diagrammar.models.fast_gpt2 import FastGPT2Session

            return FastGPT2Session(self.model, prompt_ids)
        from diagrammar.models.hf_session import TreeSession

        return TreeSession(self, prompt_ids)


def load_model(path: str | os.PathLike, dtype: torch.dtype | None = None,
               device: str | torch.device = "cpu") -> HFCausalLM:
    """Loads a causal LM and its tokenizer from a local folder, with one clear error on failure.

    >>> load_model("/no/such/model")
    Traceback (most recent call last):
    ...
    diagrammar.models.errors.ModelLoadError: model path /no/such/model does not exist: give \
the folder of a Hugging Face model saved with save_pretrained()
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path).expanduser()
    hint = "give the folder of a Hugging Face model saved with save_pretrained()"
    if not folder.exists():
        raise ModelLoadError(f"model path {folder} does not exist: {hint}")
    if not folder.is_dir():
        raise ModelLoadError(f"model path {folder} is not a folder: {hint}")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model path {folder} has no config.json: {hint}")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=dtype if dtype is not None else "auto")
    except Exception as error:  # noqa: BLE001 - any library failure becomes one clear message
        raise ModelLoadError(f"cannot load the model in {folder}: {type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''} ({hint})"
                             ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"cannot load the tokenizer in {folder}: {type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''}; the folder "
                             "must hold the tokenizer files saved with save_pretrained()"
                             ) from None
    return HFCausalLM(model.to(device), tokenizer)


__all__ = ["HFCausalLM", "load_model"]
