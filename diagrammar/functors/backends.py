"""Backends: a name and a model loader. The loaded model's sessions do the rest.

``Execute(model, backend=name)`` looks the backend up here and loads the model with it; the
model must follow the :class:`~diagrammar.decoding.protocols.LanguageModel` contract, and the
step wiring (:mod:`diagrammar.decoding.steps`) is the same for every backend. A new backend
is a loader whose model returns its own session class; it may also override the
implementation of some boxes (a fused kernel), and compile whole steps (``whole_step``: a
decoder's step as one compiled loop, or the reason it cannot be). Two are registered:
``torch`` (:mod:`diagrammar.models.loader`) and ``jax`` (:mod:`diagrammar.models.jax`, GPT-2
and Llama-style folders, with whole-step compilation from :mod:`diagrammar.functors.compiled`;
``jax`` is imported only when it is used).

>>> from diagrammar.functors.backends import Backend, backend_registry, register_backend
>>> with backend_registry():
...     _ = register_backend(Backend("mine", load_model=lambda model: model))
...     sorted(BACKENDS)
['jax', 'mine', 'torch']
>>> sorted(BACKENDS)
['jax', 'torch']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: An implementation takes the values on a box's input wires and returns its output values.
Implementation = Callable[..., tuple]
#: Builds a box's implementation: ``factory(box, execute)``.
ImplementationFactory = Callable[[Any, Any], Implementation]


@dataclass
class Backend:
    """A named backend.

    Args:
        name: what ``Execute(..., backend=name)`` says.
        load_model: turns what the user passed into a ``LanguageModel``.
        implementations: box class -> factory, overriding the shared table for this backend.
        whole_step: ``(decoder, custom box classes) -> (loop or None, reason or None)``: the
            decoder's whole step compiled into one loop (see
            :func:`diagrammar.functors.compiled.whole_step_loop`); ``None`` when the backend
            only runs the per-step loop.
    """

    name: str
    load_model: Callable[[Any], Any]
    implementations: dict[type, ImplementationFactory] = field(default_factory=dict)
    whole_step: Callable[[Any, frozenset[type]], tuple[Any, str | None]] | None = None


#: Registered backends by name.
BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Adds (or replaces) a backend."""
    BACKENDS[backend.name] = backend
    return backend


@contextmanager
def backend_registry() -> Iterator[dict[str, Backend]]:
    """A scope for backends: those registered inside it are removed when it ends."""
    saved = dict(BACKENDS)
    try:
        yield BACKENDS
    finally:
        BACKENDS.clear()
        BACKENDS.update(saved)


def _load_torch(model: Any) -> Any:
    from diagrammar.models.loader import load_torch_model

    return load_torch_model(model)


def _load_jax(model: Any) -> Any:
    from diagrammar.models.jax.loader import load_jax_model  # imports jax, only when used

    return load_jax_model(model)


def _jax_whole_step(decoder: Any, custom: frozenset[type]) -> tuple[Any, str | None]:
    from diagrammar.functors.compiled import whole_step_loop  # imports jax, only when used

    return whole_step_loop(decoder, custom)


register_backend(Backend("torch", load_model=_load_torch))
register_backend(Backend("jax", load_model=_load_jax, whole_step=_jax_whole_step))

__all__ = ["Backend", "BACKENDS", "Implementation", "ImplementationFactory", "register_backend",
           "backend_registry"]
