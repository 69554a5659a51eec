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
>>> model.training      # the caller's model is left as it was (see HFCausalLM)
True
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from diagrammar.models.errors import (
    GenerationConfigError,
    ModelError,
    ModelLoadError,
    check_context,
)
from diagrammar.models.hf_folder import GREEDY_SETTINGS as _GREEDY_SETTINGS
from diagrammar.models.hf_folder import (
    TOKENIZER_FILES,
    custom_code_error,
    first_line,
    greedy_settings,
)
from diagrammar.models.hf_folder import load_tokenizer as _load_tokenizer
from diagrammar.models.hf_folder import refuse_custom_code as _refuse_custom_code
from diagrammar.models.text import TokenizerText

#: The environment variable read for the lean GPT-2 session's attention when
#: :class:`HFCausalLM` is given none (``sdpa``, ``reference`` or ``triton``).
ATTENTION_VARIABLE = "DIAGRAMMAR_ATTENTION"

def _check_generation_config(model: torch.nn.Module, has_eos: bool) -> None:
    settings = greedy_settings(getattr(model, "generation_config", None), has_eos)
    if not settings:
        return
    neutral = {name: value for name, _active, value in _GREEDY_SETTINGS}
    shown = ", ".join(f"{name}={value!r}" for name, value in settings.items())
    fixes = "; ".join(f"model.generation_config.{name} = {neutral[name]}" for name in settings)
    source = getattr(model, "name_or_path", "") or ""
    where = (f" (or remove {'it' if len(settings) == 1 else 'them'} from "
             f"{Path(source) / 'generation_config.json'})"
             if source and Path(source).is_dir() else "")
    raise GenerationConfigError(
        f"the model's generation config sets {shown}, which Hugging Face generate applies "
        f"even to greedy decoding and diagrammar's decoders do not: to decode without "
        f"{'it' if len(settings) == 1 else 'them'}, set {fixes} before HFCausalLM(model)"
        f"{where}")


def _eval_view(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` itself when every module is in eval mode, else a view in eval mode.

    The view is a tree of new module objects sharing the caller's parameters and buffers
    (nothing is copied but the module objects), so the caller's modules keep their mode and
    later updates of the weights are seen by the view.
    """
    if not any(module.training for module in model.modules()):
        return model
    if any(hasattr(module, "_hf_hook") for module in model.modules()):
        raise ModelError("this model is in training mode and dispatched with accelerate "
                             "hooks (device_map): call model.eval() before wrapping it")
    clones: dict[int, torch.nn.Module] = {}

    def clone(module: torch.nn.Module) -> torch.nn.Module:
        if id(module) in clones:
            return clones[id(module)]
        view = copy.copy(module)
        clones[id(module)] = view
        state = view.__dict__
        state["_modules"] = {name: None if child is None else clone(child)
                             for name, child in module._modules.items()}
        state["_parameters"] = dict(module._parameters)
        state["_buffers"] = dict(module._buffers)
        state["training"] = False
        return view

    return clone(model)


class HFCausalLM(TokenizerText):
    """A Hugging Face causal LM (and optionally its tokenizer), ready for tree verification.

    Works with any decoder-only model whose forward accepts ``position_ids``, a 4-D additive
    ``attention_mask`` and a ``DynamicCache`` (GPT-2, Llama, Mistral, Qwen, ... in
    transformers >= 5). For GPT-2 models, ``fast=True`` (the default) uses the lean forward of
    :mod:`diagrammar.models.fast_gpt2` on the same weights.

    ``attention`` picks the lean session's attention: ``"sdpa"`` (the default),
    ``"reference"`` or ``"triton"`` (the tree-attention kernels of :mod:`diagrammar.kernels`;
    see :mod:`~diagrammar.models.fast_gpt2`). Left at ``None``, it is read from the
    ``DIAGRAMMAR_ATTENTION`` environment variable (``"sdpa"`` when unset), which applies to
    lean sessions only: models that run the Hugging Face forward ignore it, whereas an
    explicit kernel for such a model is an error. An unknown name, or a kernel that cannot run
    on the model's device and dtype, fails here. ``self.attention`` is the choice in effect
    (``None`` for models that run the Hugging Face forward); batched verification
    (:meth:`batch_session`) always runs ``"sdpa"``.

    What wrapping does, and does not do:

    - **The caller's model is left as it is.** Its forwards always run in eval semantics
      (no dropout), so outputs are exact: a model in eval mode is used as it is; a model in
      training mode is not switched to eval mode, ``self.model`` is then an eval-mode *view*
      of it (new module objects sharing the very same parameters and buffers), and the
      caller's ``model.training`` stays ``True``.
    - **End of sequence is what Hugging Face** ``generate`` **stops at**:
      ``model.generation_config.eos_token_id`` (one id or a list), or
      ``model.config.eos_token_id`` for a model without a generation config; never the
      tokenizer's EOS token, which ``generate`` ignores too. To stop at the tokenizer's EOS,
      set ``model.generation_config.eos_token_id`` before wrapping.
    - **Generation-config settings that change greedy decoding are refused.** Hugging Face
      ``generate(do_sample=False)`` applies ``repetition_penalty``, ``no_repeat_ngram_size``,
      ``min_new_tokens``, ``bad_words_ids``, ``suppress_tokens``, forced BOS/EOS tokens, ...
      from the model's generation config (see :func:`greedy_settings`); diagrammar's
      decoders do not, so such a model raises :class:`GenerationConfigError` naming the
      settings and how to switch them off, instead of differing silently. Sampling settings
      (``do_sample``, ``temperature``, ``top_k``, ``top_p``) do not apply to greedy decoding
      and are not refused.
    - ``device`` and ``dtype`` are read once, here: after moving or casting the model
      (``model.to(...)``), wrap it again.
    """

    def __init__(self, model: torch.nn.Module, tokenizer=None, fast: bool = True,
                 attention: str | None = None) -> None:
        from diagrammar.models import fast_gpt2

        config = model.config
        self.config = config
        self.vocab_size: int = int(model.get_output_embeddings().weight.shape[0])
        generation_config = getattr(model, "generation_config", None)
        eos = (generation_config.eos_token_id if generation_config is not None
               else getattr(config, "eos_token_id", None))
        self.eos_token_ids: frozenset[int] = frozenset(
            e for e in (eos if isinstance(eos, (list, tuple)) else [eos])
            if e is not None and 0 <= e < self.vocab_size
        )
        _check_generation_config(model, bool(self.eos_token_ids))
        self.model = _eval_view(model)
        self.fast = fast and fast_gpt2.supports(self.model)
        self.tokenizer = tokenizer
        first = next(model.parameters())
        #: Where the weights are and their type, read once (wrap again after ``model.to()``).
        self.device: torch.device = first.device
        self.dtype: torch.dtype = first.dtype
        # transformers renamed ``past_key_values`` to ``cache`` during the 5.x series.
        params = inspect.signature(model.forward).parameters
        self.cache_argument = "cache" if "cache" in params else "past_key_values"
        self.max_positions: int | None = (
            getattr(config, "n_positions", None)
            or getattr(config, "max_position_embeddings", None)
        )
        #: The lean session's attention (``None``: the model runs the Hugging Face forward).
        self.attention: str | None = self._choose_attention(attention, fast)

    def _choose_attention(self, attention: str | None, fast: bool) -> str | None:
        from diagrammar.models import fast_gpt2

        variable = attention is None
        if variable:
            attention = os.environ.get(ATTENTION_VARIABLE, "").strip() or "sdpa"
        source = f" (from ${ATTENTION_VARIABLE})" if variable else ""
        if attention not in fast_gpt2.ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}{source}: choose one of "
                             f"{', '.join(map(repr, fast_gpt2.ATTENTIONS))}")
        if not self.fast:
            if attention == "sdpa" or variable:
                return None
            why = "fast=False was given" if not fast else "it is not a plain GPT-2 model"
            raise ValueError(f"attention={attention!r} selects the attention of the lean GPT-2 "
                             f"session, but this model runs the Hugging Face forward ({why}): "
                             "leave attention unset")
        try:
            fast_gpt2.attention_kernel(attention, self.device, self.dtype)
        except (ValueError, RuntimeError) as error:
            raise type(error)(f"{error}{source}") from None
        return attention

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu", *,
                        require_tokenizer: bool = True) -> HFCausalLM:
        """Loads a model and its tokenizer from a local folder or a cached Hub id
        (see :func:`load_model`)."""
        return load_model(path, dtype=dtype, device=device, require_tokenizer=require_tokenizer)

    # -- sessions -------------------------------------------------------------------------------
    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        """Raises :class:`ContextTooLongError` when prompt plus new tokens cannot fit."""
        check_context(prompt_length, max_new_tokens, self.max_positions)

    def session(self, prompt_ids: Sequence[int]) -> Any:
        """Prefills the cache with the prompt (all but its last token) and returns the session."""
        if self.fast:
            from diagrammar.models.fast_gpt2 import FastGPT2Session

            return FastGPT2Session(self.model, prompt_ids, attention=self.attention)
        from diagrammar.models.hf_session import TreeSession

        return TreeSession(self, prompt_ids)

    def batch_session(self, max_batch: int) -> Any:
        """A :class:`~diagrammar.decoding.protocols.BatchSession`: up to ``max_batch`` rows
        verified in one forward pass (the lean GPT-2 forward when ``fast``, else the Hugging
        Face forward with per-row masks and positions)."""
        if self.fast:
            from diagrammar.models.batched_gpt2 import GPT2Batch

            return GPT2Batch(self.model, max_batch)
        from diagrammar.decoding.batch import SerialBatch
        from diagrammar.models.hf_batch import HFBatchSession

        try:
            return HFBatchSession(self, max_batch)
        except ModelError:          # no position ids or ALiBi: rows verified one by one
            return SerialBatch(self)


def load_model(path: str | os.PathLike, dtype: torch.dtype | None = None,
               device: str | torch.device = "cpu", *,
               require_tokenizer: bool = True) -> HFCausalLM:
    """Loads a causal LM and its tokenizer, with one clear error on failure.

    ``path`` is a local folder saved with ``save_pretrained()``, or a Hugging Face Hub id
    (``org/name``, when no such local path exists) looked up in the local Hugging Face cache
    first and downloaded only when the network allows (see
    :func:`diagrammar.models.resolve.hub_snapshot`).

    The folder must hold a tokenizer (``tokenizer.json``, ``vocab.json`` + ``merges.txt``,
    ``tokenizer.model``, ...): without one, :class:`ModelLoadError` says so, unless
    ``require_tokenizer=False``, which loads the model alone (``tokenizer`` is then ``None``
    and prompts must be token ids). A model whose folder ships its own Python code (an
    ``auto_map`` for a model type transformers does not know) is refused: its code never runs.

    >>> load_model("/no/such/model")
    Traceback (most recent call last):
    ...
    diagrammar.models.errors.ModelLoadError: model path /no/such/model does not exist: give \
the folder of a Hugging Face model saved with save_pretrained(), or a Hub id (org/name)
    """
    text = os.fspath(path)
    folder = Path(text).expanduser()
    hint = ("give the folder of a Hugging Face model saved with save_pretrained(), "
            "or a Hub id (org/name)")
    if not folder.exists():
        from diagrammar.models.resolve import hub_snapshot, is_hub_id

        if not is_hub_id(text):
            raise ModelLoadError(f"model path {folder} does not exist: {hint}")
        folder = hub_snapshot(text)
    if not folder.is_dir():
        raise ModelLoadError(f"model path {folder} is not a folder: {hint}")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model path {folder} has no config.json: {hint}")
    _refuse_custom_code(folder)
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False,
            dtype=dtype if dtype is not None else "auto")
    except Exception as error:  # noqa: BLE001 - any library failure becomes one clear message
        if "trust_remote_code" in str(error):
            raise custom_code_error(folder, "model") from None
        raise ModelLoadError(f"cannot load the model in {folder}: {first_line(error)} "
                             f"({hint})") from None
    tokenizer = _load_tokenizer(folder, require_tokenizer)
    return HFCausalLM(model.to(device), tokenizer)


__all__ = ["ATTENTION_VARIABLE", "HFCausalLM", "load_model", "greedy_settings", "TOKENIZER_FILES"]
