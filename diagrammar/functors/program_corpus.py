"""A parallel corpus of small assembly programs for the Guess & Sketch transpiler: random
straight-line programs (blocks and ``for _ in range(N)`` loops, unrolled), each written in
the three-address source syntax (:class:`~diagrammar.functors.programs.ToThreeAddress`'s)
and compiled to the two-address target syntax
(:class:`~diagrammar.functors.programs.ToTwoAddress`'s: 12-bit immediates, ``lui``/``addi``
splits), with a line alignment and the basic blocks.

Each source line is compiled on its own (:func:`compile_line`), so the alignment is exact:
``alignment`` pairs each source line with the target lines compiled from it. Registers
keep their names across the
two syntaxes; the outputs are every register the program writes (updates in place read
their register, fresh registers are written once: no instruction is dead code); the target
has one scratch register more, used only inside one line's compilation, so no scratch
value lives across a block boundary. A block is one straight-line statement group or one
iteration of an unrolled loop. The target is in
:class:`~diagrammar.functors.programs.ToTwoAddress`'s syntax but not its
output (which allocates registers over the whole diagram and keeps no line alignment); it
reads back with :func:`~diagrammar.functors.programs.parse_two_address`, and
:func:`run_pair` checks it against the source.

>>> pair = make_pair(random.Random(3), lengths=(3, 3), constants=(100, 4095))
>>> print(pair.source)
.width 32
.in r0, r1, r2
add r1, r1, r1
shl r3, r2, 4
sub r4, r1, r3
.out r1, r3, r4
>>> print(pair.target)
.width 32
.in r0, r1, r2
add r1, r1
mov r3, r2
shli r3, 4
mov r4, r1
sub r4, r3
.out r1, r3, r4
>>> pair.alignment
((3, (3,)), (4, (4, 5)), (5, (6, 7)))
>>> pair.blocks
(((3, 4), (3, 5)), ((5, 5), (6, 7)))
>>> source, target, diagram = run_pair(pair, [7, 5, 3])
>>> source == target == diagram == (10, 48, 4294967258)
True
>>> corpus = make_corpus(3, seed=1, lengths=(2, 4), constants=(0, 99))
>>> [len(p.blocks) >= 1 for p in corpus]
[True, True, True]
>>> corpus == load_jsonl(save_jsonl(corpus, _tmp()))
True

:func:`standard_splits` gives the train split (shorter programs, constants 0–99 and
4096–65535) and the held-out test split (longer, constants 100–4095: from neither training
range); no test program occurs in train.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from diagrammar.diagrams.programs import from_instructions
from diagrammar.functors.programs import (
    IMMEDIATE_BITS,
    Run,
    load_immediate,
    parse_three_address,
    parse_two_address,
)

#: Binary operations the generator draws (``shl`` takes a small constant shift).
BINARY = ("add", "sub", "mul", "and", "or", "xor")
UNARY = ("neg", "not")
#: The train split: short programs; small constants (``li``/``addi``) and large ones (4096
#: and up: every one a ``lui``/``addi`` split), so the split's *form* is learnable.
TRAIN = {"lengths": (3, 10), "constants": ((0, 99), (4096, 65535))}
#: The held-out split: longer programs, constants from neither training range (those from
#: 2048 need a ``lui``/``addi`` split whose values no training pair shows).
TEST = {"lengths": (12, 24), "constants": (100, 4095)}

#: One inclusive range of constants ``(low, high)``, or several, drawn from uniformly.
Constants = tuple[int, int] | tuple[tuple[int, int], ...]


def _ranges(constants: Constants) -> tuple[tuple[int, int], ...]:
    if constants and isinstance(constants[0], int):
        return (tuple(constants),)  # type: ignore[return-value]
    return tuple(tuple(r) for r in constants)  # type: ignore[misc]


def _draw_constant(rng: random.Random, constants: Constants) -> int:
    return rng.randint(*rng.choice(_ranges(constants)))


@dataclass(frozen=True)
class ProgramPair:
    """One corpus entry: ``source`` (three-address text) and ``target`` (two-address text),
    both with ``.width``/``.in``/``.out`` headers; ``alignment``: for each source
    instruction line (1-based), the target lines (1-based) compiled from it; ``blocks``:
    ``((source_first, source_last), (target_first, target_last))`` inclusive line ranges."""

    source: str
    target: str
    alignment: tuple[tuple[int, tuple[int, ...]], ...]
    blocks: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    width: int = 32

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ProgramPair:
        return cls(data["source"], data["target"],
                   tuple((s, tuple(t)) for s, t in data["alignment"]),
                   tuple((tuple(s), tuple(t)) for s, t in data["blocks"]),
                   tuple(data["inputs"]), tuple(data["outputs"]), data.get("width", 32))


def _fits(value: int) -> bool:
    return -(1 << (IMMEDIATE_BITS - 1)) <= value < (1 << (IMMEDIATE_BITS - 1))


def compile_line(line: str, scratch: str, width: int = 32) -> list[str]:
    """The two-address lines for one three-address instruction ``op rd, a[, b]``; ``scratch``
    is a register the source never uses.

    >>> compile_line("add r2, r0, 3000", "r9")
    ['mov r2, r0', 'lui r9, 1', 'addi r9, -1096', 'add r2, r9']
    >>> compile_line("sub r1, r0, r1", "r9")
    ['mov r9, r0', 'sub r9, r1', 'mov r1, r9']
    >>> compile_line("mov r3, 70", "r9"), compile_line("neg r1, r0", "r9")
    (['li r3, 70'], ['mov r1, r0', 'neg r1'])
    """
    op, _, rest = line.strip().partition(" ")
    dest, *args = [item.strip() for item in rest.split(",")]
    is_reg = [bool(re.fullmatch(r"r\d+", a)) for a in args]
    out: list[str] = []

    def load(register: str, value: str) -> None:
        out.extend(load_immediate(register, int(value), width))

    if op == "mov":
        if is_reg[0]:
            return [f"mov {dest}, {args[0]}"] if args[0] != dest else []
        return load_immediate(dest, int(args[0]), width)
    if op in UNARY:
        if not is_reg[0]:
            load(dest, args[0])
        elif args[0] != dest:
            out.append(f"mov {dest}, {args[0]}")
        return out + [f"{op} {dest}"]
    a, b = args
    reg_a, reg_b = is_reg
    if not reg_b:
        k = int(b)
        k = -k if op == "sub" else k
        if op in ("add", "sub", "shl") and _fits(k) and (op != "shl" or k >= 0) and reg_a:
            if a != dest:
                out.append(f"mov {dest}, {a}")
            return out + [f"{'shli' if op == 'shl' else 'addi'} {dest}, {k}"]
        if reg_a and a == dest:
            load(scratch, b)
            return out + [f"{op} {dest}, {scratch}"]
        if reg_a:
            out.append(f"mov {dest}, {a}")
        else:
            load(dest, a)
        load(scratch, b)
        return out + [f"{op} {dest}, {scratch}"]
    if not reg_a:  # immediate op register
        if b != dest:
            load(dest, a)
            return out + [f"{op} {dest}, {b}"]
        load(scratch, a)
        return out + [f"{op} {scratch}, {b}", f"mov {dest}, {scratch}"]
    if a == dest:
        return [f"{op} {dest}, {b}"]
    if b != dest:
        return [f"mov {dest}, {a}", f"{op} {dest}, {b}"]
    return [f"mov {scratch}, {a}", f"{op} {scratch}, {b}", f"mov {dest}, {scratch}"]


def _statement(rng: random.Random, live: list[str], fresh: str | None,
               constants: Constants, width: int, update: bool) -> tuple:
    """One instruction ``(dest, op, args)``: a fresh variable, or (``update``) an existing
    one updated in place (a loop's accumulator)."""
    dest = rng.choice(live) if update or fresh is None else fresh
    const = lambda: _draw_constant(rng, constants)  # noqa: E731
    kind = rng.random()
    if kind < 0.08 and not update:
        return dest, "mov", (const(),)
    if kind < 0.18:
        return dest, rng.choice(UNARY), (dest if update else rng.choice(live),)
    if kind < 0.26:
        return dest, "shl", (dest if update else rng.choice(live), rng.randint(1, 7))
    op = rng.choice(BINARY)
    a = dest if update else rng.choice(live)
    b = const() if rng.random() < 0.45 else rng.choice(live)
    return dest, op, (a, b)


def _generate(rng: random.Random, lengths: tuple[int, int], constants: Constants,
              width: int) -> tuple[list[list[tuple]], list[str], list[str]]:
    """Blocks of instructions over named registers (loops already unrolled)."""
    target = rng.randint(*lengths)
    inputs = [f"r{i}" for i in range(rng.randint(1, 3))]
    live, count, blocks = list(inputs), len(inputs), []
    while sum(map(len, blocks)) < target:
        room = target - sum(map(len, blocks))
        if room >= 2 and rng.random() < 0.35:  # for _ in range(N): body
            body_size = rng.randint(1, min(3, room // 2))
            times = rng.randint(2, max(2, min(4, room // body_size)))
            body = [_statement(rng, live, None, constants, width, True)
                    for _ in range(body_size)]
            blocks.extend([list(body) for _ in range(times)])
        else:
            block = []
            for _ in range(rng.randint(1, min(4, room))):
                fresh = f"r{count}" if count < 12 and rng.random() < 0.6 else None
                statement = _statement(rng, live, fresh, constants, width, fresh is None)
                if statement[0] not in live:
                    live.append(statement[0])
                    count += 1
                block.append(statement)
            blocks.append(block)
    # every register written is an output: in-place updates read their register, fresh
    # ones are written once, so no instruction is dead code
    outputs = sorted({dest for block in blocks for dest, _, _ in block}, key=lambda r: int(r[1:]))
    return blocks, inputs, outputs


def _text(op: str, dest: str, args: Sequence) -> str:
    return f"{op} {dest}, {', '.join(str(a) for a in args)}"


def make_pair(rng: random.Random, lengths: tuple[int, int] = TRAIN["lengths"],
              constants: Constants = TRAIN["constants"], width: int = 32) -> ProgramPair:
    """One random program (``lengths``: its number of source instructions, inclusive;
    ``constants``: the inclusive range its immediates are drawn from, or several ranges,
    each chosen with equal chance) in both syntaxes."""
    blocks, inputs, outputs = _generate(rng, lengths, constants, width)
    registers = {int(r[1:]) for block in blocks for d, _, args in block
                 for r in [d, *[a for a in args if isinstance(a, str)]]}
    scratch = f"r{max(registers | {len(inputs)}) + 1}"
    head = [f".width {width}", ".in " + ", ".join(inputs)]
    source, target = list(head), list(head)
    alignment, ranges = [], []
    for block in blocks:
        first_s, first_t = len(source) + 1, len(target) + 1
        for dest, op, args in block:
            line = _text(op, dest, args)
            source.append(line)
            compiled = compile_line(line, scratch, width)
            alignment.append((len(source), tuple(range(len(target) + 1,
                                                       len(target) + 1 + len(compiled)))))
            target.extend(compiled)
        ranges.append(((first_s, len(source)), (first_t, len(target))))
    tail = ".out " + ", ".join(outputs)
    return ProgramPair("\n".join(source + [tail]), "\n".join(target + [tail]),
                       tuple(alignment), tuple(ranges), tuple(inputs), tuple(outputs), width)


def instructions(pair: ProgramPair) -> list[tuple]:
    """The source's instructions ``(dest, op, args)`` (for
    :func:`~diagrammar.diagrams.programs.from_instructions`)."""
    result = []
    for line in pair.source.splitlines():
        if line.startswith(".") or not line.strip():
            continue
        op, _, rest = line.partition(" ")
        dest, *args = [item.strip() for item in rest.split(",")]
        result.append((dest, op, tuple(a if a.startswith("r") else int(a) for a in args)))
    return result


def pair_functions(pair: ProgramPair) -> tuple:
    """Three Python functions of the inputs (:class:`~diagrammar.functors.programs.Run`):
    the source text's, the target text's and the source instructions' diagram
    (:func:`~diagrammar.diagrams.programs.from_instructions`). Build once, call often."""
    diagram = from_instructions(instructions(pair), pair.inputs, pair.outputs, pair.width)
    return (Run()(parse_three_address(pair.source)), Run()(parse_two_address(pair.target)),
            Run()(diagram))


def run_pair(pair: ProgramPair, inputs: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The outputs of the three :func:`pair_functions` on ``inputs``: three equal tuples."""
    return tuple(function(*inputs) for function in pair_functions(pair))


def make_corpus(n: int, seed: int = 0, lengths: tuple[int, int] = TRAIN["lengths"],
                constants: Constants = TRAIN["constants"], width: int = 32,
                exclude: Iterable[str] = ()) -> list[ProgramPair]:
    """``n`` distinct program pairs, the same for the same arguments; sources in
    ``exclude`` are skipped."""
    rng, seen, corpus = random.Random(seed), set(exclude), []
    for _ in range(50 * n + 100):
        if len(corpus) == n:
            break
        pair = make_pair(rng, lengths, constants, width)
        if pair.source not in seen:
            seen.add(pair.source)
            corpus.append(pair)
    if len(corpus) < n:
        raise ValueError(f"only {len(corpus)} distinct programs of lengths {lengths}")
    return corpus


def standard_splits(train: int = 2000, test: int = 200, seed: int = 0
                    ) -> dict[str, list[ProgramPair]]:
    """``{"train": ..., "test": ...}``: train programs have 3–10 instructions and constants
    in 0–99 or 4096–65535; held-out test programs 12–24 instructions and constants
    100–4095; disjoint."""
    train_set = make_corpus(train, seed, **TRAIN)
    test_set = make_corpus(test, seed + 1, **TEST, exclude=(p.source for p in train_set))
    return {"train": train_set, "test": test_set}


def save_jsonl(corpus: Iterable[ProgramPair], path: str | os.PathLike) -> Path:
    """Writes one JSON object a line; returns the path."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for pair in corpus:
            handle.write(json.dumps(pair.to_json()) + "\n")
    return path


def load_jsonl(path: str | os.PathLike) -> list[ProgramPair]:
    with Path(path).open(encoding="utf-8") as handle:
        return [ProgramPair.from_json(json.loads(line)) for line in handle if line.strip()]


def _tmp() -> Path:
    return Path(tempfile.mkdtemp()) / "corpus.jsonl"


__all__ = ["ProgramPair", "compile_line", "make_pair", "make_corpus", "standard_splits",
           "run_pair", "pair_functions", "instructions", "save_jsonl", "load_jsonl",
           "TRAIN", "TEST", "Constants"]
