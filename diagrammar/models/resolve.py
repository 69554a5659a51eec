"""One way to name a model everywhere: a local folder, or ``default:SIZE``.

>>> from diagrammar.models.resolve import DEFAULT_PREFIX, resolve_model
>>> resolve_model("default:huge")
Traceback (most recent call last):
...
ValueError: unknown default model size 'huge'; valid sizes: tiny, small
"""

from __future__ import annotations

import os
import sys

import torch

from diagrammar.models.hf import HFCausalLM, load_model

#: Prefix naming the embedded default model, as in ``default:small``.
DEFAULT_PREFIX = "default:"


def resolve_model(spec: str | os.PathLike, dtype: torch.dtype | None = None) -> HFCausalLM:
    """The model named by ``spec``: ``default:tiny`` / ``default:small`` (trained here on first
    use) or a local Hugging Face model folder."""
    text = os.fspath(spec)
    if text.startswith(DEFAULT_PREFIX):
        from diagrammar.models.default import SIZES, default, manifest, recipe_hash

        size = text[len(DEFAULT_PREFIX):]
        if size not in SIZES:
            raise ValueError(f"unknown default model size {size!r}; valid sizes: "
                             f"{', '.join(SIZES)}")
        try:
            current = manifest(size).get("recipe_hash") == recipe_hash(size)
        except (FileNotFoundError, ValueError):
            current = False
        if not current:
            print(f"the default {size} model is not trained (or is stale): training it first "
                  f"(`diagrammar train-default --size {size}` does the same)", file=sys.stderr)
        model, tokenizer = default(size)
        if dtype is not None:
            model = model.to(dtype)
        return HFCausalLM(model, tokenizer)
    return load_model(text, dtype=dtype)


__all__ = ["DEFAULT_PREFIX", "resolve_model"]
