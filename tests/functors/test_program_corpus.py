"""The Guess & Sketch parallel corpus (diagrammar.functors.program_corpus): determinism,
the standard splits (sizes, length and constant ranges, disjointness), every pair's source
and target agreeing (run on random inputs; z3 at a small width), and the JSONL round trip."""

from __future__ import annotations

import random
import re

import pytest

from diagrammar.diagrams.programs import from_instructions
from diagrammar.functors.program_corpus import (
    TEST,
    TRAIN,
    _ranges,
    compile_line,
    instructions,
    load_jsonl,
    make_corpus,
    pair_functions,
    run_pair,
    save_jsonl,
    standard_splits,
)
from diagrammar.functors.programs import (
    Run,
    equivalence,
    parse_three_address,
    parse_two_address,
)


@pytest.fixture(scope="module")
def splits():
    return standard_splits(train=400, test=60, seed=0)


def _constants(pair) -> list[int]:
    return [int(a) for line in pair.source.splitlines()[2:-1]
            for a in line.split(",")[1:] if not a.strip().startswith("r")
            and not line.startswith("shl")]


def test_the_corpus_is_deterministic_and_the_seed_matters():
    assert make_corpus(30, seed=4) == make_corpus(30, seed=4)
    assert make_corpus(30, seed=4) != make_corpus(30, seed=5)


def test_standard_splits_sizes_ranges_and_disjointness(splits):
    train, test = splits["train"], splits["test"]
    assert (len(train), len(test)) == (400, 60)
    assert len({p.source for p in train}) == 400
    assert not {p.source for p in train} & {p.source for p in test}
    for pair, ranges in [(p, TRAIN) for p in train] + [(p, TEST) for p in test]:
        assert ranges["lengths"][0] <= len(pair.alignment) <= ranges["lengths"][1]
        spans = _ranges(ranges["constants"])
        assert all(any(low <= k <= high for low, high in spans)
                   for k in _constants(pair)), pair.source
    assert max(len(p.alignment) for p in train) < min(len(p.alignment) for p in test)
    # no test constant lies in a training range
    assert not any(low <= k <= high for p in test for k in _constants(p)
                   for low, high in _ranges(TRAIN["constants"]))
    # both splits show the lui/addi split's form; its test values occur in no train pair
    assert sum("lui" in p.target for p in train) > len(train) // 4
    assert sum("lui" in p.target for p in test) > len(test) // 2


def test_alignment_and_blocks_cover_every_line_once(splits):
    for pair in splits["train"][:100] + splits["test"]:
        source_lines = [s for s, _ in pair.alignment]
        target_lines = [t for _, ts in pair.alignment for t in ts]
        assert source_lines == list(range(3, len(pair.source.splitlines())))
        assert target_lines == list(range(3, len(pair.target.splitlines())))
        assert [s for (s0, s1), _ in pair.blocks for s in range(s0, s1 + 1)] == source_lines
        assert [t for _, (t0, t1) in pair.blocks for t in range(t0, t1 + 1)] == target_lines


def test_every_pair_agrees_on_random_inputs(splits):
    rng = random.Random(1)
    for pair in splits["train"][:25] + splits["test"][:12]:
        functions = pair_functions(pair)
        for _ in range(4):
            xs = [rng.getrandbits(32) for _ in pair.inputs]
            source, target, diagram = (function(*xs) for function in functions)
            assert source == target == diagram, (pair.source, xs)
    pair = splits["test"][0]
    assert len(set(run_pair(pair, [3] * len(pair.inputs)))) == 1


def test_each_source_line_compiles_to_an_equivalent_target_fragment():
    rng = random.Random(2)
    for pair in make_corpus(40, seed=3, lengths=(2, 6), constants=(0, 4095)):
        for line in pair.source.splitlines()[2:-1]:
            registers = sorted({int(r) for r in re.findall(r"r(\d+)", line)})
            names = [f"r{r}" for r in registers]
            head = f".width 32\n.in {', '.join(names)}\n"
            tail = f"\n.out {line.split()[1].rstrip(',')}"
            source = parse_three_address(head + line + tail)
            target = parse_two_address(head + "\n".join(compile_line(line, "r99")) + tail)
            xs = [rng.getrandbits(32) for _ in names]
            assert Run()(source)(*xs) == Run()(target)(*xs), line


def test_small_width_pairs_are_equivalent_for_z3():
    for pair in make_corpus(4, seed=7, lengths=(3, 6), constants=(100, 4095), width=8):
        verdict = equivalence(parse_three_address(pair.source), parse_two_address(pair.target))
        assert verdict.status == "pass", (pair.source, pair.target, verdict.reason)
        diagram = from_instructions(instructions(pair), pair.inputs, pair.outputs, 8)
        assert equivalence(diagram, parse_two_address(pair.target)).status == "pass"


def test_jsonl_round_trip(tmp_path, splits):
    corpus = splits["test"][:10]
    path = save_jsonl(corpus, tmp_path / "test.jsonl")
    assert load_jsonl(path) == corpus
    assert len(path.read_text().splitlines()) == 10
