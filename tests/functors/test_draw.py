from __future__ import annotations

import pytest

from diagrammar.diagrams import Context, NoDraft, Pipeline, PromptLookup, Verify, speculative
from diagrammar.functors import Draw
from diagrammar.functors.draw import ROLE_COLOURS


def test_draw_writes_a_png(tmp_path):
    path = Draw()(speculative(PromptLookup(branches=2) | NoDraft()), tmp_path / "s.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_draw_does_not_create_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        Draw()(speculative(PromptLookup()), tmp_path / "missing" / "s.png")
    assert not (tmp_path / "missing").exists()


def test_draw_leaves_global_state_alone(tmp_path):
    """No global side effects: matplotlib's backend, the caller's figures, discopy's palette."""
    import matplotlib
    from discopy.drawing.backend import COLORS
    from matplotlib import pyplot as plt

    backend, palette = matplotlib.get_backend(), dict(COLORS)
    mine = plt.figure()
    Draw(colours={"verify": "#123456"})(speculative(PromptLookup()), tmp_path / "s.png")
    assert matplotlib.get_backend() == backend
    assert dict(COLORS) == palette
    assert plt.fignum_exists(mine.number)
    plt.close(mine)


def test_draw_colours_follow_the_declared_role():
    from diagrammar.diagrams import Commit, box_registry

    with box_registry():
        class Checker(Commit):
            role = "check"

        assert Draw().colour(Checker()) == ROLE_COLOURS["check"] != Draw().colour(Commit())


def test_draw_labels_colours_and_swaps(tmp_path):
    draw = Draw(max_label=10)
    assert draw.label(PromptLookup(num_tokens=5)) == "PromptLoo…"
    assert draw.colour(Verify()) != draw.colour(PromptLookup())
    picture = draw.picture(speculative(PromptLookup()) @ Pipeline.id(Context)
                           >> Pipeline.swap(Context, Context))
    assert len(picture.boxes) == 5
    assert Draw()(Pipeline.swap(Context, Context), tmp_path / "swap.png").stat().st_size > 0
