"""SCAN (Lake & Baroni, "Generalization without Systematicity", 2018) regenerated from its
published phrase-structure grammar and interpretation rules: no download. Every command of
the grammar, its action sequence, and the two splits NSR is measured on, reproduced exactly:

- ``length``: train on commands whose action sequences have at most 22 actions, test on the
  rest (24 to 48 actions): 16,990 / 3,920;
- ``add-jump`` (``addprim_jump``): train on every command without ``jump`` plus the bare
  command ``jump``, repeated as in the published files (1,467 copies), test on every other
  command with ``jump``: 14,670 / 7,706.

The grammar (``x`` ranges over ``walk``, ``look``, ``run``, ``jump``; ``d`` over ``left``,
``right``)::

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> x opposite d | x around d | turn opposite d | turn around d | D | x
    D -> x d | turn d

>>> len(commands())
20910
>>> interpret("jump around left twice after walk")
('WALK', 'LTURN', 'JUMP', 'LTURN', 'JUMP', 'LTURN', 'JUMP', 'LTURN', 'JUMP', 'LTURN', \
'JUMP', 'LTURN', 'JUMP', 'LTURN', 'JUMP', 'LTURN', 'JUMP')
>>> {name: tuple(map(len, split(name))) for name in SPLITS}
{'simple': (16728, 4182), 'length': (16990, 3920), 'add-jump': (14670, 7706)}
"""

from __future__ import annotations

import random
from collections.abc import Iterator

PRIMITIVES = {"walk": "WALK", "look": "LOOK", "run": "RUN", "jump": "JUMP"}
TURNS = ("left", "right")
SPLITS = ("simple", "length", "add-jump")
#: Copies of the bare ``jump`` command in the published add-jump training file.
JUMP_COPIES = 1467
#: The length split's cut: train sequences have at most this many actions.
LENGTH_CUT = 22

Example = tuple[str, tuple[str, ...]]


class ScanError(ValueError):
    """A command outside SCAN's grammar."""


def _verbs() -> Iterator[str]:
    subjects = [*PRIMITIVES, "turn"]
    for x in subjects:
        for d in TURNS:
            yield f"{x} opposite {d}"
            yield f"{x} around {d}"
    for x in subjects:
        for d in TURNS:
            yield f"{x} {d}"
    yield from PRIMITIVES


def _sentences() -> list[str]:
    return [f"{v}{suffix}" for v in _verbs() for suffix in ("", " twice", " thrice")]


def commands() -> list[str]:
    """Every command of the grammar, once each, in a fixed order."""
    sentences = _sentences()
    result = list(sentences)
    for conjunction in ("and", "after"):
        result += [f"{a} {conjunction} {b}" for a in sentences for b in sentences]
    return result


def _turn(direction: str) -> tuple[str, ...]:
    return ("LTURN",) if direction == "left" else ("RTURN",)


def _verb(words: list[str]) -> tuple[str, ...]:
    if len(words) == 1 and words[0] in PRIMITIVES:
        return (PRIMITIVES[words[0]],)
    if len(words) == 2 and words[1] in TURNS and words[0] in (*PRIMITIVES, "turn"):
        act = () if words[0] == "turn" else (PRIMITIVES[words[0]],)
        return _turn(words[1]) + act
    if len(words) == 3 and words[0] in (*PRIMITIVES, "turn") and words[2] in TURNS:
        act = () if words[0] == "turn" else (PRIMITIVES[words[0]],)
        if words[1] == "opposite":
            return _turn(words[2]) * 2 + act
        if words[1] == "around":
            return (_turn(words[2]) + act) * 4
    raise ScanError(f"{' '.join(words)!r} is not a SCAN verb phrase")


def _sentence(words: list[str]) -> tuple[str, ...]:
    if words and words[-1] in ("twice", "thrice"):
        return _verb(words[:-1]) * (2 if words[-1] == "twice" else 3)
    return _verb(words)


def interpret(command: str) -> tuple[str, ...]:
    """The action sequence of a SCAN command (``WALK``, ``LOOK``, ``RUN``, ``JUMP``,
    ``LTURN``, ``RTURN``); :class:`ScanError` for anything outside the grammar."""
    words = command.split()
    for conjunction in ("and", "after"):
        if conjunction in words:
            at = words.index(conjunction)
            first, second = _sentence(words[:at]), _sentence(words[at + 1:])
            return first + second if conjunction == "and" else second + first
    return _sentence(words)


def published_actions(actions: tuple[str, ...]) -> str:
    """Actions as the published files write them (``I_JUMP I_TURN_LEFT ...``)."""
    names = {"LTURN": "I_TURN_LEFT", "RTURN": "I_TURN_RIGHT"}
    return " ".join(names.get(a, f"I_{a}") for a in actions)


def split(name: str, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``(train, test)`` of a SCAN split (module docstring); ``"simple"`` is the random
    80/20 split (its membership differs from the published random split: only its sizes
    match). Lists are in a fixed order; ``seed`` only affects ``"simple"``."""
    everything = [(c, interpret(c)) for c in commands()]
    if name == "length":
        return ([e for e in everything if len(e[1]) <= LENGTH_CUT],
                [e for e in everything if len(e[1]) > LENGTH_CUT])
    if name == "add-jump":
        with_jump = [e for e in everything if "jump" in e[0].split()]
        train = [e for e in everything if "jump" not in e[0].split()]
        bare = next(e for e in with_jump if e[0] == "jump")
        return (train + [bare] * JUMP_COPIES, [e for e in with_jump if e[0] != "jump"])
    if name == "simple":
        order = list(range(len(everything)))
        random.Random(seed).shuffle(order)
        cut = len(everything) * 4 // 5
        return ([everything[i] for i in order[:cut]], [everything[i] for i in order[cut:]])
    raise ValueError(f"unknown SCAN split {name!r}; choose from {SPLITS}")


__all__ = ["commands", "interpret", "split", "published_actions", "ScanError", "SPLITS",
           "PRIMITIVES", "LENGTH_CUT", "JUMP_COPIES"]
