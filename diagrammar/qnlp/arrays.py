"""The array libraries the QNLP code computes with, named by one keyword: ``library=``.

>>> array_namespace("numpy").__name__
'numpy'
>>> array_namespace("numpy", allowed=("torch", "jax"))
Traceback (most recent call last):
...
ValueError: unsupported array library 'numpy'; use 'torch' or 'jax'

Every QNLP function or class that computes with arrays takes ``library: ArrayLibrary``
(tensor-network contraction, parameter initialisation, the tensor model, the PennyLane
runner).  The word "backend" is kept for what ``Execute`` runs a decoding step on.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Literal

import numpy as np

__all__ = ["ARRAY_LIBRARIES", "ArrayLibrary", "array_namespace"]

#: An array library: PyTorch, JAX (``jax.numpy``) or NumPy.
ArrayLibrary = Literal["torch", "jax", "numpy"]

#: Every :data:`ArrayLibrary`, in the order error messages list them.
ARRAY_LIBRARIES: tuple[str, ...] = ("torch", "jax", "numpy")


def _spell(names: Sequence[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def array_namespace(library: str, allowed: Sequence[str] = ARRAY_LIBRARIES) -> ModuleType:
    """The module whose functions build arrays of ``library``.

    Args:
        library: ``"torch"``, ``"jax"`` or ``"numpy"``.
        allowed: the libraries the caller supports (all three by default).

    Returns:
        ``torch``, ``jax.numpy`` or ``numpy``, imported on demand.

    Raises:
        ValueError: ``library`` is not in ``allowed``; the message lists the allowed ones.
    """
    if library not in allowed:
        raise ValueError(f"unsupported array library {library!r}; use {_spell(allowed)}")
    if library == "torch":
        import torch

        return torch
    if library == "jax":
        import jax.numpy as jnp

        return jnp
    return np
