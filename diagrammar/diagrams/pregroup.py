"""Pregroup grammar syntax: types, a lexicon and a parser that produces DisCoCat diagrams.

>>> lexicon = Lexicon.from_categories({
...     "noun": ["man", "meal"], "transitive_verb": ["cooks"], "adjective": ["tasty"]})
>>> diagram = parse("man cooks tasty meal", lexicon)
>>> diagram.cod == S
True
>>> [box.name for box in diagram.boxes if isinstance(box, Word)]
['man', 'cooks', 'tasty', 'meal']

A sentence is parsed by giving every word a pregroup type from a :class:`Lexicon` and
finding a planar (non-crossing) set of cups that reduces the tensor of those types to the
target type, usually the sentence type ``s``.  The result is a discopy pregroup diagram
``word_1 @ ... @ word_k >> cups``, the input of every QNLP functor in
:mod:`diagrammar.functors`.

Only discopy and the standard library are used here: this is syntax, no tensors.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from discopy.grammar.pregroup import Cup, Diagram, Id, Ty, Word

__all__ = [
    "CATEGORY_TYPES",
    "N",
    "S",
    "Lexicon",
    "ParseError",
    "Reduction",
    "adjective",
    "intransitive_verb",
    "object_relative_pronoun",
    "parse",
    "parse_typed",
    "parses",
    "reduce",
    "sentence_words",
    "subject_relative_pronoun",
    "tokenize",
    "transitive_verb",
]

#: The noun type.
N: Ty = Ty("n")
#: The sentence type.
S: Ty = Ty("s")


def adjective() -> Ty:
    """Type of an adjective that modifies the noun on its right: ``n @ n.l``.

    >>> adjective() == N @ N.l
    True
    """
    return N @ N.l


def transitive_verb() -> Ty:
    """Type of a transitive verb, expecting a subject on the left and an object on the right.

    >>> transitive_verb() == N.r @ S @ N.l
    True
    """
    return N.r @ S @ N.l


def intransitive_verb() -> Ty:
    """Type of an intransitive verb: ``n.r @ s``.

    >>> intransitive_verb() == N.r @ S
    True
    """
    return N.r @ S


def subject_relative_pronoun() -> Ty:
    """Type of a subject relative pronoun (``man *that* cooks meal``): ``n.r @ n @ s.l @ n``.

    >>> len(subject_relative_pronoun())
    4
    """
    return N.r @ N @ S.l @ N


def object_relative_pronoun() -> Ty:
    """Type of an object relative pronoun (``meal *that* man cooks``): ``n.r @ n @ n.l.l @ s.l``.

    >>> object_relative_pronoun() == N.r @ N @ N.l.l @ S.l
    True
    """
    return N.r @ N @ N.l.l @ S.l


#: Pregroup types of the word categories :meth:`Lexicon.from_categories` understands.
CATEGORY_TYPES: dict[str, Ty] = {
    "noun": N,
    "adjective": adjective(),
    "transitive_verb": transitive_verb(),
    "intransitive_verb": intransitive_verb(),
    "subject_relative_pronoun": subject_relative_pronoun(),
    "object_relative_pronoun": object_relative_pronoun(),
}


class ParseError(ValueError):
    """A sentence has an unknown word or no pregroup reduction to the target type."""


def tokenize(sentence: str | Sequence[str]) -> list[str]:
    """Split a sentence into lower-case word tokens, dropping punctuation.

    >>> tokenize("Man cooks meal.")
    ['man', 'cooks', 'meal']
    """
    if not isinstance(sentence, str):
        return [str(word).lower() for word in sentence]
    return re.findall(r"[a-z0-9_'-]+", sentence.lower())


@dataclass(frozen=True)
class Lexicon:
    """Words with their possible pregroup types (a word may have several).

    >>> lex = Lexicon({"man": (N,), "that": (subject_relative_pronoun(),
    ...                                       object_relative_pronoun())})
    >>> len(lex.types("that"))
    2
    >>> "man" in lex
    True
    """

    entries: Mapping[str, tuple[Ty, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        normalised = {}
        for word, types in self.entries.items():
            if isinstance(types, Ty):
                types = (types,)
            if not types:
                raise ValueError(f"word {word!r} has no pregroup type")
            for ty in types:
                if not isinstance(ty, Ty):
                    raise TypeError(f"type of {word!r} must be a pregroup Ty, got {ty!r}")
            normalised[word.lower()] = tuple(types)
        object.__setattr__(self, "entries", normalised)

    @classmethod
    def from_categories(cls, categories: Mapping[str, Iterable[str]]) -> Lexicon:
        """Build a lexicon from ``{category: words}`` using :data:`CATEGORY_TYPES`.

        A word listed under several categories gets all their types.

        >>> lex = Lexicon.from_categories({"noun": ["man"], "intransitive_verb": ["runs"]})
        >>> lex.types("runs") == (N.r @ S,)
        True
        """
        entries: dict[str, list[Ty]] = {}
        for category, words in categories.items():
            if category not in CATEGORY_TYPES:
                known = ", ".join(sorted(CATEGORY_TYPES))
                raise ValueError(f"unknown word category {category!r}; known: {known}")
            for word in words:
                types = entries.setdefault(word.lower(), [])
                if CATEGORY_TYPES[category] not in types:
                    types.append(CATEGORY_TYPES[category])
        return cls({word: tuple(types) for word, types in entries.items()})

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def types(self, word: str) -> tuple[Ty, ...]:
        """The pregroup types of ``word``; :class:`ParseError` if it is unknown."""
        try:
            return self.entries[word.lower()]
        except KeyError:
            raise ParseError(f"unknown word {word!r}: not in the lexicon") from None

    def words(self) -> list[str]:
        """All words, sorted.

        >>> Lexicon({"b": (N,), "a": (N,)}).words()
        ['a', 'b']
        """
        return sorted(self.entries)


@dataclass(frozen=True)
class Reduction:
    """A pregroup reduction of a list of simple types.

    ``cups`` pairs positions ``(i, j)`` with ``i < j`` that are contracted, nested and
    non-crossing; ``outputs`` are the positions left over, which spell the target type.
    """

    cups: tuple[tuple[int, int], ...]
    outputs: tuple[int, ...]


def _atoms(ty: Ty) -> list[Ty]:
    return [ty[i : i + 1] for i in range(len(ty))]


def _key(atom: Ty) -> tuple[str, int]:
    ob = atom.inside[0]
    return (ob.name, ob.z)


def _contracts(left: tuple[str, int], right: tuple[str, int]) -> bool:
    """Whether ``left @ right`` reduces to the unit, i.e. ``right == left.r``."""
    return left[0] == right[0] and right[1] == left[1] + 1


def reduce(types: Sequence[Ty] | Ty, target: Ty = S) -> Reduction | None:
    """Find a planar pregroup reduction of ``types`` (tensored) to ``target``, or ``None``.

    Dynamic programming over intervals: an interval reduces to the unit when its first
    simple type contracts with some later one and both the inside and the rest reduce.
    The first reduction found (cups preferred, leftmost partner first) is returned.

    >>> r = reduce([N, N.r @ S @ N.l, N])
    >>> r.cups, r.outputs
    (((0, 1), (3, 4)), (2,))
    >>> reduce([N, N]) is None
    True
    """
    if isinstance(types, Ty):
        types = [types]
    keys = tuple(_key(a) for ty in types for a in _atoms(ty))
    goal = tuple(_key(a) for a in _atoms(target))
    size = len(keys)

    @cache
    def empty(i: int, j: int) -> tuple[tuple[int, int], ...] | None:
        """Cups reducing keys[i:j] to nothing, or None."""
        if i == j:
            return ()
        for k in range(i + 1, j, 2):
            if not _contracts(keys[i], keys[k]):
                continue
            inner = empty(i + 1, k)
            if inner is None:
                continue
            rest = empty(k + 1, j)
            if rest is not None:
                return ((i, k), *inner, *rest)
        return None

    @cache
    def to_goal(i: int, m: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]] | None:
        """Reduce keys[i:] to goal[m:]: (cups, outputs) or None."""
        if i == size:
            return ((), ()) if m == len(goal) else None
        for k in range(i + 2, size + 1, 2):
            block = empty(i, k)
            if block is None:
                continue
            rest = to_goal(k, m)
            if rest is not None:
                return (block + rest[0], rest[1])
        if m < len(goal) and keys[i] == goal[m]:
            rest = to_goal(i + 1, m + 1)
            if rest is not None:
                return (rest[0], (i, *rest[1]))
        return None

    found = to_goal(0, 0)
    if found is None:
        return None
    return Reduction(cups=tuple(sorted(found[0])), outputs=found[1])


def _diagram(words: Sequence[Word], reduction: Reduction) -> Diagram:
    """Tensor the words, then apply the reduction's cups innermost-first, left to right."""
    diagram = Id(Ty())
    for word in words:
        diagram = diagram @ word
    partner = {}
    for i, j in reduction.cups:
        partner[i] = j
        partner[j] = i
    wires = list(range(len(diagram.cod)))
    while True:
        for pos in range(len(wires) - 1):
            if partner.get(wires[pos]) == wires[pos + 1]:
                break
        else:
            break
        cod = diagram.cod
        left, right = cod[:pos], cod[pos + 2 :]
        diagram = diagram >> Id(left) @ Cup(cod[pos : pos + 1], cod[pos + 1 : pos + 2]) @ Id(right)
        del wires[pos : pos + 2]
    return diagram


def parses(
    sentence: str | Sequence[str], lexicon: Lexicon, target: Ty = S
) -> Iterator[Diagram]:
    """All parses of ``sentence``, one per assignment of word types that reduces to ``target``.

    >>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
    >>> len(list(parses("man cooks meal", lex)))
    1
    """
    tokens = tokenize(sentence)
    if not tokens:
        raise ParseError("empty sentence")
    choices = [lexicon.types(token) for token in tokens]
    for assignment in itertools.product(*choices):
        reduction = reduce(list(assignment), target)
        if reduction is not None:
            words = [Word(tok, ty) for tok, ty in zip(tokens, assignment, strict=True)]
            yield _diagram(words, reduction)


def parse(sentence: str | Sequence[str], lexicon: Lexicon, target: Ty = S) -> Diagram:
    """Parse ``sentence`` into a pregroup diagram of codomain ``target``.

    Raises :class:`ParseError` naming the sentence when a word is unknown or no type
    assignment reduces to ``target``.

    >>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
    >>> parse("man cooks meal", lex).cod
    grammar.pregroup.Ty(rigid.Ob('s'))
    """
    for diagram in parses(sentence, lexicon, target):
        return diagram
    text = sentence if isinstance(sentence, str) else " ".join(sentence)
    raise ParseError(f"no pregroup reduction of {text!r} to type {target}")


def parse_typed(words: Sequence[str], types: Sequence[Ty], target: Ty = S) -> Diagram:
    """Parse words whose pregroup types are already chosen (one type per word).

    This is :func:`parse` for a caller that picks the types itself, e.g. a part-of-speech
    tagger that ranks its candidate tag sequences; a word may then occur twice with two
    types, which one :class:`Lexicon` entry could not say.

    Args:
        words: the word tokens.
        types: one pregroup type per word.
        target: the type the sentence must reduce to.

    Raises:
        ValueError: not one type per word.
        ParseError: the types do not reduce to ``target``.

    >>> parse_typed(["man", "runs"], [N, N.r @ S]).cod == S
    True
    """
    if len(words) != len(types) or not words:
        raise ValueError(f"need one type per word, got {len(words)} words and "
                         f"{len(types)} types")
    reduction = reduce(list(types), target)
    if reduction is None:
        shown = " ".join(f"{w}:{t}" for w, t in zip(words, types, strict=True))
        raise ParseError(f"no pregroup reduction of {shown!r} to type {target}")
    return _diagram([Word(w, t) for w, t in zip(words, types, strict=True)], reduction)


def sentence_words(diagram: Diagram) -> list[Word]:
    """The word boxes of a parsed diagram, in sentence order.

    >>> lex = Lexicon.from_categories({"noun": ["man"], "intransitive_verb": ["runs"]})
    >>> [w.name for w in sentence_words(parse("man runs", lex))]
    ['man', 'runs']
    """
    return [box for box in diagram.boxes if isinstance(box, Word)]
