"""Part-of-speech tagging for pregroup parsing: a lexicon from word categories, not by hand.

>>> parser = TaggedParser()
>>> parser.tags("organization that church establish", target=N)
['noun', 'object_relative_pronoun', 'noun', 'transitive_verb']
>>> parser.tags("skillful woman bakes tasty meal")
['adjective', 'noun', 'transitive_verb', 'adjective', 'noun']
>>> parser.parse("person runs program").cod == S
True

A :class:`PosTagger` gives every word its candidate parts of speech with a *cost* (``0``
for the most common use, more for rarer ones): from the tagged word list
(:data:`~diagrammar.qnlp.english_words.WORD_LIST`), from the list through an inflection
(``cooks`` -> ``cook``, ``meals`` -> ``meal``), or, for a word the list lacks, from its
suffix (``-ful`` adjective, ``-tion`` noun, ...) or a default (noun, then verb, then
adjective).  :class:`TaggedParser` turns parts of speech into pregroup types
(:data:`CATEGORY_TYPES`: a verb is transitive or, at a higher cost, intransitive; a
relative pronoun is a subject or an object relative pronoun) and keeps the cheapest type
assignment that reduces to the target type.  The sentence shape decides what the word list
leaves open: in ``organization that church establish`` one of the last two words must be
the verb, so the relative pronoun is an object relative pronoun.

No label is ever read: the types come from the word list and the grammar alone.
:meth:`TaggedParser.coverage` reports how many sentences parse and where their words'
categories came from.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from discopy.grammar.pregroup import Diagram, Ty

from diagrammar.diagrams.pregroup import (
    N,
    ParseError,
    S,
    adjective,
    intransitive_verb,
    object_relative_pronoun,
    parse_typed,
    reduce,
    subject_relative_pronoun,
    tokenize,
    transitive_verb,
)
from diagrammar.qnlp.english_words import WORD_LIST

__all__ = ["CATEGORY_TYPES", "ParserCoverage", "PosTagger", "TaggedParser", "TaggedSentence"]

Tags = tuple[tuple[str, int], ...]

#: Per part of speech: its pregroup categories with their type and extra cost.
CATEGORY_TYPES: dict[str, tuple[tuple[str, Ty, int], ...]] = {
    "noun": (("noun", N, 0),),
    "adjective": (("adjective", adjective(), 0),),
    "verb": (
        ("transitive_verb", transitive_verb(), 0),
        ("intransitive_verb", intransitive_verb(), 1),
    ),
    "relative_pronoun": (
        ("subject_relative_pronoun", subject_relative_pronoun(), 0),
        ("object_relative_pronoun", object_relative_pronoun(), 0),
    ),
}

# Suffixes of words missing from the word list, longest first within each part of speech.
_SUFFIXES: tuple[tuple[tuple[str, ...], Tags], ...] = (
    (("ful", "ous", "ive", "able", "ible", "less", "ical", "ic"), (("adjective", 0), ("noun", 1))),
    (
        (
            "tion",
            "sion",
            "ment",
            "ness",
            "ity",
            "ist",
            "ism",
            "ance",
            "ence",
            "ship",
            "hood",
            "ian",
            "er",
            "or",
        ),
        (("noun", 0), ("verb", 2)),
    ),
    (("ize", "ise", "ify"), (("verb", 0), ("noun", 2))),
)
_DEFAULT: Tags = (("noun", 0), ("verb", 1), ("adjective", 2))
# Inflections: (suffix, replacement) giving the base form, and the categories they keep.
_INFLECTIONS = (("s", ""), ("es", ""), ("ies", "y"))
_INFLECTED = ("noun", "verb")


class PosTagger:
    """Candidate parts of speech of a word, cheapest first.

    Args:
        word_list: ``{word: ((category, cost), ...)}`` in base forms; the built-in
            :data:`~diagrammar.qnlp.english_words.WORD_LIST` by default.

    >>> tagger = PosTagger()
    >>> tagger.candidates("cooks"), tagger.source("cooks")
    ((('verb', 0), ('noun', 1)), 'inflection')
    >>> tagger.candidates("blorpful"), tagger.source("blorpful")
    ((('adjective', 0), ('noun', 1)), 'suffix')
    """

    def __init__(self, word_list: Mapping[str, Tags] | None = None) -> None:
        self.word_list: dict[str, Tags] = dict(WORD_LIST if word_list is None else word_list)

    def restricted(self, words: Iterable[str]) -> PosTagger:
        """The same tagger with a word list cut down to ``words`` (their base forms).

        Used to measure what the tagger does on words it has not been given.

        >>> PosTagger().restricted(["man"]).source("woman")
        'default'
        """
        keep = set()
        for word in words:
            keep.add(word)
            keep.update(word[: -len(end)] + new for end, new in _INFLECTIONS if word.endswith(end))
        return PosTagger({w: tags for w, tags in self.word_list.items() if w in keep})

    def _inflected(self, word: str) -> Tags | None:
        for end, new in _INFLECTIONS:
            if word.endswith(end) and len(word) > len(end) + 1:
                tags = self.word_list.get(word[: -len(end)] + new)
                kept = tuple(t for t in tags or () if t[0] in _INFLECTED)
                if kept:
                    return kept
        return None

    def source(self, word: str) -> str:
        """Where the candidates come from: ``"word list"``, ``"inflection"``, ``"suffix"``
        or ``"default"``."""
        word = word.lower()
        if word in self.word_list:
            return "word list"
        if self._inflected(word) is not None:
            return "inflection"
        if any(word.endswith(end) for ends, _ in _SUFFIXES for end in ends):
            return "suffix"
        return "default"

    def candidates(self, word: str) -> Tags:
        """``((category, cost), ...)``, cheapest first (ties keep the word list's order)."""
        word = word.lower()
        tags = self.word_list.get(word) or self._inflected(word)
        if tags is None:
            tags = next(
                (tags for ends, tags in _SUFFIXES if any(word.endswith(end) for end in ends)),
                _DEFAULT,
            )
        return tuple(sorted(tags, key=lambda tag: tag[1]))


@dataclass(frozen=True)
class TaggedSentence:
    """The cheapest type assignment of a sentence that reduces to the target type.

    Attributes:
        words: the tokens.
        categories: the pregroup category of each word (a key of
            :data:`~diagrammar.diagrams.pregroup.CATEGORY_TYPES`).
        types: the pregroup type of each word.
        cost: the sum of the chosen tags' costs.
        tied: another assignment with different categories reduces at the same cost (the
            first in word order was kept).
    """

    words: tuple[str, ...]
    categories: tuple[str, ...]
    types: tuple[Ty, ...]
    cost: int
    tied: bool


@dataclass(frozen=True)
class ParserCoverage:
    """How a :class:`TaggedParser` did on a list of sentences.

    Attributes:
        sentences: the number of sentences.
        parsed: how many reduce to the target type.
        tied: how many of those had a tie for the cheapest parse.
        words: the distinct words, by where their candidates came from (``"word list"``,
            ``"inflection"``, ``"suffix"``, ``"default"``).
        failures: the sentences that did not parse.
    """

    sentences: int
    parsed: int
    tied: int
    words: dict[str, list[str]] = field(default_factory=dict)
    failures: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """The share of sentences that parse (1.0 for no sentences)."""
        return self.parsed / self.sentences if self.sentences else 1.0

    def summary(self) -> str:
        """One line, e.g. ``'105/105 sentences parse (100.0%), 0 tied; 115 words: ...'``."""
        total = sum(len(v) for v in self.words.values())
        by_source = ", ".join(f"{len(v)} {k}" for k, v in self.words.items() if v)
        return (
            f"{self.parsed}/{self.sentences} sentences parse ({self.fraction:.1%}), "
            f"{self.tied} tied; {total} words: {by_source}"
        )


class TaggedParser:
    """Pregroup parsing with types from a part-of-speech tagger.

    Args:
        tagger: the tagger (:class:`PosTagger` with the built-in word list by default).

    Raises:
        ParseError: (from :meth:`analyse`, :meth:`parse`) no assignment reduces.

    >>> TaggedParser().tags("device that water enter", target=N)[1]
    'object_relative_pronoun'
    """

    def __init__(self, tagger: PosTagger | None = None) -> None:
        self.tagger = tagger or PosTagger()

    def _options(self, word: str) -> list[tuple[str, Ty, int]]:
        options = []
        for category, cost in self.tagger.candidates(word):
            options += [(name, ty, cost + extra) for name, ty, extra in CATEGORY_TYPES[category]]
        return options

    def analyse(self, sentence: str | Sequence[str], target: Ty = S) -> TaggedSentence:
        """The cheapest assignment of pregroup types to the words that reduces to ``target``.

        Assignments are tried by total cost, ties in word order (earlier words keep their
        cheaper tags).

        Raises:
            ParseError: the sentence is empty or no assignment reduces.
        """
        words = tuple(tokenize(sentence))
        if not words:
            raise ParseError("empty sentence")
        options = [self._options(word) for word in words]
        ranked = sorted(itertools.product(*options), key=lambda a: sum(o[2] for o in a))
        best = None
        for assignment in ranked:
            cost = sum(o[2] for o in assignment)
            if best is not None and cost > best.cost:
                break
            if reduce([o[1] for o in assignment], target) is None:
                continue
            categories = tuple(o[0] for o in assignment)
            if best is None:
                best = TaggedSentence(
                    words, categories, tuple(o[1] for o in assignment), cost, False
                )
            elif categories != best.categories:
                return TaggedSentence(best.words, best.categories, best.types, best.cost, True)
        if best is None:
            raise ParseError(
                f"no assignment of part-of-speech types to {' '.join(words)!r} "
                f"reduces to type {target}"
            )
        return best

    def tags(self, sentence: str | Sequence[str], target: Ty = S) -> list[str]:
        """The pregroup category of each word in the chosen parse."""
        return list(self.analyse(sentence, target).categories)

    def parse(self, sentence: str | Sequence[str], target: Ty = S) -> Diagram:
        """The pregroup diagram of the chosen parse.

        Raises:
            ParseError: no assignment reduces to ``target``.
        """
        tagged = self.analyse(sentence, target)
        return parse_typed(tagged.words, tagged.types, target)

    def parse_all(self, sentences: Sequence[str], target: Ty = S) -> list[Diagram]:
        """:meth:`parse` of every sentence (same order)."""
        return [self.parse(sentence, target) for sentence in sentences]

    def coverage(self, sentences: Sequence[str], target: Ty = S) -> ParserCoverage:
        """How many sentences parse, how many had ties, where the words' tags came from.

        >>> TaggedParser().coverage(["man cooks meal", "meal meal"]).summary()
        '1/2 sentences parse (50.0%), 0 tied; 3 words: 2 word list, 1 inflection'
        """
        parsed = tied = 0
        failures = []
        for sentence in sentences:
            try:
                tied += self.analyse(sentence, target).tied
                parsed += 1
            except ParseError:
                failures.append(sentence)
        words: dict[str, list[str]] = {
            k: [] for k in ("word list", "inflection", "suffix", "default")
        }
        for word in sorted({w for s in sentences for w in tokenize(s)}):
            words[self.tagger.source(word)].append(word)
        return ParserCoverage(len(sentences), parsed, tied, words, tuple(failures))
