"""Rewrites of pregroup diagrams that keep their meaning under every functor.

>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> diagram = parse("man cooks meal", lex)
>>> count_cups(diagram), count_cups(remove_cups(diagram))
(2, 0)
>>> remove_cups(diagram).cod == diagram.cod
True

- :func:`snake_normal_form`: yank every snake (``cap`` followed by ``cup``) away, discopy's
  rigid normal form.
- :func:`remove_cups`: bend each one-wire word state that a cup consumes into an effect
  (its transpose, ``word.r`` or ``word.l``), so the cup disappears.  On circuits this saves
  two post-selected qubits per noun.

Both are syntax to syntax (this module imports only discopy), and both are checked
numerically in ``tests/qnlp/test_qnlp_rewrite.py``: the tensor network of the rewritten
diagram equals that of the original.
"""

from __future__ import annotations

from discopy.grammar.pregroup import Box, Cap, Cup, Diagram, Id, Ty

__all__ = ["count_cups", "from_layers", "remove_cups", "snake_normal_form"]


def count_cups(diagram: Diagram) -> int:
    """Number of cup boxes in ``diagram``.

    Args:
        diagram: any pregroup diagram.

    Returns:
        How many of its boxes are :class:`~discopy.grammar.pregroup.Cup`.

    >>> from diagrammar.diagrams.pregroup import N
    >>> count_cups(Cup(N, N.r))
    1
    """
    return sum(isinstance(box, Cup) for box in diagram.boxes)


def snake_normal_form(diagram: Diagram) -> Diagram:
    """Remove snakes (``Cap`` then ``Cup`` on a wire) with discopy's rigid normal form.

    Args:
        diagram: any pregroup diagram.

    Returns:
        The diagram in discopy's snake normal form; it has the same meaning under every
        functor.

    >>> from diagrammar.diagrams.pregroup import N
    >>> snake = Id(N) @ Cap(N.r, N) >> Cup(N, N.r) @ Id(N)
    >>> snake_normal_form(snake) == Id(N)
    True
    """
    return diagram.normal_form()


def from_layers(dom: Ty, layers: list[tuple[Box, int]]) -> Diagram:
    """Rebuild a diagram from its domain and ``(box, offset)`` layers.

    Args:
        dom: the domain of the diagram.
        layers: one ``(box, offset)`` per layer, as ``zip(d.boxes, d.offsets)`` gives them.

    Returns:
        ``Id(dom)`` followed by every layer, each box whiskered at its offset.

    Raises:
        ValueError: a box's domain does not match the wires at its offset.

    >>> from diagrammar.diagrams.pregroup import N
    >>> d = Id(N) @ Cap(N.r, N) >> Cup(N, N.r) @ Id(N)
    >>> from_layers(d.dom, list(zip(d.boxes, d.offsets))) == d
    True
    """
    diagram = Id(dom)
    for box, offset in layers:
        cod = diagram.cod
        left, right = cod[:offset], cod[offset + len(box.dom) :]
        if cod[offset : offset + len(box.dom)] != box.dom:
            raise ValueError(f"box {box} does not fit at offset {offset} of {cod}")
        diagram = diagram >> Id(left) @ box @ Id(right)
    return diagram


def _remove_one(layers: list[tuple[Box, int]], dom: Ty) -> list[tuple[Box, int]] | None:
    """Remove one (word state, cup) pair; ``None`` if there is none."""
    for i, (box, offset) in enumerate(layers):
        if isinstance(box, (Cup, Cap)) or len(box.dom) != 0 or len(box.cod) != 1:
            continue
        pos = offset  # position of the word's wire, followed through later layers
        new_layers = list(layers[:i])
        for j in range(i + 1, len(layers)):
            other, off = layers[j]
            width_in = len(other.dom)
            if off <= pos < off + width_in:
                if isinstance(other, Cup):
                    if pos == off:  # the word is the left leg: w @ x.r >> Cup = w.r
                        effect, eoff = box.r, off
                    else:  # the word is the right leg: x.l @ w >> Cup = w.l
                        effect, eoff = box.l, off
                    # Word wire and cup gone, effect eats one wire: later widths unchanged.
                    return new_layers + [(effect, eoff)] + list(layers[j + 1 :])
                break  # the wire enters another box: nothing to remove here
            if off > pos:
                new_layers.append((other, off - 1))
            else:
                new_layers.append((other, off))
                pos += len(other.cod) - width_in
        # fall through: this word's wire is not closed by a cup
    return None


def remove_cups(diagram: Diagram) -> Diagram:
    """Turn every one-wire word state closed by a cup into the transposed effect.

    Works on any diagram; boxes other than one-wire states are left as they are.

    Args:
        diagram: any pregroup diagram, usually a parsed sentence (words then cups).

    Returns:
        A diagram with the same domain, codomain and meaning, with one cup fewer for every
        one-wire word state that a cup consumed.
    """
    layers = list(zip(diagram.boxes, diagram.offsets, strict=True))
    while True:
        new = _remove_one(layers, diagram.dom)
        if new is None:
            break
        layers = new
    return from_layers(diagram.dom, layers)
