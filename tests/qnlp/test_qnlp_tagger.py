"""Tests of the tagged word list, the part-of-speech tagger and the tagged pregroup parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.diagrams.pregroup import (
    Lexicon,
    N,
    ParseError,
    S,
    parse,
    parse_typed,
    sentence_words,
    transitive_verb,
)
from diagrammar.qnlp.english_words import CATEGORIES, WORD_LIST, parse_word_list
from diagrammar.qnlp.tagger import ParserCoverage, PosTagger, TaggedParser

NOUNS = [w for w, tags in WORD_LIST.items() if tags == (("noun", 0),)]
VERBS = [w for w, tags in WORD_LIST.items() if tags == (("verb", 0),)]


def test_word_list_entries_are_known_categories_cheapest_first():
    for word, tags in WORD_LIST.items():
        assert word == word.lower() and tags
        assert all(category in CATEGORIES for category, _ in tags)
        assert tags[0][1] == 0, word  # the first listed use is the most common one


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("man", "has no category"),
        ("man noun\nman verb", "listed twice"),
        ("man thing", "unknown category"),
        ("man noun:x", "not a number"),
    ],
)
def test_parse_word_list_rejects_bad_lines_with_line_number(text, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_word_list(text)
    assert "line" in str(err.value)


def test_parse_word_list_costs_default_to_position_and_skip_comments():
    assert parse_word_list("# c\n\nrun verb noun  # x\nfish noun verb:2") == {
        "run": (("verb", 0), ("noun", 1)),
        "fish": (("noun", 0), ("verb", 2)),
    }


@pytest.mark.parametrize(
    ("word", "source", "first"),
    [
        ("meal", "word list", "noun"),
        ("meals", "inflection", "noun"),
        ("cooks", "inflection", "verb"),
        ("studies", "inflection", "noun"),
        ("watches", "inflection", "verb"),
        ("zorbful", "suffix", "adjective"),
        ("zorbation", "suffix", "noun"),
        ("zorbize", "suffix", "verb"),
        ("zorb", "default", "noun"),
    ],
)
def test_tagger_sources(word, source, first):
    tagger = PosTagger()
    assert tagger.source(word) == source
    assert tagger.candidates(word)[0][0] == first


def test_inflection_keeps_only_nouns_and_verbs():
    tagger = PosTagger({"good": (("adjective", 0),)})
    assert tagger.source("goods") == "default"


def test_restricted_tagger_forgets_other_words_but_keeps_inflections():
    tagger = PosTagger().restricted(["cooks", "meal"])
    assert tagger.source("cook") == "word list" and tagger.source("meals") == "inflection"
    assert tagger.source("sauce") == "default"


@pytest.mark.parametrize(
    ("sentence", "pronoun"),
    [
        ("organization that church establish", "object_relative_pronoun"),
        ("organization that establish church", "subject_relative_pronoun"),
        ("device that water enter", "object_relative_pronoun"),  # water: noun before verb
        ("building that house monk", "subject_relative_pronoun"),  # shape forces house = verb
        ("mammal that attack ship", "subject_relative_pronoun"),  # ship is rarely a verb
    ],
)
def test_relative_clause_structure_from_word_list_and_shape(sentence, pronoun):
    tags = TaggedParser().tags(sentence, target=N)
    assert tags[1] == pronoun
    assert tags.count("transitive_verb") == 1


@settings(max_examples=40, deadline=None)
@given(head=st.sampled_from(NOUNS), verb=st.sampled_from(VERBS), other=st.sampled_from(NOUNS))
def test_unambiguous_relative_clauses_are_tagged_by_word_order(head, verb, other):
    parser = TaggedParser()
    subject = parser.analyse(f"{head} that {verb} {other}", target=N)
    obj = parser.analyse(f"{head} that {other} {verb}", target=N)
    assert subject.categories[1] == "subject_relative_pronoun" and not subject.tied
    assert obj.categories[1] == "object_relative_pronoun" and not obj.tied
    assert subject.cost == obj.cost == 0


@settings(max_examples=40, deadline=None)
@given(
    subj=st.sampled_from(NOUNS),
    verb=st.sampled_from(VERBS),
    obj=st.sampled_from(NOUNS),
    adj=st.sampled_from(["skillful", "tasty", "useful", "zorbful"]),
)
def test_tagged_parse_equals_hand_lexicon_parse(subj, verb, obj, adj):
    sentence = f"{adj} {subj} {verb} {obj}"
    lexicon = Lexicon.from_categories(
        {"noun": [subj, obj], "transitive_verb": [verb], "adjective": [adj]}
    )
    assert TaggedParser().parse(sentence) == parse(sentence, lexicon)


def test_tie_is_reported_and_resolved_in_word_order():
    tagger = PosTagger(
        {
            "a": (("noun", 0),),
            "x": (("noun", 0), ("verb", 1)),
            "y": (("noun", 0), ("verb", 1)),
            "that": (("relative_pronoun", 0),),
        }
    )
    tagged = TaggedParser(tagger).analyse("a that x y", target=N)
    assert tagged.tied and tagged.cost == 1
    assert tagged.categories[1] == "subject_relative_pronoun"


def test_parse_failure_names_the_sentence():
    with pytest.raises(ParseError, match="meal meal"):
        TaggedParser().parse("meal meal")
    with pytest.raises(ParseError, match="empty"):
        TaggedParser().analyse("")


def test_parse_typed_agrees_with_parse_and_checks_lengths():
    words, types = ["man", "cooks", "meal"], [N, transitive_verb(), N]
    lexicon = Lexicon({"man": (N,), "cooks": (transitive_verb(),), "meal": (N,)})
    diagram = parse_typed(words, types)
    assert diagram == parse("man cooks meal", lexicon)
    assert [w.name for w in sentence_words(diagram)] == words
    with pytest.raises(ValueError, match="one type per word"):
        parse_typed(words, types[:2])
    with pytest.raises(ParseError, match="man:n"):
        parse_typed(["man", "meal"], [N, N], S)


def test_parse_typed_allows_one_word_with_two_types():
    diagram = parse_typed(["fish", "fish"], [N, N.r @ S])
    assert [w.cod for w in sentence_words(diagram)] == [N, N.r @ S]


def test_coverage_counts_parses_ties_and_sources():
    coverage = TaggedParser().coverage(["man cooks meal", "meal meal", "zorb cooks zorbful"])
    assert isinstance(coverage, ParserCoverage)
    assert (coverage.sentences, coverage.parsed, coverage.failures) == (3, 2, ("meal meal",))
    assert coverage.words["inflection"] == ["cooks"]
    assert coverage.words["suffix"] == ["zorbful"] and coverage.words["default"] == ["zorb"]
    assert coverage.fraction == pytest.approx(2 / 3)
    assert coverage.summary().startswith("2/3 sentences parse (66.7%)")
    assert ParserCoverage(0, 0, 0).fraction == 1.0
