"""The learned part of Binder (Cheng et al. 2023): one sequence-to-sequence model that both
*parses* a question into a Binder program and *serves* the program's ``map`` calls, then
sampled programs run through :mod:`diagrammar.symbolic.binder`'s read-only executor and
vote. And the two baselines it is measured against, with the same model class:

- **end-to-end**: the whole table, linearised, and the question in; the answer out;
- **SQL-only**: a parser trained on plain-SQL programs (:attr:`~diagrammar.symbolic.tables.
  Question.sql_program`: what a careful SQL writer gets with LIKE/REPLACE/CAST/SUBSTR), no
  model calls.

One model, two roles, told apart by a prefix on its input (:data:`PARSE`, :data:`MAP`):

>>> from diagrammar.symbolic.tables import generate
>>> example = generate("train", 1, seed=0)[0]
>>> source, target = parse_pairs([example], rows=1)[0]
>>> source.startswith("parse: " + example.question.text), target == example.question.map_program
(True, True)
>>> map_pairs([example])[0][0].startswith("map: ")
True

Gold ``ans`` programs are trained in their ``map_program`` form (``ORDER BY`` a map call,
``LIMIT 1``), so a map call plus SQL answers them; ``ans`` stays in the language and a
sampled program that uses it runs only where an answer model is given (else it fails and
does not vote).

Programs are sampled at a temperature and decoded under Binder's grammar for the table
(:class:`ProgramGrammar`: :func:`~diagrammar.diagrams.builtin_grammars.binder_sql` bound to
the table's columns, compiled by the same grammar engines the ``Constrain`` box uses, against
this model's own vocabulary, :class:`~diagrammar.decoding.constraints.vocabulary.
TokenVocabulary`). A program that still fails to parse (cut off at the output limit) is
dropped (:class:`~diagrammar.symbolic.binder.BinderError`).

Model text is data: a program only ever runs through :func:`~diagrammar.symbolic.binder.
vote_programs` (one read-only SELECT, time-limited), a map answer is read by
:func:`~diagrammar.symbolic.binder.coerce`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from diagrammar.symbolic.binder import (
    BinderError,
    Table,
    Vote,
    normalize_answer,
    parse,
    vote_programs,
)
from diagrammar.symbolic.tables import Example, GoldTable

PARSE, MAP, ANSWER = "parse", "map", "answer"
"""The role prefixes of a model's input: parse a question, answer a map call about one cell,
answer a question end to end from the whole table."""


class Translate(Protocol):
    """A model as inference sees it: ``translate(sources, temperature, seed)`` returns one
    output text per source (``temperature`` 0: greedy; else sampled, seeded). A model that
    decodes under a grammar also takes ``matchers=`` (one per source; see
    :class:`ProgramGrammar`); it is passed only when a grammar is."""

    def __call__(self, sources: Sequence[str], temperature: float = 0.0,
                 seed: int = 0) -> list[str]: ...


# --- inputs ---------------------------------------------------------------------------------


def _texts(table: GoldTable | Table) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    if isinstance(table, GoldTable):
        return table.texts()
    return table.columns, tuple(tuple(str(cell) for cell in row) for row in table.rows)


def table_text(table: GoldTable | Table, rows: int | None = None) -> str:
    """The table linearised: the header, then each row, cells split by ``|``, rows by ``/``
    (the first ``rows`` rows only, when given).

    >>> table_text(Table(("a", "b"), (("1", "x"), ("2", "y"))), rows=1)
    'a | b / 1 | x'
    """
    columns, cells = _texts(table)
    shown = cells if rows is None else cells[:rows]
    return " / ".join([" | ".join(columns), *(" | ".join(row) for row in shown)])


def parse_source(question: str, table: GoldTable | Table, rows: int = 3) -> str:
    """The parser's input: the role, the question, the header and the first ``rows`` rows.

    >>> parse_source("How many?", Table(("a",), (("1",), ("2",))), rows=1)
    'parse: How many? | a / 1'
    """
    return f"{PARSE}: {question} | {table_text(table, rows)}"


def map_source(question: str, cell: str) -> str:
    """The mapper's input: the role, a map call's sub-question and one cell.

    >>> map_source("did they win?", "W 24-17")
    'map: did they win? | W 24-17'
    """
    return f"{MAP}: {question} | {cell}"


def answer_source(question: str, table: GoldTable | Table) -> str:
    """The end-to-end input: the role, the question and the whole table.

    >>> answer_source("How many?", Table(("a",), (("1",),)))
    'answer: How many? | a / 1'
    """
    return f"{ANSWER}: {question} | {table_text(table)}"


# --- training pairs -------------------------------------------------------------------------


def parse_pairs(examples: Iterable[Example], *, sql_only: bool = False,
                rows: int = 3) -> list[tuple[str, str]]:
    """``(parse source, gold program)`` per example: the program with map calls
    (:attr:`~diagrammar.symbolic.tables.Question.map_program`), or the plain-SQL one when
    ``sql_only`` (the SQL-only baseline's parser).

    >>> from diagrammar.symbolic.tables import generate
    >>> example = generate("train", 3, seed=2)[2]
    >>> [target for _, target in parse_pairs([example], sql_only=True)] == [
    ...     example.question.sql_program]
    True
    """
    return [(parse_source(e.question.text, e.table, rows),
             e.question.sql_program if sql_only else e.question.map_program)
            for e in examples]


def map_pairs(examples: Iterable[Example]) -> list[tuple[str, str]]:
    """``(map source, gold answer)`` for every map sub-question of the gold programs (as
    they are trained, :func:`parse_pairs`) and every cell of its column in the examples'
    tables, each distinct pair once, in a fixed order. Answers come from the cells' clean
    values (:meth:`~diagrammar.symbolic.tables.Example.oracle_map`).

    >>> from diagrammar.symbolic.tables import generate
    >>> pairs = map_pairs(generate("train", 5, seed=0))
    >>> all(source.startswith("map: ") for source, _ in pairs), len(pairs) == len(set(pairs))
    (True, True)
    """
    seen: dict[str, str] = {}
    for example in examples:
        oracle = example.oracle_map()
        for call in parse(example.question.map_program).calls:
            if call.kind != "map":
                continue
            for cell in example.table.texts()[1]:
                text = cell[example.table.columns.index(call.columns[0])]
                seen.setdefault(map_source(call.question, text),
                                oracle("map", call.question, text))
    return list(seen.items())


def balanced(pairs: Sequence[tuple[str, str]], share: float = 0.125) -> list[tuple[str, str]]:
    """Map pairs with every sub-question's pairs repeated until it has at least ``share``
    as many as the most frequent sub-question: a question asked of a column with few
    distinct cells (``is it a national capital?``: six ways to write it) is otherwise a
    rounding error of the training data, and the model answers it by its prior.

    >>> pairs = [("map: a? | 1", "1"), ("map: a? | 2", "2"), ("map: b? | x", "no")]
    >>> balanced(pairs, share=1.0)
    [('map: a? | 1', '1'), ('map: a? | 2', '2'), ('map: b? | x', 'no'), ('map: b? | x', 'no')]
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for source, target in pairs:
        groups.setdefault(source.split(" | ")[0], []).append((source, target))
    floor = share * max((len(group) for group in groups.values()), default=0)
    return [pair for group in groups.values()
            for pair in group * max(1, math.ceil(floor / len(group)))]


def binder_pairs(examples: Sequence[Example], *, rows: int = 3,
                 parse_share: float = 0.5) -> list[tuple[str, str]]:
    """The Binder model's training pairs, both roles: :func:`parse_pairs` and
    :func:`map_pairs` (:func:`balanced` across sub-questions), the parse pairs repeated so
    that about ``parse_share`` of the pairs parse (at least once each).

    >>> from diagrammar.symbolic.tables import generate
    >>> pairs = binder_pairs(generate("train", 4, seed=0), rows=0)
    >>> sorted({source.split(":")[0] for source, _ in pairs})
    ['map', 'parse']
    """
    parsing = parse_pairs(examples, rows=rows)
    mapping = balanced(map_pairs(examples))
    ratio = parse_share / max(1.0 - parse_share, 1e-9)
    repeat = max(1, round(ratio * len(mapping) / max(len(parsing), 1)))
    return parsing * repeat + mapping


def end_to_end_pairs(examples: Iterable[Example]) -> list[tuple[str, str]]:
    """``(whole table and question, gold answer)``: the end-to-end baseline's pairs; the
    answer is written as :func:`~diagrammar.symbolic.binder.normalize_answer` writes it.

    >>> from diagrammar.symbolic.tables import generate
    >>> example = generate("train", 1, seed=0)[0]
    >>> end_to_end_pairs([example])[0][1] == normalize_answer(example.question.answer)
    True
    """
    return [(answer_source(e.question.text, e.table), normalize_answer(e.question.answer))
            for e in examples]


# --- inference ------------------------------------------------------------------------------


def translator(model: Any, *, batch: int = 128, progress: str | None = None) -> Translate:
    """A :class:`~diagrammar.models.seq2seq.Seq2Seq` as a :class:`Translate`: sources sorted
    by length and decoded in batches (less padding), sampling seeded by ``seed``; a tqdm bar
    named ``progress`` when given.

    >>> from diagrammar.models.seq2seq import Seq2SeqConfig, train_seq2seq
    >>> model = train_seq2seq([("a", "x"), ("b", "y")] * 4, Seq2SeqConfig(
    ...     steps=60, dim=16, layers=1, batch=4, dropout=0.0), progress=False)
    >>> translator(model)(["b", "a"])
    ['y', 'x']
    """
    import torch

    def translate(sources: Sequence[str], temperature: float = 0.0, seed: int = 0,
                  matchers: Sequence[Any] | None = None) -> list[str]:
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        generator = torch.Generator().manual_seed(seed) if temperature > 0 else None
        starts: Iterable[int] = range(0, len(order), batch)
        if progress:
            from tqdm import tqdm
            starts = tqdm(starts, desc=progress, unit="batch", leave=False)
        outputs: list[str] = [""] * len(sources)
        for start in starts:
            chunk = order[start:start + batch]
            texts = model.translate([sources[i] for i in chunk], batch,
                                    temperature=temperature, generator=generator,
                                    matchers=None if matchers is None
                                    else [matchers[i] for i in chunk])
            for i, text in zip(chunk, texts):
                outputs[i] = text
        return outputs
    return translate


@dataclass(frozen=True)
class BinderConfig:
    """Inference settings: ``samples`` programs sampled at ``temperature`` (seeded by
    ``seed``) besides the greedy one, the parser's view of the table (``rows``), and each
    program's time limit (``timeout`` seconds)."""

    samples: int = 8
    temperature: float = 0.8
    seed: int = 0
    rows: int = 3
    timeout: float = 2.0


@dataclass(frozen=True)
class Prediction:
    """One question's outcome: the voted ``answer`` (None: no program gave one), the
    ``programs`` decoded (greedy first), how many ``parsed``, the ``vote`` and the map calls
    its programs asked the model (``map_calls``: distinct ``(sub-question, cell)`` pairs not
    already in the shared cache)."""

    answer: str | None
    programs: tuple[str, ...]
    parsed: int
    vote: Vote
    map_calls: int = 0


@dataclass
class MapCache:
    """Greedy map answers by ``(sub-question, cell)``, shared by every program and question;
    missing ones are asked in one batch (:meth:`fill`) or one by one (:meth:`__call__`).

    >>> cache = MapCache(lambda sources, temperature=0.0, seed=0: ["yes" for _ in sources])
    >>> cache.fill([("won?", "W 3-1"), ("won?", "W 3-1")]), cache("map", "won?", "W 3-1")
    (1, 'yes')
    """

    translate: Translate
    answers: dict[tuple[str, str], str] = field(default_factory=dict)
    asked: int = 0

    def fill(self, keys: Iterable[tuple[str, str]]) -> int:
        """Asks every key not yet answered, in one call; returns how many were asked."""
        missing = list(dict.fromkeys(key for key in keys if key not in self.answers))
        if missing:
            outputs = self.translate([map_source(q, cell) for q, cell in missing], 0.0, 0)
            self.answers.update(zip(missing, outputs))
            self.asked += len(missing)
        return len(missing)

    def __call__(self, kind: str, question: str, cell: str) -> str:
        if (question, cell) not in self.answers:
            self.fill([(question, cell)])
        return self.answers[(question, cell)]


def _needed(program: str, table: Table) -> list[tuple[str, str]]:
    names = {name.lower(): name for name in table.columns}
    keys = []
    for call in parse(program).calls:
        if call.kind == "map" and call.columns[0].lower() in names:
            keys += [(call.question, str(cell))
                     for cell in table.column(names[call.columns[0].lower()])
                     if cell is not None]
    return keys


def _refuse(kind: str, question: str, cell: str) -> str:
    raise BinderError("this parser has no model to answer map calls")


class ProgramGrammar:
    """Grammar-constrained program generation for a :class:`~diagrammar.models.seq2seq.
    Seq2Seq` parser: Binder's language bound to each table's columns
    (:func:`~diagrammar.diagrams.builtin_grammars.binder_sql`) compiled by a grammar engine
    (llguidance by default) against the model's own target vocabulary
    (:class:`~diagrammar.decoding.constraints.vocabulary.TokenVocabulary`), once per set of
    columns; calling it gives a fresh matcher for one program. Every program decoded under
    it is in the language (up to the output length limit), so none is lost to a syntax
    error, a column the table lacks, or a function SQLite does not have.

    >>> from diagrammar.models.seq2seq import Seq2SeqConfig, train_seq2seq
    >>> model = train_seq2seq([("q", "SELECT COUNT(*) FROM w")], Seq2SeqConfig(
    ...     steps=1, dim=16, layers=1, tokens="spaced"), progress=False)
    >>> matcher = ProgramGrammar(model)(("team", "result"))
    >>> words = model.target_vocabulary.words
    >>> first = {words[i] for i in matcher.allowed().nonzero()[0]}
    >>> " SELECT" in first, " S" in first, " FROM" in first
    (True, True, False)
    """

    def __init__(self, model: Any, engine: str = "llguidance") -> None:
        from diagrammar.decoding.constraints.vocabulary import TokenVocabulary
        from diagrammar.models.seq2seq import BOS, EOS, PAD

        self.engine = engine
        self.spaced = model.config.tokens == "spaced"    # outputs read after a space
        self.size = len(model.target_vocabulary.words)
        self.vocabulary = TokenVocabulary(model.target_vocabulary.words, EOS, (PAD, BOS, EOS),
                                          BOS)
        self._compiled: dict[tuple[str, ...], Any] = {}

    def __call__(self, columns: Sequence[str]) -> Any:
        key = tuple(columns)
        if key not in self._compiled:
            from diagrammar.decoding.constraints.engines import compile_grammar
            from diagrammar.diagrams.builtin_grammars import binder_sql
            from diagrammar.functors.grammar import to_spec

            spec = to_spec(binder_sql(key, leading_space=self.spaced),
                           name=f"binder({', '.join(key)})")
            self._compiled[key] = compile_grammar(spec, self.vocabulary, self.size,
                                                  engine=self.engine)
        return _DeadEnds(self._compiled[key].matcher(), self.size)


class _DeadEnds:
    """A matcher whose dead ends end the output: where the engine finds no token of the
    vocabulary that continues the program (a small vocabulary may lack one), nothing is
    allowed — the decoder then ends the output, and the unfinished program is dropped
    when it fails to parse — instead of an error for the whole batch."""

    def __init__(self, matcher: Any, size: int) -> None:
        self.matcher, self.size, self.dead = matcher, size, False

    def allowed(self) -> Any:
        import numpy as np

        from diagrammar.decoding.constraints.protocol import GrammarError
        if not self.dead:
            try:
                return self.matcher.allowed()
            except GrammarError:
                self.dead = True
        return np.zeros(self.size, dtype=bool)

    def advance(self, tokens: Sequence[int]) -> bool:
        return not self.dead and self.matcher.advance(tokens)


def sample_programs(translate: Translate, questions: Sequence[tuple[str, Table]],
                    config: BinderConfig = BinderConfig(),
                    grammar: ProgramGrammar | None = None) -> list[list[str]]:
    """For each ``(question, table)``: the greedy program, then ``config.samples`` sampled
    ones (one seeded sampling call for all questions); under ``grammar`` (a fresh matcher
    per program) when given.

    >>> fake = lambda sources, temperature=0.0, seed=0: [
    ...     "greedy" if temperature == 0 else "sampled" for _ in sources]
    >>> sample_programs(fake, [("q?", Table(("a",), ()))], BinderConfig(samples=2))
    [['greedy', 'sampled', 'sampled']]
    """
    sources = [parse_source(question, table, config.rows) for question, table in questions]

    def decode(texts: list[str], tables: list[Table], temperature: float) -> list[str]:
        if grammar is None:
            return translate(texts, temperature, config.seed)
        return translate(texts, temperature, config.seed,  # type: ignore[call-arg]
                         matchers=[grammar(table.columns) for table in tables])
    tables = [table for _, table in questions]
    greedy = decode(sources, tables, 0.0)
    k = config.samples
    sampled = (decode([s for s in sources for _ in range(k)],
                      [t for t in tables for _ in range(k)], config.temperature)
               if k else [])
    return [[greedy[i], *sampled[i * k:(i + 1) * k]] for i in range(len(sources))]


def binder_predict(parser: Translate, questions: Sequence[tuple[str, Table]],
                   config: BinderConfig = BinderConfig(), *,
                   mapper: Translate | MapCache | None = None,
                   grammar: ProgramGrammar | None = None,
                   progress: bool = False) -> list[Prediction]:
    """Binder's inference: sample programs (:func:`sample_programs`), drop those that do
    not parse, ask the mapper (greedy, cached per ``(sub-question, cell)`` across all
    questions, asked in one batch) every map call the programs make, run each program
    read-only and vote (:func:`~diagrammar.symbolic.binder.vote_programs`; a program that
    fails does not vote, a tie goes to the greedy program). ``mapper`` None: programs with
    map calls fail (the SQL-only baseline). ``grammar``: programs decoded under it
    (:class:`ProgramGrammar`).

    >>> table = Table(("team", "result"), (("Dallas", "W 24-17"), ("Miami", "L 3-21")))
    >>> programs = ["SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'",
    ...             "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result",  # broken
    ...             "SELECT COUNT(*) FROM w"]
    >>> parser = lambda sources, temperature=0.0, seed=0: (
    ...     programs[:1] * len(sources) if temperature == 0 else programs[1:] * len(sources))
    >>> mapper = lambda sources, temperature=0.0, seed=0: [
    ...     "yes" if source.split("| ")[1].startswith("W") else "no" for source in sources]
    >>> prediction = binder_predict(parser, [("How many games were won?", table)],
    ...                             BinderConfig(samples=2), mapper=mapper)[0]
    >>> prediction.answer, prediction.parsed, prediction.vote.counts
    ('1', 2, {'1': 1, '2': 1})
    """
    candidates = sample_programs(parser, questions, config, grammar)
    cache = mapper if isinstance(mapper, MapCache) or mapper is None else MapCache(mapper)
    kept: list[list[str]] = []
    for programs in candidates:
        good = []
        for program in programs:
            try:
                parse(program)
            except BinderError:
                continue
            good.append(program)
        kept.append(good)
    asked = [0] * len(questions)
    if cache is not None:
        known, wanted = set(cache.answers), []
        for index, (programs, (_, table)) in enumerate(zip(kept, questions)):
            keys = {key for program in programs for key in _needed(program, table)}
            asked[index] = len(keys - known)
            wanted += sorted(keys - known)
            known |= keys
        cache.fill(wanted)
    items: Iterable[int] = range(len(questions))
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="execute", unit="question", leave=False)
    predictions = []
    for i in items:
        table = questions[i][1]
        map_model = cache if cache is not None else _refuse
        result, _ = vote_programs(kept[i], table, map_model, timeout=config.timeout)
        predictions.append(Prediction(result.answer, tuple(candidates[i]), len(kept[i]),
                                      result, asked[i]))
    return predictions


def end_to_end_predict(translate: Translate,
                       questions: Sequence[tuple[str, GoldTable | Table]]) -> list[str]:
    """The end-to-end baseline's answers (greedy), normalised.

    >>> echo = lambda sources, temperature=0.0, seed=0: ["Yes." for _ in sources]
    >>> end_to_end_predict(echo, [("Any?", Table(("a",), ()))])
    ['yes']
    """
    outputs = translate([answer_source(q, table) for q, table in questions], 0.0, 0)
    return [normalize_answer(output) for output in outputs]


def accuracy(answers: Sequence[str | None], examples: Sequence[Example]) -> float:
    """The share of answers equal to the gold ones, both by
    :func:`~diagrammar.symbolic.binder.normalize_answer`.

    >>> from diagrammar.symbolic.tables import generate
    >>> examples = generate("train", 2, seed=0)
    >>> accuracy([normalize_answer(e.question.answer) for e in examples], examples)
    1.0
    """
    if not examples:
        return 0.0
    return sum(answer is not None and answer == normalize_answer(e.question.answer)
               for answer, e in zip(answers, examples)) / len(examples)


def questions_of(examples: Iterable[Example]) -> list[tuple[str, Table]]:
    """``(question text, table as the model and SQL see it)`` per example.

    >>> from diagrammar.symbolic.tables import generate
    >>> questions_of(generate("train", 1, seed=0))[0][1].name
    'w'
    """
    return [(e.question.text, Table(*e.table.texts())) for e in examples]


__all__ = ["ANSWER", "BinderConfig", "MAP", "MapCache", "PARSE", "Prediction", "ProgramGrammar",
           "Translate",
           "accuracy", "answer_source", "balanced", "binder_pairs", "binder_predict",
           "end_to_end_pairs", "end_to_end_predict", "map_pairs", "map_source", "parse_pairs",
           "parse_source", "questions_of", "sample_programs", "table_text", "translator"]
