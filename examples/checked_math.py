"""Checked arithmetic: a model writes arithmetic and algebra, a sympy ``Check`` box rejects the
lines that do not hold, and the step decodes them again with the target's next-best token.

1. Prompts are a few correct lines of arithmetic or algebra, in forms a code model continues
   (``assert 3 * 4 == 12`` in a test function, ``# 3 * 4 = 12`` comments, algebraic
   identities in comments), ending with an unfinished one (``assert 7 * 8 ==``);
2. each prompt is decoded by the same speculative pipeline (prompt lookup, greedy) with and
   without ``Check(checker="math", checkpoint="line")``, interleaved;
3. the checker is :class:`LineEquations`, a thin adapter: it finds the equation a line claims
   (``assert A == B``, or ``A = B`` in a comment) and hands it to
   :class:`~diagrammar.symbolic.EquationChecker` (sympy, parsed safely, never evaluated);
   a line that claims no equation (code, prose, a blank line) passes;
4. it prints how many outputs the check changed, its counters (failures, repairs, gave up),
   how many equation lines hold before and after (the final outputs checked again), tokens/s
   with and without the check (medians over prompts) and a few lines before and after.

The default model is a small *code* model: it is poor at arithmetic, so most of its lines
fail and many segments are given up on after ``--retries``; the counters say so.

Run:  python examples/checked_math.py [--model default:small|PATH] [--prompts 12]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from dataclasses import dataclass

from diagrammar.bench.config import load_bench_model
from diagrammar.diagrams import Check, PromptLookup, speculative
from diagrammar.functors import Execute
from diagrammar.symbolic import EquationChecker, ExpressionError, Verdict, parse_expression
from diagrammar.symbolic.expression import Grammar

# No implicit multiplication: in "# compute the sum = 3" the words are prose, not a product.
EXPLICIT = Grammar(implicit_multiplication=False)
_ASSERT = re.compile(r"^\s*assert\s+(?P<lhs>.+?)\s*==(?!=)\s*(?P<rhs>.*?)\s*(?:#.*)?$")
_COMMENT = re.compile(r"^\s*#+\s*(?P<lhs>[^=]+?)\s*(?<![<>!=])=(?!=)\s*(?P<rhs>.*?)\s*$")


class LineEquations:
    """A line checker for arithmetic written as code: ``assert A == B`` or ``# A = B``.

    The line claims an equation when its left side parses as an arithmetic expression with
    an operator (no implicit products, so prose is not read as maths; in an ``assert``, no
    variables either: that is code); the equation ``A = B`` then goes to
    ``EquationChecker`` (a right side that does not parse fails). Any other line passes.

    >>> check = LineEquations()
    >>> check.check("    assert 7 * 8 == 56").status, check.check("# 7 * 8 = 54").status
    ('pass', 'fail')
    >>> check.check("def test():").reason
    'no equation on this line'
    """

    name, checkpoint = "line-equations", "line"

    def __init__(self, equations: EquationChecker | None = None) -> None:
        self.equations = equations or EquationChecker(grammar=EXPLICIT)

    def claim(self, line: str) -> str | None:
        """The equation ``"A = B"`` a line claims, or None."""
        line = line.rstrip("\n")
        code = _ASSERT.match(line)
        match = code or _COMMENT.match(line)
        if match is None:
            return None
        lhs = match["lhs"]
        try:
            node = parse_expression(lhs, EXPLICIT)
        except ExpressionError:
            return None
        if not node.args or (code and node.names()):
            return None         # "# x = 3" names a value; "assert f(a) == b" is code
        return f"{lhs} = {match['rhs']}"

    def check(self, text: str) -> Verdict:
        equation = self.claim(text)
        if equation is None:
            return Verdict("pass", "no equation on this line")
        return self.equations.check(equation)


# ---------------------------------------------------------------------------- prompts

def _arithmetic(rng: random.Random) -> tuple[str, int]:
    op = rng.choice("+-*")
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"{a} {op} {b}", value


_IDENTITIES = [
    ("(x + {a})**2", "x**2 + {2a}*x + {aa}"),
    ("(x + {a})*(x - {a})", "x**2 - {aa}"),
    ("(x - {a})**2", "x**2 - {2a}*x + {aa}"),
    ("{a}*(x + {b})", "{a}*x + {ab}"),
    ("(x + {a})*(x + {b})", "x**2 + {apb}*x + {ab}"),
]


def _identity(rng: random.Random) -> tuple[str, str]:
    lhs, rhs = rng.choice(_IDENTITIES)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    fill = {"a": a, "b": b, "2a": 2 * a, "aa": a * a, "ab": a * b, "apb": a + b}
    return lhs.format(**fill), rhs.format(**fill)


def build_prompts(count: int, seed: int = 0, shots: int = 4) -> list[str]:
    """``count`` prompts, cycling through three forms; each ends with an unfinished line."""
    rng = random.Random(seed)
    prompts = []
    for index in range(count):
        form = index % 3
        if form == 0:
            lines = ["def test_arithmetic():"]
            for _ in range(shots):
                expr, value = _arithmetic(rng)
                lines.append(f"    assert {expr} == {value}")
            lines.append(f"    assert {_arithmetic(rng)[0]} ==")
        elif form == 1:
            lines = ["# Multiplication and addition facts"]
            for _ in range(shots):
                expr, value = _arithmetic(rng)
                lines.append(f"# {expr} = {value}")
            lines.append(f"# {_arithmetic(rng)[0]} =")
        else:
            lines = ["# Expanding products:"]
            for _ in range(shots):
                lhs, rhs = _identity(rng)
                lines.append(f"# {lhs} = {rhs}")
            lines.append(f"# {_identity(rng)[0]} =")
        prompts.append("\n".join(lines))
    return prompts


# ---------------------------------------------------------------------------- measuring

@dataclass
class Tally:
    holds: int = 0
    fails: int = 0
    answers: int = 0          # prompts whose unfinished line (the question) was completed true


def equation_lines(checker: LineEquations, prompt: str, text: str) -> list[tuple[str, bool]]:
    """The complete lines the model wrote (the prompt's last line joined to the first) that
    claim an equation, each with whether it holds."""
    lines = (prompt.rsplit("\n", 1)[-1] + text).split("\n")[:-1]   # the last one is unfinished
    found = []
    for line in lines:
        if checker.claim(line) is not None:
            found.append((line, checker.check(line).status == "pass"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default:small",
                        help="default:small, default:tiny or a local Hugging Face folder")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--checkpoint", default="line", choices=Check.CHECKPOINTS)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed)")
    parser.add_argument("--examples", type=int, default=4, help="before/after lines shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    lm = load_bench_model(args.model).lm
    checker = LineEquations()
    execute = Execute(lm, resources={"math": checker})
    box = Check(checker="math", checkpoint=args.checkpoint, retries=args.retries)
    decoders = {"plain": execute(speculative(PromptLookup())),
                "checked": execute(speculative(PromptLookup(), check=box))}
    prompts = build_prompts(args.prompts, args.seed)
    for decoder in decoders.values():                     # untimed warm-up
        decoder.generate(prompts[0], args.max_new_tokens)

    speed: dict[str, list[float]] = {name: [] for name in decoders}
    outputs: dict[str, list] = {name: [] for name in decoders}
    counters = {"checkpoints": 0, "failures": 0, "repairs": 0, "gave_up": 0, "rollbacks": 0,
                "solver_seconds": 0.0}
    for index, prompt in enumerate(prompts):
        order = list(decoders) if index % 2 == 0 else list(decoders)[::-1]   # interleaved
        for name in order:
            start = time.perf_counter()
            result = decoders[name].generate(prompt, args.max_new_tokens)
            seconds = time.perf_counter() - start
            speed[name].append(len(result.tokens) / seconds)
            outputs[name].append(result)
            if name == "checked":
                for key, value in result.stats.box_counters.items():
                    if key.startswith("Check"):
                        for counter in counters:
                            counters[counter] += value.get(counter, 0)

    changed = sum(p.tokens != c.tokens for p, c in zip(outputs["plain"], outputs["checked"]))
    tallies = {name: Tally() for name in decoders}
    shown = []
    for prompt, plain, checked in zip(prompts, outputs["plain"], outputs["checked"]):
        for name, result in (("plain", plain), ("checked", checked)):
            found = equation_lines(checker, prompt, result.text)
            tally = tallies[name]
            for _line, holds in found:
                tally.holds += holds
                tally.fails += not holds
            tally.answers += bool(found) and found[0][1] and "\n" in result.text
        if plain.tokens != checked.tokens and len(shown) < args.examples:
            last = prompt.rsplit("\n", 1)[-1]
            shown.append((last + plain.text.split("\n", 1)[0],
                          last + checked.text.split("\n", 1)[0]))

    print(f"model {args.model}, {len(prompts)} prompts, {args.max_new_tokens} new tokens, "
          f"prompt lookup, Check(checkpoint={args.checkpoint!r}, retries={args.retries})")
    print(f"outputs the check changed: {changed} of {len(prompts)}")
    print(f"check counters: {counters['checkpoints']} checkpoints, {counters['failures']} "
          f"failures, {counters['repairs']} repairs, {counters['gave_up']} gave up, "
          f"{counters['rollbacks']} rollbacks, {counters['solver_seconds']:.3f} s in the checker")
    for name in decoders:
        tally = tallies[name]
        print(f"equation lines that hold ({name}): {tally.holds} of {tally.holds + tally.fails}; "
              f"prompted equations completed true: {tally.answers} of {len(prompts)}")
    plain_speed = statistics.median(speed["plain"])
    checked_speed = statistics.median(speed["checked"])
    print(f"tokens/s (median over prompts, interleaved; shared machine, noisy): "
          f"without check {plain_speed:.1f}, with check {checked_speed:.1f} "
          f"({checked_speed / plain_speed:.2f}x)")
    for before, after in shown:
        print(f"  before: {before.strip()!r}\n  after:  {after.strip()!r}")


if __name__ == "__main__":
    main()
