"""Hypothesis strategies for draft trees, shared by the kernel tests."""

from __future__ import annotations

from hypothesis import strategies as st

from diagrammar.kernels.ancestor_words import MAX_TREE_NODES


@st.composite
def trees(draw, max_nodes=MAX_TREE_NODES):
    """Parents of a random tree: any shape, a chain or a star, 1 to ``max_nodes`` nodes."""
    nodes = draw(st.integers(1, max_nodes))
    shape = draw(st.sampled_from(["random", "chain", "star"]))
    if shape == "chain":
        return tuple(range(-1, nodes - 1))
    if shape == "star":
        return (-1, *[0] * (nodes - 1))
    return (-1, *(draw(st.integers(0, node - 1)) for node in range(1, nodes)))
