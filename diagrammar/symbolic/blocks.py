"""Block-wise sketch filling, the solver half of Guess & Sketch on whole programs.

A transpiled program is too long for one solver call; its straight-line *basic blocks*
are short. Given the source text, the guessed target text, the lines of the guess the model
is unsure of and the block alignment (pairs of inclusive line ranges ``((source_first,
source_last), (target_first, target_last))``, as
:mod:`diagrammar.functors.program_corpus` makes them), :func:`fill_blocks` turns the unsure
lines into holes (:func:`~diagrammar.symbolic.sketch.holes_from_guess`) and fills each
target block with :func:`~diagrammar.symbolic.sketch.fill` against its source block.

A block's inputs are the registers it reads before writing them; its outputs the registers
it writes that are read later (by a later block before being rewritten, or by ``.out``):
:func:`interfaces`, computed on the source. The target block is checked with the same
register names, so a guess must keep the source's registers (any extra register, such as a
scratch one, may only live inside one block). A block whose writes are all dead has no
outputs: it is kept as guessed (status ``"dead"``). Every other block is first checked as
guessed (``"verified"``: kept unchanged, even where it has unsure lines, since hole values
need not be unique); otherwise its unsure lines become holes and it is filled
(``"filled"``), or no values exist (``"impossible"``: a wrong opcode or register, even on a
confident line), or the solver runs out of time (``"unknown"``).

>>> source = ".width 32\\n.in r0\\nadd r1, r0, 3000\\nmul r0, r1, r1\\n.out r0"
>>> guess = ".width 32\\n.in r0\\nmov r1, r0\\nlui r9, 1\\naddi r9, -1000\\nadd r1, r9\\n" \\
...         "mov r0, r1\\nmul r0, r1\\n.out r0"
>>> blocks = [((3, 3), (3, 6)), ((4, 4), (7, 8))]
>>> interfaces(source, blocks)
[(('r0',), ('r1',)), (('r1',), ('r0',))]
>>> result = fill_blocks(guess, source, [5], blocks)
>>> result.status, [block.status for block in result.blocks]
('filled', ['filled', 'verified'])
>>> print(result.text.splitlines()[4])
addi r9, -1096
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from diagrammar.symbolic.equivalence import Program, ProgramError
from diagrammar.symbolic.sketch import SketchError, fill, holes_from_guess

Range = tuple[int, int]
Block = tuple[Range, Range]

_REGISTER = re.compile(r"[A-Za-z_%][A-Za-z_0-9.]*\Z")
_HEADER = re.compile(r"\s*\.(width|in|out)\b(.*)\Z")


def _code(line: str) -> str:
    return re.split(r";|//", line, maxsplit=1)[0].strip()


def _header(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _HEADER.match(_code(line))
        if match:
            rest = match.group(2).strip()
            found[match.group(1)] = [item.strip() for item in rest.split(",")] if rest else []
    return found


def _reads_writes(line: str) -> tuple[list[str], str | None]:
    """Registers a three-address line ``op rd, a, b`` reads, and the one it writes."""
    code = _code(line)
    if not code or code.startswith("."):
        return [], None
    _, _, rest = code.partition(" ")
    operands = [item.strip() for item in rest.split(",")]
    return [a for a in operands[1:] if _REGISTER.match(a)], operands[0]


def split_blocks(text: str, ranges: Iterable[Range]) -> list[str]:
    """The text of each block: the inclusive 1-based line ``ranges`` of ``text``.

    >>> split_blocks("a\\nb\\nc", [(1, 1), (2, 3)])
    ['a', 'b\\nc']
    """
    lines = text.splitlines()
    return ["\n".join(lines[first - 1:last]) for first, last in ranges]


def interfaces(source_text: str, blocks: Sequence[Block]) -> list[tuple[tuple[str, ...],
                                                                         tuple[str, ...]]]:
    """Each source block's ``(inputs, outputs)``: the registers live into it (read before
    written in it) and live out of it (written in it and read after it before being
    rewritten, or named by ``.out``), in order of first appearance."""
    lines = source_text.splitlines()
    final = _header(source_text).get("out", [])
    result = []
    for index, ((first, last), _) in enumerate(blocks):
        inputs, written = [], []
        for line in lines[first - 1:last]:
            reads, dest = _reads_writes(line)
            for register in reads:
                if register not in written and register not in inputs:
                    inputs.append(register)
            if dest is not None and dest not in written:
                written.append(dest)
        live = set(final)
        later = [line for (f, la), _ in blocks[index + 1:] for line in lines[f - 1:la]]
        for line in reversed(later):
            reads, dest = _reads_writes(line)
            live.discard(dest)
            live.update(reads)
        result.append((tuple(inputs), tuple(r for r in written if r in live)))
    return result


@dataclass(frozen=True)
class BlockResult:
    """One block: its line ``source`` and ``target`` ranges, ``inputs`` and ``outputs``,
    the number of ``holes``, the ``status`` (``verified``: equivalent to its source block
    as guessed, kept; ``filled``: equivalent once its holes are filled; ``impossible``: no
    hole values make it so; ``unknown``: out of time;
    ``invalid``: the guess block cannot be read or reads a register not live into it;
    ``dead``: no outputs, kept), ``seconds`` and a ``reason``."""

    source: Range
    target: Range
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    holes: int
    status: str
    seconds: float
    reason: str


@dataclass(frozen=True)
class BlocksResult:
    """:func:`fill_blocks`'s answer: the repaired ``text`` (filled blocks replaced, others
    as guessed), the overall ``status`` (``filled`` when every block is verified, filled
    or dead,
    else the first of ``invalid``, ``impossible``, ``unknown`` found), each block's
    :class:`BlockResult` and the total ``seconds``."""

    text: str
    status: str
    blocks: tuple[BlockResult, ...]
    seconds: float


def fill_blocks(guess_text: str, source_text: str, low_confidence_lines: Iterable[int],
                blocks: Sequence[Block], *, width: int | None = None, timeout: float = 5.0,
                max_iterations: int = 64) -> BlocksResult:
    """Repair a two-address ``guess_text`` block by block against the three-address
    ``source_text``: immediates on ``low_confidence_lines`` (1-based lines of the guess)
    become holes; each block (``blocks``: ``((source_first, source_last), (target_first,
    target_last))``) is filled with :func:`~diagrammar.symbolic.sketch.fill` within
    ``timeout`` seconds. ``width`` defaults to the source's ``.width``, else 32.

    >>> source = ".in r0\\nmul r0, r0, 5\\n.out r0"
    >>> fill_blocks(".in r0\\nli r1, 5\\nsub r0, r1\\n.out r0", source, [3],
    ...             [((2, 2), (2, 3))]).status
    'impossible'
    """
    start = time.perf_counter()
    if width is None:
        declared = _header(source_text).get("width", [])
        width = int(declared[0]) if declared and declared[0].isdigit() else 32
    unsure = sorted(set(low_confidence_lines))
    lines = guess_text.splitlines()
    source_blocks = split_blocks(source_text, [s for s, _ in blocks])
    results: list[BlockResult] = []
    for block, text, (inputs, outputs) in zip(blocks, source_blocks,
                                                interfaces(source_text, blocks)):
        (s_first, s_last), (t_first, t_last) = block
        began = time.perf_counter()
        local = [n - t_first + 1 for n in unsure if t_first <= n <= t_last]

        def done(status: str, reason: str, holes: int = 0, block=block, inputs=inputs,
                 outputs=outputs, began=began) -> None:
            results.append(BlockResult(block[0], block[1], inputs, outputs, holes, status,
                                       time.perf_counter() - began, reason))

        if not outputs:
            done("dead", "the block writes no register read later")
            continue
        guess_block = "\n".join(lines[t_first - 1:t_last])
        try:
            reference = Program.parse(text, inputs, outputs)
        except ProgramError as error:
            done("invalid", f"the source block: {error}")
            continue
        if not local or _as_guessed(guess_block, reference, inputs, outputs, width, timeout):
            local = []  # a correct block is kept as guessed (hole values need not be unique)
        try:
            sketch = holes_from_guess(guess_block, local, inputs=inputs, outputs=outputs)
        except SketchError as error:
            done("invalid", str(error))
            continue
        answer = fill(sketch, reference, width=width, timeout=timeout,
                      max_iterations=max_iterations)
        if answer.status == "filled" and not sketch.holes:
            done("verified", answer.reason)
            continue
        if answer.status == "filled":
            lines[t_first - 1:t_last] = answer.text.splitlines()
        done(answer.status, answer.reason, len(sketch.holes))
    order = ("invalid", "impossible", "unknown")
    statuses = {r.status for r in results}
    status = next((s for s in order if s in statuses), "filled")
    return BlocksResult("\n".join(lines), status, tuple(results),
                        time.perf_counter() - start)


def _as_guessed(block: str, reference: Program, inputs, outputs, width: int,
                timeout: float) -> bool:
    """Whether the guessed block, holes and all lines as written, is already correct."""
    try:
        sketch = holes_from_guess(block, [], inputs=inputs, outputs=outputs)
    except SketchError:  # e.g. an immediate that does not fit its field
        return False
    return fill(sketch, reference, width=width, timeout=timeout).status == "filled"


__all__ = ["Block", "BlockResult", "BlocksResult", "fill_blocks", "interfaces",
           "split_blocks"]
