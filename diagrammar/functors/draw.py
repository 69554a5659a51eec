"""The ``Draw`` functor: a pipeline becomes a picture (PNG via matplotlib).

Each box is drawn with a short label and a colour for its role (the ``role`` its class
declares: drafter, verify, accept, commit, ...), so a reader sees the step's shape at a glance.
Drawing changes no global state: matplotlib's backend is left as it is, only the figure drawn
is closed, and the colours lent to discopy's palette are taken back afterwards.

>>> import tempfile, os
>>> from diagrammar.diagrams import speculative, PromptLookup
>>> path = Draw()(speculative(PromptLookup()), os.path.join(tempfile.mkdtemp(), "step.png"))
>>> path.stat().st_size > 0
True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from discopy import symmetric

from diagrammar.diagrams.boxes import Pipeline, StepBox

#: Colour of each box role (see ``StepBox.role``); other roles are drawn white.
ROLE_COLOURS: dict[str, str] = {
    "drafter": "#9ecae1",
    "verify": "#fdae6b",
    "accept": "#a1d99b",
    "commit": "#dadaeb",
    "constrain": "#fcbba1",
    "check": "#c7e9c0",
}


@contextmanager
def _lent_colours(colours: Mapping[str, str]) -> Iterator[None]:
    """Adds named colours to discopy's palette (which only takes names) for one drawing."""
    from discopy.drawing.backend import COLORS

    added = [name for name in colours if name not in COLORS]
    COLORS.update({name: colours[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            COLORS.pop(name, None)


class Draw:
    """Maps boxes to labelled, coloured drawing boxes and saves the picture.

    Args:
        colours: role -> colour, merged over :data:`ROLE_COLOURS`.
        max_label: labels longer than this are shortened with an ellipsis.
    """

    def __init__(self, colours: Mapping[str, str] | None = None, max_label: int = 36) -> None:
        self.colours = {**ROLE_COLOURS, **(colours or {})}
        self.max_label = max_label

    def colour(self, box: StepBox) -> str:
        """The colour of a box's role, as a hex code."""
        return self.colours.get(box.role, "#ffffff")

    @staticmethod
    def _colour_name(colour: str) -> str:
        return "diagrammar" + colour

    def label(self, box: StepBox) -> str:
        name = box.name
        return name if len(name) <= self.max_label else name[: self.max_label - 1] + "…"

    def picture(self, diagram: Pipeline) -> symmetric.Diagram:
        """The diagram with every box replaced by its drawing box."""
        result = symmetric.Id(diagram.dom)
        for left, box, right in diagram.inside:
            if isinstance(box, StepBox):
                shown = symmetric.Box(self.label(box), box.dom, box.cod,
                                      color=self._colour_name(self.colour(box)))
            else:
                shown = symmetric.Diagram.swap(box.dom[:1], box.dom[1:])
            result = result >> symmetric.Id(left) @ shown @ symmetric.Id(right)
        return result

    def __call__(self, diagram: Pipeline, path: str | os.PathLike,
                 figsize: tuple[float, float] | None = None) -> Path:
        """Draws ``diagram`` to ``path`` (PNG) and returns the path.

        Raises:
            FileNotFoundError: when the folder of ``path`` does not exist (it is not created).
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
        picture = self.picture(diagram)
        height = max(3.0, 1.2 * (len(diagram.inside) + 1))
        width = max(5.0, 2.2 * max((len(layer[0]) + len(layer[2]) + 1)
                                   for layer in diagram.inside) if diagram.inside else 5.0)
        colours = {self._colour_name(c): c for c in {*self.colours.values(), "#ffffff"}}
        with _lent_colours(colours):
            # discopy opens its own figure, saves it to ``path`` and closes that figure only.
            picture.draw(path=str(path), figsize=figsize or (width, height), fontsize=11,
                         fontsize_types=9, margins=(0.1, 0.05), show=False)
        return path


__all__ = ["Draw", "ROLE_COLOURS"]
