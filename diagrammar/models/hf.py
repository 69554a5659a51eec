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
from pathlib import Path

import torch

from diagrammar.models.errors import ContextTooLongError, ModelLoadError
from diagrammar.models.tree_mask import is_chain, tree_layout


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

    def session(self, prompt_ids: Sequence[int]) -> TreeSession:
        """Prefills the cache with the prompt (all but its last token) and returns the session."""
        if self.fast:
            from diagrammar.models.fast_gpt2 import FastGPT2Session

            return FastGPT2Session(self.model, prompt_ids)
        return TreeSession(self, prompt_ids)


class TreeSession:
    """The KV cache of one sequence, scored tree by tree.

    Attributes:
        cache_length: how many committed tokens the cache holds (all but the root).
    """

    def __init__(self, lm: HFCausalLM, prompt_ids: Sequence[int]) -> None:
        self.lm = lm
        self.cache = None
        self.cache_length = 0
        self._tree_length = 0
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        if len(ids) > 1:
            with torch.inference_mode():
                out = lm.model(input_ids=torch.tensor([ids[:-1]], device=lm.device),
                               use_cache=True, logits_to_keep=1)
            self.cache = out[lm.cache_argument]
            self.cache_length = len(ids) - 1

    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> torch.Tensor:
        """Scores the root and a draft tree below it in one forward pass.

        Args:
            root: the last committed token (not yet in the cache).
            tokens: the draft tree's tokens, parents before children.
            parents: for each node, the index of its parent node, or -1 for the root.

        Returns:
            logits of shape ``(1 + len(tokens), vocab)``: row 0 scores the token after the root,
            row ``i + 1`` the token after node ``i``.
        """
        n = len(tokens) + 1
        lm = self.lm
        device = lm.device
        input_ids = torch.tensor([[root, *tokens]], device=device)
        kwargs = {}
        if not is_chain(parents):
            depths, ancestors = tree_layout(parents)
            dtype = lm.dtype
            mask = torch.zeros((1, 1, n, self.cache_length + n), dtype=dtype, device=device)
            mask[0, 0, :, self.cache_length:].masked_fill_(~ancestors.to(device),
                                                           torch.finfo(dtype).min)
            kwargs["attention_mask"] = mask
            kwargs["position_ids"] = torch.tensor(
                [[self.cache_length + d for d in depths]], device=device)
        with torch.inference_mode():
            kwargs[lm.cache_argument] = self.cache
            out = lm.model(input_ids=input_ids, use_cache=True, **kwargs)
        self.cache = out[lm.cache_argument]
        self._tree_length = n
        return out.logits[0]

    def keep(self, path: Sequence[int]) -> None:
        """After :meth:`verify`, keeps the root's and the accepted nodes' cache entries.

        Args:
            path: indices of the accepted draft nodes, root to leaf.
        """
        if self._tree_length == 0:
            raise RuntimeError("keep() must follow verify()")
        start = self.cache_length
        path = list(path)
        if path == list(range(len(path))):
            self._truncate_cache(start + 1 + len(path))
        else:
            index = torch.tensor([*range(start + 1), *(start + 1 + i for i in path)],
                                 device=self.lm.device)
            self._select_cache(index)
        self.cache_length = start + 1 + len(path)
        self._tree_length = 0

    def truncate(self, length: int) -> None:
        """Rolls the cache back to its first ``length`` tokens."""
        if not 0 <= length <= self.cache_length:
            raise ValueError(f"cannot roll back to {length} tokens: the cache holds "
                             f"{self.cache_length}")
        self._truncate_cache(length)
        self.cache_length = length
        self._tree_length = 0

    def _layers(self):
        layers = getattr(self.cache, "layers", None)
        if layers is None:
            raise NotImplementedError(
                f"cache type {type(self.cache).__name__} has no per-layer tensors; tree "
                "verification needs a transformers DynamicCache")
        return layers

    def _truncate_cache(self, length: int) -> None:
        if self.cache is None:
            return
        for layer in self._layers():
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]

    def _select_cache(self, index: torch.Tensor) -> None:
        for layer in self._layers():
            expected = self.cache_length + self._tree_length
            if layer.keys.shape[-2] != expected:
                raise NotImplementedError(
                    f"cache layer {type(layer).__name__} holds {layer.keys.shape[-2]} positions, "
                    f"not {expected}: sliding-window caches do not support branching trees yet")
            layer.keys = layer.keys.index_select(-2, index)
            layer.values = layer.values.index_select(-2, index)


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


__all__ = ["HFCausalLM", "TreeSession", "load_model"]
