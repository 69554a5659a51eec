"""The ``Draw`` functor: a pipeline becomes a picture (PNG via matplotlib).

Each box is drawn with a short label and a colour for its role (drafter, verify, accept,
commit, other), so a reader sees the step's shape at a glance.

>>> import tempfile, os
>>> from diagrammar.diagrams import speculative, PromptLookup
>>> path = Draw()(speculative(PromptLookup()), os.path.join(tempfile.mkdtemp(), "step.png"))
>>> path.stat().st_size > 0
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from discopy import symmetric

from diagrammar.diagrams.boxes import Accept, Commit, Drafter, Pipeline, StepBox, Verify

ROLE_COLOURS: dict[type, str] = {
    Drafter: "#9ecae1",
    Verify: "#fdae6b",
    Accept: "#a1d99b",
    Commit: "#dadaeb",
}


class Draw:
    """Maps boxes to labelled, coloured drawing boxes and saves the picture.

    Args:
        colours: role class -> colour, merged over :data:`ROLE_COLOURS`.
        max_label: labels longer than this are shortened with an ellipsis.
    """

    def __init__(self, colours: Mapping[type, str] | None = None, max_label: int = 36) -> None:
        self.colours = {**ROLE_COLOURS, **(colours or {})}
        self.max_label = max_label

    def colour(self, box: StepBox) -> str:
        """The colour of a box, registered under a name in discopy's palette (which only
        takes names)."""
        from discopy.drawing.backend import COLORS

        colour = next((self.colours[c] for c in type(box).__mro__ if c in self.colours),
                      "#ffffff")
        name = "diagrammar" + colour
        COLORS.setdefault(name, colour)
        return name

    def label(self, box: StepBox) -> str:
        name = box.name
        return name if len(name) <= self.max_label else name[: self.max_label - 1] + "…"

    def picture(self, diagram: Pipeline) -> symmetric.Diagram:
        """The diagram with every box replaced by its drawing box."""
        result = symmetric.Id(diagram.dom)
        for left, box, right in diagram.inside:
            if isinstance(box, StepBox):
                shown = symmetric.Box(self.label(box), box.dom, box.cod, color=self.colour(box))
            else:
                shown = symmetric.Diagram.swap(box.dom[:1], box.dom[1:])
            result = result >> symmetric.Id(left) @ shown @ symmetric.Id(right)
        return result

    def __call__(self, diagram: Pipeline, path: str | os.PathLike,
                 figsize: tuple[float, float] | None = None) -> Path:
        """Draws ``diagram`` to ``path`` (PNG) and returns the path."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib import pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = self.picture(diagram)
        height = max(3.0, 1.2 * (len(diagram.inside) + 1))
        width = max(5.0, 2.2 * max((len(layer[0]) + len(layer[2]) + 1)
                                   for layer in diagram.inside) if diagram.inside else 5.0)
        picture.draw(path=str(path), figsize=figsize or (width, height), fontsize=11,
                     fontsize_types=9, margins=(0.1, 0.05))
        plt.close("all")
        return path


__all__ = ["Draw", "ROLE_COLOURS"]
