"""The Guess half of Guess & Sketch (diagrammar.models.transpiler): the vocabulary round
trip on every corpus line, training and caching by recipe, and the guesses' alternatives,
uncertainty and alignment."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.functors.program_corpus import TEST, TRAIN, make_corpus, make_pair
from diagrammar.models.transpiler.guess import guess
from diagrammar.models.transpiler.training import (
    TranslatorRecipe,
    _batches,
    manifest,
    model_path,
    train_translator,
    training_examples,
    translator,
)
from diagrammar.models.transpiler.vocabulary import Vocabulary, VocabularyError

TINY = TranslatorRecipe(name="test", programs=48, epochs=4, hidden=32, layers=2, heads=2,
                        batch=8, warmup=5, learning_rate=1e-2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("transpiler-cache")


def examples(recipe: TranslatorRecipe) -> list[tuple[str, str]]:
    """Whole programs of the train distribution (the functor layer adds blocks)."""
    return [(pair.source, "\n".join(pair.target.splitlines()[2:-1]))
            for pair in make_corpus(recipe.programs, recipe.seed, **TRAIN)]


@pytest.fixture(scope="module")
def tiny(cache):
    return translator(TINY, examples, cache_dir=cache, progress=False)


@given(st.integers(0, 10_000), st.booleans())
@settings(max_examples=40, deadline=None)
def test_vocabulary_round_trips_every_corpus_program(seed, held_out):
    split = TEST if held_out else TRAIN
    pair = make_pair(random.Random(seed), **split)
    vocabulary = Vocabulary()
    for text in (pair.source, pair.target):
        assert vocabulary.decode(vocabulary.encode(text)) == text


def test_vocabulary_rejects_unknown_tokens_with_the_line():
    with pytest.raises(VocabularyError, match=r"'jmp'.*line 2"):
        Vocabulary().encode("mov r1, r0\njmp r1")
    with pytest.raises(VocabularyError, match="r99"):
        Vocabulary().encode("mov r99, r0")


def test_pair_encoding_and_batches_mask_the_source():
    vocabulary = Vocabulary()
    data = training_examples(TranslatorRecipe(programs=10), vocabulary, examples)
    assert len(data) == 10
    assert all(e[0] == vocabulary.bos and e[-1] == vocabulary.eos for e in data)
    batches = _batches(data, 4, vocabulary.pad, vocabulary.sep, random.Random(0))
    assert sum(len(ids) for ids, _, _ in batches) == len(data)
    for ids, mask, labels in batches:
        for row in range(len(ids)):
            sep = ids[row].tolist().index(vocabulary.sep)
            assert (labels[row, :sep + 1] == -100).all()
            kept = labels[row] != -100
            assert (labels[row][kept] == ids[row][kept]).all()
            assert (mask[row] == (ids[row] != vocabulary.pad)).all()
            assert labels[row][kept][-1] == vocabulary.eos


def test_training_learns_and_the_cache_is_keyed_by_recipe(tiny, cache):
    model, vocabulary = tiny
    trained = manifest(TINY, cache)
    assert trained["hash"] == TINY.hash() and trained["steps"] == 4 * 6
    assert trained["final_loss"] < math.log(len(vocabulary)) - 0.5  # learned something
    folder = model_path(TINY, cache)
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    translator(TINY, examples, cache_dir=cache, progress=False)  # a cache hit
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    other = TranslatorRecipe(name="test", programs=49, epochs=4, hidden=32, layers=2,
                             heads=2, batch=8, warmup=5, learning_rate=1e-2)
    assert model_path(other, cache) != folder and manifest(other, cache) is None


def test_training_is_deterministic(tmp_path):
    recipe = TranslatorRecipe(name="det", programs=16, epochs=1, hidden=16, layers=1,
                              heads=2, batch=8)
    first = train_translator(recipe, examples, tmp_path / "a", progress=False)
    second = train_translator(recipe, examples, tmp_path / "b", progress=False)
    from safetensors.torch import load_file

    a, b = (load_file(str(f / "model.safetensors")) for f in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_guesses_carry_alternatives_uncertainty_and_alignment(tiny):
    model, vocabulary = tiny
    pair = make_corpus(1, seed=5, lengths=(4, 4))[0]
    guesses = guess(model, vocabulary, pair.source, beams=3, max_new_tokens=40)
    assert len(guesses) == 3
    scores = [g.log_probability for g in guesses]
    assert scores == sorted(scores, reverse=True)
    header = pair.source.splitlines()
    first_instruction, last_instruction = 3, len(header) - 1
    for g in guesses:
        assert g.text.splitlines()[:2] == header[:2]
        assert g.text.splitlines()[-1] == header[-1]
        assert g.first_line == 3 and len(g.alignment) == len(g.lines) == len(g.tokens)
        assert all(first_instruction <= a <= last_instruction for a in g.alignment)
        for line in g.tokens:
            for token in line:
                probabilities = [p for _, p in token.alternatives]
                assert probabilities == sorted(probabilities, reverse=True)
                assert sum(probabilities) >= 0.99 or len(probabilities) == 8
                assert sum(probabilities) <= 1 + 1e-5
        uncertain = {g.first_line + i for i, line in enumerate(g.tokens)
                     if any(len(t.alternatives) > 1 for t in line)}
        assert set(g.uncertain_lines()) == uncertain
        assert len(g.confidence()) == len(g.lines)


def test_greedy_guess_matches_plain_greedy_decoding(tiny):
    model, vocabulary = tiny
    pair = make_corpus(1, seed=6, lengths=(3, 3))[0]
    prompt = vocabulary.encode_pair(pair.source)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(30):
            next_id = int(model(input_ids=ids).logits[0, -1].argmax())
            if next_id == vocabulary.eos:
                break
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    plain = [vocabulary.tokens[i] for i in ids[0, len(prompt):].tolist()]
    got = guess(model, vocabulary, pair.source, beams=1, max_new_tokens=30)[0]
    assert [t.token for line in got.tokens for t in line] == plain
    assert all(t.probability > 0 for line in got.tokens for t in line)


def test_the_transpiler_model_imports_only_its_layer():
    """DESIGN.md section 2: models import kernels (and models), never the syntax, the
    functors, decoding or the solvers."""
    import ast
    from pathlib import Path

    import diagrammar.models.transpiler as package

    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("diagrammar."):
                    assert node.module.split(".")[1] in {"models", "kernels"}, (path.name,
                                                                               node.module)
