"""Guess & Sketch end to end (Lee et al., "Guess & Sketch: Language Model Guided
Transpilation"): the bridge between the program corpus
(:mod:`diagrammar.functors.program_corpus`), the transpiler model
(:mod:`diagrammar.models.transpiler`) and the solvers (:mod:`diagrammar.symbolic`).

- :func:`corpus_examples`: the model's training pairs: whole train-split programs and, with
  ``recipe.blocks``, each of their basic blocks as a small program of its own (its header
  lists the block's live-in and live-out registers: :func:`block_program`); with
  ``recipe.rename``, half of the pairs have their registers renamed by a random permutation
  (the same in source and target), so register names are copied, not memorised.
- :func:`transpiler_model`: the cached model trained on them.
- :func:`guess_blocks`: the model's beam guesses for every source block (the unit of
  translation: held-out programs are longer than any training program, and a 0.9M-parameter
  model does not generalise in length, so each block is translated as a program of its own
  and pairs with its source block by construction; the attention alignment of each guessed
  line to its source line is still computed and reported). A scratch register the guess
  invents is renamed to the program's scratch register, one the source never uses (and
  the ones above it).
- The four translators compared by ``examples/transpile.py``: :func:`model_alone` (greedy),
  :func:`beam_with_tests` (per block, the first beam candidate that agrees with its source
  block on random inputs), :func:`guess_and_sketch` (per block, the first candidate whose
  block verifies or, with its uncertain lines' immediates as holes, is filled by z3) and
  :func:`symbolic_search` (no model:
  :func:`~diagrammar.symbolic.search.search_program`); and :func:`check_translation`
  (random runs and z3 bounded equivalence of the whole program).

>>> source = ".width 32\\n.in r0\\nadd r1, r0, 7\\nmul r0, r1, r1\\n.out r0"
>>> print(block_program(source, (3, 3)))
.width 32
.in r0
add r1, r0, 7
.out r1
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from diagrammar.functors.program_corpus import TRAIN, make_corpus
from diagrammar.functors.programs import (
    Run,
    equivalence,
    parse_three_address,
    parse_two_address,
)
from diagrammar.models.transpiler.guess import Guess, guess
from diagrammar.models.transpiler.training import (
    DEFAULT_RECIPE,
    TranslatorRecipe,
    translator,
)
from diagrammar.symbolic.blocks import fill_blocks, interfaces, split_blocks
from diagrammar.symbolic.search import search_program

Range = tuple[int, int]
_REGISTER = re.compile(r"\br(\d+)\b")


def _header(source: str) -> tuple[str, list[str]]:
    lines = source.splitlines()
    width = next((line for line in lines if line.startswith(".width")), ".width 32")
    return width, lines


def block_program(source: str, block: Range) -> str:
    """Source lines ``block`` (1-based, inclusive) of a three-address program as a program
    of their own: the source's ``.width``, the block's live-in registers as ``.in`` and its
    live-out registers as ``.out`` (:func:`~diagrammar.symbolic.blocks.interfaces`)."""
    width, lines = _header(source)
    last = max((n for n, line in enumerate(lines, 1)
                if line.strip() and not line.strip().startswith(".")), default=block[1])
    rest = [((block[1] + 1, last), (1, 1))] if last > block[1] else []
    (inputs, outputs), *_ = interfaces(source, [(tuple(block), (1, 1)), *rest])
    text, = split_blocks(source, [tuple(block)])
    return "\n".join([width, ".in " + ", ".join(inputs) if inputs else ".in", text,
                      ".out " + ", ".join(outputs) if outputs else ".out"])


def _rename(text: str, mapping: dict[int, int]) -> str:
    return _REGISTER.sub(lambda m: f"r{mapping.get(int(m.group(1)), int(m.group(1)))}", text)


def corpus_examples(recipe: TranslatorRecipe) -> list[tuple[str, str]]:
    """The ``(source, target body)`` training pairs for ``recipe`` (module docstring)."""
    rng = random.Random(recipe.seed)
    pairs = []
    for pair in make_corpus(recipe.programs, recipe.seed, **TRAIN):
        target = pair.target.splitlines()
        pairs.append((pair.source, "\n".join(target[2:-1])))
        if recipe.blocks:
            for (source_range, (first, last)) in pair.blocks:
                program = block_program(pair.source, source_range)
                if program.endswith(".out"):
                    continue  # a dead block: nothing to translate
                pairs.append((program, "\n".join(target[first - 1:last])))
    if recipe.rename:
        for i, (source, target) in enumerate(pairs):
            if rng.random() < 0.5:
                order = list(range(16))
                rng.shuffle(order)
                mapping = dict(enumerate(order))
                pairs[i] = (_rename(source, mapping), _rename(target, mapping))
    return pairs


def transpiler_model(recipe: TranslatorRecipe = DEFAULT_RECIPE, cache_dir=None, *,
                     progress: bool = True):
    """``(model, vocabulary)`` trained on :func:`corpus_examples` (cached by recipe)."""
    return translator(recipe, corpus_examples, cache_dir, progress=progress)


def scratch_register(source: str) -> str:
    """A register the source never names: one above its highest."""
    return f"r{max([int(n) for n in _REGISTER.findall(source)] + [-1]) + 1}"


@dataclass(frozen=True)
class BlockGuesses:
    """The guesses for one source block: its line ``source`` range, its program text
    (:func:`block_program`), and the beam ``guesses`` with invented registers renamed to
    the program's scratch register."""

    source: Range
    program: str
    guesses: tuple[Guess, ...]
    seconds: float
    scratch: str = "r31"


def _destinations(lines: Sequence[str]) -> set[str]:
    return {m.group(1) for line in lines
            if (m := re.match(r"\s*[A-Za-z]+\s+(r\d+)", line))}


def _with_scratch(candidate: Guess, program: str, scratch: str) -> Guess:
    """``candidate`` with every register its block program never names renamed to the
    program's scratch register and the ones above it (none of which the source names)."""
    known = {int(n) for n in _REGISTER.findall(program)}
    invented = sorted({int(n) for line in candidate.lines for n in _REGISTER.findall(line)}
                      - known)
    if not invented:
        return candidate
    mapping = {n: int(scratch[1:]) + k for k, n in enumerate(invented)}
    lines = tuple(_rename(line, mapping) for line in candidate.lines)
    text = candidate.text.splitlines()
    first = candidate.first_line - 1
    text[first:first + len(lines)] = lines
    return Guess("\n".join(text), lines, candidate.log_probability, candidate.tokens,
                 candidate.alignment, candidate.first_line)


def keeps_live_registers(candidate: Guess, program: str, scratch: str) -> bool:
    """Whether the guessed block writes only its block's outputs and scratch registers
    (from ``scratch`` up): a write to any other register could clobber a value live after
    the block, which a check of the block's outputs alone does not see."""
    outputs = set(program.splitlines()[-1].split(None, 1)[1].replace(",", " ").split()) \
        if program.splitlines()[-1].strip() != ".out" else set()
    lowest = int(scratch[1:])
    return all(register in outputs or int(register[1:]) >= lowest
               for register in _destinations(candidate.lines))


def skeleton(lines: Sequence[str]) -> tuple[str, ...]:
    """Guessed lines with every number replaced by ``#``: what a sketch cannot change."""
    return tuple(re.sub(r"(?<![A-Za-z0-9])-?\d+\b", "#", line) for line in lines)


def _distinct(candidates: Sequence[Guess], most: int) -> list[Guess]:
    seen, kept = set(), []
    for candidate in candidates:
        key = skeleton(candidate.lines)
        if key not in seen:
            seen.add(key)
            kept.append(candidate)
    return kept[:most]


def guess_blocks(model, vocabulary, source: str, source_blocks: Sequence[Range], *,
                 beams: int = 4, distinct: int | None = None) -> list[BlockGuesses]:
    """The model's guesses for each source block (module docstring). With ``distinct``,
    beam candidates that differ only in their numbers are merged (the best kept) and at
    most ``distinct`` remain: a sketch fills the numbers, so the beam's width is spent on
    forms (opcodes, registers, the number of lines)."""
    scratch = scratch_register(source)
    result = []
    for block in source_blocks:
        began = time.perf_counter()
        program = block_program(source, block)
        if program.endswith(".out"):  # dead: no outputs
            result.append(BlockGuesses(tuple(block), program, (), 0.0, scratch))
            continue
        candidates = guess(model, vocabulary, program, beams=beams)
        if distinct is not None:
            candidates = _distinct(candidates, distinct)
        result.append(BlockGuesses(tuple(block), program,
                                   tuple(_with_scratch(c, program, scratch)
                                         for c in candidates),
                                   time.perf_counter() - began, scratch))
    return result


def _assemble(source: str, bodies: Sequence[str | None]) -> str | None:
    if any(body is None for body in bodies):
        return None
    lines = source.splitlines()
    head = [line for line in lines if line.startswith(".")]
    body = [line for text in bodies for line in text.splitlines() if line.strip()]
    return "\n".join(head[:-1] + body + head[-1:])


def _body(candidate: Guess) -> str:
    return "\n".join(candidate.lines)


def model_alone(source: str, blocks: Sequence[BlockGuesses]) -> str | None:
    """The best beam candidate of every block, assembled (with ``beams=1``: greedy)."""
    return _assemble(source, ["" if not b.guesses else _body(b.guesses[0]) for b in blocks])


def runs_agree(source: str, text: str, *, count: int = 32, seed: int = 0) -> bool:
    """Whether two-address ``text`` parses, has the inputs and outputs of three-address
    ``source`` and agrees with it on ``count`` random inputs and the all-zero and all-ones
    ones."""
    try:
        reference_diagram = parse_three_address(source)
        target_diagram = parse_two_address(text)
    except (ValueError, KeyError):
        return False
    if (target_diagram.dom, target_diagram.cod) != (reference_diagram.dom,
                                                    reference_diagram.cod):
        return False
    reference, target = Run()(reference_diagram), Run()(target_diagram)
    width = int(re.search(r"\d+", _header(source)[0]).group())
    rng, mask = random.Random(seed), (1 << width) - 1
    arity = len(reference_diagram.dom)
    tests = [(0,) * arity, (mask,) * arity]
    tests += [tuple(rng.getrandbits(width) for _ in range(arity)) for _ in range(count)]
    return all(reference(*x) == target(*x) for x in tests)


def beam_with_tests(source: str, blocks: Sequence[BlockGuesses]) -> str | None:
    """Per block, the first beam candidate that writes only its block's outputs and
    scratch registers and agrees with its source block on random inputs (else the best
    candidate)."""
    bodies = []
    for block in blocks:
        if not block.guesses:
            bodies.append("")
            continue
        passing = next((c for c in block.guesses
                        if keeps_live_registers(c, block.program, block.scratch)
                        and runs_agree(block.program, c.text)), block.guesses[0])
        bodies.append(_body(passing))
    return _assemble(source, bodies)


@dataclass
class SketchReport:
    """What :func:`guess_and_sketch` did: candidates tried, holes filled, block statuses."""

    candidates: int = 0
    holes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def guess_and_sketch(source: str, blocks: Sequence[BlockGuesses], *, seconds: float = 20.0,
                     block_seconds: float = 4.0) -> tuple[str | None, SketchReport]:
    """Per block, the first beam candidate that writes only its block's outputs and scratch
    registers (:func:`keeps_live_registers`) and verifies as guessed or whose uncertain
    lines' immediates z3 fills (:func:`~diagrammar.symbolic.blocks.fill_blocks`), within
    ``seconds`` in all and ``block_seconds`` per solver call; ``None`` when a block has no
    such candidate."""
    deadline = time.perf_counter() + seconds
    report = SketchReport()
    bodies: list[str | None] = []
    for block in blocks:
        if not block.guesses:
            bodies.append("")
            continue
        chosen = None
        for candidate in block.guesses:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            report.candidates += 1
            if not keeps_live_registers(candidate, block.program, block.scratch):
                report.statuses["clobbers"] = report.statuses.get("clobbers", 0) + 1
                continue
            lines = len(candidate.lines)
            first = candidate.first_line
            try:
                result = fill_blocks(candidate.text, block.program,
                                     candidate.uncertain_lines(),
                                     [((3, len(block.program.splitlines()) - 1),
                                       (first, first + lines - 1))],
                                     timeout=min(block_seconds, left))
            except ValueError:
                report.statuses["invalid"] = report.statuses.get("invalid", 0) + 1
                continue
            status = result.blocks[0].status
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if status in ("verified", "filled"):
                report.holes += result.blocks[0].holes
                chosen = "\n".join(result.text.splitlines()[first - 1:first - 1 + lines])
                break
        bodies.append(chosen)
    return _assemble(source, bodies), report


def symbolic_search(source: str, source_blocks: Sequence[Range], *,
                    seconds: float = 20.0) -> str | None:
    """Enumerative synthesis of every block with no guess, ``seconds`` in all."""
    return search_program(source, list(source_blocks), timeout=seconds).text


def check_translation(source: str, text: str | None, *, timeout: float = 10.0) -> str:
    """``"yes"`` (random runs agree and z3 proves the programs equal on every input),
    ``"runs"`` (runs agree, z3 ran out of time) or ``"no"``."""
    if not text or not runs_agree(source, text, seed=1):
        return "no"
    verdict = equivalence(parse_three_address(source), parse_two_address(text),
                          timeout=timeout)
    return {"pass": "yes", "fail": "no"}.get(verdict.status, "runs")


__all__ = ["corpus_examples", "transpiler_model", "block_program", "scratch_register",
           "BlockGuesses", "guess_blocks", "skeleton", "keeps_live_registers",
           "model_alone", "beam_with_tests", "guess_and_sketch", "SketchReport",
           "symbolic_search", "runs_agree", "check_translation"]
