from __future__ import annotations

from diagrammar.diagrams import Context, NoDraft, Pipeline, PromptLookup, Verify, speculative
from diagrammar.functors import Draw


def test_draw_writes_a_png(tmp_path):
    path = Draw()(speculative(PromptLookup(branches=2) | NoDraft()), tmp_path / "a" / "s.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_draw_labels_colours_and_swaps(tmp_path):
    draw = Draw(max_label=10)
    assert draw.label(PromptLookup(num_tokens=5)) == "PromptLoo…"
    assert draw.colour(Verify()) != draw.colour(PromptLookup())
    picture = draw.picture(speculative(PromptLookup()) @ Pipeline.id(Context)
                           >> Pipeline.swap(Context, Context))
    assert len(picture.boxes) == 5
    assert Draw()(Pipeline.swap(Context, Context), tmp_path / "swap.png").stat().st_size > 0
