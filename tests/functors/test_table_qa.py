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
    accuracy,
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
    results = example.main(["--tiny", "--report", str(tmp_path / "r.md"),
                            "--plot", str(tmp_path / "r.png")])
    assert {r.method for r in results} == {"Binder", "SQL-only", "end-to-end"}
    assert len(results) == 12 and all(0 <= r.accuracy <= 1 for r in results)
    report = (tmp_path / "r.md").read_text()
    assert "| split | Binder | SQL-only | end-to-end |" in report
    assert "| larger-tables |" in report and "training time" in report
    assert (tmp_path / "r.png").stat().st_size > 0
    assert "answers-outside-range" in capsys.readouterr().out
