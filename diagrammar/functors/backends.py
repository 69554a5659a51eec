"""Backends: how models are loaded and which implementation each box class gets.

A backend is a name, a model loader and a table ``box class -> implementation factory``.
``Execute(model, backend=name)`` looks the backend up here; a new backend (JAX, say) registers
itself with :func:`register_backend` and reuses the same diagrams.

>>> from diagrammar.functors.backends import BACKENDS
>>> "torch" in BACKENDS
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: An implementation takes the values on a box's input wires and returns its output values.
Implementation = Callable[..., tuple]
#: Builds a box's implementation: ``factory(box, execute)``.
ImplementationFactory = Callable[[Any, Any], Implementation]


@dataclass
class Backend:
    """A named backend: a model loader and the default implementation of each box class."""

    name: str
    load_model: Callable[[Any], Any]
    implementations: dict[type, ImplementationFactory] = field(default_factory=dict)


#: Registered backends by name.
BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Adds (or replaces) a backend."""
    BACKENDS[backend.name] = backend
    return backend


def _register_builtin() -> None:
    from diagrammar.functors.torch_backend import TORCH

    register_backend(TORCH)


_register_builtin()

__all__ = ["Backend", "BACKENDS", "Implementation", "ImplementationFactory", "register_backend"]
