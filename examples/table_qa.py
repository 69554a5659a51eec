"""Binder (Cheng et al. 2023, "Binding Language Models in Symbolic Languages") on messy tables,
reproduced at small scale and compared in the same run with two baselines, all three the
same small Transformer encoder–decoder (:mod:`diagrammar.models.seq2seq`) trained here from
nothing on the ``train`` split of :mod:`diagrammar.symbolic.tables`:

- **Binder** (:mod:`diagrammar.functors.table_qa`): one model parses the question into a
  program with ``QA('map@...', column)`` calls *and* answers those calls cell by cell;
  ``--samples`` sampled programs (decoded under Binder's grammar for the table) plus the
  greedy one run read-only on SQLite and vote;
- **SQL-only**: the same parser trained on plain-SQL gold programs (LIKE/REPLACE/CAST/SUBSTR
  reading the common cell formats), sampled and voted the same way, no model calls;
- **end-to-end**: the whole table linearised with the question in, the answer out (greedy).

Both parsers see as many programs in training (``--steps`` batches of them); Binder's model
trains its map role on top (``--parse-share``: the share of its batches that parse), in
length-bucketed batches, where map batches are short and cheap.

Each is measured on a held-out sample of the train distribution and on the three
compositional splits: ``larger-tables`` (15-30 rows, train has 5-10),
``held-out-combinations`` (pairs of conditions never combined in train) and
``answers-outside-range`` (numeric answers above every train answer). Answers are compared
by :func:`~diagrammar.symbolic.binder.normalize_answer`. Seeds are fixed; torch runs on
``--threads`` threads.

Usage::

    python examples/table_qa.py                      # the comparison (about an hour of CPU)
    python examples/table_qa.py --questions 50 --steps 600 --report r.md --plot r.png
    python examples/table_qa.py --models models/     # keep the trained models, reuse them
    python examples/table_qa.py --tiny               # seconds: the pipeline only
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from diagrammar.functors.table_qa import (
    BinderConfig,
    ProgramGrammar,
    accuracy,
    binder_pairs,
    binder_predict,
    end_to_end_pairs,
    end_to_end_predict,
    map_pairs,
    parse_pairs,
    questions_of,
    translator,
)
from diagrammar.models import seq2seq
from diagrammar.models.seq2seq import Seq2SeqConfig, tokenize, train_seq2seq
from diagrammar.symbolic.binder import BinderError, Table, execute, normalize_answer
from diagrammar.symbolic.tables import SPLITS, Example, generate

METHODS = ("Binder", "SQL-only", "end-to-end")
HELD_OUT = "train (held-out)"
EVALUATED = (HELD_OUT, *SPLITS[1:])


@dataclass
class Training:
    """One trained model: its method, size, steps, pairs and training seconds."""

    method: str
    parameters: int
    steps: int
    pairs: int
    seconds: float
    config: Seq2SeqConfig


@dataclass
class Result:
    """One method on one split: accuracy on ``size`` questions, and for the program methods
    the share of decoded programs that parsed and the model calls per question."""

    method: str
    split: str
    accuracy: float
    size: int
    parsed: float | None = None
    map_calls: float | None = None
    seconds: float = 0.0
    answers: list[str | None] = field(default_factory=list)


def _max_tokens(texts: list[str], tokens: str) -> int:
    return max(len(tokenize(text, tokens)) for text in texts)


def _length(sources: list[str], targets: list[str], tokens: str) -> int:
    """A max_length whose positions (twice it) fit every source and which fits the targets."""
    return max(math.ceil(_max_tokens(sources, tokens) / 2),
               _max_tokens(targets, tokens) + 8) + 4


def _trained(method: str, pairs: list[tuple[str, str]], config: Seq2SeqConfig,
             folder: Path | None) -> tuple[Any, float]:
    """The model of ``method`` trained on ``pairs``, and the seconds training took; from
    ``folder`` when it holds one trained on the same pairs with the same config and the same
    model code (:mod:`diagrammar.models.seq2seq`)."""
    code = Path(seq2seq.__file__).read_text()
    key = hashlib.sha256(repr((method, pairs, config, code)).encode()).hexdigest()[:16]
    path = folder / f"{method}-{key}.pt" if folder else None
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=False)   # our own file, written below
        print(f"{method}: loaded from {path}", flush=True)
        return saved["model"], saved["seconds"]
    started = time.perf_counter()
    model = train_seq2seq(pairs, config, progress=True)
    seconds = time.perf_counter() - started
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model, "seconds": seconds}, path)
    return model, seconds


def gold_sql_accuracy(examples: list[Example]) -> float:
    """The share of ``examples`` the gold plain-SQL program answers right: the most the
    SQL-only baseline can reach with a perfect parser."""
    answers: list[str | None] = []
    for example in examples:
        try:
            answers.append(execute(example.question.sql_program,
                                   Table(*example.table.texts()), _no_model).answer)
        except BinderError:
            answers.append(None)
    return accuracy(answers, examples)


def _no_model(kind: str, question: str, cell: str) -> str:
    raise BinderError("plain SQL calls no model")


def data(train_size: int, questions: int, seed: int) -> tuple[list[Example],
                                                                dict[str, list[Example]]]:
    """The training examples and the evaluation sets (a held-out train sample, drawn with
    another seed, and each compositional split)."""
    train = generate("train", train_size, seed=seed)
    evaluated = {HELD_OUT: generate("train", questions, seed=seed + 1000)}
    for split in SPLITS[1:]:
        evaluated[split] = generate(split, questions, seed=seed)
    return train, evaluated


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2000, help="training questions")
    parser.add_argument("--questions", type=int, default=100, help="questions per split")
    parser.add_argument("--steps", type=int, default=6000,
                        help="parse batches of each parser: SQL-only trains this many "
                             "batches, Binder steps / parse-share (the rest of its batches "
                             "are map batches), so both parsers see as many programs")
    parser.add_argument("--e2e-steps", type=int, default=600,
                        help="batches for end-to-end (its batches cost more: longer inputs)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--tokens", default="spaced", choices=["pieces", "spaced"],
                        help="seq2seq tokens: 'spaced' joins a space to the piece after it")
    parser.add_argument("--copy", action=argparse.BooleanOptionalAction, default=True,
                        help="the copy mechanism in every model (pointer-generator)")
    parser.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=True,
                        help="batches of pairs of similar length (less padding)")
    parser.add_argument("--constrain", action=argparse.BooleanOptionalAction, default=True,
                        help="decode programs under Binder's grammar for each table")
    parser.add_argument("--models", type=Path,
                        help="a folder: trained models are saved there, and loaded from there "
                             "(same method and settings) instead of training again")
    parser.add_argument("--rows", type=int, default=1, help="table rows the parser sees")
    parser.add_argument("--parse-share", type=float, default=0.5,
                        help="Binder: share of its training pairs that parse (the rest map)")
    parser.add_argument("--samples", type=int, default=8, help="sampled programs")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--tiny", action="store_true", help="seconds: the pipeline only")
    parser.add_argument("--report", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.tiny:
        args.train, args.questions, args.steps, args.e2e_steps = 12, 2, 4, 4
        args.dim, args.layers, args.batch, args.samples, args.rows = 16, 1, 8, 2, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train, evaluated = data(args.train, args.questions, args.seed)
    inference = BinderConfig(samples=args.samples, temperature=args.temperature,
                             seed=args.seed, rows=args.rows)
    trainings: list[Training] = []
    results: list[Result] = []
    roles: dict[str, float] = {}
    for method in args.methods:
        if method == "end-to-end":
            pairs = end_to_end_pairs(train)
            every = [s for examples in evaluated.values() for s, _ in end_to_end_pairs(examples)]
            steps = args.e2e_steps or args.steps
        else:
            pairs = (binder_pairs(train, rows=args.rows, parse_share=args.parse_share)
                     if method == "Binder"
                     else parse_pairs(train, sql_only=True, rows=args.rows))
            every = [s for examples in evaluated.values()
                     for s, _ in parse_pairs(examples, rows=args.rows)]
            steps = (round(args.steps / args.parse_share) if method == "Binder"
                     else args.steps)
        config = Seq2SeqConfig(tokens=args.tokens, dim=args.dim, layers=args.layers,
                               feedforward=4 * args.dim, batch=args.batch, steps=steps,
                               seed=args.seed, learning_rate=args.learning_rate,
                               copy=args.copy, bucket=args.bucket,
                               max_length=_length([s for s, _ in pairs] + every,
                                                  [t for _, t in pairs], args.tokens),
                               max_output=_max_tokens([t for _, t in pairs], args.tokens) + 8)
        print(f"{method}: {len(pairs)} pairs, max_length {config.max_length}", flush=True)
        model, seconds = _trained(method, pairs, config, args.models)
        trainings.append(Training(method, sum(p.numel() for p in model.parameters()), steps,
                                  len(pairs), seconds, config))
        print(f"{method}: trained in {seconds:.0f} s", flush=True)
        translate = translator(model, progress=f"{method} decode")
        grammar = ProgramGrammar(model) if args.constrain and method != "end-to-end" else None
        for split, examples in evaluated.items():
            started = time.perf_counter()
            questions = questions_of(examples)
            if method == "end-to-end":
                answers: list[str | None] = list(end_to_end_predict(translate, questions))
                result = Result(method, split, accuracy(answers, examples), len(examples))
            else:
                predictions = binder_predict(
                    translate, questions, inference,
                    mapper=translate if method == "Binder" else None,
                    grammar=grammar, progress=True)
                answers = [p.answer for p in predictions]
                decoded = sum(len(p.programs) for p in predictions)
                if split == HELD_OUT:  # each role alone, on the train distribution
                    gold = [e.question.map_program if method == "Binder"
                            else e.question.sql_program for e in examples]
                    roles[f"{method}: greedy program = gold program"] = sum(
                        p.programs[0] == g for p, g in zip(predictions, gold)) / len(gold)
                    if method == "Binder":
                        cells = map_pairs(examples)
                        outputs = translate([s for s, _ in cells])
                        roles["Binder: map answers = gold (cells of the gold calls)"] = sum(
                            normalize_answer(o) == normalize_answer(t)
                            for o, (_, t) in zip(outputs, cells)) / len(cells)
                result = Result(method, split, accuracy(answers, examples), len(examples),
                                sum(p.parsed for p in predictions) / max(decoded, 1),
                                sum(p.map_calls for p in predictions) / len(predictions))
            result.seconds = time.perf_counter() - started
            result.answers = answers
            results.append(result)
            print(f"  {split:22s} {100 * result.accuracy:5.1f}%  ({result.seconds:.0f} s)",
                  flush=True)
    if "SQL-only" in args.methods:
        for split, examples in evaluated.items():
            roles[f"SQL-only's gold programs (no model), {split}"] = gold_sql_accuracy(examples)
    table = report(results, trainings, args, roles)
    print(table)
    if args.report:
        args.report.write_text(table)
    if args.plot:
        plot(results, args.plot)
    return results


def report(results: list[Result], trainings: list[Training], args: argparse.Namespace,
           roles: dict[str, float] | None = None) -> str:
    """A Markdown report: accuracy per method and split, how each model was trained, and
    each role alone on the held-out train sample (``roles``)."""
    methods = [t.method for t in trainings]
    size = results[0].size if results else 0
    lines = [f"Accuracy on {size} questions per split (answers compared by "
             "`normalize_answer`):", "",
             "| split | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for split in EVALUATED:
        cells = []
        for method in methods:
            found = [r for r in results if (r.method, r.split) == (method, split)]
            cells.append(f"{100 * found[0].accuracy:.1f}%" if found else "—")
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    lines += ["", "| model | parameters | steps × batch | pairs | max_length | training time |",
              "|---|---|---|---|---|---|"]
    for t in trainings:
        lines.append(f"| {t.method} | {t.parameters:,} | {t.steps} × {t.config.batch} | "
                     f"{t.pairs:,} | {t.config.max_length} | {t.seconds:.0f} s |")
    programs = [r for r in results if r.parsed is not None]
    if programs:
        lines += ["", "| method | split | programs that parsed | map calls per question | "
                  "inference time |", "|---|---|---|---|---|"]
        for r in programs:
            lines.append(f"| {r.method} | {r.split} | {100 * r.parsed:.0f}% | "
                         f"{r.map_calls:.1f} | {r.seconds:.0f} s |")
    if roles:
        lines += ["", f"Each role alone on the {HELD_OUT} questions, and the most plain SQL "
                  "can reach:", ""]
        lines += [f"- {name}: {100 * value:.1f}%" for name, value in roles.items()]
    lines += ["", f"Settings: {args.train} training questions, dim {args.dim}, "
              f"{args.layers} layers, batch {args.batch}, learning rate {args.learning_rate}, "
              f"'{args.tokens}' tokens, {'with' if args.copy else 'no'} copy mechanism, "
              f"{'length-bucketed' if args.bucket else 'mixed'} batches, programs decoded "
              f"{'under the grammar' if args.constrain else 'free'}, "
              f"parser sees {args.rows} rows, {args.samples} sampled "
              f"programs at temperature {args.temperature} plus the greedy one, seed "
              f"{args.seed}, torch on {args.threads} threads."]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    """A bar chart: accuracy per split, one bar per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if any(r.method == m for r in results)]
    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(methods), 1)
    for index, method in enumerate(methods):
        values = [next((100 * r.accuracy for r in results
                        if (r.method, r.split) == (method, split)), 0.0) for split in EVALUATED]
        axis.bar([x + index * width for x in range(len(EVALUATED))], values, width,
                 label=method)
    axis.set_xticks([x + width * (len(methods) - 1) / 2 for x in range(len(EVALUATED))])
    axis.set_xticklabels(EVALUATED)
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend()
    axis.set_title("Table QA: Binder against its baselines")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
