"""NSR's grounded symbol system as a diagram: a parse tree is a string diagram whose boxes
are the sentence's symbols, each taking its children's values (wires of type ``v``, in
sentence order) to its own value. Its meaning is a functor from these boxes to programs
over action sequences (:class:`diagrammar.functors.nsr.Semantics`).

>>> diagram = tree_diagram(("twice", ("left", ("walk",))))
>>> [box.name for box in diagram.boxes]
['walk', 'left', 'twice']
>>> print(diagram.dom, "->", diagram.cod)
Ty() -> v
>>> [box.name for box in tree_diagram(("and", ("walk",), ("run",))).boxes]
['walk', 'run', 'and']
"""

from __future__ import annotations

from discopy import monoidal

from diagrammar.diagrams.errors import DiagramError

#: The type of a wire: one value (an action sequence, for SCAN).
V = monoidal.Ty("v")


def symbol_box(symbol: str, arity: int) -> monoidal.Box:
    """The box of a symbol taking ``arity`` values to one."""
    if arity < 0:
        raise DiagramError(f"a symbol's arity is a natural number, not {arity}")
    return monoidal.Box(symbol, V ** arity, V)


def tree_diagram(tree: tuple) -> monoidal.Diagram:
    """The diagram of a nested ``(symbol, child, child, ...)`` tree: the children's
    diagrams side by side, then the symbol's box."""
    if not tree or not isinstance(tree[0], str):
        raise DiagramError(f"a tree is (symbol, children...), not {tree!r}")
    symbol, children = tree[0], tree[1:]
    box = symbol_box(symbol, len(children))
    if not children:
        return box
    below = tree_diagram(children[0])
    for child in children[1:]:
        below = below @ tree_diagram(child)
    return below >> box
