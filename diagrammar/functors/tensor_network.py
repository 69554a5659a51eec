"""Pregroup diagrams -> tensor networks (classical DisCoCat): the tensor functor.

>>> import numpy as np
>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> network = TensorFunctor({"n": 2, "s": 2})(parse("man cooks meal", lex))
>>> sorted(network.shapes().items())
[('cooks__n.r @ s @ n.l', (2, 2, 2)), ('man__n', (2,)), ('meal__n', (2,))]
>>> params = {key: np.ones(shape) for key, shape in network.shapes().items()}
>>> network.contract(params, library="numpy").tolist()
[4.0, 4.0]

:class:`TensorFunctor` sends every basic type to a vector space of a chosen dimension and
every box to a tensor with one leg per simple type of its domain and codomain.  Cups, caps
and spiders are the Kronecker deltas of those spaces, so a diagram becomes a labelled
:class:`~diagrammar.qnlp.tensor_network.TensorNetwork`: wires joined by cups share a label.
Contracting it (with Torch, JAX or NumPy) is implementation code and lives in
:mod:`diagrammar.qnlp.tensor_network`.  :func:`discopy_eval` keeps discopy's own NumPy
evaluation as a reference that the tests compare against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from discopy.grammar.pregroup import Box, Cap, Cup, Diagram, Spider, Swap, Ty

from diagrammar.qnlp.tensor_network import Operand, TensorNetwork

__all__ = ["TensorFunctor", "box_key", "discopy_eval"]


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
    """Functor from pregroup diagrams to :class:`~diagrammar.qnlp.tensor_network.TensorNetwork`.

    Calling it on a diagram returns the diagram's network; a box becomes a parameter tensor
    named by :func:`box_key`, so a word has one tensor wherever it occurs.

    Args:
        dims: dimension of each basic type, by name (``{"n": 2, "s": 2}``) or by ``Ty``.
            Adjoints ``x.l``/``x.r`` have the dimension of ``x``.
        frobenius_words: words interpreted by a fixed Frobenius algebra instead of a
            learned tensor (the relative-pronoun semantics of Sadrzadeh, Clark and Coecke):
            all their legs whose basic type is ``frobenius_type`` are one copy-spider, the
            other legs are deleted (the all-ones vector).
        frobenius_type: the basic type the Frobenius words copy.

    Raises:
        ValueError: a dimension is not positive.

    >>> from diagrammar.diagrams.pregroup import N
    >>> from discopy.grammar.pregroup import Cap, Cup, Id
    >>> snake = Id(N) @ Cap(N.r, N) >> Cup(N, N.r) @ Id(N)
    >>> TensorFunctor({"n": 3})(snake).contract({}, library="numpy").tolist()
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
        """Dimensions of the simple types of ``ty``.

        Raises:
            KeyError: a basic type of ``ty`` has no dimension.
        """
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
        """Union of the parameter shapes of several diagrams.

        Raises:
            ValueError: one box key is used with two shapes.
        """
        shapes: dict[str, tuple[int, ...]] = {}
        for diagram in diagrams:
            for key, shape in self(diagram).shapes().items():
                if shapes.setdefault(key, shape) != shape:
                    raise ValueError(f"box {key!r} used with shapes {shapes[key]} and {shape}")
        return shapes


def discopy_eval(
    diagram: Diagram, dims: Mapping[str, int], params: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Reference evaluation with discopy's own tensor functor, in NumPy.

    Args:
        diagram: a pregroup diagram without spiders of several legs.
        dims: dimension of each basic type, by name.
        params: one NumPy array per :func:`box_key`.

    Returns:
        An array of shape ``dom_dims + cod_dims``, like
        :meth:`~diagrammar.qnlp.tensor_network.TensorNetwork.contract`.

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
