#!/usr/bin/env python
"""JSON Schema coverage and speed of constrained decoding, in the manner of JSONSchemaBench.

    python benchmarks/json_schema_bench.py                 # default small model, 100 schemas
    python benchmarks/json_schema_bench.py --quick         # harness check (tiny model, ~1 min)
    python benchmarks/json_schema_bench.py --schemas 50 --engines xgrammar --max-new-tokens 160

The schemas come from :func:`diagrammar.bench.schemas.generate_schemas` (seeded, real-world
style, tagged with their features). For every schema and engine (llguidance, xgrammar):

* compile time (``compile_grammar``; an error means the schema is not covered, and the
  engine's message is recorded);
* three greedy decodings of the same prompt (a code line ending where the JSON starts), the
  order alternating between schemas, torch threads fixed: (1) unconstrained prompt-lookup
  speculative decoding (once per schema), (2) constrained without speculation (``NoDraft``),
  (3) constrained prompt-lookup speculative decoding; tokens/s of each (new tokens over wall
  time, totals over all schemas), (3)/(1) and (3)/(2); (3) must equal (2) token for token;
* mask time per token: ``matcher.allowed()`` timed along the tokens of (3) (mean, p50, p99);
* validity: every complete output of (3) is parsed and checked with ``jsonschema`` (formats
  included); an output that hit the budget before the value closed is *incomplete* (counted
  apart, neither valid nor invalid).

Coverage per feature is the share of the schemas with that feature that compiled and gave
only valid or incomplete outputs. The built-in grammars (json, arithmetic, sql_select,
python) are compiled and their masks timed along a sample text. Writes
``json_schema_bench.{json,md,png}`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ENGINES = ("llguidance", "xgrammar")
#: Sample texts the built-in grammars' masks are timed along.
BUILTIN_SAMPLES = {
    "json": '{"name": "diagrammar", "tags": ["a", "b"], "size": 12, "ok": true}',
    "arithmetic": "(1 + 2) * 3 - 4 / (5 + 6)",
    "sql_select": "SELECT name, age FROM users WHERE age > 21 ORDER BY name",
    "python": "def f(x):\n    y = x + 1\n    return y\n",
}


def prompt_for(item: Any) -> str:
    """The prompt: a comment naming the schema, and a line ending where the JSON starts."""
    return (f"import json\n\n# {item.description} ({item.name}), as compact JSON:\n"
            f"{item.family.upper()} = '")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _mask_times(compiled: Any, tokens: list[int]) -> list[float]:
    """Seconds of each ``allowed()`` along ``tokens`` (and after the last one)."""
    matcher = compiled.matcher()
    times = []
    for token in [*tokens, None]:
        began = time.perf_counter()
        matcher.allowed()
        times.append(time.perf_counter() - began)
        if token is None or not matcher.advance([token]):
            break
    return times


_TIME = (r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
         r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]" + _TIME)
_TIME_ONLY = re.compile(_TIME)


def _is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` (jsonschema checks it only with ``rfc3339-validator``)."""
    import datetime

    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _is_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_TIME_ONLY.fullmatch(value))


def format_checker() -> Any:
    """jsonschema's format checker, with ``date-time`` and ``time`` where it lacks them."""
    import jsonschema

    checker = copy.deepcopy(jsonschema.Draft202012Validator.FORMAT_CHECKER)
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_is_date_time)
    if "time" not in checker.checkers:
        checker.checks("time")(_is_time)
    return checker


def check_output(text: str, schema: dict[str, Any]) -> tuple[str, str]:
    """``("valid" | "invalid" | "incomplete", message)`` of a constrained output."""
    import jsonschema

    try:
        value = json.loads(text)
    except ValueError as error:
        return "incomplete", str(error)
    validator = jsonschema.Draft202012Validator(schema, format_checker=format_checker())
    errors = [e.message for e in validator.iter_errors(value)]
    return ("invalid", "; ".join(errors)[:300]) if errors else ("valid", "")


def _timed(decoder: Any, prompt: str, max_new_tokens: int
           ) -> tuple[list[int], dict[str, Any]]:
    began = time.perf_counter()
    result = decoder.generate(prompt, max_new_tokens)
    seconds = time.perf_counter() - began
    stats = result.stats
    constrain = sum(v for k, v in stats.box_seconds.items() if "Constrain" in k)
    return list(result.tokens), {"tokens": len(result.tokens), "seconds": seconds,
                                 "steps": stats.steps, "prefill_seconds": stats.prefill_seconds,
                                 "constrain_seconds": constrain}


def bench_schema(lm: Any, item: Any, engines: tuple[str, ...] = ENGINES,
                 max_new_tokens: int = 192, flip: bool = False,
                 compile_timeout: float = 30.0) -> dict[str, Any]:
    """One schema on every engine: compile time, mask times, the three decodings and the
    validity of the constrained output. The benchmark's core; returns a JSON-able record."""
    from diagrammar import Constrain, NoDraft, PromptLookup, speculative
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.decoding.constraints.protocol import GrammarSpec
    from diagrammar.functors import Execute

    spec = GrammarSpec("json_schema", item.schema, item.name)
    prompt = prompt_for(item)
    execute = Execute(lm, resources={"g": spec})
    record: dict[str, Any] = {"name": item.name, "family": item.family,
                              "features": list(item.features), "engines": {}}
    eos = set(lm.eos_token_ids)
    order = list(engines)[::-1] if flip else list(engines)
    if not flip:
        record["unconstrained"] = _timed(execute(speculative(PromptLookup())), prompt,
                                         max_new_tokens)[1]
    for engine in order:
        out: dict[str, Any] = {}
        record["engines"][engine] = out
        began = time.perf_counter()
        try:
            compiled = compile_grammar(spec, lm.tokenizer, lm.vocab_size, engine=engine,
                                       timeout=compile_timeout)
        except Exception as error:  # noqa: BLE001 - any compile failure is "not covered"
            out.update(compiled=False, error=f"{type(error).__name__}: {error}"[:500])
            continue
        out.update(compiled=True, compile_ms=(time.perf_counter() - began) * 1e3)
        box = Constrain(grammar="g", engine=engine)          # drafts forced tokens too
        plain = Constrain(grammar="g", engine=engine, draft_forced=0)
        runs = {"nonspec": execute(speculative(NoDraft(), constrain=plain)),
                "spec": execute(speculative(PromptLookup(), constrain=box))}
        results = {}
        for name in (reversed(runs) if flip else runs):
            results[name], out[name] = _timed(runs[name], prompt, max_new_tokens)
        spec_tokens = results["spec"]
        out["identical"] = spec_tokens == results["nonspec"]
        times = _mask_times(compiled, spec_tokens)
        out["mask_us"] = [t * 1e6 for t in times]
        body = [t for t in spec_tokens if t not in eos]
        text = lm.decode(body)
        ended = len(body) < len(spec_tokens) or len(spec_tokens) < max_new_tokens
        status, message = check_output(text, item.schema)
        if status == "incomplete" and ended:
            status = "invalid"                    # it stopped, yet the JSON did not close
        out.update(status=status, message=message, text=text[:400])
    if flip:
        record["unconstrained"] = _timed(execute(speculative(PromptLookup())), prompt,
                                         max_new_tokens)[1]
    return record


def bench_builtins(lm: Any, engines: tuple[str, ...]) -> dict[str, Any]:
    """Compile time and mask times of the built-in grammars along their sample texts."""
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.functors.grammars import load_grammar

    table: dict[str, Any] = {}
    for name, sample in BUILTIN_SAMPLES.items():
        spec = load_grammar(name)
        for engine in engines:
            began = time.perf_counter()
            try:
                compiled = compile_grammar(spec, lm.tokenizer, lm.vocab_size, engine=engine,
                                           timeout=60.0)
            except Exception as error:  # noqa: BLE001
                table[f"{name}/{engine}"] = {"compiled": False, "error": str(error)[:300]}
                continue
            ms = (time.perf_counter() - began) * 1e3
            times = [t * 1e6 for t in _mask_times(compiled, lm.encode(sample))]
            table[f"{name}/{engine}"] = {
                "compiled": True, "compile_ms": ms, "mask_mean_us": statistics.fmean(times),
                "mask_p50_us": _percentile(times, 50), "mask_p99_us": _percentile(times, 99),
                "tokens": len(times)}
    return table


def summarise(records: list[dict[str, Any]], engines: tuple[str, ...]) -> dict[str, Any]:
    """Per-engine totals: compile time, mask time, speeds, ratios, validity, coverage."""
    from diagrammar.bench.schemas import FEATURES

    unc_tokens = sum(r["unconstrained"]["tokens"] for r in records)
    unc_seconds = sum(r["unconstrained"]["seconds"] for r in records)
    summary: dict[str, Any] = {"unconstrained_tps": unc_tokens / unc_seconds}
    for engine in engines:
        mine = [(r, r["engines"][engine]) for r in records]
        done = [(r, e) for r, e in mine if e.get("compiled")]
        compile_ms = [e["compile_ms"] for _, e in done]
        masks = [t for _, e in done for t in e["mask_us"]]
        tps, per_step, constrain_share = {}, {}, {}
        for mode in ("nonspec", "spec"):
            tokens = sum(e[mode]["tokens"] for _, e in done)
            seconds = sum(e[mode]["seconds"] for _, e in done)
            tps[mode] = tokens / seconds if seconds else float("nan")
            steps = sum(e[mode]["steps"] for _, e in done)
            per_step[mode] = tokens / steps if steps else float("nan")
            constrain_share[mode] = (sum(e[mode]["constrain_seconds"] for _, e in done)
                                     / seconds if seconds else float("nan"))
        unc_steps = sum(r["unconstrained"]["steps"] for r, _ in done)
        step_ms = {mode: 1e3 * sum(e[mode]["seconds"] - e[mode]["prefill_seconds"]
                                   for _, e in done) / max(1, sum(e[mode]["steps"]
                                                                  for _, e in done))
                   for mode in ("nonspec", "spec")}
        step_ms["unconstrained"] = 1e3 * sum(
            r["unconstrained"]["seconds"] - r["unconstrained"]["prefill_seconds"]
            for r, _ in done) / max(1, unc_steps)
        unc_done_tokens = sum(r["unconstrained"]["tokens"] for r, _ in done)
        unc_done_seconds = sum(r["unconstrained"]["seconds"] for r, _ in done)
        unc = unc_done_tokens / unc_done_seconds if unc_done_seconds else float("nan")
        statuses = [e["status"] for _, e in done]
        good = {r["name"] for r, e in done if e["status"] != "invalid"}
        coverage = {}
        for feature in FEATURES:
            having = [r for r in records if feature in r["features"]]
            if having:
                coverage[feature] = {"schemas": len(having),
                                     "covered": sum(r["name"] in good for r in having)}
        summary[engine] = {
            "schemas": len(mine), "compiled": len(done),
            "compile_errors": {r["name"]: e["error"] for r, e in mine if not e.get("compiled")},
            "compile_ms_mean": statistics.fmean(compile_ms) if compile_ms else float("nan"),
            "compile_ms_p50": _percentile(compile_ms, 50),
            "compile_ms_max": max(compile_ms, default=float("nan")),
            "mask_us_mean": statistics.fmean(masks) if masks else float("nan"),
            "mask_us_p50": _percentile(masks, 50), "mask_us_p99": _percentile(masks, 99),
            "mask_samples": len(masks),
            "unconstrained_tps": unc, "nonspec_tps": tps["nonspec"], "spec_tps": tps["spec"],
            "spec_over_unconstrained": tps["spec"] / unc,
            "spec_over_nonspec": tps["spec"] / tps["nonspec"],
            "unconstrained_tokens_per_step": (unc_done_tokens / unc_steps if unc_steps
                                              else float("nan")),
            "spec_tokens_per_step": per_step["spec"],
            "step_ms": step_ms,
            "nonspec_tokens_per_step": per_step["nonspec"],
            "constrain_share_spec": constrain_share["spec"],
            "constrain_share_nonspec": constrain_share["nonspec"],
            "unconstrained_tokens": unc_done_tokens,
            "spec_tokens": sum(e["spec"]["tokens"] for _, e in done),
            "identical": sum(e["identical"] for _, e in done),
            "valid": statuses.count("valid"), "invalid": statuses.count("invalid"),
            "incomplete": statuses.count("incomplete"),
            "invalid_examples": {r["name"]: e["message"] for r, e in done
                                 if e["status"] == "invalid"},
            "covered": len(good), "coverage": coverage,
        }
    return summary


def markdown(meta: dict[str, Any], summary: dict[str, Any], builtins: dict[str, Any],
             engines: tuple[str, ...]) -> str:
    from diagrammar.bench.schemas import FEATURES

    lines = ["# JSON Schema benchmark (JSONSchemaBench-style)", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "Tokens/s are totals over the schemas an engine compiled (new tokens over wall "
              "time, prefill included); (1) unconstrained prompt-lookup speculative, (2) "
              "constrained without speculation, (3) constrained prompt-lookup speculative. "
              "Mask time: `allowed()` along the tokens of (3). Validity: every complete output "
              "of (3) checked with `jsonschema` (formats included); incomplete = the budget "
              "ran out before the value closed.", ""]
    head = "| metric | " + " | ".join(engines) + " |"
    lines += [head, "|---|" + "---:|" * len(engines)]

    def row(label: str, fmt: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fmt(summary[e]) for e in engines) + " |")

    row("schemas compiled", lambda s: f"{s['compiled']}/{s['schemas']}")
    row("compile ms mean / p50 / max", lambda s: f"{s['compile_ms_mean']:.1f} / "
        f"{s['compile_ms_p50']:.1f} / {s['compile_ms_max']:.1f}")
    row("mask µs/token mean / p50 / p99", lambda s: f"{s['mask_us_mean']:.1f} / "
        f"{s['mask_us_p50']:.1f} / {s['mask_us_p99']:.1f}")
    row("tokens/s (1) unconstrained spec", lambda s: f"{s['unconstrained_tps']:.1f}")
    row("tokens/s (2) constrained non-spec", lambda s: f"{s['nonspec_tps']:.1f}")
    row("tokens/s (3) constrained spec", lambda s: f"{s['spec_tps']:.1f}")
    row("(3)/(1)", lambda s: f"{s['spec_over_unconstrained']:.2f}")
    row("(3)/(2)", lambda s: f"{s['spec_over_nonspec']:.2f}")
    row("tokens per step (1) / (2) / (3)", lambda s: f"{s['unconstrained_tokens_per_step']:.2f}"
        f" / {s['nonspec_tokens_per_step']:.2f} / {s['spec_tokens_per_step']:.2f}")
    row("ms per step after prefill (1) / (2) / (3)", lambda s: " / ".join(
        f"{s['step_ms'][m]:.2f}" for m in ("unconstrained", "nonspec", "spec")))
    row("new tokens (1) / (3), all schemas", lambda s: f"{s['unconstrained_tokens']} / "
        f"{s['spec_tokens']}")
    row("share of time in Constrain (2) / (3)", lambda s: f"{s['constrain_share_nonspec']:.0%}"
        f" / {s['constrain_share_spec']:.0%}")
    row("(3) == (2) token-identical", lambda s: f"{s['identical']}/{s['compiled']}")
    row("valid / invalid / incomplete", lambda s: f"{s['valid']} / {s['invalid']} / "
        f"{s['incomplete']}")
    row("covered (compiled, no invalid output)", lambda s: f"{s['covered']}/{s['schemas']}")
    lines += ["", "## Coverage per feature", "",
              "| feature | schemas | " + " | ".join(engines) + " |",
              "|---|---:|" + "---:|" * len(engines)]
    first = summary[engines[0]]["coverage"]
    for feature in FEATURES:
        if feature not in first:
            continue
        cells = [f"{summary[e]['coverage'][feature]['covered'] / first[feature]['schemas']:.0%}"
                 for e in engines]
        lines.append(f"| {feature} | {first[feature]['schemas']} | " + " | ".join(cells) + " |")
    lines += ["", "## Built-in grammars", "",
              "| grammar/engine | compile ms | mask µs mean / p50 / p99 | tokens |",
              "|---|---:|---:|---:|"]
    for key, value in builtins.items():
        if value["compiled"]:
            lines.append(f"| {key} | {value['compile_ms']:.1f} | {value['mask_mean_us']:.1f} / "
                         f"{value['mask_p50_us']:.1f} / {value['mask_p99_us']:.1f} | "
                         f"{value['tokens']} |")
        else:
            lines.append(f"| {key} | error: {value['error'][:80]} | | |")
    lines += ["", "## Targets", ""]
    for engine in engines:
        s = summary[engine]
        checks = [("mean mask time <= 50 µs", s["mask_us_mean"] <= 50,
                   f"{s['mask_us_mean']:.1f} µs"),
                  ("(3)/(1) >= 0.9", s["spec_over_unconstrained"] >= 0.9,
                   f"{s['spec_over_unconstrained']:.2f}"),
                  ("zero invalid outputs", s["invalid"] == 0, f"{s['invalid']} invalid")]
        lines.append(f"- {engine}: " + "; ".join(
            f"{label}: {value} {'met' if ok else 'MISSED'}" for label, ok, value in checks))
        lines.append(
            f"  - (3)/(1) decomposed: tokens per step {s['spec_tokens_per_step']:.2f} "
            f"constrained vs {s['unconstrained_tokens_per_step']:.2f} unconstrained (the "
            f"outputs differ: prompt lookup accepts more of a repetitive unconstrained text); "
            f"ms per step {s['step_ms']['spec']:.2f} vs {s['step_ms']['unconstrained']:.2f}; "
            f"Constrain box {s['constrain_share_spec']:.0%} of constrained speculative time.")
        for name, error in list(s["compile_errors"].items())[:5]:
            lines.append(f"  - not compiled {name}: {error[:160]}")
        for name, message in list(s["invalid_examples"].items())[:5]:
            lines.append(f"  - invalid {name}: {message[:160]}")
    return "\n".join(lines) + "\n"


def plot(records: list[dict[str, Any]], engines: tuple[str, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for engine in engines:
        times = [t for r in records for t in r["engines"][engine].get("mask_us", [])]
        if times:
            top = _percentile(times, 99.5)
            axis.hist([min(t, top) for t in times], bins=60, alpha=0.55, label=engine)
    axis.axvline(50, color="k", linestyle="--", linewidth=1, label="50 µs target")
    axis.set_xlabel("mask time per token (µs, clipped at p99.5)")
    axis.set_ylabel("tokens")
    axis.set_title("JSON Schema mask time per token")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default:small")
    parser.add_argument("--schemas", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.model, args.schemas, args.max_new_tokens = "default:tiny", 10, 64
    torch.set_num_threads(args.threads)
    from tqdm import tqdm

    from diagrammar.bench.config import load_bench_model
    from diagrammar.bench.schemas import generate_schemas

    engines = tuple(args.engines)
    lm = load_bench_model(args.model).lm
    items = generate_schemas(args.schemas, seed=args.seed)
    bench_schema(lm, items[0], engines, 16)                  # warm up (untimed)
    records = []
    for index, item in enumerate(tqdm(items, unit="schema", desc="json-schema-bench",
                                      disable=args.no_progress)):
        records.append(bench_schema(lm, item, engines, args.max_new_tokens, flip=index % 2 == 1))
    builtins = bench_builtins(lm, engines)
    summary = summarise(records, engines)
    import jsonschema

    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": args.model,
            "machine": f"{platform.platform()}, {platform.machine()}",
            "torch": torch.__version__, "jsonschema": jsonschema.__version__,
            "threads": args.threads, "schemas": len(items), "seed": args.seed,
            "max_new_tokens": args.max_new_tokens, "engines": list(engines)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "json_schema_bench_quick" if args.quick else "json_schema_bench"
    plot(records, engines, out / f"{stem}.png")
    for record in records:                           # keep the JSON small: stats, not samples
        for engine in record["engines"].values():
            times = engine.pop("mask_us", None)
            if times:
                engine["mask_us_mean"] = statistics.fmean(times)
                engine["mask_us_max"] = max(times)
    (out / f"{stem}.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "builtins": builtins, "records": records},
        indent=1, default=str))
    text = markdown(meta, summary, builtins, engines)
    (out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
