"""Models: Hugging Face causal LMs behind the ``LanguageModel``/``Session`` contracts.

:class:`HFCausalLM` wraps a model and its tokenizer; its sessions (the generic
:class:`TreeSession`, the lean GPT-2 one) share the bookkeeping of
:class:`~diagrammar.models.session.CachedSession` and score a whole draft tree in one pass over
the KV cache. :mod:`~diagrammar.models.resolve` names models (folder, ``default:SIZE``, Hub
id); :mod:`~diagrammar.models.default` is the embedded default model. This layer may import
``kernels``; it knows nothing of diagrams or of the decoding loop.

The torch backend's names (:class:`HFCausalLM`, :class:`TreeSession`, :func:`load_model`) are
imported on first use, so that the JAX backend (:mod:`diagrammar.models.jax`) runs where torch
is not installed.

>>> from diagrammar.models import load_model
>>> load_model("/no/such/model")
Traceback (most recent call last):
...
diagrammar.models.errors.ModelLoadError: model path /no/such/model does not exist...
"""

from diagrammar.models.errors import (
    ContextTooLongError,
    GenerationConfigError,
    ModelError,
    ModelLoadError,
)

#: The lazily imported names and their modules (these import torch).
_LAZY = {"HFCausalLM": "diagrammar.models.hf", "load_model": "diagrammar.models.hf",
         "TreeSession": "diagrammar.models.hf_session"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["HFCausalLM", "TreeSession", "load_model", "ModelError", "ModelLoadError",
           "ContextTooLongError", "GenerationConfigError"]
