"""The JAX backend's model loader: whatever a user passes becomes a :class:`JaxCausalLM`.

A :class:`JaxCausalLM` is used as it is; a name is resolved as the torch backend resolves it
(:mod:`diagrammar.models.resolve`): ``default:tiny`` / ``default:small`` (the embedded default
model's folder, trained first when there is none), a local folder saved with
``save_pretrained()``, or a Hub id ``org/name`` found in (or downloaded to) the Hugging Face
cache. Folders load in float32; for another dtype, build the model with
:meth:`JaxCausalLM.from_folder` and pass it.

>>> load_jax_model(42)
Traceback (most recent call last):
...
TypeError: the jax backend takes a JaxCausalLM, a model folder, default:SIZE or a Hub id, not int
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from diagrammar.models.errors import ModelLoadError
from diagrammar.models.jax.model import JaxCausalLM


def default_folder(size: str) -> Path:
    """The folder of the embedded default model of ``size`` (trained first when missing)."""
    from diagrammar.models.default import SIZES, model_folder, train_default

    if size not in SIZES:
        raise ValueError(f"unknown default model size {size!r}; valid sizes: {', '.join(SIZES)}")
    folder = model_folder(size)
    if folder is None:
        print(f"the default {size} model is not trained (or is stale): training it first "
              f"(`diagrammar train-default --size {size}` does the same)", file=sys.stderr)
        folder = train_default(size)
    return Path(folder)


def model_path(spec: str | os.PathLike) -> Path:
    """The local folder ``spec`` names: ``default:SIZE``, a folder, or a Hub id."""
    from diagrammar.models.resolve import DEFAULT_PREFIX, hub_snapshot, is_hub_id

    text = os.fspath(spec)
    if text.startswith(DEFAULT_PREFIX):
        return default_folder(text[len(DEFAULT_PREFIX):])
    folder = Path(text).expanduser()
    if not folder.exists():
        if not is_hub_id(text):
            raise ModelLoadError(f"model path {folder} does not exist: give the folder of a "
                                 "Hugging Face model saved with save_pretrained(), "
                                 "default:SIZE or a Hub id (org/name)")
        folder = hub_snapshot(text)
    return folder


def load_jax_model(model: Any) -> JaxCausalLM:
    """A :class:`JaxCausalLM` from one, or from a name (see the module docstring)."""
    if isinstance(model, JaxCausalLM):
        return model
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        return JaxCausalLM.from_folder(model_path(model))
    raise TypeError(f"the jax backend takes a JaxCausalLM, a model folder, default:SIZE or a "
                    f"Hub id, not {type(model).__name__}")


__all__ = ["default_folder", "load_jax_model", "model_path"]
