"""Concrete meanings of the program operations on unsigned fixed-width words, matching the
z3 semantics of :data:`~diagrammar.symbolic.equivalence.THREE_ADDRESS` (SMT-LIB: division by
zero, signed division and remainder, shifts past the width). ``f(width, mask, *args)``.

>>> PYTHON_OPERATIONS["sub"](8, 255, 3, 5), PYTHON_OPERATIONS["sdiv"](8, 255, 250, 3)
(254, 254)
>>> signed(254, 8)
-2
"""

from __future__ import annotations

from collections.abc import Callable


def signed(a: int, width: int) -> int:
    """The signed value of a ``width``-bit word."""
    return a - (1 << width) if a >> (width - 1) else a


def _udiv(a: int, b: int, m: int) -> int:
    return m if b == 0 else a // b


def _urem(a: int, b: int, m: int) -> int:
    return a if b == 0 else a % b


def _sdiv(a: int, b: int, w: int, m: int) -> int:
    # SMT-LIB bvsdiv: unsigned division of the magnitudes, negated when the signs differ.
    neg_a, neg_b = a >> (w - 1), b >> (w - 1)
    quotient = _udiv((-a) & m if neg_a else a, (-b) & m if neg_b else b, m)
    return (-quotient) & m if neg_a != neg_b else quotient


def _srem(a: int, b: int, w: int, m: int) -> int:
    # SMT-LIB bvsrem: the remainder takes the sign of the dividend.
    neg_a, neg_b = a >> (w - 1), b >> (w - 1)
    remainder = _urem((-a) & m if neg_a else a, (-b) & m if neg_b else b, m)
    return (-remainder) & m if neg_a else remainder


#: Operation -> Python meaning ``f(width, mask, *args)`` on unsigned words, matching
#: :data:`~diagrammar.symbolic.equivalence.THREE_ADDRESS` (the tests compare the two).
PYTHON_OPERATIONS: dict[str, Callable[..., int]] = {
    "mov": lambda w, m, a: a,
    "neg": lambda w, m, a: -a & m,
    "not": lambda w, m, a: ~a & m,
    "add": lambda w, m, a, b: (a + b) & m,
    "sub": lambda w, m, a, b: (a - b) & m,
    "mul": lambda w, m, a, b: (a * b) & m,
    "udiv": lambda w, m, a, b: _udiv(a, b, m),
    "urem": lambda w, m, a, b: _urem(a, b, m),
    "sdiv": lambda w, m, a, b: _sdiv(a, b, w, m),
    "srem": lambda w, m, a, b: _srem(a, b, w, m),
    "and": lambda w, m, a, b: a & b,
    "or": lambda w, m, a, b: a | b,
    "xor": lambda w, m, a, b: a ^ b,
    "shl": lambda w, m, a, b: (a << b) & m if b < w else 0,
    "lshr": lambda w, m, a, b: a >> b if b < w else 0,
    "ashr": lambda w, m, a, b: (signed(a, w) >> min(b, w - 1)) & m,
    "eq": lambda w, m, a, b: int(a == b),
    "ne": lambda w, m, a, b: int(a != b),
    "ult": lambda w, m, a, b: int(a < b),
    "ule": lambda w, m, a, b: int(a <= b),
    "slt": lambda w, m, a, b: int(signed(a, w) < signed(b, w)),
    "sle": lambda w, m, a, b: int(signed(a, w) <= signed(b, w)),
    "select": lambda w, m, c, a, b: a if c else b,
}


__all__ = ["PYTHON_OPERATIONS", "signed"]
