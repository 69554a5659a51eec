"""Pregroup diagrams -> tensor networks (classical DisCoCat), contracted with Torch, JAX or NumPy.

:class:`TensorFunctor` sends every basic type to a vector space of a chosen dimension and
every box to a tensor with one leg per simple type of its domain and codomain.  Cups, caps
and spiders are the Kronecker deltas of those spaces, so a diagram becomes a labelled
tensor network: wires joined by cups share a label, and the whole network is contracted
by a single ``einsum``.  Contraction is differentiable in Torch and JAX.

discopy's own tensor functor cannot evaluate on the PyTorch backend with float tensors
(its identities and cups start as ``int64`` and ``torch.tensordot`` refuses mixed dtypes);
labelled ``einsum`` avoids that path and creates every constant tensor with the dtype and
device of the parameters.  :func:`discopy_eval` keeps discopy's NumPy evaluation as a
reference that the tests compare against.

Example
-------
>>> import numpy as np
>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> diagram = parse("man cooks meal", lex)
>>> functor = TensorFunctor({"n": 2, "s": 2})
>>> network = functor(diagram)
>>> sorted(network.shapes().items())
[('cooks__n.r @ s @ n.l', (2, 2, 2)), ('man__n', (2,)), ('meal__n', (2,))]
>>> params = {key: np.ones(shape) for key, shape in network.shapes().items()}
>>> network.contract(params, backend="numpy").tolist()
[4.0, 4.0]
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from discopy.grammar.pregroup import Box, Cap, Cup, Diagram, Spider, Swap, Ty

__all__ = [
    "Backend",
    "Operand",
    "TensorFunctor",
    "TensorNetwork",
    "box_key",
    "discopy_eval",
    "init_params",
]

Backend = Literal["torch", "jax", "numpy"]
_LETTERS = string.ascii_letters


def _unwind(box: Box) -> tuple[Box, int]:
    """The box with winding number 0 and the winding ``z`` that was removed."""
    z = box.z
    while box.z > 0:
        box = box.l
    while box.z < 0:
        box = box.r
    return box, z


def box_key(box: Box) -> str:
    """Parameter name of a box: ``name__cod`` for a word state, ``name__dom->cod`` otherwise.

    Rotated (transposed) and daggered copies of a box share its key.

    >>> from diagrammar.diagrams.pregroup import N
    >>> from discopy.grammar.pregroup import Word
    >>> box_key(Word("man", N)), box_key(Word("man", N).r)
    ('man__n', 'man__n')
    """
    if box.is_dagger:
        box = box.dagger()
    box, _ = _unwind(box)
    if len(box.dom) == 0:
        return f"{box.name}__{box.cod}"
    return f"{box.name}__{box.dom}->{box.cod}"


@dataclass(frozen=True)
class Operand:
    """One tensor of a network: a parameter (``key``) or a constant ``ones``/``eye``."""

    kind: Literal["param", "ones", "eye"]
    key: str | None
    shape: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class TensorNetwork:
    """A labelled tensor network: contract the operands, keep the ``output`` labels.

    ``output`` lists the domain wires then the codomain wires, so the contracted array has
    shape ``dom_dims + cod_dims``; ``factor`` collects closed loops (a circle of dimension
    ``d`` contributes ``d``).
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

    def contract(self, params: Mapping[str, Any], backend: Backend = "torch") -> Any:
        """Contract with parameter arrays from ``params`` on ``backend``.

        Constants (``ones``, ``eye``) take the dtype of the parameters.  A network with no
        parameters uses float64 (NumPy/JAX) or the default torch dtype.
        """
        xp, like = _namespace(backend, params, self)
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
                array = _ones(xp, backend, op.shape, like)
            else:
                array = _eye(xp, backend, op.shape[0], like)
            arrays.append(array)
        if not arrays:
            value = _ones(xp, backend, (), like)
        else:
            value = xp.einsum(self.equation(), *arrays)
        if self.factor != 1.0:
            value = value * self.factor
        return value


def _namespace(backend: Backend, params: Mapping[str, Any], network: TensorNetwork):
    if backend not in ("torch", "jax", "numpy"):
        raise ValueError(f"unknown backend {backend!r}; use 'torch', 'jax' or 'numpy'")
    missing = sorted(k for k in network.shapes() if k not in params)
    if missing:
        raise KeyError(f"missing parameters for boxes {missing}")
    like = None
    for op in network.operands:
        if op.kind == "param":
            like = params[op.key]
            break
    if backend == "torch":
        import torch

        return torch, like
    if backend == "jax":
        import jax.numpy as jnp

        return jnp, like
    return np, like


def _constant(xp, backend: Backend, make: str, arg, like):
    """``xp.ones(arg)`` or ``xp.eye(arg)`` in the dtype (and device) of ``like``."""
    factory = getattr(xp, make)
    if backend == "torch":
        if like is None:
            return factory(arg)
        return factory(arg, dtype=like.dtype, device=like.device)
    return factory(arg, dtype=like.dtype if like is not None else np.float64)


def _ones(xp, backend: Backend, shape: tuple[int, ...], like):
    return _constant(xp, backend, "ones", shape, like)


def _eye(xp, backend: Backend, dim: int, like):
    return _constant(xp, backend, "eye", dim, like)


class _Labels:
    """Union-find over wire labels with a dimension per label."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.dim: dict[int, int] = {}

    def new(self, dim: int) -> int:
        label = len(self.parent)
        self.parent[label] = label
        self.dim[label] = dim
        return label

    def find(self, label: int) -> int:
        while self.parent[label] != label:
            self.parent[label] = self.parent[self.parent[label]]
            label = self.parent[label]
        return label

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.dim[ra] != self.dim[rb]:
            raise ValueError(f"cannot join wires of dimensions {self.dim[ra]} and {self.dim[rb]}")
        self.parent[rb] = ra


class TensorFunctor:
    """Functor from pregroup diagrams to :class:`TensorNetwork`.

    Parameters
    ----------
    dims:
        Dimension of each basic type, by name (``{"n": 2, "s": 2}``) or by ``Ty``.
        Adjoints ``x.l``/``x.r`` have the dimension of ``x``.
    frobenius_words:
        Words interpreted by a fixed Frobenius algebra instead of a learned tensor (the
        relative-pronoun semantics of Sadrzadeh, Clark and Coecke): all their legs whose
        basic type is ``frobenius_type`` are one copy-spider, the other legs are deleted
        (the all-ones vector).

    >>> from diagrammar.diagrams.pregroup import N
    >>> from discopy.grammar.pregroup import Cap, Cup, Id
    >>> snake = Id(N) @ Cap(N.r, N) >> Cup(N, N.r) @ Id(N)
    >>> TensorFunctor({"n": 3})(snake).contract({}, backend="numpy").tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """

    def __init__(
        self,
        dims: Mapping[Ty | str, int],
        frobenius_words: Iterable[str] = (),
        frobenius_type: str = "n",
    ) -> None:
        self.dims: dict[str, int] = {}
        for ty, dim in dims.items():
            name = ty if isinstance(ty, str) else ty.inside[0].name
            if int(dim) < 1:
                raise ValueError(f"dimension of {name!r} must be positive, got {dim}")
            self.dims[name] = int(dim)
        self.frobenius_words = frozenset(frobenius_words)
        self.frobenius_type = frobenius_type

    def dims_of(self, ty: Ty) -> tuple[int, ...]:
        """Dimensions of the simple types of ``ty``."""
        out = []
        for ob in ty.inside:
            if ob.name not in self.dims:
                raise KeyError(f"no dimension for basic type {ob.name!r}; known: {self.dims}")
            out.append(self.dims[ob.name])
        return tuple(out)

    def __call__(self, diagram: Diagram) -> TensorNetwork:
        labels = _Labels()
        operands: list[tuple[str, str | None, tuple[int, ...], list[int]]] = []
        inputs = [labels.new(d) for d in self.dims_of(diagram.dom)]
        wires = list(inputs)
        for box, offset in zip(diagram.boxes, diagram.offsets, strict=True):
            n_in = len(box.dom)
            legs_in = wires[offset : offset + n_in]
            legs_out = self._apply(box, legs_in, labels, operands)
            wires[offset : offset + n_in] = legs_out
        return self._network(labels, operands, inputs, wires, diagram)

    def _apply(self, box, legs_in: list[int], labels: _Labels, operands: list) -> list[int]:
        if isinstance(box, Cup):
            k = len(legs_in) // 2
            for i in range(k):
                labels.union(legs_in[i], legs_in[len(legs_in) - 1 - i])
            return []
        if isinstance(box, Cap):
            dims = self.dims_of(box.cod)
            k = len(dims) // 2
            left = [labels.new(d) for d in dims[:k]]
            return left + left[::-1]
        if isinstance(box, Swap):
            k = len(box.left)
            return legs_in[k:] + legs_in[:k]
        if isinstance(box, Spider):
            width = len(box.typ)
            dims = self.dims_of(box.typ)
            n_in, n_out = len(box.dom) // width, len(box.cod) // width
            if n_in:
                centre = legs_in[:width]
                for leg in range(1, n_in):
                    for i in range(width):
                        labels.union(centre[i], legs_in[leg * width + i])
            else:
                centre = [labels.new(d) for d in dims]
            return list(centre) * n_out
        # A word or a generic box: a parameter tensor (or a fixed Frobenius word).
        cod_dims = self.dims_of(box.cod)
        legs_out = [labels.new(d) for d in cod_dims]
        if box.name in self.frobenius_words:
            self._frobenius(box, legs_in, legs_out, labels, operands)
            return legs_out
        dagger = box.is_dagger
        base = box.dagger() if dagger else box
        plain, z = _unwind(base)
        dom_l, cod_l = (legs_out, legs_in) if dagger else (legs_in, legs_out)
        if z % 2:
            order = cod_l[::-1] + dom_l[::-1]
        else:
            order = dom_l + cod_l
        shape = self.dims_of(plain.dom) + self.dims_of(plain.cod)
        operands.append(("param", box_key(box), shape, order))
        return legs_out

    def _frobenius(self, box, legs_in, legs_out, labels: _Labels, operands: list) -> None:
        legs = legs_in + legs_out
        obs = list(box.dom.inside) + list(box.cod.inside)
        merged = [leg for leg, ob in zip(legs, obs, strict=True) if ob.name == self.frobenius_type]
        for leg in merged[1:]:
            labels.union(merged[0], leg)
        for leg, ob in zip(legs, obs, strict=True):
            if ob.name != self.frobenius_type:
                operands.append(("ones", None, (self.dims[ob.name],), [leg]))

    def _network(self, labels: _Labels, operands, inputs, wires, diagram) -> TensorNetwork:
        ops: list[Operand] = []
        used: set[int] = set()
        for kind, key, shape, legs in operands:
            roots = tuple(labels.find(leg) for leg in legs)
            used.update(roots)
            ops.append(Operand(kind, key, tuple(shape), roots))
        output: list[int] = []
        seen: set[int] = set()
        for leg in [*inputs, *wires]:
            root = labels.find(leg)
            if root in seen:
                fresh = labels.new(labels.dim[root])
                ops.append(Operand("eye", None, (labels.dim[root],) * 2, (root, fresh)))
                used.update((root, fresh))
                output.append(fresh)
            else:
                seen.add(root)
                output.append(root)
        for root in seen - used:
            ops.append(Operand("ones", None, (labels.dim[root],), (root,)))
            used.add(root)
        factor = 1.0
        roots = {labels.find(label) for label in list(labels.parent)}
        for root in roots - used:
            factor *= labels.dim[root]
        dims = {root: labels.dim[root] for root in used}
        return TensorNetwork(
            operands=tuple(ops),
            output=tuple(output),
            dims=dims,
            factor=factor,
            dom_dims=self.dims_of(diagram.dom),
            cod_dims=self.dims_of(diagram.cod),
        )

    def shapes(self, diagrams: Iterable[Diagram]) -> dict[str, tuple[int, ...]]:
        """Union of the parameter shapes of several diagrams (raises on a clash)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for diagram in diagrams:
            for key, shape in self(diagram).shapes().items():
                if shapes.setdefault(key, shape) != shape:
                    raise ValueError(f"box {key!r} used with shapes {shapes[key]} and {shape}")
        return shapes


def init_params(
    shapes: Mapping[str, Sequence[int]], backend: Backend = "torch", seed: int = 0,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Random normal initial parameters (seeded), as arrays of ``backend``.

    Torch tensors are float32 leaves with ``requires_grad=True``.

    >>> p = init_params({"man__n": (2,)}, backend="numpy", seed=1)
    >>> p["man__n"].shape
    (2,)
    """
    rng = np.random.default_rng(seed)
    values = {
        key: (rng.standard_normal(tuple(shape)) * scale) for key, shape in sorted(shapes.items())
    }
    if backend == "numpy":
        return values
    if backend == "jax":
        import jax.numpy as jnp

        return {key: jnp.asarray(v, dtype=jnp.float32) for key, v in values.items()}
    if backend == "torch":
        import torch

        return {
            key: torch.tensor(v, dtype=torch.float32, requires_grad=True)
            for key, v in values.items()
        }
    raise ValueError(f"unknown backend {backend!r}")


def discopy_eval(
    diagram: Diagram, dims: Mapping[str, int], params: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Reference evaluation with discopy's own tensor functor on the NumPy backend.

    Returns an array of shape ``dom_dims + cod_dims`` like :meth:`TensorNetwork.contract`.

    >>> from diagrammar.diagrams.pregroup import Lexicon, parse
    >>> lex = Lexicon.from_categories({"noun": ["man"], "intransitive_verb": ["runs"]})
    >>> d = parse("man runs", lex)
    >>> discopy_eval(d, {"n": 2, "s": 2}, {"man__n": np.ones(2),
    ...     "runs__n.r @ s": np.eye(2)}).tolist()
    [1.0, 1.0]
    """
    from discopy import tensor as dt
    from discopy.grammar import pregroup

    functor_dims = TensorFunctor(dims)
    obs: dict[Ty, int] = {Ty(name): dim for name, dim in dims.items()}
    arrays: dict[Box, np.ndarray] = {}
    for box in diagram.boxes:
        if isinstance(box, (Cup, Cap, Swap, Spider)):
            continue
        base = box.dagger() if box.is_dagger else box
        plain, _ = _unwind(base)
        shape = functor_dims.dims_of(plain.dom) + functor_dims.dims_of(plain.cod)
        arrays[plain] = np.asarray(params[box_key(box)], dtype=float).reshape(shape)
    functor = dt.Functor(ob=obs, ar=arrays, dom=pregroup.Category(), dtype=float)
    tensor = functor(diagram)
    shape = functor_dims.dims_of(diagram.dom) + functor_dims.dims_of(diagram.cod)
    return np.asarray(tensor.array, dtype=float).reshape(shape)
