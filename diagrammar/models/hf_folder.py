"""What a Hugging Face model folder says, read without torch: both backends' loaders share it.

- :func:`greedy_settings`: the generation-config settings that Hugging Face's greedy
  ``generate`` applies and diagrammar's decoders do not (both backends refuse them);
- :func:`load_tokenizer`: the folder's tokenizer through ``transformers.AutoTokenizer``
  (which needs no torch), with one clear error for a missing or broken tokenizer or one that
  needs the folder's own code (:func:`refuse_custom_code` refuses such a model).

Nothing here imports torch, so the JAX backend (:mod:`diagrammar.models.jax`) loads a folder
in a process without it; :mod:`diagrammar.models.hf` re-exports these names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diagrammar.models.errors import ModelLoadError

# -- generation-config settings that Hugging Face applies even to greedy decoding --------------
# Each entry: (setting, whether a value changes greedy ``generate``, the value that turns it
# off). It mirrors ``GenerationMixin._get_logits_processor`` (the processors built when
# ``do_sample=False``) and the stopping criteria, plus the settings that make
# ``generate(do_sample=False)`` something other than greedy search. Sampling-only settings
# (temperature, top_k, top_p, ...) are absent on purpose: greedy decoding ignores them.
# ``renormalize_logits`` (a log-softmax, argmax unchanged) and ``max_time`` (a wall-clock
# limit) are absent too.
GREEDY_SETTINGS: tuple[tuple[str, Callable[[Any, bool], bool], str], ...] = (
    ("repetition_penalty", lambda v, eos: v is not None and v != 1.0, "1.0"),
    ("encoder_repetition_penalty", lambda v, eos: v is not None and v != 1.0, "1.0"),
    ("no_repeat_ngram_size", lambda v, eos: v is not None and v > 0, "0"),
    ("encoder_no_repeat_ngram_size", lambda v, eos: v is not None and v > 0, "0"),
    ("bad_words_ids", lambda v, eos: bool(v), "None"),
    ("sequence_bias", lambda v, eos: bool(v), "None"),
    ("min_length", lambda v, eos: eos and v is not None and v > 0, "0"),
    ("min_new_tokens", lambda v, eos: eos and v is not None and v > 0, "None"),
    ("forced_bos_token_id", lambda v, eos: v is not None, "None"),
    ("forced_eos_token_id", lambda v, eos: v is not None, "None"),
    ("suppress_tokens", lambda v, eos: bool(v), "None"),
    ("begin_suppress_tokens", lambda v, eos: bool(v), "None"),
    ("exponential_decay_length_penalty", lambda v, eos: v is not None, "None"),
    ("remove_invalid_values", lambda v, eos: v is True, "False"),
    ("guidance_scale", lambda v, eos: v is not None and v != 1, "None"),
    ("watermarking_config", lambda v, eos: v is not None, "None"),
    ("stop_strings", lambda v, eos: bool(v), "None"),
    ("num_beams", lambda v, eos: v is not None and v > 1, "1"),
    ("penalty_alpha", lambda v, eos: v is not None and v > 0, "None"),
    ("dola_layers", lambda v, eos: v is not None, "None"),
)


def greedy_settings(generation_config: Any, has_eos: bool = True) -> dict[str, Any]:
    """The settings of ``generation_config`` that make Hugging Face's greedy ``generate``
    differ from plain greedy decoding (name -> value); empty when there are none.

    >>> from transformers import GenerationConfig
    >>> greedy_settings(GenerationConfig(repetition_penalty=1.3, temperature=0.7))
    {'repetition_penalty': 1.3}
    >>> greedy_settings(GenerationConfig(repetition_penalty=1.0, do_sample=True, top_k=5))
    {}
    """
    if generation_config is None:
        return {}
    found = {}
    for name, active, _neutral in GREEDY_SETTINGS:
        value = getattr(generation_config, name, None)
        if active(value, has_eos):
            found[name] = value
    return found


#: Files a saved tokenizer consists of (one of them, at least).
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt",
                   "spiece.model", "sentencepiece.bpe.model")
_NO_TOKENIZER = "has no tokenizer files (tokenizer.json / vocab.json+merges.txt / tokenizer.model)"


def first_line(error: BaseException) -> str:
    """``error``'s type and the first line of its message (a library's failure, shown short)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def custom_code_error(folder: Path, what: str) -> ModelLoadError:
    """The refusal of a ``what`` (model or tokenizer) that needs ``folder``'s own code."""
    return ModelLoadError(
        f"the {what} in {folder} needs the folder's own Python code (auto_map with a model type "
        "transformers does not ship): diagrammar never runs a model folder's code; use a model "
        "whose architecture transformers provides")


def refuse_custom_code(folder: Path) -> None:
    """Refuses a folder whose config names code of its own for a model type transformers does
    not know (transformers would ask to run that code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the loader reports a broken config.json
    if isinstance(config, dict) and config.get("auto_map") and (
            config.get("model_type") not in CONFIG_MAPPING):
        raise custom_code_error(folder, "model")


def has_tokenizer_files(folder: Path) -> bool:
    """Whether ``folder`` holds one of :data:`TOKENIZER_FILES` (or a ``*.tiktoken`` file)."""
    return (any((folder / name).is_file() for name in TOKENIZER_FILES)
            or any(folder.glob("*.tiktoken")))


def load_tokenizer(folder: Path, required: bool):
    """The tokenizer saved in ``folder`` (``transformers.AutoTokenizer``, never the folder's
    own code), or ``None`` when there is none and ``required`` is false; a clear
    :class:`ModelLoadError` otherwise."""
    from transformers import AutoTokenizer

    what = (f"model folder {folder} {_NO_TOKENIZER}: save the tokenizer there with "
            "tokenizer.save_pretrained(), or load the model alone with "
            "load_model(..., require_tokenizer=False) and give token ids")
    if not has_tokenizer_files(folder):
        if required:
            raise ModelLoadError(what)
        return None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True,
                                                  trust_remote_code=False)
    except Exception as error:  # noqa: BLE001 - any library failure becomes one clear message
        if "trust_remote_code" in str(error):
            raise custom_code_error(folder, "tokenizer") from None
        raise ModelLoadError(f"cannot load the tokenizer in {folder}: {first_line(error)}; "
                             "the folder must hold the tokenizer files saved with "
                             "save_pretrained()") from None
    added = set(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    if not set(tokenizer.get_vocab()) - added:
        if required:
            raise ModelLoadError(what.replace(_NO_TOKENIZER, "has a tokenizer with an empty "
                                              "vocabulary"))
        return None
    return tokenizer


__all__ = ["GREEDY_SETTINGS", "TOKENIZER_FILES", "custom_code_error", "first_line",
           "greedy_settings", "has_tokenizer_files", "load_tokenizer", "refuse_custom_code"]
