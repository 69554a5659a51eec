"""The grounded symbol system of NSR ("Neural-Symbolic Recursive Machine for Systematic
Generalization"): a dependency tree over a sentence's symbols whose nodes carry values, the
arity-constrained transition system that builds such trees, and abduction — the top-down
search for the most likely single fix that makes a tree compute the right output.

A :class:`Tree` has one node per token: its symbol and its head (``-1`` for the root).
Children are ordered by position; a node's value is its symbol's program applied to its
children's values (:func:`values`).

The transition system is arc-standard with ``swap`` (Nivre 2009), so it reaches
non-projective trees too (SCAN's ``jump opposite left`` reads best as
``opposite(left(jump))``, which crosses). ``left``/``right`` attach the second/first stack
item to the other only when the dependent has all its children and the head has room for
another, by the head symbol's arity: the arity constraint. A symbol of unknown arity (no
program yet) takes 0 to :data:`MAX_ARITY` children.

>>> tree = Tree(("jump", "opposite", "left"), (2, -1, 1))
>>> [tree.children(i) for i in range(3)]
[(), (2,), (0,)]
>>> oracle(tree)
['shift', 'shift', 'swap', 'shift', 'shift', 'left', 'right']
>>> from diagrammar.symbolic.list_programs import ListProgram
>>> programs = {"jump": ListProgram(("const", ("JUMP",)), 0),
...             "left": ListProgram(("concat", ("const", ("LTURN",)), ("var", 0)), 1),
...             "opposite": None}
>>> values(tree, programs)
(('JUMP',), None, ('LTURN', 'JUMP'))
>>> fix = abduce(tree, ("LTURN", "LTURN", "JUMP"), programs)
>>> fix.node, fix.value, fix.kind
(1, ('LTURN', 'LTURN', 'JUMP'), 'unknown')
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from diagrammar.symbolic.list_programs import ListProgram, Value

TRANSITIONS = ("shift", "left", "right", "swap")
MAX_ARITY = 2
#: Costs (negative log-probabilities) of the fixes abduction may make: a value given to a
#: node whose symbol has no program yet, and one that contradicts a known program.
UNKNOWN_COST = 1.0
CONTRADICTION_COST = 6.0


class TreeError(ValueError):
    """Heads that do not make one tree."""


@dataclass(frozen=True)
class Tree:
    """A dependency tree: ``symbols[i]`` heads ``heads[i]`` (``-1``: the root)."""

    symbols: tuple[str, ...]
    heads: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.symbols) != len(self.heads):
            raise TreeError("one head per symbol")
        if list(self.heads).count(-1) != 1:
            raise TreeError(f"a tree has one root, these heads have "
                            f"{list(self.heads).count(-1)}")
        for start in range(len(self.heads)):
            node, steps = start, 0
            while node != -1:
                node = self.heads[node]
                steps += 1
                if steps > len(self.heads) or not -1 <= node < len(self.heads):
                    raise TreeError(f"the heads {self.heads} hold a cycle or a bad index")

    @property
    def root(self) -> int:
        return self.heads.index(-1)

    def children(self, node: int) -> tuple[int, ...]:
        """The node's children, in sentence order."""
        return tuple(i for i, head in enumerate(self.heads) if head == node)

    def nested(self, node: int | None = None) -> tuple:
        """The tree as nested ``(symbol, children...)`` tuples, from ``node`` (the root)."""
        node = self.root if node is None else node
        return (self.symbols[node], *(self.nested(c) for c in self.children(node)))

    def __str__(self) -> str:
        def text(nested: tuple) -> str:
            return nested[0] if len(nested) == 1 else (
                f"{nested[0]}({', '.join(text(child) for child in nested[1:])})")
        return text(self.nested())


Programs = Mapping[str, "ListProgram | None"]


def values(tree: Tree, programs: Programs) -> tuple[Value | None, ...]:
    """Every node's value, bottom-up; ``None`` where a program is missing, its arity differs
    from the node's number of children, or a child's value is ``None``."""
    result: list[Value | None] = [None] * len(tree.symbols)

    def visit(node: int) -> Value | None:
        args = [visit(child) for child in tree.children(node)]
        program = programs.get(tree.symbols[node])
        value = None
        if program is not None and program.arity == len(args) and None not in args:
            value = program(args)
        result[node] = value
        return value

    visit(tree.root)
    return tuple(result)


# -- the transition system --------------------------------------------------------------

@dataclass
class Configuration:
    """A parser state: stack, buffer and the arcs made so far, over ``len(arities)``
    tokens; ``arities[i]`` is ``None`` where the symbol's arity is unknown."""

    arities: tuple[int | None, ...]
    stack: list[int] = field(default_factory=list)
    buffer: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, arities: Sequence[int | None]) -> Configuration:
        n = len(arities)
        return cls(tuple(arities), [], list(range(n)), [-1] * n, [0] * n)

    def copy(self) -> Configuration:
        return Configuration(self.arities, list(self.stack), list(self.buffer),
                             list(self.heads), list(self.counts))

    def complete(self, node: int) -> bool:
        """Whether the node has all its children (any number, for an unknown arity)."""
        arity = self.arities[node]
        return arity is None or self.counts[node] == arity

    def room(self, node: int) -> bool:
        """Whether the node may take another child."""
        arity = self.arities[node]
        return self.counts[node] < (MAX_ARITY if arity is None else arity)

    @property
    def final(self) -> bool:
        return not self.buffer and len(self.stack) == 1 and self.complete(self.stack[0])

    def valid(self) -> list[str]:
        """The transitions allowed here (by the arity constraint too)."""
        allowed = []
        if self.buffer:
            allowed.append("shift")
        if len(self.stack) >= 2:
            s0, s1 = self.stack[-1], self.stack[-2]
            if self.complete(s1) and self.room(s0):
                allowed.append("left")
            if self.complete(s0) and self.room(s1):
                allowed.append("right")
            if s1 < s0:
                allowed.append("swap")
        return allowed

    def apply(self, transition: str) -> None:
        """Make one transition (assumed valid)."""
        if transition == "shift":
            self.stack.append(self.buffer.pop(0))
        elif transition == "left":
            s0, s1 = self.stack[-1], self.stack.pop(-2)
            self.heads[s1] = s0
            self.counts[s0] += 1
        elif transition == "right":
            s0 = self.stack.pop()
            self.heads[s0] = self.stack[-1]
            self.counts[self.stack[-1]] += 1
        elif transition == "swap":
            self.buffer.insert(0, self.stack.pop(-2))
        else:
            raise ValueError(f"unknown transition {transition!r}")


def _projective_order(tree: Tree) -> dict[int, int]:
    order: list[int] = []

    def visit(node: int) -> None:
        for item in sorted((*tree.children(node), node)):
            if item == node:
                order.append(node)
            else:
                visit(item)

    visit(tree.root)
    return {node: rank for rank, node in enumerate(order)}


def oracle(tree: Tree) -> list[str]:
    """The transitions that build ``tree`` (Nivre's static oracle with eager swaps)."""
    order = _projective_order(tree)
    children = [len(tree.children(i)) for i in range(len(tree.symbols))]
    config = Configuration.start(children)
    transitions = []
    while not config.final:
        move = "shift"
        if len(config.stack) >= 2:
            s0, s1 = config.stack[-1], config.stack[-2]
            if tree.heads[s1] == s0 and config.complete(s1):
                move = "left"
            elif tree.heads[s0] == s1 and config.complete(s0):
                move = "right"
            elif order[s0] < order[s1]:
                move = "swap"
        if move not in config.valid():
            raise TreeError(f"no transition builds {tree} from here")
        config.apply(move)
        transitions.append(move)
    return transitions


# -- abduction --------------------------------------------------------------------------

@dataclass(frozen=True)
class Fix:
    """A single change that makes a tree compute its target: ``node`` takes ``value``.
    ``kind``: ``none`` (the tree was right), ``unknown`` (the node's symbol had no program)
    or ``contradiction`` (the value goes against the symbol's program); ``cost`` is its
    negative log-probability."""

    node: int
    value: Value
    kind: str
    cost: float


def _sublists(target: Value) -> list[Value]:
    found = {target[i:j] for i in range(len(target) + 1) for j in range(i, len(target) + 1)}
    return sorted(found, key=len)


def abduce(tree: Tree, target: Value, programs: Programs, *, budget: int = 200
           ) -> Fix | None:
    """The most likely single value fix that makes ``tree`` compute ``target``: a search
    from the root down, where a node with a program passes its target on to one child (a
    value for that child, the others kept, that makes the program give the target) and a
    node is fixed where its symbol has no program (cheap) or against its program (dear).
    ``None`` if ``budget`` expansions find nothing."""
    current = values(tree, programs)
    root = tree.root
    if current[root] == target:
        return Fix(root, target, "none", 0.0)
    counter = itertools.count()
    queue: list[tuple[float, int, str, int, Value]] = [(0.0, next(counter), "expand", root,
                                                       target)]
    expansions = 0
    while queue and expansions < budget:
        cost, _, kind, node, goal = heapq.heappop(queue)
        if kind != "expand":
            return Fix(node, goal, kind, cost)
        expansions += 1
        program = programs.get(tree.symbols[node])
        children = tree.children(node)
        if program is None or program.arity != len(children):
            heapq.heappush(queue, (cost + UNKNOWN_COST, next(counter), "unknown", node, goal))
            continue
        heapq.heappush(queue, (cost + CONTRADICTION_COST, next(counter), "contradiction",
                               node, goal))
        args = [current[child] for child in children]
        for position, child in enumerate(children):
            others = args[:position] + args[position + 1:]
            if None in others:
                continue
            for candidate in _sublists(goal):
                if candidate == args[position]:
                    continue
                trial = args[:position] + [candidate] + args[position + 1:]
                if program(trial) == goal:
                    heapq.heappush(queue, (cost, next(counter), "expand", child, candidate))
    return None


def fixed_values(tree: Tree, programs: Programs, fix: Fix) -> tuple[Value | None, ...]:
    """The node values once ``fix`` is made: the fixed node takes its value and its
    ancestors are recomputed from it."""
    result = list(values(tree, programs))
    result[fix.node] = fix.value
    node = tree.heads[fix.node]
    while node != -1:
        program = programs.get(tree.symbols[node])
        args = [result[child] for child in tree.children(node)]
        result[node] = (program(args) if program is not None and program.arity == len(args)
                        and None not in args else None)
        node = tree.heads[node]
    return tuple(result)
