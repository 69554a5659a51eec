"""Conversion between our discopy diagrams/circuits and lambeq's own classes (lambeq >= 0.4).

>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> ours = parse("man cooks meal", lex)
>>> theirs = to_lambeq(ours)
>>> type(theirs).__module__
'lambeq.backend.grammar'
>>> from_lambeq(theirs) == ours
True

lambeq ships its own diagram classes; its converter (which imports ``pytket``) maps them
to and from discopy 1.x.  These helpers wrap it for pregroup diagrams and circuits, so
lambeq's readers and ansätze can feed our functors and our PennyLane runner.
"""

from __future__ import annotations

from typing import Any

from discopy.grammar import pregroup
from discopy.quantum import circuit as qc

__all__ = ["from_lambeq", "lambeq_to_discopy", "to_lambeq"]


def to_lambeq(diagram: pregroup.Diagram) -> Any:
    """A discopy pregroup diagram as a ``lambeq.backend.grammar.Diagram``.

    Args:
        diagram: a discopy pregroup diagram, e.g. from
            :func:`~diagrammar.diagrams.pregroup.parse`.

    Returns:
        The same diagram in lambeq's classes.
    """
    from lambeq.backend.grammar import Diagram

    return Diagram.from_discopy(diagram)


def from_lambeq(diagram: Any) -> pregroup.Diagram:
    """A lambeq grammar diagram (e.g. from ``cups_reader``) as a discopy pregroup diagram.

    Args:
        diagram: a ``lambeq.backend.grammar.Diagram``.

    Returns:
        The discopy pregroup diagram.

    Raises:
        TypeError: ``diagram`` converts to something other than a grammar diagram (a
            lambeq circuit, say).

    >>> import lambeq
    >>> d = from_lambeq(lambeq.cups_reader.sentence2diagram("man cooks meal"))
    >>> len(d.cod)
    1
    """
    converted = diagram.to_discopy()
    if not isinstance(converted, pregroup.Diagram):
        raise TypeError(f"expected a grammar diagram, got {type(converted).__name__}")
    return converted


def lambeq_to_discopy(circuit: Any) -> qc.Circuit:
    """A lambeq quantum circuit (e.g. from ``lambeq.IQPAnsatz``) as a discopy ``Circuit``.

    Args:
        circuit: a ``lambeq.backend.quantum.Diagram``.

    Returns:
        The discopy circuit, ready for :func:`~diagrammar.qnlp.circuits.compile_circuit`.

    Raises:
        TypeError: ``circuit`` converts to something other than a circuit (a grammar
            diagram, say).

    >>> import lambeq
    >>> ansatz = lambeq.IQPAnsatz({lambeq.AtomicType.NOUN: 1,
    ...                            lambeq.AtomicType.SENTENCE: 1}, n_layers=1)
    >>> c = lambeq_to_discopy(ansatz(lambeq.cups_reader.sentence2diagram("man runs")))
    >>> type(c).__name__
    'Circuit'
    """
    converted = circuit.to_discopy()
    if not isinstance(converted, qc.Circuit):
        raise TypeError(f"expected a circuit, got {type(converted).__name__}")
    return converted
