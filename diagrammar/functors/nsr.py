"""NSR ("Neural-Symbolic Recursive Machine for Systematic Generalization", Li et al.)
at small scale: a grounded symbol system learned from (sentence, output) pairs alone by
deduction and abduction, with a curriculum from short sentences to long ones.

The three modules of the paper and what each is here:

- **perception** (input → symbols): SCAN's inputs are words, so each word is its own
  symbol (the paper's perception network matters for images; for SCAN it is a lookup, and
  the abduction of a symbol change never arises);
- **syntax**: an arity-constrained arc-standard transition parser with ``swap``
  (:mod:`diagrammar.symbolic.grounded`) scored by a small network
  (:class:`~diagrammar.models.transition_scorer.TransitionScorer`), decoded with a beam.
  The network sees each item's symbol, arity and number of children; a symbol it has never
  seen in a parsed sentence of two or more words is shown to it as "unknown" (and during
  training 20% of symbols are), so its arity alone guides the parse — which is how ``jump``,
  seen only alone in the add-jump split, is parsed like any other primitive;
- **semantics**: one program per symbol in a list language
  (:mod:`diagrammar.symbolic.list_programs`), induced by enumeration from the values the
  abduced trees give each symbol; the tree as a diagram
  (:func:`diagrammar.diagrams.grounded.tree_diagram`) evaluated by :class:`Semantics`, the
  functor to those programs.

Training follows a curriculum by sentence length (:meth:`GroundedSymbolSystem.fit`).
One learning pass (:meth:`GroundedSymbolSystem.learn_pass`): *deduce* — parse each
sentence (the beam's trees) and execute; *abduce* — for each beam tree, the most likely
single fix (a value at one node, found top-down from the root; the parse alternatives are
the beam's trees) that makes it compute the target; then *learn* — re-induce the programs
of symbols whose examples the current programs do not explain (the paper's DreamCoder is
replaced by exhaustive enumeration up to 7 constructs, without a learned library), and
train the parser on each sentence's most likely beam tree that the updated programs
execute to its output (the fixed tree).

Scaled down: a 43k-parameter parser scorer, 300 sentences a pass, under a minute on a CPU.

>>> from diagrammar.symbolic.list_programs import ListProgram
>>> semantics = Semantics({"walk": ListProgram(("const", ("WALK",)), 0),
...                        "twice": ListProgram(("concat", ("var", 0), ("var", 0)), 1)})
>>> from diagrammar.diagrams.grounded import tree_diagram
>>> semantics(tree_diagram(("twice", ("walk",))))
('WALK', 'WALK')
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from discopy import monoidal
from torch import nn

from diagrammar.models.transition_scorer import (
    ARITY_CODES,
    CHILD_CODES,
    PAD_SYMBOL,
    UNKNOWN_SYMBOL,
    TransitionScorer,
)
from diagrammar.symbolic.grounded import (
    TRANSITIONS,
    Configuration,
    Fix,
    Tree,
    abduce,
    fixed_values,
    oracle,
    values,
)
from diagrammar.symbolic.list_programs import ListProgram, Value, induce

Pair = tuple[str, tuple[str, ...]]


class Semantics:
    """The functor from a grounded tree's diagram to its value: each symbol's box becomes
    its program; ``None`` where a program is missing or takes another number of values."""

    def __init__(self, programs: Mapping[str, ListProgram | None]) -> None:
        self.programs = programs

    def __call__(self, diagram: monoidal.Diagram) -> Value | None:
        wires: list[Value] = []
        for layer in diagram.inside:
            left, box, _ = layer
            start, arity = len(left), len(box.dom)
            program = self.programs.get(box.name)
            if program is None or program.arity != arity:
                return None
            wires[start:start + arity] = [program(wires[start:start + arity])]
        return wires[0] if len(wires) == 1 else None


@dataclass(frozen=True)
class NSRConfig:
    """The learner's settings: beam widths, curriculum, induction and parser training."""

    seed: int = 0
    beam: int = 6
    test_beam: int = 3
    stage_size: int = 300
    passes: int = 6
    advance: float = 0.97
    induction_groups: int = 40
    max_size: int = 7
    accept: float = 0.5
    parser_epochs: int = 4
    parser_batch: int = 64
    learning_rate: float = 3e-3
    unknown_rate: float = 0.2
    replay: int = 3000
    time_limit: float = 600.0


@dataclass
class PassRecord:
    """One learning pass: its curriculum stage (longest sentence), the share of its
    sentences the model got right *before* learning from them, and the time so far."""

    stage: int
    accuracy: float
    seconds: float
    programs: dict[str, str] = field(default_factory=dict)
    test_accuracy: float | None = None


class GroundedSymbolSystem:
    """An NSR model over a word vocabulary: programs per symbol and a transition parser.

    :meth:`fit` learns from ``(sentence, actions)`` pairs; :meth:`run` maps a sentence to
    its actions (``None`` when the parse cannot be executed).
    """

    def __init__(self, vocabulary: Sequence[str], config: NSRConfig = NSRConfig()) -> None:
        self.config = config
        self.symbols = sorted(set(vocabulary))
        self.ids = {symbol: 2 + i for i, symbol in enumerate(self.symbols)}
        self.programs: dict[str, ListProgram | None] = {s: None for s in self.symbols}
        torch.manual_seed(config.seed)
        self.scorer = TransitionScorer(len(self.symbols) + 2)
        self.optimiser = torch.optim.Adam(self.scorer.parameters(), lr=config.learning_rate)
        self.parser_seen: Counter[str] = Counter()
        self.replay: list[Tree] = []
        self.rng = random.Random(config.seed)

    # -- deduction ----------------------------------------------------------------------

    def arities(self, words: Sequence[str]) -> tuple[int | None, ...]:
        """Each word's arity by its program; ``None`` where it has none yet."""
        return tuple(None if self.programs.get(w) is None else self.programs[w].arity
                     for w in words)

    def _symbol_id(self, word: str, drop: bool = False) -> int:
        if drop or self.parser_seen[word] == 0 or word not in self.ids:
            return UNKNOWN_SYMBOL
        return self.ids[word]

    def _features(self, state: Configuration, words: Sequence[str], drop: float = 0.0
                  ) -> tuple[list[list[int]], int]:
        items = [state.stack[-1] if len(state.stack) > 0 else None,
                 state.stack[-2] if len(state.stack) > 1 else None,
                 state.stack[-3] if len(state.stack) > 2 else None,
                 state.buffer[0] if len(state.buffer) > 0 else None,
                 state.buffer[1] if len(state.buffer) > 1 else None]
        rows = []
        for item in items:
            if item is None:
                rows.append([PAD_SYMBOL, ARITY_CODES - 1, CHILD_CODES - 1])
                continue
            arity = state.arities[item]
            dropped = drop > 0 and self.rng.random() < drop
            rows.append([self._symbol_id(words[item], dropped),
                         3 if arity is None else arity, min(state.counts[item], 2)])
        swap = int(len(state.stack) >= 2 and state.stack[-2] < state.stack[-1])
        return rows, swap

    @torch.no_grad()
    def parse(self, words: Sequence[str], beam: int | None = None
              ) -> list[tuple[Tree, float]]:
        """The beam's complete trees with their log-probabilities, most likely first.

        A parse has at most ``4n + 4`` transitions for ``n`` words (``n`` shifts, ``n - 1``
        arcs, and up to about ``n`` swaps, each with its shift back): trees that need more
        reordering than that are out of reach, which keeps a poorly trained scorer that
        favours swaps from wandering."""
        width = beam or self.config.beam
        active = [(0.0, Configuration.start(self.arities(words)))]
        finals: list[tuple[float, Configuration]] = []
        limit = 4 * len(words) + 4  # n shifts, n - 1 arcs and at most n swaps (each + shift)
        for _ in range(limit):
            if not active:
                break
            if len(finals) >= width and active[0][0] < min(s for s, _ in finals):
                break
            features, swaps = zip(*(self._features(state, words) for _, state in active))
            logits = self.scorer(torch.tensor(features), torch.tensor(swaps))
            candidates = []
            for row, (score, state) in enumerate(active):
                valid = state.valid()
                mask = torch.full((len(TRANSITIONS),), -math.inf)
                for move in valid:
                    mask[TRANSITIONS.index(move)] = 0.0
                logp = torch.log_softmax(logits[row] + mask, dim=-1)
                for move in valid:
                    candidates.append((score + float(logp[TRANSITIONS.index(move)]), state,
                                       move))
            candidates.sort(key=lambda item: -item[0])
            active = []
            for score, state, move in candidates:
                if len(active) >= width:
                    break
                child = state.copy()
                child.apply(move)
                if child.final:
                    finals.append((score, child))
                elif child.valid():
                    active.append((score, child))
        finals.sort(key=lambda item: -item[0])
        return [(Tree(tuple(words), tuple(state.heads)), score)
                for score, state in finals[:width]]

    def run(self, sentence: str, beam: int | None = None) -> tuple[str, ...] | None:
        """The actions of the most likely tree that the programs can execute."""
        words = sentence.split()
        for tree, _ in self.parse(words, beam or self.config.test_beam):
            value = values(tree, self.programs)[tree.root]
            if value is not None:
                return value
        return None

    def accuracy(self, pairs: Sequence[Pair]) -> float:
        """The share of pairs whose sentence runs to exactly its actions."""
        if not pairs:
            return 0.0
        return sum(self.run(s) == tuple(a) for s, a in pairs) / len(pairs)

    # -- abduction and learning ---------------------------------------------------------

    def _abduce(self, words: list[str], target: Value
                ) -> tuple[bool, list[tuple[Tree, float]], list[tuple[float, Tree, Fix]]]:
        trees = self.parse(words)
        top = trees[0][0] if trees else None
        right = top is not None and values(top, self.programs)[top.root] == target
        fixes = []
        for tree, logp in trees:
            fix = abduce(tree, target, self.programs)
            if fix is not None:
                fixes.append((fix.cost - logp, tree, fix))
        fixes.sort(key=lambda item: item[0])
        return right, trees, fixes

    def _induce(self, groups: Mapping[str, list[list[tuple[tuple[Value, ...], Value]]]]
                ) -> None:
        for symbol, symbol_groups in groups.items():
            sample = (self.rng.sample(symbol_groups, self.config.induction_groups)
                      if len(symbol_groups) > self.config.induction_groups else symbol_groups)
            current = self.programs.get(symbol)
            if current is not None and all(
                    any(len(a) == current.arity and current(a) == v for a, v in group)
                    for group in sample):
                continue
            best = None
            for arity in (0, 1, 2):
                found = induce(sample, arity, max_size=self.config.max_size)
                if found.program is not None and (best is None or (
                        found.explained, -found.program.size)
                        > (best.explained, -best.program.size)):
                    best = found
            accepted = best is not None and best.fraction >= self.config.accept
            self.programs[symbol] = best.program if accepted else None

    def _train_parser(self, trees: Sequence[Tree]) -> None:
        steps: list[tuple[list[list[int]], int, list[float], int]] = []
        for tree in trees:
            words = list(tree.symbols)
            state = Configuration.start([len(tree.children(i)) for i in range(len(words))])
            for move in oracle(tree):
                rows, swap = self._features(state, words, drop=self.config.unknown_rate)
                mask = [0.0 if t in state.valid() else -math.inf for t in TRANSITIONS]
                steps.append((rows, swap, mask, TRANSITIONS.index(move)))
                state.apply(move)
        if not steps:
            return
        loss_fn = nn.CrossEntropyLoss()
        self.scorer.train()
        for _ in range(self.config.parser_epochs):
            self.rng.shuffle(steps)
            for start in range(0, len(steps), self.config.parser_batch):
                batch = steps[start:start + self.config.parser_batch]
                logits = self.scorer(torch.tensor([b[0] for b in batch]),
                                     torch.tensor([b[1] for b in batch]))
                logits = logits + torch.tensor([b[2] for b in batch])
                loss = loss_fn(logits, torch.tensor([b[3] for b in batch]))
                self.optimiser.zero_grad()
                loss.backward()
                self.optimiser.step()
        self.scorer.eval()

    def learn_pass(self, pairs: Sequence[Pair]) -> float:
        """One deduce–abduce–learn pass over ``pairs``; returns the share deduced right
        before learning."""
        groups: dict[str, list[list[tuple[tuple[Value, ...], Value]]]] = defaultdict(list)
        beams: list[tuple[Value, list[tuple[Tree, float]]]] = []
        right = 0
        for sentence, actions in pairs:
            words, target = sentence.split(), tuple(actions)
            correct, trees, fixes = self._abduce(words, target)
            right += correct
            beams.append((target, trees))
            per_symbol: dict[str, set] = defaultdict(set)
            for _, tree, fix in fixes:
                fixed = fixed_values(tree, self.programs, fix)
                for node, symbol in enumerate(tree.symbols):
                    args = tuple(fixed[c] for c in tree.children(node))
                    if fixed[node] is not None and None not in args:
                        per_symbol[symbol].add((args, fixed[node]))
            for symbol, examples in per_symbol.items():
                groups[symbol].append(sorted(examples))
        self._induce(groups)
        # the parser learns, for each sentence, the most likely of its trees that the
        # updated programs execute to the target
        exact = []
        for target, trees in beams:
            for tree, _ in trees:
                if values(tree, self.programs)[tree.root] == target:
                    if len(tree.symbols) > 1:
                        exact.append(tree)
                    break
        for tree in exact:
            self.parser_seen.update(tree.symbols)
        self.replay = (self.replay + exact)[-self.config.replay:]
        sample = self.replay if len(self.replay) <= 2 * len(exact) + 200 else (
            exact + self.rng.sample(self.replay, len(exact) + 200))
        self._train_parser(sample)
        return right / len(pairs) if pairs else 0.0

    def fit(self, pairs: Sequence[Pair], *, progress: bool = True,
            on_pass: Callable[[PassRecord], None] | None = None) -> list[PassRecord]:
        """Learn from ``pairs`` (each distinct pair once) with a curriculum: stage ``L``
        draws its passes from the sentences of at most ``L`` words (half of each pass of
        exactly ``L``); a stage ends when a pass is deduced right at ``config.advance`` or
        after ``config.passes``. Stops at ``config.time_limit`` seconds."""
        by_length: dict[int, list[Pair]] = defaultdict(list)
        # distinct pairs: a sentence repeated in the data (SCAN's add-jump training file
        # holds 1,467 copies of "jump") would crowd the others out of the passes
        for sentence, actions in dict.fromkeys((s, tuple(a)) for s, a in pairs):
            by_length[len(sentence.split())].append((sentence, actions))
        lengths = sorted(by_length)
        records: list[PassRecord] = []
        started = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(lengths), desc="NSR curriculum", unit="stage", leave=False)
        for stage in lengths:
            pool = [p for n in lengths if n <= stage for p in by_length[n]]
            for _ in range(self.config.passes):
                half = self.config.stage_size // 2
                batch = (self.rng.sample(by_length[stage], min(half, len(by_length[stage])))
                         + self.rng.sample(pool, min(half, len(pool))))
                accuracy = self.learn_pass(batch)
                record = PassRecord(stage, accuracy, time.perf_counter() - started,
                                    {s: str(p) for s, p in self.programs.items()
                                     if p is not None})
                if on_pass is not None:
                    on_pass(record)
                records.append(record)
                if accuracy >= self.config.advance:
                    break
                if time.perf_counter() - started > self.config.time_limit:
                    break
            if bar is not None:
                bar.update(1)
            if time.perf_counter() - started > self.config.time_limit:
                break
        if bar is not None:
            bar.close()
        return records
