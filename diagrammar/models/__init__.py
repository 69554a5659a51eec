"""Models: Hugging Face causal LMs behind the ``LanguageModel``/``Session`` contracts.

:class:`HFCausalLM` wraps a model and its tokenizer; its sessions (the generic
:class:`TreeSession`, the lean GPT-2 one) share the bookkeeping of
:class:`~diagrammar.models.session.CachedSession` and score a whole draft tree in one pass over
the KV cache. :mod:`~diagrammar.models.resolve` names models (folder, ``default:SIZE``, Hub
id); :mod:`~diagrammar.models.default` is the embedded default model. This layer may import
``kernels``; it knows nothing of diagrams or of the decoding loop.

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
from diagrammar.models.hf import HFCausalLM, load_model
from diagrammar.models.hf_session import TreeSession

__all__ = ["HFCausalLM", "TreeSession", "load_model", "ModelError", "ModelLoadError",
           "ContextTooLongError", "GenerationConfigError"]
