"""Errors raised while building or reading diagrams."""

from __future__ import annotations


class DiagramError(ValueError):
    """Base class of every error about a diagram's syntax."""


class WiringError(DiagramError):
    """Two diagrams whose wires do not match were composed.

    The message names the last box on the left, the first box on the right and both types.
    """


class PipelineFormatError(DiagramError):
    """A pipeline description (JSON or name) could not be read."""
