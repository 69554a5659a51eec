"""Model backends: Hugging Face causal LMs with tree verification over a KV cache.

>>> from diagrammar.models import HFCausalLM, load_model
>>> callable(load_model)
True
"""

from diagrammar.models.errors import ContextTooLongError, ModelError, ModelLoadError
from diagrammar.models.hf import HFCausalLM, TreeSession, load_model

__all__ = ["HFCausalLM", "TreeSession", "load_model", "ModelError", "ModelLoadError",
           "ContextTooLongError"]
