"""The token vocabulary of the transpiler model: one token per opcode, register, directive and
punctuation mark, and one per *digit*, so numbers of any size are spelt from tokens every
training pair uses (a constant outside the training range is still a sequence of known
tokens; the model may misspell it, the solver then repairs it).

A training sequence is ``<bos> source lines <sep> target lines <eos>``; each line ends with
the newline token. The source is the whole three-address program (header included); the
target is the two-address program's *instruction lines* only (its header is the source's).

>>> vocabulary = Vocabulary()
>>> tokens = vocabulary.tokenize("lui r9, -12")
>>> tokens
['lui', 'r9', ',', '-', '1', '2']
>>> vocabulary.detokenize(tokens + ["\\n", "add", "r1", ",", "r9", "\\n"])
'lui r9, -12\\nadd r1, r9'
>>> ids = vocabulary.encode_pair(".in r0\\nadd r0, r0, 5\\n.out r0", "addi r0, 5")
>>> vocabulary.decode(ids[ids.index(vocabulary.sep) + 1:])
'addi r0, 5'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Every opcode of the two syntaxes (:mod:`diagrammar.functors.programs`).
OPCODES = ("add", "sub", "mul", "and", "or", "xor", "shl", "shr", "neg", "not", "mov", "li",
           "lui", "addi", "shli", "cmovz", "select")
DIRECTIVES = (".width", ".in", ".out")
REGISTERS = tuple(f"r{i}" for i in range(32))
SPECIAL = ("<pad>", "<bos>", "<sep>", "<eos>")
PUNCTUATION = (",", "-", "\n")
DIGITS = tuple("0123456789")

_TOKEN = re.compile(r"\.?[A-Za-z_]+\d*|\d|-|,|\n|\S")


class VocabularyError(ValueError):
    """Text with a token the transpiler's vocabulary lacks."""


class Vocabulary:
    """Token strings to ids and back (fixed: the same ids for every model).

    >>> v = Vocabulary()
    >>> v.decode(v.encode("mov r1, r0"))
    'mov r1, r0'
    >>> v.encode("jmp r1")
    Traceback (most recent call last):
    ...
    diagrammar.models.transpiler.vocabulary.VocabularyError: 'jmp' is not a token of the \
transpiler's vocabulary (line 1)
    """

    def __init__(self) -> None:
        self.tokens: tuple[str, ...] = (SPECIAL + PUNCTUATION + DIGITS + DIRECTIVES
                                        + OPCODES + REGISTERS)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.pad, self.bos, self.sep, self.eos = (self.ids[t] for t in SPECIAL)
        self.newline = self.ids["\n"]

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (spaces dropped, one newline token between lines)."""
        found = []
        for number, line in enumerate(text.strip("\n").split("\n"), 1):
            if found:
                found.append("\n")
            for token in _TOKEN.findall(line):
                if token not in self.ids:
                    raise VocabularyError(f"{token[:40]!r} is not a token of the "
                                          f"transpiler's vocabulary (line {number})")
                found.append(token)
        return found

    def encode(self, text: str) -> list[int]:
        return [self.ids[t] for t in self.tokenize(text)]

    def encode_pair(self, source: str, target: str | None = None) -> list[int]:
        """``<bos> source \\n <sep>`` and, given a ``target``, ``target \\n <eos>``."""
        ids = [self.bos, *self.encode(source), self.newline, self.sep]
        if target is not None:
            ids += [*self.encode(target), self.newline, self.eos]
        return ids

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Lines from tokens: ``op a, b`` with operands' tokens joined (``-``, digits)."""
        lines, line = [], []
        for token in [*tokens, "\n"]:
            if token in SPECIAL:
                continue
            if token != "\n":
                line.append(token)
                continue
            if line:
                head, operands = line[0], [[]]
                for item in line[1:]:
                    if item == ",":
                        operands.append([])
                    else:
                        operands[-1].append(item)
                text = ", ".join("".join(part) for part in operands if part)
                lines.append(f"{head} {text}" if text else head)
            line = []
        return "\n".join(lines)

    def decode(self, ids: Sequence[int]) -> str:
        return self.detokenize(self.tokens[i] for i in ids)


__all__ = ["Vocabulary", "VocabularyError", "OPCODES", "REGISTERS"]
