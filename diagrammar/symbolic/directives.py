"""The header lines of an assembly text: ``.width N``, ``.in r0, r1`` and ``.out r2``.

Both assembly syntaxes of the program diagrams and the sketches of Guess & Sketch start their
texts with these lines; :func:`read_directive` reads one, with errors that name the line.

>>> import re
>>> register = re.compile(r"r\\d+\\Z")
>>> read_directive(1, ".in r0, r1", register), read_directive(2, "add r0, r1", register)
(('in', ['r0', 'r1']), None)
>>> read_directive(3, ".width 8", register)
('width', 8)
>>> read_directive(4, ".out x", register)
Traceback (most recent call last):
...
diagrammar.symbolic.equivalence.ProgramError: line 4: 'x' is not a register
"""

from __future__ import annotations

import re

from diagrammar.symbolic.equivalence import ProgramError

_DIRECTIVE = re.compile(r"\.(width|in|out)\b(.*)\Z")
#: The widest word a ``.width`` line may name.
MAX_WIDTH = 512


def read_directive(number: int, line: str, register: re.Pattern[str],
                   error: type[Exception] = ProgramError
                   ) -> tuple[str, int | list[str]] | None:
    """``("width", N)``, ``("in", registers)`` or ``("out", registers)`` for a header line
    (comments already stripped), ``None`` for an instruction line.

    Raises:
        error: a ``.width`` that is not a number in 1..:data:`MAX_WIDTH`, an operand that is
            not a ``register``, or an unknown directive (a line starting with ``.``).
    """
    found = _DIRECTIVE.match(line)
    if found is None:
        if line.startswith("."):
            raise error(f"line {number}: unknown directive {line.split()[0][:40]!r}")
        return None
    kind, rest = found.group(1), found.group(2).strip()
    items = [item.strip() for item in rest.split(",")] if rest else []
    if kind == "width":
        if len(items) != 1 or not items[0].isdigit() or not 1 <= int(items[0]) <= MAX_WIDTH:
            raise error(f"line {number}: .width takes one number in 1..{MAX_WIDTH}, "
                        f"not {rest[:40]!r}")
        return kind, int(items[0])
    for item in items:
        if not register.match(item):
            raise error(f"line {number}: {item[:40]!r} is not a register")
    return kind, items


__all__ = ["MAX_WIDTH", "read_directive"]
