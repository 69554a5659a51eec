"""Rewrites keep the meaning: checked numerically with the tensor functor and discopy."""

from __future__ import annotations

import numpy as np
import pytest
from discopy.grammar.pregroup import Box, Cap, Cup, Id, Word

from diagrammar.diagrams.pregroup import N, S
from diagrammar.diagrams.rewrite import count_cups, from_layers, remove_cups, snake_normal_form
from diagrammar.functors.tensor_network import TensorFunctor, discopy_eval
from diagrammar.qnlp.data import generate_mc, generate_rp, mc_lexicon, rp_lexicon
from diagrammar.qnlp.models import parse_sentences

DIMS = {"n": 2, "s": 3}


def _same_meaning(a, b, functor, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {**functor(a).shapes(), **functor(b).shapes()}
    params = {k: rng.standard_normal(v) for k, v in shapes.items()}
    return np.allclose(functor(a).contract(params, "numpy"), functor(b).contract(params, "numpy"))


@pytest.mark.parametrize("seed", range(8))
def test_snake_normal_form_preserves_meaning(seed, diagrams):
    rng = np.random.default_rng(seed)
    f = diagrams.random_diagram(rng, diagrams.random_type(rng), 3, ("box", "cup"), prefix="f")
    x = [N, S, N.l, S.r][seed % 4]
    snake = Id(x) @ Cap(x.r, x) >> Cup(x, x.r) @ Id(x)
    diagram = f @ Id(x) >> Id(f.cod) @ snake
    normal = snake_normal_form(diagram)
    assert len(normal.boxes) == len(diagram.boxes) - 2
    assert _same_meaning(diagram, normal, TensorFunctor(DIMS), seed)


def test_snake_is_identity():
    snake = Id(N) @ Cap(N.r, N) >> Cup(N, N.r) @ Id(N)
    assert snake_normal_form(snake) == Id(N)


def test_remove_cups_on_all_dataset_sentences():
    for data, lexicon, frob in ((generate_mc(), mc_lexicon(), ()),
                                (generate_rp(), rp_lexicon(), ("that",))):
        functor = TensorFunctor(DIMS, frobenius_words=frob)
        sentences = [e.sentence for e in data.all_examples()][:40]
        for i, diagram in enumerate(parse_sentences(sentences, lexicon, data.target_type)):
            rewritten = remove_cups(diagram)
            n_nouns = sum(isinstance(b, Word) and len(b.cod) == 1 for b in diagram.boxes)
            assert count_cups(rewritten) == count_cups(diagram) - n_nouns
            assert rewritten.dom == diagram.dom and rewritten.cod == diagram.cod
            assert _same_meaning(diagram, rewritten, functor, seed=i)


def test_remove_cups_matches_discopy_reference():
    diagram = parse_sentences(["skillful man prepares tasty meal"], mc_lexicon())[0]
    rewritten = remove_cups(diagram)
    rng = np.random.default_rng(0)
    shapes = TensorFunctor(DIMS)(diagram).shapes()
    params = {k: rng.standard_normal(v) for k, v in shapes.items()}
    assert np.allclose(discopy_eval(diagram, DIMS, params), discopy_eval(rewritten, DIMS, params))


def test_remove_cups_leaves_other_diagrams_alone():
    box = Box("f", N, N)
    assert remove_cups(box) == box
    state = Word("w", N) >> box  # the wire enters a box, not a cup
    assert remove_cups(state) == state


def test_from_layers_and_count_cups():
    d = Word("a", N) @ Word("b", N.r @ S) >> Cup(N, N.r) @ Id(S)
    assert from_layers(d.dom, list(zip(d.boxes, d.offsets))) == d
    assert count_cups(d) == 1
    with pytest.raises(ValueError, match="does not fit"):
        from_layers(N, [(Cup(S, S.r), 0)])
