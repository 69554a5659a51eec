"""How a batch job builds its decoder: a small picklable recipe, so that every Ray worker
builds its own copy (one model per worker) from names rather than receiving a loaded model.

A :class:`DecoderFactory` names the model (a local folder, ``default:SIZE`` or a Hub id, as
:func:`~diagrammar.models.resolve.resolve_model` takes it), the pipeline (a name, or the
pipeline as JSON: give JSON when workers run on other machines, where the driver's files do
not exist), the resources the pipeline binds, the dtype and the torch threads.

>>> import pickle
>>> make = DecoderFactory("default:tiny", "prompt-lookup", threads=1)
>>> pickle.loads(pickle.dumps(make)) == make
True
>>> decoder = make()
>>> len(decoder.generate("import os", max_new_tokens=4).tokens)
4
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: ``(kind, value, target model, dtype) -> resource``: what ``--resource NAME=VALUE`` binds.
ResourceResolver = Callable[[str, str, Any, str], Any]


def default_resource(kind: str, value: str, model: Any, dtype: str) -> Any:
    """A resource from its text: a model for kind ``"model"`` (resolved like ``--model``),
    the text itself for any other kind (e.g. a datastore's corpus path).

    >>> default_resource("datastore", "default-corpus", None, "auto")
    'default-corpus'
    """
    if kind == "model":
        return _resolve(value, dtype)
    return value


def _resolve(spec: str, dtype: str) -> Any:
    import torch
    from transformers.utils import logging as hf_logging

    from diagrammar.models.resolve import resolve_model

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return resolve_model(spec, None if dtype == "auto" else getattr(torch, dtype))


@dataclass(frozen=True)
class DecoderFactory:
    """A recipe for a decoder; calling it loads the model and compiles the pipeline.

    Attributes:
        model: a local model folder, ``default:SIZE`` or a Hub id.
        pipeline: a pipeline name, a JSON file or a JSON string (see
            :func:`~diagrammar.diagrams.read_pipeline`).
        resources: ``(name, value)`` pairs the pipeline binds, e.g.
            ``(("draft", "default:tiny"),)``; each value becomes a resource through
            ``resolve_resource``, by the kind of resource the pipeline names.
        dtype: ``"auto"`` (the model's own) or a torch dtype name such as ``"float32"``.
        threads: torch threads (``None``: leave torch's choice, e.g. one per Ray CPU).
        resolve_resource: ``(kind, value, model, dtype) -> resource``; must be a module-level
            function to travel to Ray workers. :func:`default_resource` by default.
    """

    model: str
    pipeline: str = "prompt-lookup"
    resources: tuple[tuple[str, str], ...] = ()
    dtype: str = "auto"
    threads: int | None = None
    resolve_resource: ResourceResolver | None = None

    def __call__(self) -> Any:
        """The :class:`~diagrammar.functors.execute.Decoder`.

        Raises:
            DiagramError: the pipeline cannot be read.
            ModelError, ValueError: the model or a resource cannot be loaded.
            ExecuteError: the pipeline is not a decoding step, or names unbound resources.
        """
        from diagrammar.diagrams import Context, read_pipeline, resource_kinds
        from diagrammar.functors.execute import Execute, ExecuteError

        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        step = read_pipeline(self.pipeline)
        if step.dom != Context or step.cod != Context:
            raise ExecuteError(f"the pipeline goes {step.dom} -> {step.cod}, but a batch job "
                               "needs a decoding step that goes Context -> Context")
        model = _resolve(self.model, self.dtype)
        kinds = resource_kinds(step)
        resolve = self.resolve_resource or default_resource
        bound = {name: resolve(kinds.get(name, "model"), value, model, self.dtype)
                 for name, value in self.resources}
        return Execute(model, resources=bound)(step)


__all__ = ["DecoderFactory", "ResourceResolver", "default_resource"]
