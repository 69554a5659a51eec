"""Model backends: Hugging Face causal LMs with tree verification over a KV cache.

>>> from diagrammar.models import HFCausalLM, load_model
>>> callable(load_model)
True
"""

from diagrammar.models.errors import ContextTooLongError, ModelError, ModelLoadError
from diagrammar.models.hf import HFCausalLM, load_model
from diagrammar.models.hf_session import TreeSession

__all__ = ["HFCausalLM", "TreeSession", "load_model", "ModelError", "ModelLoadError",
           "ContextTooLongError"]
