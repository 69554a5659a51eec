"""diagrammar: string diagrams that describe language-model decoders, compiled by functors.

Compose a decoding step from boxes, then let the ``Execute`` functor turn it into code that
runs a Hugging Face model:

>>> from diagrammar import PromptLookup, speculative, to_json, from_json
>>> step = speculative(PromptLookup(num_tokens=8))
>>> [box.name for box in step.boxes]
['PromptLookup(num_tokens=8)', 'Verify', 'GreedyAccept', 'Commit']
>>> from_json(to_json(step)) == step
True

The layers, and which way their imports point:

- ``diagrams``: the syntax (boxes, wires, pipelines, JSON); discopy and stdlib only.
- ``functors``: the semantics (``Execute``, ``Draw``, the pregroup functors); the one bridge.
- ``decoding``: contracts, drafters, acceptance, the step wiring and the loop; no tensors.
- ``models``: Hugging Face models, sessions over the KV cache, the default model.
- ``qnlp``: circuits, tensor networks and training for DisCoCat classifiers.
- ``bench``: the benchmark against Hugging Face ``generate``.

The syntax imports no tensor library; ``Execute``, ``Draw``, ``generate`` and ``load_model``
are loaded on first use. ``docs/architecture.md`` draws the step and states the contracts.
"""

from __future__ import annotations

from typing import Any

from diagrammar.diagrams import *  # noqa: F403 - the syntax is the package's front door
from diagrammar.diagrams import __all__ as _diagram_names

__version__ = "0.1.0"

_LAZY = {
    "Execute": "diagrammar.functors.execute",
    "Decoder": "diagrammar.functors.execute",
    "generate": "diagrammar.functors.execute",
    "Draw": "diagrammar.functors.draw",
    "HFCausalLM": "diagrammar.models.hf",
    "load_model": "diagrammar.models.hf",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'diagrammar' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [*_diagram_names, *_LAZY]
