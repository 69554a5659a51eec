"""Guess & Sketch end to end (diagrammar.functors.transpile): block programs, the training
pairs (renamed pairs stay equivalent), scratch renaming of guesses, the four translators on
hand-made guesses (a wrong immediate on an uncertain line is filled by z3; on a confident
line it is not), the whole-program check, and a smoke run of examples/transpile.py."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from diagrammar.functors.program_corpus import make_corpus, make_pair
from diagrammar.functors.transpile import (
    BlockGuesses,
    _distinct,
    _with_scratch,
    beam_with_tests,
    block_program,
    check_translation,
    corpus_examples,
    guess_and_sketch,
    keeps_live_registers,
    model_alone,
    runs_agree,
    scratch_register,
    skeleton,
    symbolic_search,
)
from diagrammar.models.transpiler.guess import Guess, TokenGuess
from diagrammar.models.transpiler.training import TranslatorRecipe

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ".width 32\n.in r0\nadd r1, r0, 3000\nmul r0, r1, r1\n.out r0, r1"


def _guess(program: str, lines: list[str], uncertain: set[int] = frozenset()) -> Guess:
    """A hand-made guess for a block program: ``uncertain`` lines (0-based) get two
    alternatives on their last token."""
    sure, unsure = (("x", 1.0),), (("x", 0.6), ("y", 0.4))
    tokens = tuple((TokenGuess("x", 1.0, unsure if i in uncertain else sure),)
                   for i in range(len(lines)))
    head = program.splitlines()
    text = "\n".join(head[:2] + lines + head[-1:])
    return Guess(text, tuple(lines), 0.0, tokens, tuple(3 for _ in lines), 3)


def _blocks(guesses: list[list[Guess]]) -> list[BlockGuesses]:
    programs = [block_program(SOURCE, (3, 3)), block_program(SOURCE, (4, 4))]
    return [BlockGuesses(r, p, tuple(g), 0.0, scratch_register(SOURCE))
            for r, p, g in zip([(3, 3), (4, 4)], programs, guesses)]


def test_block_programs_carry_the_block_interface():
    assert block_program(SOURCE, (3, 3)).splitlines() == [
        ".width 32", ".in r0", "add r1, r0, 3000", ".out r1"]
    assert block_program(SOURCE, (4, 4)).splitlines() == [
        ".width 32", ".in r1", "mul r0, r1, r1", ".out r0"]
    # a register read by a later line is live out even when .out does not name it
    source = ".width 32\n.in r0\nadd r1, r0, 7\nadd r2, r0, 1\nmul r0, r1, r2\n.out r0"
    assert block_program(source, (3, 3)).splitlines()[1:] == [".in r0", "add r1, r0, 7",
                                                             ".out r1"]
    assert block_program(source, (3, 4)).splitlines()[-1] == ".out r1, r2"
    assert block_program(source, (5, 5)).splitlines()[1:] == [".in r1, r2",
                                                             "mul r0, r1, r2", ".out r0"]
    assert scratch_register(SOURCE) == "r2"


def test_corpus_examples_blocks_and_renamed_pairs_stay_equivalent():
    recipe = TranslatorRecipe(programs=30, seed=2)
    pairs = corpus_examples(recipe)
    assert len(pairs) > 30  # programs and their blocks
    assert corpus_examples(recipe) == pairs
    plain = corpus_examples(TranslatorRecipe(programs=30, seed=2, blocks=False, rename=False))
    assert len(plain) == 30 and all(s.startswith(".width 32\n.in r0") for s, _ in plain)
    renamed = 0
    for source, body in pairs:
        lines = source.splitlines()
        target = "\n".join(lines[:2] + body.splitlines() + lines[-1:])
        assert runs_agree(source, target, count=8), (source, body)
        renamed += not lines[1].startswith(".in r0")
    assert renamed > len(pairs) // 4


def test_guess_and_sketch_fills_an_uncertain_immediate_the_model_got_wrong():
    first = block_program(SOURCE, (3, 3))
    # 3000 needs lui 1 / addi -1096: the guess has the form right, the numbers wrong
    wrong = ["mov r1, r0", "lui r2, 1", "addi r2, -1000", "add r1, r2"]
    second = [_guess(block_program(SOURCE, (4, 4)), ["mov r0, r1", "mul r0, r1"])]
    blocks = _blocks([[_guess(first, wrong, {2})], second])
    assert check_translation(SOURCE, model_alone(SOURCE, blocks)) == "no"
    assert check_translation(SOURCE, beam_with_tests(SOURCE, blocks)) == "no"
    text, report = guess_and_sketch(SOURCE, blocks, seconds=20)
    assert check_translation(SOURCE, text) == "yes"
    assert "addi r2, -1096" in text and report.holes == 1
    assert report.statuses == {"filled": 1, "verified": 1}
    # the same wrong number on a line the model is sure of stays wrong
    sure = _blocks([[_guess(first, wrong)], second])
    text, report = guess_and_sketch(SOURCE, sure, seconds=20)
    assert text is None and report.statuses["impossible"] == 1


def test_later_beam_candidates_are_tried_per_block():
    first = block_program(SOURCE, (3, 3))
    bad = _guess(first, ["mov r1, r0", "neg r1"])  # a wrong opcode: no holes can fix it
    good = _guess(first, ["mov r1, r0", "lui r2, 1", "addi r2, -1096", "add r1, r2"])
    second = [_guess(block_program(SOURCE, (4, 4)), ["mov r0, r1", "mul r0, r1"])]
    blocks = _blocks([[bad, good], second])
    assert check_translation(SOURCE, model_alone(SOURCE, blocks)) == "no"
    assert check_translation(SOURCE, beam_with_tests(SOURCE, blocks)) == "yes"
    text, report = guess_and_sketch(SOURCE, blocks, seconds=20)
    assert check_translation(SOURCE, text) == "yes" and report.candidates == 3


def test_check_translation_rejects_wrong_malformed_and_mismatched_programs():
    good = ".width 32\n.in r0\nmov r1, r0\nlui r2, 1\naddi r2, -1096\nadd r1, r2\n" \
           "mov r0, r1\nmul r0, r1\n.out r0, r1"
    assert check_translation(SOURCE, good) == "yes"
    assert check_translation(SOURCE, good.replace("-1096", "-1095")) == "no"
    assert check_translation(SOURCE, good.replace("add r1, r2", "jmp r1")) == "no"
    assert check_translation(SOURCE, good.replace(".out r0, r1", ".out r0")) == "no"
    assert check_translation(SOURCE, None) == "no"


def test_symbolic_search_solves_a_small_program():
    pair = make_pair(random.Random(4), lengths=(2, 2), constants=(0, 99))
    text = symbolic_search(pair.source, [s for s, _ in pair.blocks], seconds=30)
    assert check_translation(pair.source, text) == "yes"


def test_every_corpus_target_checks_as_a_translation():
    for pair in make_corpus(5, seed=8, lengths=(3, 6), constants=(100, 4095)):
        assert check_translation(pair.source, pair.target) == "yes"


def test_example_runs_end_to_end_with_a_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIAGRAMMAR_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("transpile_example",
                                                  ROOT / "examples" / "transpile.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # dataclasses look it up
    spec.loader.exec_module(example)
    rows = example.main(["--tiny", "--programs", "1", "--seconds", "2", "--show", "0",
                         "--report", str(tmp_path / "t.md"), "--plot",
                         str(tmp_path / "t.png")])
    assert list(rows) == list(example.METHODS)
    assert all(len(row.seconds) == 1 for row in rows.values())
    table = (tmp_path / "t.md").read_text()
    assert "| Guess & Sketch |" in table and (tmp_path / "t.png").stat().st_size > 0
    assert "symbolic search" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["", ".width 32\n.in r0\nfoo r1, r0\n.out r1"])
def test_bad_sources_are_not_translations(bad):
    assert check_translation(bad or SOURCE, bad or None) == "no"


def test_a_block_that_clobbers_a_live_register_is_not_taken():
    source = ".width 32\n.in r0, r1\nadd r2, r0, 5\nadd r1, r1, r2\n.out r1, r2"
    program = block_program(source, (3, 3))
    assert program.splitlines()[1:] == [".in r0", "add r2, r0, 5", ".out r2"]
    clobber = _guess(program, ["mov r1, r0", "mov r2, r1", "addi r2, 5"])
    clean = _guess(program, ["mov r2, r0", "addi r2, 5"])
    scratch = scratch_register(source)
    assert not keeps_live_registers(clobber, program, scratch)
    assert keeps_live_registers(clean, program, scratch)
    second = block_program(source, (4, 4))
    blocks = [BlockGuesses((3, 3), program, (clobber, clean), 0.0, scratch),
              BlockGuesses((4, 4), second, (_guess(second, ["add r1, r2"]),), 0.0, scratch)]
    text, report = guess_and_sketch(source, blocks, seconds=20)
    assert report.statuses["clobbers"] == 1 and check_translation(source, text) == "yes"
    assert check_translation(source, beam_with_tests(source, blocks)) == "yes"
    assert check_translation(source, model_alone(source, blocks)) == "no"


def test_skeletons_ignore_numbers_and_distinct_merges_them():
    assert skeleton(["lui r9, 1", "addi r9, -1096"]) == ("lui r9, #", "addi r9, #")
    program = block_program(SOURCE, (3, 3))
    a = _guess(program, ["li r2, 12"])
    b = _guess(program, ["li r2, 13"])
    c = _guess(program, ["lui r2, 1"])
    assert _distinct([a, b, c], 8) == [a, c] and _distinct([a, b, c], 1) == [a]


def test_invented_registers_become_the_program_scratch_registers():
    program = block_program(SOURCE, (3, 3))
    guess = _guess(program, ["mov r1, r0", "lui r7, 1", "li r9, 2", "add r1, r7"])
    renamed = _with_scratch(guess, program, "r2")
    assert renamed.lines == ("mov r1, r0", "lui r2, 1", "li r3, 2", "add r1, r2")
    assert renamed.text.splitlines()[2:6] == list(renamed.lines)
