#!/usr/bin/env python
"""Symbolic checkers: time per checkpoint, and the cost of a ``Check`` box in a speculative
pipeline.

    python benchmarks/checker_bench.py            # default small model, full input sets
    python benchmarks/checker_bench.py --quick    # harness check: tiny model, small sets

1. **Checker time per checkpoint**: every checker of ``diagrammar.symbolic`` on generated,
   seeded inputs of the kind a model writes at a checkpoint, true and false mixed:

   - ``equation`` (sympy, :class:`EquationChecker`): random arithmetic equations (half of
     them wrong), algebraic identities (half of them wrong), an occasional unparsable line;
   - ``expression`` (sympy, :class:`ExpressionChecker`): answers to a reference (equal
     forms such as ``2*sqrt(2)`` for ``sqrt(8)``, and wrong ones);
   - ``constraints`` (z3, :class:`ConstraintChecker`): random sets of 3-6 linear and
     product constraints over 2-4 integer variables, and a JSON object of values;
   - ``equivalence`` (z3, :class:`EquivalenceChecker`): a small three-address reference
     program and a candidate (a correct rewrite or a bug), 16-bit;
   - ``python`` (:class:`PythonChecker`): top-level functions cut from standard-library
     modules, whole or truncated (syntax errors), some with a forbidden import;
   - ``sql`` (sqlglot + SQLite, :class:`SQLChecker`): SELECTs (filters, joins, GROUP BY,
     ORDER BY), wrong columns, syntax errors and writes, against a generated shop database.

   The wall time of ``check(text)`` per call (checker built beforehand, one untimed warm-up
   call each: sympy's worker process starts there); p50, p90, p99, mean and the verdicts.
2. **Pipelines with and without Check**: prompt lookup and autoregressive (``NoDraft``),
   greedy, on the default small model, each without a ``Check`` box, with a pass-through
   checker (the box's own cost: cutting segments, decoding text) and with ``LineEquations``
   (``examples/checked_math.py``: sympy on every line that claims an equation, everything
   else passes), on code prompts (``diagrammar.bench.prompts``, category ``code``) and on
   arithmetic prompts (the example's). Every configuration runs on a prompt before the next
   prompt, the order rotating, after an untimed warm-up; torch threads fixed. Reported:
   median tokens/s, the median of the same-prompt ratios against the same pipeline without
   Check, how many outputs differ from it, and the box's counters.

Writes ``checker_bench.{json,md}`` (``checker_bench_quick.*`` with ``--quick``) into ``--out``.
The machines are small and shared: compare within one run.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import platform
import random
import sqlite3
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "checked_math.py"


def load_example() -> Any:
    """``examples/checked_math.py`` as a module (its ``LineEquations`` and prompts)."""
    spec = importlib.util.spec_from_file_location("checked_math", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["checked_math"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- inputs

def equation_inputs(rng: random.Random, count: int) -> list[str]:
    texts = []
    for index in range(count):
        kind = index % 5
        if kind < 3:
            a, b, op = rng.randint(2, 999), rng.randint(2, 99), rng.choice("+-*/")
            value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
            shown = f"{value:.4g}" if op == "/" else str(value)
            if rng.random() < 0.5:
                shown = str(int(float(shown)) + rng.randint(1, 9))
            texts.append(f"{a} {op} {b} = {shown}")
        elif kind == 3:
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            right = (f"x**2 + {a + b}*x + {a * b}" if rng.random() < 0.5
                     else f"x**2 + {a + b + 1}*x + {a * b}")
            texts.append(f"(x + {a})*(x + {b}) = {right}")
        else:
            texts.append(rng.choice([
                "sin(x)**2 + cos(x)**2 = 1", "(a + b)**3 = a**3 + 3*a**2*b + 3*a*b**2 + b**3",
                "sqrt(12) = 2*sqrt(3)", "exp(2*x) = exp(x)**2", "log(8) = 3*log(2)",
                "(x**2 - 1)/(x - 1) = x + 1", "2**10 = 1000", "7 * 8 = 5 6", "x + = 3"]))
    return texts


EXPRESSION_CASES = [
    ("sqrt(8)", ["2*sqrt(2)", "2 sqrt(2)", "sqrt(2)*2", "2.83", "3*sqrt(2)", "4"]),
    ("(x + 1)**2", ["x**2 + 2*x + 1", "x^2 + 2x + 1", "x**2 + 1", "= (1 + x)*(x + 1)"]),
    ("1/3", ["0.3333", "2/6", "1/3", "0.3"]),
    ("sin(2*x)", ["2*sin(x)*cos(x)", "2 sin x cos x", "sin(x)*cos(x)"]),
]


def constraint_inputs(rng: random.Random, count: int) -> list[tuple[list[str], str]]:
    cases = []
    for _ in range(count):
        names = ["x", "y", "z", "w"][:rng.randint(2, 4)]
        constraints = []
        for _ in range(rng.randint(3, 6)):
            a, b = rng.sample(names, 2)
            shape = rng.randrange(4)
            if shape == 0:
                constraints.append(f"{a} + {b} <= {rng.randint(5, 40)}")
            elif shape == 1:
                constraints.append(f"{a} >= {rng.randint(-5, 5)}")
            elif shape == 2:
                constraints.append(f"{rng.randint(1, 5)}*{a} - {b} != {rng.randint(0, 9)}")
            else:
                constraints.append(f"{a} * {b} < {rng.randint(10, 200)}")
        values = {name: rng.randint(-3, 15) for name in names}
        cases.append((constraints, json.dumps(values)))
    return cases


_REFERENCE = "t = add x, y\nu = shl t, 1\nv = and u, x\nz = sub v, y"
_CANDIDATES = [
    "t = add y, x\nu = add t, t\nv = and x, u\nz = sub v, y",      # equivalent
    "t = add x, y\nu = mul t, 2\nv = and u, x\nz = sub v, y",      # equivalent
    "t = add x, y\nu = shl t, 1\nv = or u, x\nz = sub v, y",       # bug: or
    "t = add x, y\nu = shl t, 2\nv = and u, x\nz = sub v, y",      # bug: shift
    "t = add x, y\nu = shl t, 1\nv = and u, x\nz = sub y, v",      # bug: operands
    "t = add x, y\nu = shl t, 1\nz = and u, x",                    # bug: step missing
    "t = add x, y\nu = frob t, 1\nz = sub u, y",                   # unknown operation
]


def python_inputs(rng: random.Random, count: int) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    snippets = []
    for name in ("textwrap", "statistics", "fractions", "difflib", "shlex", "calendar",
                 "configparser", "pprint"):
        path = stdlib / f"{name}.py"
        if not path.is_file():
            continue
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                snippets.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    rng.shuffle(snippets)
    texts = []
    for index in range(count):
        snippet = snippets[index % len(snippets)]
        kind = index % 4
        if kind == 1:              # truncated mid-body: a syntax error, usually
            cut = snippet.splitlines()
            snippet = "\n".join(cut[:max(1, len(cut) // 2)]) + "\n    x = ("
        elif kind == 2:
            snippet = "import os\n" + snippet
        texts.append(snippet)
    return texts


def shop_database(path: Path, rng: random.Random) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);"
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, "
            "price REAL, day TEXT);")
        cities = ["Oslo", "Lyon", "Porto", "Graz", "Turku"]
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                       [(i, f"customer{i}", rng.choice(cities), rng.randint(18, 80))
                        for i in range(200)])
        items = ["tea", "pen", "lamp", "book", "mug", "desk"]
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                       [(i, rng.randrange(200), rng.choice(items),
                         round(rng.uniform(1, 300), 2), f"2026-{rng.randint(1, 12):02d}-01")
                        for i in range(2000)])
    db.close()


def sql_inputs(rng: random.Random, count: int) -> list[str]:
    cities = ["Oslo", "Lyon", "Porto", "Graz", "Turku"]
    texts = []
    for index in range(count):
        kind = index % 6
        if kind == 0:
            texts.append(f"SELECT name, age FROM customers WHERE city = '{rng.choice(cities)}' "
                         f"AND age > {rng.randint(18, 70)} ORDER BY age")
        elif kind == 1:
            texts.append("SELECT c.city, COUNT(*), ROUND(SUM(o.price), 2) FROM orders o "
                         "JOIN customers c ON o.customer = c.id "
                         f"WHERE o.price > {rng.randint(1, 200)} GROUP BY c.city ORDER BY 2 DESC")
        elif kind == 2:
            texts.append(f"SELECT item, AVG(price) FROM orders WHERE day >= "
                         f"'2026-{rng.randint(1, 12):02d}-01' GROUP BY item HAVING COUNT(*) > "
                         f"{rng.randint(1, 100)}")
        elif kind == 3:
            texts.append("SELECT name FROM customers WHERE id IN (SELECT customer FROM orders "
                         f"WHERE item = 'lamp' AND price < {rng.randint(10, 300)}) LIMIT 20")
        elif kind == 4:
            texts.append(rng.choice(["SELECT nme FROM customers", "SELECT name FROM",
                                     "SELECT * FROM customers WHERE age >"]))
        else:
            texts.append(rng.choice(["DELETE FROM orders", "SELECT 1; DROP TABLE orders",
                                     "ATTACH DATABASE 'x.db' AS x",
                                     "UPDATE customers SET age = 0"]))
    return texts


def checker_cases(count: int, seed: int, tmp: Path) -> dict[str, list[tuple[Any, str]]]:
    """Checker name -> (checker, text) pairs."""
    from diagrammar.symbolic import (
        ConstraintChecker,
        EquationChecker,
        EquivalenceChecker,
        ExpressionChecker,
        Program,
        PythonChecker,
        SQLChecker,
    )

    rng = random.Random(seed)
    equation = EquationChecker()
    cases: dict[str, list[tuple[Any, str]]] = {}
    cases["equation"] = [(equation, text) for text in equation_inputs(rng, count)]
    expressions = [(ExpressionChecker(reference), answers)
                   for reference, answers in EXPRESSION_CASES]
    cases["expression"] = []
    for index in range(count):
        checker, answers = expressions[index % len(expressions)]
        cases["expression"].append((checker, rng.choice(answers)))
    cases["constraints"] = [(ConstraintChecker(constraints), values)
                            for constraints, values in constraint_inputs(rng, count)]
    reference = Program.parse(_REFERENCE, inputs=["x", "y"], outputs=["z"])
    equivalence = EquivalenceChecker(reference, inputs=["x", "y"], outputs=["z"], width=16)
    cases["equivalence"] = [(equivalence, _CANDIDATES[index % len(_CANDIDATES)])
                            for index in range(count)]
    python = PythonChecker()
    cases["python"] = [(python, text) for text in python_inputs(rng, count)]
    database = tmp / "shop.db"
    shop_database(database, rng)
    sql = SQLChecker(database)
    cases["sql"] = [(sql, text) for text in sql_inputs(rng, count)]
    return cases


def bench_checkers(cases: dict[str, list[tuple[Any, str]]], progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    for pairs in cases.values():                       # warm-up: workers, caches, imports
        pairs[0][0].check(pairs[0][1])
    order = [(name, index) for name, pairs in cases.items() for index in range(len(pairs))]
    random.Random(1).shuffle(order)                    # checkers interleaved
    times: dict[str, list[float]] = {name: [] for name in cases}
    statuses: dict[str, Counter] = {name: Counter() for name in cases}
    examples: dict[str, list[list[str]]] = {name: [] for name in cases}
    for name, index in tqdm(order, desc="checkers", unit="check", disable=not progress):
        checker, text = cases[name][index]
        start = time.perf_counter()
        verdict = checker.check(text)
        times[name].append(time.perf_counter() - start)
        statuses[name][verdict.status] += 1
        if len(examples[name]) < 3 and verdict.status not in {e[1] for e in examples[name]}:
            examples[name].append([text[:70], verdict.status, verdict.reason[:90]])
    report = {}
    for name, values in times.items():
        ms = np.array(values) * 1e3
        report[name] = {"n": len(values), "p50_ms": float(np.percentile(ms, 50)),
                        "p90_ms": float(np.percentile(ms, 90)),
                        "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
                        "max_ms": float(ms.max()), "statuses": dict(statuses[name]),
                        "examples": examples[name]}
    return report


# ---------------------------------------------------------------------------- pipelines

class PassThrough:
    """A checker that passes everything: the Check box's own cost."""

    name, checkpoint = "pass", "line"

    def check(self, text: str) -> Any:
        from diagrammar.symbolic import Verdict

        return Verdict("pass", "")


def bench_pipelines(model: str, prompts: dict[str, list[str]], max_new_tokens: int,
                    progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    from diagrammar.bench.config import load_bench_model
    from diagrammar.diagrams import Check, NoDraft, PromptLookup, speculative
    from diagrammar.functors import Execute

    example = load_example()
    lm = load_bench_model(model).lm
    execute = Execute(lm, resources={"pass": PassThrough(), "equations": example.LineEquations()})
    drafters: dict[str, Callable[[], Any]] = {"prompt-lookup": PromptLookup,
                                              "autoregressive": NoDraft}
    checks = {"none": None, "pass": "pass", "equations": "equations"}
    decoders = {}
    for pipeline, drafter in drafters.items():
        for check, resource in checks.items():
            box = None if resource is None else Check(checker=resource, checkpoint="line")
            decoders[(pipeline, check)] = execute(speculative(drafter(), check=box))
    keys = list(decoders)
    items = [(kind, text) for kind, texts in prompts.items() for text in texts]
    items = [item for pair in zip(*[[(k, t) for k, t in items if k == kind]
                                    for kind in prompts]) for item in pair] or items
    for decoder in decoders.values():                  # untimed warm-up
        decoder.generate(items[0][1], max_new_tokens)
    runs = []
    bar = tqdm(total=len(items) * len(keys), desc="pipelines", unit="gen",
               disable=not progress)
    for index, (kind, text) in enumerate(items):
        shift = index % len(keys)
        for key in keys[shift:] + keys[:shift]:        # every config on this prompt, rotated
            start = time.perf_counter()
            result = decoders[key].generate(text, max_new_tokens)
            seconds = time.perf_counter() - start
            counters = next((value for name, value in result.stats.box_counters.items()
                             if name.startswith("Check")), {})
            runs.append({"prompt": index, "prompts": kind, "pipeline": key[0], "check": key[1],
                         "seconds": seconds, "tokens": len(result.tokens),
                         "output": list(result.tokens),
                         "counters": {k: v for k, v in counters.items() if k != "reasons"}})
            bar.update()
    bar.close()
    return summarise_pipelines(runs)


def summarise_pipelines(runs: list[dict[str, Any]]) -> dict[str, Any]:
    base = {(r["prompt"], r["pipeline"]): r for r in runs if r["check"] == "none"}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["prompts"], run["pipeline"], run["check"]), []).append(run)
    rows = []
    for (kind, pipeline, check), group in groups.items():
        ratios = [(r["tokens"] / r["seconds"]) / (base[(r["prompt"], pipeline)]["tokens"]
                                                   / base[(r["prompt"], pipeline)]["seconds"])
                  for r in group]
        counters: Counter = Counter()
        for run in group:
            counters.update({k: v for k, v in run["counters"].items()
                             if isinstance(v, int | float)})
        rows.append({
            "prompts": kind, "pipeline": pipeline, "check": check, "n": len(group),
            "tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in group),
            "ratio_vs_none": statistics.median(ratios),
            "changed": sum(r["output"] != base[(r["prompt"], pipeline)]["output"]
                           for r in group),
            "counters": {k: round(v, 4) for k, v in counters.items()}})
    for run in runs:
        run.pop("output")
    return {"rows": rows, "runs": runs}


# ---------------------------------------------------------------------------- report

def markdown(meta: dict[str, Any], checkers: dict[str, Any], pipelines: dict[str, Any]) -> str:
    lines = ["# Checker benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "## Checker time per checkpoint", "",
              "Wall time of `check(text)` per call, generated inputs (true and false mixed), "
              "checkers interleaved, after one warm-up call each.", "",
              "| checker | n | p50 ms | p90 ms | p99 ms | mean ms | max ms | verdicts |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, row in checkers.items():
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items()))
        lines.append(f"| {name} | {row['n']} | {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | "
                     f"{row['p99_ms']:.3f} | {row['mean_ms']:.3f} | {row['max_ms']:.1f} | "
                     f"{verdicts} |")
    lines += ["", "Examples:", ""]
    for name, row in checkers.items():
        for text, status, reason in row["examples"]:
            lines.append(f"- {name}: `{text!r}` -> {status}: {reason}")
    if pipelines:
        lines += ["", "## Speculative pipelines with and without `Check`", "",
                  "Greedy; `pass` = a checker that passes everything (the box's own cost), "
                  "`equations` = `LineEquations` (sympy on lines that claim an equation). "
                  "tokens/s: median over prompts; vs none: median of same-prompt tokens/s "
                  "ratios against the same pipeline without Check; changed: outputs that "
                  "differ from it.", "",
                  "| prompts | pipeline | check | n | tokens/s | vs none | changed | "
                  "checkpoints | failures | repairs | gave up | checker s |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in sorted(pipelines["rows"], key=lambda r: (r["prompts"], r["pipeline"],
                                                            r["check"] != "none", r["check"])):
            c = row["counters"]
            lines.append(
                f"| {row['prompts']} | {row['pipeline']} | {row['check']} | {row['n']} | "
                f"{row['tokens_per_s']:.1f} | {row['ratio_vs_none']:.2f}x | {row['changed']} | "
                f"{c.get('checkpoints', '–')} | {c.get('failures', '–')} | "
                f"{c.get('repairs', '–')} | {c.get('gave_up', '–')} | "
                f"{c.get('solver_seconds', '–')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="harness check: tiny model, small input sets")
    parser.add_argument("--model", default=None, help="default:small (default), or a folder")
    parser.add_argument("--inputs", type=int, default=None, help="inputs per checker")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per prompt set")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pipelines", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    model = args.model or ("default:tiny" if args.quick else "default:small")
    inputs = args.inputs or (12 if args.quick else 300)
    prompt_count = args.prompts or (2 if args.quick else 20)
    max_new = args.max_new_tokens or (24 if args.quick else 64)
    progress = not args.no_progress

    import torch

    torch.set_num_threads(args.threads)
    began = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        checkers = bench_checkers(checker_cases(inputs, args.seed, Path(tmp)), progress)
    pipelines: dict[str, Any] = {}
    if not args.no_pipelines:
        from diagrammar.bench.prompts import build_prompts

        code = [p.text for p in build_prompts(prompt_count, categories=("code",),
                                              max_prompt_tokens=600)]
        math = load_example().build_prompts(prompt_count, args.seed)
        pipelines = bench_pipelines(model, {"code": code, "math": math}, max_new, progress)
    import sympy
    import z3

    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run took": f"{time.time() - began:.0f} s",
            "machine": f"{platform.platform()}, {platform.machine()}, "
                       f"{__import__('os').cpu_count()} CPUs, torch threads {args.threads}; "
                       "shared and busy (timings noisy: compare within the run)",
            "software": f"Python {platform.python_version()}, sympy {sympy.__version__}, "
                        f"z3 {z3.get_version_string()}, sqlite {sqlite3.sqlite_version}",
            "model": model, "inputs per checker": inputs,
            "prompts": f"{prompt_count} code + {prompt_count} math, {max_new} new tokens"}
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stem = "checker_bench_quick" if args.quick else "checker_bench"
    (out / f"{stem}.json").write_text(json.dumps(
        {"meta": meta, "checkers": checkers, "pipelines": pipelines}, indent=1))
    text = markdown(meta, checkers, pipelines)
    (out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
