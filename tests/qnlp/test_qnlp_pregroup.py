"""Tests of the pregroup syntax: types, lexicon, reduction and parser."""

from __future__ import annotations

import itertools

import pytest
from discopy.grammar.pregroup import Cup, Ty, Word

from diagrammar.diagrams.pregroup import (
    CATEGORY_TYPES,
    Lexicon,
    N,
    ParseError,
    S,
    adjective,
    intransitive_verb,
    object_relative_pronoun,
    parse,
    parses,
    reduce,
    sentence_words,
    subject_relative_pronoun,
    tokenize,
    transitive_verb,
)

LEX = Lexicon.from_categories({
    "noun": ["man", "woman", "meal", "program"],
    "adjective": ["tasty", "skillful"],
    "transitive_verb": ["cooks", "helps"],
    "intransitive_verb": ["sleeps"],
    "subject_relative_pronoun": ["that"],
    "object_relative_pronoun": ["that"],
})


def test_category_types_are_the_discocat_types():
    assert adjective() == N @ N.l
    assert transitive_verb() == N.r @ S @ N.l
    assert intransitive_verb() == N.r @ S
    assert subject_relative_pronoun() == N.r @ N @ S.l @ N
    assert object_relative_pronoun() == N.r @ N @ N.l.l @ S.l
    assert CATEGORY_TYPES["noun"] == N


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("Skillful man, cooks MEAL!") == ["skillful", "man", "cooks", "meal"]
    assert tokenize(["Man", "runs"]) == ["man", "runs"]


def test_lexicon_lookup_and_errors():
    assert LEX.types("that") == (subject_relative_pronoun(), object_relative_pronoun())
    assert "MAN" in LEX and "dog" not in LEX and 3 not in LEX
    assert "meal" in LEX.words() and len(LEX) == len(LEX.words())
    with pytest.raises(ParseError, match="dog"):
        LEX.types("dog")
    with pytest.raises(ValueError, match="unknown word category"):
        Lexicon.from_categories({"verb": ["runs"]})
    with pytest.raises(TypeError):
        Lexicon({"man": ("n",)})
    with pytest.raises(ValueError):
        Lexicon({"man": ()})
    assert Lexicon({"man": N}).types("man") == (N,)


@pytest.mark.parametrize(
    "types, target, expected",
    [
        ([N, transitive_verb(), N], S, ((0, 1), (3, 4))),
        ([adjective(), N, intransitive_verb()], S, ((0, 3), (1, 2))),
        ([N, subject_relative_pronoun(), transitive_verb(), N], N,
         ((0, 1), (3, 6), (4, 5), (7, 8))),
    ],
)
def test_reduce_finds_planar_cups(types, target, expected):
    reduction = reduce(types, target)
    assert reduction is not None
    assert reduction.cups == expected
    n_atoms = sum(len(t) for t in types)
    used = sorted([i for pair in reduction.cups for i in pair] + list(reduction.outputs))
    assert used == list(range(n_atoms))
    for i, j in reduction.cups:  # nested, never crossing
        for k, m in reduction.cups:
            assert not (i < k < j < m)


def test_reduce_rejects_ungrammatical():
    assert reduce([N, N], S) is None
    assert reduce([transitive_verb(), N, N], S) is None
    assert reduce([N, intransitive_verb()], N) is None
    assert reduce(N, N).outputs == (0,)


def test_parse_produces_words_then_cups():
    diagram = parse("skillful man cooks tasty meal", LEX)
    assert diagram.dom == Ty() and diagram.cod == S
    assert [w.name for w in sentence_words(diagram)] == ["skillful", "man", "cooks", "tasty",
                                                          "meal"]
    assert sum(isinstance(b, Cup) for b in diagram.boxes) == 4
    first_cup = next(i for i, b in enumerate(diagram.boxes) if isinstance(b, Cup))
    assert all(isinstance(b, Word) for b in diagram.boxes[:first_cup])
    assert all(isinstance(b, Cup) for b in diagram.boxes[first_cup:])


def test_relative_pronoun_type_is_chosen_by_word_order():
    subj = parse("man that helps woman", LEX, N)
    obj = parse("man that woman helps", LEX, N)
    that_subj = [w for w in sentence_words(subj) if w.name == "that"][0]
    that_obj = [w for w in sentence_words(obj) if w.name == "that"][0]
    assert that_subj.cod == subject_relative_pronoun()
    assert that_obj.cod == object_relative_pronoun()
    assert len(list(parses("man that helps woman", LEX, N))) == 1


def test_parse_errors_name_the_problem():
    with pytest.raises(ParseError, match="dog"):
        parse("dog cooks meal", LEX)
    with pytest.raises(ParseError, match="no pregroup reduction"):
        parse("man meal cooks", LEX)
    with pytest.raises(ParseError, match="empty"):
        parse("", LEX)


def test_every_grammatical_pattern_parses_and_ungrammatical_do_not():
    nouns, verbs = ["man", "meal"], ["cooks"]
    for subj_adj, obj_adj in itertools.product(["", "tasty"], repeat=2):
        for s, v, o in itertools.product(nouns, verbs, nouns):
            sentence = " ".join(w for w in [subj_adj, s, v, obj_adj, o] if w)
            assert parse(sentence, LEX).cod == S
            verb_first = [v] + [w for w in sentence.split() if w != v]
            with pytest.raises(ParseError):
                parse(verb_first, LEX)
