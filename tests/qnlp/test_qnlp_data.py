"""Tests of the generated MC and RP data sets."""

from __future__ import annotations

from collections import Counter

import pytest

from diagrammar.diagrams.pregroup import (
    N,
    S,
    object_relative_pronoun,
    subject_relative_pronoun,
    tokenize,
    transitive_verb,
)
from diagrammar.qnlp.data import (
    Dataset,
    Example,
    generate_mc,
    generate_rp,
    load_dataset,
    mc_lexicon,
    rp_lexicon,
    save_dataset,
)
from diagrammar.qnlp.models import parse_sentences

FOOD = {"meal", "dinner", "sauce", "tasty", "cooks", "bakes"}
IT = {"program", "software", "application", "useful", "debugs", "runs"}


def _vocab(examples):
    return {w for e in examples for w in tokenize(e.sentence)}


def test_mc_is_deterministic_balanced_and_consistent():
    mc = generate_mc(seed=0)
    assert mc == generate_mc(seed=0) and mc != generate_mc(seed=1)
    assert (len(mc.train), len(mc.dev), len(mc.test)) == (70, 30, 30)
    assert Counter(e.label for e in mc.all_examples()) == {0: 65, 1: 65}
    assert len({e.sentence for e in mc.all_examples()}) == 130
    assert _vocab(mc.dev) | _vocab(mc.test) <= _vocab(mc.train)
    for e in mc.all_examples():
        words = set(tokenize(e.sentence))
        assert words & (FOOD if e.label == 0 else IT)
        assert not words & (IT if e.label == 0 else FOOD)
    assert mc.target_type == S
    assert all(d.cod == S for d in parse_sentences([e.sentence for e in mc.all_examples()],
                                                   mc_lexicon()))


def test_rp_label_is_decided_by_word_order():
    rp = generate_rp(seed=0)
    assert rp == generate_rp(seed=0)
    assert (len(rp.train), len(rp.dev), len(rp.test)) == (60, 30, 30)
    assert rp.target_type == N
    for split in rp.splits().values():
        by_words = {}
        for e in split:
            by_words.setdefault(frozenset(Counter(e.sentence.split()).items()), set()).add(
                e.label)
        assert all(labels == {0, 1} for labels in by_words.values())  # same words, both labels
    for e in rp.all_examples():
        head, that, second, third = e.sentence.split()
        assert that == "that"
        assert (second in {"helps", "hires", "trusts"}) == (e.label == 0)
    assert _vocab(rp.dev) | _vocab(rp.test) <= _vocab(rp.train)
    diagrams = parse_sentences([e.sentence for e in rp.all_examples()], rp_lexicon(), N)
    assert all(d.cod == N for d in diagrams)


def test_save_and_load_round_trip(tmp_path):
    for data in (generate_mc(3), generate_rp(3)):
        paths = save_dataset(data, tmp_path)
        assert [p.name for p in paths] == [f"{data.name.lower()}_{s}.txt"
                                           for s in ("train", "dev", "test")]
        assert load_dataset(tmp_path, data.name) == data
    (tmp_path / "rp_dev.txt").write_text("x broken line\n")
    with pytest.raises(ValueError, match="rp_dev.txt:1"):
        load_dataset(tmp_path, "RP")
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset(tmp_path, "XX")


def test_bad_sizes_and_dataset_helpers():
    with pytest.raises(ValueError):
        generate_mc(sizes=(200, 30, 30))
    with pytest.raises(ValueError):
        generate_rp(sizes=(50, 10, 10))
    small = Dataset("T", (Example("a", 0),), (Example("b", 1),), (), ("x", "y"), "s")
    assert [e.sentence for e in small.all_examples()] == ["a", "b"]
    assert set(small.splits()) == {"train", "dev", "test"}
    assert mc_lexicon().types("prepares") == (transitive_verb(),)  # one type for both topics
    assert rp_lexicon().types("that") == (subject_relative_pronoun(), object_relative_pronoun())
