"""Binder's learned part: training pairs for one model in two roles, sampling and voting with
stand-in models, the SQL-only gold programs, and the example's comparison end to end."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

from diagrammar.functors.table_qa import (
    BinderConfig,
    MapCache,
    ProgramGrammar,
    accuracy,
    balanced,
    binder_pairs,
    binder_predict,
    end_to_end_pairs,
    end_to_end_predict,
    map_pairs,
    parse_pairs,
    questions_of,
    sample_programs,
)
from diagrammar.symbolic.binder import Table, execute, normalize_answer, parse
from diagrammar.symbolic.tables import FAMILIES, Example, generate


def _examples() -> list[Example]:
    return generate("train", 60, seed=3)


def test_parse_pairs_carry_the_role_the_question_and_the_first_rows():
    examples = _examples()
    for (source, target), example in zip(parse_pairs(examples, rows=3), examples):
        header = " | ".join(example.table.columns)
        assert source.startswith(f"parse: {example.question.text} | {header} / ")
        assert source.count(" / ") == 3  # three rows after the header
        assert target == example.question.map_program
        assert all(call.kind == "map" for call in parse(target).calls)  # ans as ORDER BY


def test_map_pairs_answer_every_cell_of_every_mapped_column():
    examples = _examples()
    pairs = dict(map_pairs(examples))
    for example in examples:
        oracle = example.oracle_map()
        for call in parse(example.question.map_program).calls:
            position = example.table.columns.index(call.columns[0])
            for row in example.table.texts()[1]:
                source = f"map: {call.question} | {row[position]}"
                assert pairs[source] == oracle("map", call.question, row[position])
    roles = Counter(source.split(":")[0] for source, _ in binder_pairs(examples))
    assert set(roles) == {"parse", "map"} and roles["parse"] >= len(examples)


def test_end_to_end_pairs_read_the_whole_table():
    example = _examples()[0]
    source, target = end_to_end_pairs([example])[0]
    assert source.startswith("answer: ") and source.count(" / ") == len(example.table.rows)
    assert target == normalize_answer(example.question.answer)


def test_sql_only_programs_are_plain_sql_and_right_on_the_common_formats():
    examples = generate("train", 150, seed=1)
    right = Counter()
    for example in examples:
        program = example.question.sql_program
        assert "QA(" not in program and not parse(program).calls
        table = Table(*example.table.texts())
        answer = execute(program, table, example.oracle_map()).answer
        right[answer == normalize_answer(example.question.answer)] += 1
        if example.question.kind == "lookup":
            assert answer == normalize_answer(example.question.answer)
    assert 0.6 <= right[True] / len(examples) < 1.0  # the messy formats defeat it sometimes
    # each sub-question's SQL reads the common ways its cells are written
    common = {"did they win?": [("W 24-17", "yes"), ("lost 3–21", "no")],
              "how many points did they score?": [("W 24-17", "24"), ("L 10-13 (OT)", "10")],
              "how many points did the opponent score?": [("won 24–17", "17")],
              "what was the attendance as a number?": [("61,512", "61512")],
              "what is the population as a number?": [("2,160,000", "2160000")],
              "is the city on the coast?": [("on the coast", "yes"), ("inland", "no")],
              "did the athlete win gold?": [("gold medal", "yes"), ("—", "no")],
              "in what year was the athlete born?": [("7 September 1992", "1992")],
              "what team did they play?": [("at Dallas", "Dallas"), ("Miami (home)", "Miami")]}
    subs = {q: s for family in FAMILIES.values() for q, s in family.sub_questions().items()}
    for question, cases in common.items():
        sub = subs[question]
        for cell, gold in cases:
            result = execute(f"SELECT {sub.sql} FROM w", Table((sub.column,), ((cell,),)),
                             print).answer
            expected = {"yes": "1", "no": "0"}.get(gold, normalize_answer(gold))  # predicates
            assert result == expected, (question, cell, result)


def test_voting_drops_broken_programs_and_outvotes_a_wrong_greedy_one():
    table = Table(("team", "result"), (("Dallas", "W 24-17"), ("Miami", "L 3-21"),
                                       ("Boston", "won 30-10")))
    right = "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'"
    programs = {0.0: ["SELECT COUNT(*) FROM w"],  # greedy: wrong (3)
                0.8: [right, "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result",
                      "DROP TABLE w", right, "SELECT nonsense FROM w"]}

    def parser(sources, temperature=0.0, seed=0):  # one question: 1 greedy, 5 sampled
        return programs[temperature] * (1 if temperature == 0 else len(sources) // 5)

    asked = []

    def mapper(sources, temperature=0.0, seed=0):
        asked.extend(sources)
        return ["yes" if s.split("| ")[1][0] in "Ww" else "no" for s in sources]

    config = BinderConfig(samples=5, seed=1)
    assert sample_programs(parser, [("q", table)], config) == [
        programs[0.0] + programs[0.8]]
    prediction = binder_predict(parser, [("How many games were won?", table)], config,
                                mapper=mapper)[0]
    assert prediction.answer == "2" and prediction.vote.counts == {"3": 1, "2": 2}
    assert prediction.parsed == 4  # the unclosed call and the DROP do not parse
    assert len(asked) == 3 and prediction.map_calls == 3  # each cell asked once, batched
    # without a mapper (the SQL-only baseline) the map programs fail and do not vote
    alone = binder_predict(parser, [("How many games were won?", table)], config)[0]
    assert alone.answer == "3" and alone.vote.count == 1


def test_oracle_parser_and_mapper_answer_every_split():
    for split in ("train", "larger-tables", "held-out-combinations", "answers-outside-range"):
        examples = generate(split, 8, seed=2)
        gold = {e.question.text: e.question.map_program for e in examples}
        cells = {}
        for example in examples:
            oracle = example.oracle_map()
            for call in parse(example.question.map_program).calls:
                position = example.table.columns.index(call.columns[0])
                for row in example.table.texts()[1]:
                    cells[f"map: {call.question} | {row[position]}"] = oracle(
                        "map", call.question, row[position])

        def parser(sources, temperature=0.0, seed=0, gold=gold):
            return [gold[source[len("parse: "):].split(" | ")[0]] for source in sources]

        def mapper(sources, temperature=0.0, seed=0, cells=cells):
            return [cells[source] for source in sources]

        cache = MapCache(mapper)
        predictions = binder_predict(parser, questions_of(examples), BinderConfig(samples=1),
                                     mapper=cache)
        assert accuracy([p.answer for p in predictions], examples) == 1.0, split
        assert cache.asked == len(cache.answers)


def test_end_to_end_predictions_are_normalised():
    examples = generate("train", 3, seed=0)
    answers = {e.question.text: str(e.question.answer) for e in examples}

    def model(sources, temperature=0.0, seed=0):
        return [answers[source[len("answer: "):].split(" | ")[0]] for source in sources]

    predictions = end_to_end_predict(model, questions_of(examples))
    assert accuracy(predictions, examples) == 1.0


def test_example_compares_the_three_methods_end_to_end(tmp_path, monkeypatch, capsys):
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("table_qa_example",
                                                  root / "examples" / "table_qa.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # dataclasses look it up
    spec.loader.exec_module(example)
    argv = ["--tiny", "--report", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png"),
            "--models", str(tmp_path / "models")]
    results = example.main(argv)
    assert {r.method for r in results} == {"Binder", "SQL-only", "end-to-end"}
    assert len(results) == 12 and all(0 <= r.accuracy <= 1 for r in results)
    report = (tmp_path / "r.md").read_text()
    assert "| split | Binder | SQL-only | end-to-end |" in report
    assert "| larger-tables |" in report and "training time" in report
    assert "SQL-only's gold programs (no model), larger-tables:" in report
    assert (tmp_path / "r.png").stat().st_size > 0
    assert "answers-outside-range" in capsys.readouterr().out
    # the trained models were saved; a second run with the same settings loads them
    assert len(list((tmp_path / "models").glob("*.pt"))) == 3
    again = example.main(argv)
    assert "loaded from" in capsys.readouterr().out
    assert [r.answers for r in again] == [r.answers for r in results]


def test_balanced_map_pairs_lift_rare_sub_questions_and_keep_every_pair():
    pairs = map_pairs(_examples())
    lifted = balanced(pairs)
    counts = Counter(source.split(" | ")[0] for source, _ in lifted)
    assert set(lifted) == set(pairs)
    assert min(counts.values()) >= 0.125 * max(counts.values())
    assert sorted(balanced(pairs, share=0.0)) == sorted(pairs)


def test_programs_decoded_under_the_grammar_are_in_binders_language():
    from diagrammar.diagrams.builtin_grammars import binder_sql
    from diagrammar.functors.grammar import accepts
    from diagrammar.functors.table_qa import translator
    from diagrammar.models.seq2seq import Seq2SeqConfig, train_seq2seq

    examples = _examples()
    config = Seq2SeqConfig(steps=150, dim=32, layers=1, batch=16, tokens="spaced", copy=True,
                           max_length=90, max_output=90, learning_rate=3e-3)
    model = train_seq2seq(parse_pairs(examples, rows=0), config, progress=False)
    grammar = ProgramGrammar(model)
    questions = questions_of(generate("held-out-combinations", 8, seed=5))
    programs = sample_programs(translator(model), questions,
                               BinderConfig(samples=3, rows=0), grammar)
    accepted = 0
    for (_, table), sampled in zip(questions, programs):
        language = binder_sql(table.columns)
        for program in sampled:   # in the language, or cut off at the output limit
            accepted += accepts(language, program)
            assert accepts(language, program) or len(program) >= 89
    assert accepted >= len(questions) * 4 // 2
    free = sample_programs(translator(model), questions, BinderConfig(samples=3, rows=0))
    assert free != programs       # the grammar changed some decoding


def test_a_dead_end_in_the_grammar_ends_the_output_instead_of_failing():
    from diagrammar.decoding.constraints.protocol import GrammarError
    from diagrammar.functors.table_qa import _DeadEnds

    class Stuck:
        def allowed(self):
            raise GrammarError("no token continues the output")

        def advance(self, tokens):
            raise AssertionError("never advanced once dead")

    matcher = _DeadEnds(Stuck(), 5)
    assert not matcher.allowed().any() and matcher.dead and not matcher.advance([2])


def test_the_vocabulary_spells_any_text_so_grammars_never_dead_end():
    from diagrammar.models.seq2seq import Seq2SeqConfig, train_seq2seq

    model = train_seq2seq([("q", "SELECT COUNT(*")], Seq2SeqConfig(
        steps=1, dim=16, layers=1, tokens="spaced"), progress=False)
    matcher = ProgramGrammar(model)(("a",))
    words = model.target_vocabulary.words
    program = " SELECT COUNT(*) FROM w WHERE a LIKE '%x%'"
    for token in ProgramGrammar(model).vocabulary.encode(program):
        assert matcher.allowed()[token], words[token]
        assert matcher.advance([token])
    assert matcher.matcher.is_accepting()
