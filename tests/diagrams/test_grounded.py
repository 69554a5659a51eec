"""Grounded parse trees as diagrams."""

import pytest

from diagrammar.diagrams.errors import DiagramError
from diagrammar.diagrams.grounded import V, symbol_box, tree_diagram


def test_tree_diagram_wires_children_in_order():
    diagram = tree_diagram(("after", ("twice", ("walk",)), ("left", ("turn",))))
    assert [box.name for box in diagram.boxes] == ["walk", "twice", "turn", "left", "after"]
    assert diagram.cod == V and len(diagram.dom) == 0
    assert symbol_box("and", 2).dom == V @ V


def test_bad_trees_are_refused():
    with pytest.raises(DiagramError, match="a tree is"):
        tree_diagram(())
    with pytest.raises(DiagramError, match="natural number"):
        symbol_box("x", -1)
