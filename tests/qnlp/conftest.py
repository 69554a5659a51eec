"""Fixtures for the QNLP tests: seeded random pregroup diagrams."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from discopy.grammar.pregroup import Box, Cap, Cup, Diagram, Id, Spider, Swap, Ty

N, S = Ty("n"), Ty("s")
ATOMS = [N, S, N.l, N.r, S.l, S.r]


def random_type(rng: np.random.Generator, max_len: int = 2) -> Ty:
    """A tensor of 0..max_len random simple types."""
    ty = Ty()
    for _ in range(int(rng.integers(0, max_len + 1))):
        ty = ty @ ATOMS[int(rng.integers(len(ATOMS)))]
    return ty


def _contracting_pairs(cod: Ty) -> list[int]:
    out = []
    for i in range(len(cod) - 1):
        a, b = cod.inside[i], cod.inside[i + 1]
        if a.name == b.name and b.z == a.z + 1:
            out.append(i)
    return out


def random_diagram(rng: np.random.Generator, dom: Ty, n_layers: int = 4,
                   kinds: tuple[str, ...] = ("box", "cup", "cap", "swap", "spider"),
                   prefix: str = "f") -> Diagram:
    """Stack ``n_layers`` random layers on ``dom``: boxes, cups, caps, swaps, spiders."""
    diagram = Id(dom)
    for layer in range(n_layers):
        cod = diagram.cod
        kind = kinds[int(rng.integers(len(kinds)))]
        pairs = _contracting_pairs(cod)
        if kind == "cup" and pairs:
            i = pairs[int(rng.integers(len(pairs)))]
            piece = Cup(cod[i : i + 1], cod[i + 1 : i + 2])
            diagram = diagram >> Id(cod[:i]) @ piece @ Id(cod[i + 2 :])
            continue
        if kind == "swap" and len(cod) >= 2:
            i = int(rng.integers(len(cod) - 1))
            piece = Swap(cod[i : i + 1], cod[i + 1 : i + 2])
            diagram = diagram >> Id(cod[:i]) @ piece @ Id(cod[i + 2 :])
            continue
        if kind == "spider" and len(cod) >= 1:
            i = int(rng.integers(len(cod)))
            piece = Spider(1, int(rng.integers(0, 3)), cod[i : i + 1])
            diagram = diagram >> Id(cod[:i]) @ piece @ Id(cod[i + 1 :])
            continue
        if kind == "cap":
            atom = ATOMS[int(rng.integers(len(ATOMS)))]
            i = int(rng.integers(len(cod) + 1))
            diagram = diagram >> Id(cod[:i]) @ Cap(atom, atom.l) @ Id(cod[i:])
            continue
        width = int(rng.integers(0, min(2, len(cod)) + 1))
        i = int(rng.integers(len(cod) - width + 1))
        box = Box(f"{prefix}{layer}", cod[i : i + width], random_type(rng))
        diagram = diagram >> Id(cod[:i]) @ box @ Id(cod[i + width :])
    return diagram


@pytest.fixture
def diagrams() -> SimpleNamespace:
    """The random-diagram helpers: ``random_diagram``, ``random_type``, ``N``, ``S``."""
    return SimpleNamespace(random_diagram=random_diagram, random_type=random_type, N=N, S=S)
