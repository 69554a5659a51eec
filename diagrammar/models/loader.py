"""The torch backend's model loader: whatever a user passes becomes an :class:`HFCausalLM`.

>>> load_torch_model(42)
Traceback (most recent call last):
...
TypeError: the torch backend takes an HFCausalLM, a Hugging Face model, (model, tokenizer), \
a model folder or a Hub id, not int
"""

from __future__ import annotations

from typing import Any

from diagrammar.models.hf import HFCausalLM


def load_torch_model(model: Any) -> HFCausalLM:
    """An :class:`HFCausalLM` from one, from a Hugging Face model (or ``(model, tokenizer)``),
    or from a name ``resolve_model`` knows (a local folder, ``default:SIZE``, a Hub id)."""
    if isinstance(model, HFCausalLM):
        return model
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from diagrammar.models.resolve import resolve_model

        return resolve_model(model)
    if isinstance(model, tuple) and len(model) == 2:
        return HFCausalLM(*model)
    if hasattr(model, "config") and hasattr(model, "forward"):
        return HFCausalLM(model)
    raise TypeError(f"the torch backend takes an HFCausalLM, a Hugging Face model, "
                    f"(model, tokenizer), a model folder or a Hub id, not {type(model).__name__}")


__all__ = ["load_torch_model"]
