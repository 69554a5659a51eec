"""Labelled tensor networks, contracted by one ``einsum`` with Torch, JAX or NumPy.

>>> import numpy as np
>>> vector = Operand("param", "v", (2,), (0,))
>>> network = TensorNetwork((vector,), output=(0,), dims={0: 2}, factor=2.0,
...                         dom_dims=(), cod_dims=(2,))
>>> network.equation()
'a->a'
>>> network.contract({"v": np.array([1.0, 3.0])}, library="numpy").tolist()
[2.0, 6.0]

A :class:`TensorNetwork` is what
:class:`~diagrammar.functors.tensor_network.TensorFunctor` makes of a pregroup diagram:
parameter tensors and constant ``ones``/``eye`` tensors whose legs carry integer labels,
the labels left open, and a scalar factor.  This module knows nothing of diagrams; it only
contracts.  Contraction is differentiable in Torch and JAX.

discopy's own tensor functor cannot evaluate on the PyTorch backend with float tensors (its
identities and cups start as ``int64`` and ``torch.tensordot`` refuses mixed dtypes);
labelled ``einsum`` avoids that path and creates every constant tensor with the dtype and
device of the parameters.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from diagrammar.qnlp.arrays import ArrayLibrary, array_namespace

__all__ = ["Operand", "TensorNetwork", "init_params"]

_LETTERS = string.ascii_letters


@dataclass(frozen=True)
class Operand:
    """One tensor of a network: a parameter (``key``) or a constant ``ones``/``eye``.

    Attributes:
        kind: ``"param"`` (looked up by ``key``), ``"ones"`` or ``"eye"`` (constants).
        key: the parameter name (``None`` for constants).
        shape: the tensor's shape.
        labels: one wire label per leg.
    """

    kind: Literal["param", "ones", "eye"]
    key: str | None
    shape: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class TensorNetwork:
    """A labelled tensor network: contract the operands, keep the ``output`` labels.

    Attributes:
        operands: the tensors.
        output: the labels left open, the domain wires then the codomain wires, so the
            contracted array has shape ``dom_dims + cod_dims``.
        dims: the dimension of every label.
        factor: closed loops, multiplied in (a circle of dimension ``d`` contributes ``d``).
        dom_dims: dimensions of the domain wires.
        cod_dims: dimensions of the codomain wires.
    """

    operands: tuple[Operand, ...]
    output: tuple[int, ...]
    dims: Mapping[int, int]
    factor: float
    dom_dims: tuple[int, ...]
    cod_dims: tuple[int, ...]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter shapes needed to contract, by key."""
        return {op.key: op.shape for op in self.operands if op.kind == "param" and op.key}

    def equation(self) -> str:
        """The ``einsum`` equation of the contraction.

        Raises:
            ValueError: the network has more than 52 distinct wires.

        >>> TensorNetwork((Operand("param", "v", (2,), (7,)),), (7,), {7: 2}, 1.0, (), (2,)
        ...               ).equation()
        'a->a'
        """
        names: dict[int, str] = {}
        for label in [*(lab for op in self.operands for lab in op.labels), *self.output]:
            if label not in names:
                if len(names) >= len(_LETTERS):
                    raise ValueError("tensor network has more than 52 distinct wires")
                names[label] = _LETTERS[len(names)]
        inputs = ",".join("".join(names[lab] for lab in op.labels) for op in self.operands)
        return f"{inputs}->{''.join(names[lab] for lab in self.output)}"

    def contract(self, params: Mapping[str, Any], library: ArrayLibrary = "torch") -> Any:
        """Contract the network.

        Constants (``ones``, ``eye``) take the dtype (and device) of the parameters.  A
        network with no parameters uses float64 (NumPy/JAX) or the default torch dtype.

        Args:
            params: one array of ``library`` per parameter key (see :meth:`shapes`).
            library: the array library of ``params`` and of the result.

        Returns:
            An array of shape ``dom_dims + cod_dims``.

        Raises:
            ValueError: unknown ``library``, or a parameter of the wrong shape.
            KeyError: parameters are missing; the message names their keys.
        """
        xp = array_namespace(library)
        missing = sorted(k for k in self.shapes() if k not in params)
        if missing:
            raise KeyError(f"missing parameters for boxes {missing}")
        like = next((params[op.key] for op in self.operands if op.kind == "param"), None)
        arrays = []
        for op in self.operands:
            if op.kind == "param":
                array = params[op.key]
                if tuple(array.shape) != op.shape:
                    raise ValueError(
                        f"parameter {op.key!r} has shape {tuple(array.shape)}, "
                        f"expected {op.shape}"
                    )
            elif op.kind == "ones":
                array = _constant(xp, library, "ones", op.shape, like)
            else:
                array = _constant(xp, library, "eye", op.shape[0], like)
            arrays.append(array)
        if not arrays:
            value = _constant(xp, library, "ones", (), like)
        else:
            value = xp.einsum(self.equation(), *arrays)
        if self.factor != 1.0:
            value = value * self.factor
        return value


def _constant(xp, library: ArrayLibrary, make: str, arg, like):
    """``xp.ones(arg)`` or ``xp.eye(arg)`` in the dtype (and device) of ``like``."""
    factory = getattr(xp, make)
    if library == "torch":
        if like is None:
            return factory(arg)
        return factory(arg, dtype=like.dtype, device=like.device)
    return factory(arg, dtype=like.dtype if like is not None else np.float64)


def init_params(
    shapes: Mapping[str, Sequence[int]], library: ArrayLibrary = "torch", seed: int = 0,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Random normal initial parameters, seeded, drawn with NumPy whatever the library.

    Args:
        shapes: the shape of every parameter, by key (e.g. :meth:`TensorNetwork.shapes`).
        library: the array library of the result.  Torch tensors are float32 leaves with
            ``requires_grad=True``; JAX arrays are float32; NumPy arrays float64.
        seed: seed of the NumPy generator; the same seed gives the same values in every
            library.
        scale: standard deviation.

    Returns:
        One array per key.

    Raises:
        ValueError: unknown ``library``.

    >>> p = init_params({"man__n": (2,)}, library="numpy", seed=1)
    >>> p["man__n"].shape
    (2,)
    """
    xp = array_namespace(library)
    rng = np.random.default_rng(seed)
    values = {
        key: (rng.standard_normal(tuple(shape)) * scale) for key, shape in sorted(shapes.items())
    }
    if library == "numpy":
        return values
    if library == "jax":
        return {key: xp.asarray(v, dtype=xp.float32) for key, v in values.items()}
    return {
        key: xp.tensor(v, dtype=xp.float32, requires_grad=True) for key, v in values.items()
    }
