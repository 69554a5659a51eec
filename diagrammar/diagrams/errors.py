"""Errors raised while building or reading diagrams."""

from __future__ import annotations

from typing import Any


class DiagramError(ValueError):
    """Base class of every error about a diagram's syntax."""


class WiringError(DiagramError):
    """Two diagrams whose wires do not match were composed.

    The message names the last box on the left, the first box on the right and both types.
    """


class PipelineFormatError(DiagramError):
    """A pipeline description (JSON or name) could not be read."""


def describe(diagram: Any, end: str) -> str:
    """How a wiring error names one end (``"last"`` or ``"first"``) of a diagram: its box
    there, or the identity it is.

    >>> from discopy import symmetric
    >>> describe(symmetric.Box("f", symmetric.Ty("a"), symmetric.Ty("b")), "last")
    "box 'f'"
    """
    if not diagram.boxes:
        return f"the identity on {diagram.dom}"
    box = diagram.boxes[-1] if end == "last" else diagram.boxes[0]
    return f"box {box.name!r}"


def check_then(left: Any, other: Any, family: type, only: str) -> None:
    """Raise a :class:`WiringError` unless ``other`` is a ``family`` diagram whose input
    wires are ``left``'s output wires; ``only`` says what composes (``"only program boxes
    and diagrams compose into a program"``)."""
    if not isinstance(other, family):
        raise WiringError(f"cannot compose {describe(left, 'last')} with {other!r}: {only}")
    if left.cod != other.dom:
        raise WiringError(
            f"cannot compose {describe(left, 'last')} with {describe(other, 'first')}: "
            f"the left side outputs {left.cod} but the right side expects {other.dom}")
