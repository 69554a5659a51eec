"""The table-QA generator (symbolic/tables.py): determinism, messy cells that keep their clean
values, exact split membership, and every gold program giving its gold answer when the
Binder executor runs it with an oracle model."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from diagrammar.symbolic.binder import Table, execute, normalize_answer, parse
from diagrammar.symbolic.tables import (
    FAMILIES,
    HELD_OUT,
    ROWS,
    SPLITS,
    answer_limit,
    generate,
    pairs,
    split_of,
    splits,
    train_combinations,
)

COUNT = 75


@pytest.fixture(scope="module")
def data():
    return splits(COUNT, seed=0)


def test_the_same_seed_gives_the_same_examples_and_another_seed_others(data):
    again = generate("train", COUNT, seed=0)
    assert [e.question for e in again] == [e.question for e in data["train"]]
    assert [e.table for e in again] == [e.table for e in data["train"]]
    other = generate("train", COUNT, seed=1)
    assert [e.question for e in other] != [e.question for e in data["train"]]


def test_every_split_has_its_size_and_every_family(data):
    for split in SPLITS:
        assert len(data[split]) == COUNT
        assert {example.family for example in data[split]} == set(FAMILIES)
        assert all(example.split == split for example in data[split])


def test_every_gold_program_gives_the_gold_answer_with_an_oracle_model(data):
    checked = 0
    for split in SPLITS:
        for example in data[split]:
            columns, rows = example.table.texts()
            run = execute(example.question.program, Table(columns, rows), example.oracle_map(),
                          example.oracle_answer())
            assert run.answer == normalize_answer(example.question.answer), (split, example)
            checked += 1
    assert checked == len(SPLITS) * COUNT


def test_map_calls_where_cells_need_interpreting_and_plain_sql_for_lookups(data):
    for examples in data.values():
        for example in examples:
            calls = parse(example.question.program).calls
            assert (example.question.kind == "lookup") == (not calls), example.question
            kinds = {call.kind for call in calls}
            assert ("ans" in kinds) == (example.question.kind == "ans")


def test_split_rules_hold_exactly(data):
    for split, examples in data.items():
        for example in examples:
            rows = len(example.table.rows)
            low, high = ROWS[split]
            assert low <= rows <= high
            combination = frozenset(example.question.conditions)
            limit = answer_limit(example)
            held = {frozenset(pair) for pair in HELD_OUT[example.family]}
            if split == "held-out-combinations":
                assert combination in held
            else:
                assert combination in train_combinations(example.family)
                assert combination not in held
            if split == "answers-outside-range":
                assert limit is not None and example.question.answer > limit
            else:
                assert limit is None or example.question.answer <= limit
            assert split_of(example) == split


def test_sizes_of_train_and_larger_tables_do_not_overlap(data):
    assert max(len(e.table.rows) for e in data["train"]) <= 10
    assert min(len(e.table.rows) for e in data["larger-tables"]) >= 15


def test_train_never_combines_a_held_out_pair_but_sees_each_of_its_conditions():
    train = generate("train", 400, seed=2)
    seen = defaultdict(set)
    for example in train:
        combination = frozenset(example.question.conditions)
        assert combination not in {frozenset(pair) for pair in HELD_OUT[example.family]}
        seen[example.family] |= combination
    for family, held in HELD_OUT.items():
        for pair in held:
            assert pair in pairs(family) or tuple(reversed(pair)) in pairs(family)
            assert set(pair) <= seen[family], (family, pair)


def test_answers_outside_range_exceed_every_train_answer_of_their_template(data):
    largest = defaultdict(lambda: float("-inf"))
    for example in generate("train", 400, seed=3) + data["train"]:
        if answer_limit(example) is not None:
            key = (example.family, example.question.kind, example.question.quantity)
            largest[key] = max(largest[key], example.question.answer)
    for example in data["answers-outside-range"]:
        key = (example.family, example.question.kind, example.question.quantity)
        assert example.question.answer > largest[key]


def test_cells_are_messy_but_each_text_stands_for_one_value(data):
    texts = defaultdict(set)
    for examples in data.values():
        for example in examples:
            for row in example.table.rows:
                for column, cell in zip(example.table.columns, row):
                    texts[(example.family, column)].add(cell.text)
            for column in example.table.columns:
                values = {}
                position = example.table.columns.index(column)
                for row in example.table.rows:
                    cell = row[position]
                    assert values.setdefault(cell.text, repr(cell.value)) == repr(cell.value)
    result = texts[("football", "result")]
    assert any("(OT)" in text for text in result) and any("–" in text for text in result)
    assert any(text.startswith("won ") for text in result)
    assert any(text.startswith("lost ") for text in result)
    places = texts[("football", "opponent")]
    for marker in ("at ", "@ ", "vs. ", "(home)"):
        assert any(marker in text for text in places), marker
    crowd = texts[("football", "attendance")]
    assert any(re.fullmatch(r"\d+(\.\d)?k", t) for t in crowd)
    assert any("," in t for t in crowd) and any(t.isdigit() for t in crowd)
    dates = texts[("football", "date")] | texts[("athletes", "born")]
    formats = {r"\d{4}-\d\d-\d\d", r"[A-Z][a-z]{2} \d+, \d{4}", r"\d+ [A-Z][a-z]+ \d{4}",
               r"\d\d/\d\d/\d{4}", r"\d+\.\d+\.\d{4}"}
    assert all(any(re.fullmatch(f, t) for t in dates) for f in formats)
    assert any(t.endswith("M") for t in texts[("cities", "population")])


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown split 'test'"):
        generate("test", 1)
