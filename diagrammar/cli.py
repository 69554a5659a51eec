"""The ``diagrammar`` command line.

    diagrammar generate --model PATH --pipeline prompt-lookup --prompt "def add(a, b):"
    diagrammar batch --input prompts.jsonl --output results.jsonl [--ray auto]  # resumable
    diagrammar draw --pipeline prompt-lookup-tree -o step.png
    diagrammar pipelines
    diagrammar train-default --size small  # the embedded default model, trained here
    diagrammar show prompt-lookup          # the pipeline as JSON, to edit and pass back

Every failure the user can fix (a bad path, a bad pipeline, a prompt too long) ends with one
line saying what, where and what to do, and exit status 1.
"""

from __future__ import annotations

import codecs
import json
import sys
from pathlib import Path
from typing import Any

import click

from diagrammar.bench.command import command as bench_command
from diagrammar.diagrams import PIPELINES, Context, DiagramError, read_pipeline, to_json

DTYPES = ("auto", "float32", "float64", "bfloat16", "float16")


def _fail(message: str) -> None:
    raise click.ClickException(message)


def resolve_model(spec: str, dtype: str = "auto"):
    """An :class:`HFCausalLM` from a local folder, a Hub id (``org/name``: the local Hugging Face
    cache first, else a download when the network allows) or ``default:SIZE`` (the embedded
    model)."""
    import torch
    from transformers.utils import logging as hf_logging

    from diagrammar.models.resolve import resolve_model as resolve

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return resolve(spec, None if dtype == "auto" else getattr(torch, dtype))


def _load_pipeline(spec: str):
    try:
        return read_pipeline(spec)
    except DiagramError as error:
        _fail(f"pipeline: {error}")


def _read_prompt_file(path: Path, encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        _fail(f"unknown --encoding {encoding!r}: give a Python codec name such as utf-8 or "
              "latin-1")
    try:
        data = path.read_bytes()
    except OSError as error:
        _fail(f"cannot read prompt file {path}: {error.strerror}")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        _fail(f"prompt file {path} is not valid {encoding} text (byte 0x{data[error.start]:02x} "
              f"at position {error.start}): pass --encoding with the file's encoding, e.g. "
              "--encoding latin-1")


def _check_prompt_text(prompt: str) -> None:
    """Fails on a ``--prompt`` whose bytes were not UTF-8 (Python hands them over as lone
    surrogates)."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as error:
        try:
            raw = prompt.encode("utf-8", "surrogateescape")
            position = len(prompt[:error.start].encode("utf-8", "surrogateescape"))
            where = f"byte 0x{raw[position]:02x} at position {position}"
        except UnicodeEncodeError:
            where = f"character {error.start}"
        _fail(f"--prompt is not valid UTF-8 text ({where}): pass it in UTF-8, or write it to a "
              "file and give --prompt-file with --encoding")


def _check_draw_output(output: Path) -> None:
    folder = output.parent
    if not folder.exists():
        _fail(f"cannot write {output}: folder {folder} does not exist")
    if not folder.is_dir():
        _fail(f"cannot write {output}: {folder} is not a folder")


def _resource_specs(specs: tuple[str, ...]) -> dict[str, str]:
    """``--resource NAME=VALUE`` options as a dict, failing on a malformed one."""
    resources: dict[str, str] = {}
    for item in specs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            _fail(f"--resource takes NAME=VALUE (e.g. draft=default:tiny), got {item!r}")
        resources[name.strip()] = value.strip()
    return resources


def _sampling_options(seed_help: str) -> Any:
    """The generation-config options (temperature, top-k, top-p, seed) of a decoding command."""
    options = [
        click.option("--temperature", type=click.FloatRange(min=0.0), default=0.0,
                     show_default=True,
                     help="0 decodes greedily; above 0 samples (the pipeline's acceptance must "
                          "sample, e.g. --pipeline specinfer)."),
        click.option("--top-k", type=click.IntRange(min=1), default=None,
                     help="Sample among the k most likely tokens only."),
        click.option("--top-p", type=click.FloatRange(min=0.0, max=1.0, min_open=True),
                     default=None,
                     help="Sample among the most likely tokens whose probability reaches p."),
        click.option("--seed", type=click.IntRange(min=0), default=None, help=seed_help),
    ]

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _grammar_option(grammar: str | None, schema_file: Path | None, pattern: str | None
                    ) -> Any:
    """The grammar resource of ``--grammar``, ``--json-schema`` or ``--regex`` (at most one),
    checked now so that a bad file fails before the model loads."""
    given = [g for g in (grammar, schema_file, pattern) if g is not None]
    if not given:
        return None
    if len(given) > 1:
        _fail("give at most one of --grammar, --json-schema and --regex")
    from diagrammar.decoding.constraints.protocol import GrammarError
    from diagrammar.functors.grammars import load_grammar

    value: Any = f"regex:{pattern}" if pattern is not None else grammar
    if schema_file is not None:
        try:
            value = json.loads(schema_file.read_text(encoding="utf-8"))
        except OSError as error:
            _fail(f"--json-schema: cannot read {schema_file}: {error.strerror}")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            _fail(f"--json-schema: {schema_file} is not JSON ({error})")
        if not isinstance(value, dict):
            _fail(f"--json-schema: {schema_file} holds a {type(value).__name__}, not a schema "
                  "object")
    try:
        return load_grammar(value)
    except GrammarError as error:
        _fail(str(error))


def _resource(kind: str, value: str, lm: Any, dtype: str) -> Any:
    """What ``--resource NAME=VALUE`` binds, by the kind of resource the pipeline needs: a
    model, a datastore (its value is read by the Retrieval box), or a cost model (``measure``
    measures the target's verification curve now; else a JSON file holding one)."""
    if kind == "cost":
        if value == "measure":
            from diagrammar.bench.cost_curve import measure_cost_curve
            from diagrammar.bench.runner import SIZING_SIZES

            length = min(200, (getattr(lm, "max_positions", None) or 4096) // 2)
            context = (list(range(min(256, lm.vocab_size))) * 8)[:length]
            return measure_cost_curve(lm, context, SIZING_SIZES, repeats=3)
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"--resource cost={value}: give 'measure' or a JSON file with a "
                             "measured curve (sizes and median_seconds)")
        return json.loads(path.read_text())
    if kind == "datastore":
        return value
    return resolve_model(value, dtype)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="diagrammar")
def main() -> None:
    """String diagrams for language-model decoders, compiled by functors."""


@main.command()
@click.option("--model", "model_spec", default="default:small", show_default=True,
              help="A local Hugging Face model folder, a Hugging Face Hub id (org/name: from "
                   "the local Hugging Face cache, else downloaded when the network allows), or "
                   "default:tiny / default:small.")
@click.option("--pipeline", "pipeline_spec", default="prompt-lookup", show_default=True,
              help="A pipeline name (see `diagrammar pipelines`), a JSON file or a JSON string.")
@click.option("--prompt", default=None, help="The prompt text.")
@click.option("--prompt-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the prompt from a file instead.")
@click.option("--encoding", default="utf-8", show_default=True,
              help="The text encoding of --prompt-file.")
@click.option("--max-new-tokens", default=128, show_default=True, type=click.IntRange(min=0))
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print text and stats as JSON.")
@click.option("--resource", "resource_specs", multiple=True, metavar="NAME=VALUE",
              help="Bind a resource the pipeline names (repeatable): a model for a draft model "
                   "(draft=default:tiny), a corpus for retrieval (datastore=default-corpus, a "
                   "saved datastore folder or text files), 'measure' or a JSON curve file for a "
                   "cost model (cost=measure).")
@_sampling_options("Seed of the sampling (default: fresh entropy).")
@click.option("--grammar", "grammar_spec", default=None, metavar="FILE|NAME",
              help="Decode inside a grammar: a .lark/.gbnf file or a built-in grammar name (json, "
                   "arithmetic, sql_select, python); the pipeline gets a Constrain box before "
                   "Verify.")
@click.option("--json-schema", "schema_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Decode JSON valid under this JSON Schema file.")
@click.option("--regex", "pattern", default=None, help="Decode text matching this pattern.")
@click.option("--engine", type=click.Choice(["llguidance", "xgrammar"]), default="llguidance",
              show_default=True, help="The grammar engine of --grammar/--json-schema/--regex.")
def generate(model_spec: str, pipeline_spec: str, prompt: str | None, prompt_file: Path | None,
             encoding: str, max_new_tokens: int, dtype: str, threads: int | None,
             as_json: bool, resource_specs: tuple[str, ...], temperature: float,
             top_k: int | None, top_p: float | None, seed: int | None,
             grammar_spec: str | None, schema_file: Path | None, pattern: str | None,
             engine: str) -> None:
    """Decode a prompt with a pipeline and print the text and stats."""
    if (prompt is None) == (prompt_file is None):
        _fail("give exactly one of --prompt TEXT or --prompt-file PATH")
    if prompt_file is not None:
        prompt = _read_prompt_file(prompt_file, encoding)
    else:
        _check_prompt_text(prompt)
    resources = _resource_specs(resource_specs)
    step = _load_pipeline(pipeline_spec)
    if step.dom != Context or step.cod != Context:
        _fail(f"pipeline goes {step.dom} -> {step.cod}, but generate needs a decoding step "
              "that goes Context -> Context (e.g. a drafter inside speculative(...)); see "
              "`diagrammar pipelines`")
    grammar = _grammar_option(grammar_spec, schema_file, pattern)
    if grammar is not None:
        from diagrammar.diagrams import Constrain, constrained

        try:
            step = constrained(step, Constrain(grammar="grammar", engine=engine))
        except DiagramError as error:
            _fail(f"--grammar: {error}")
    import torch

    from diagrammar.decoding.steps import DecodingError
    from diagrammar.functors.execute import Execute, ExecuteError
    from diagrammar.models.errors import ModelError

    if threads is not None:
        torch.set_num_threads(threads)
    from diagrammar.decoding.config import GenerationConfig
    from diagrammar.diagrams import resource_kinds

    kinds = resource_kinds(step)
    try:
        config = GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        lm = resolve_model(model_spec, dtype)
        bound = {name: _resource(kinds.get(name, "model"), value, lm, dtype)
                 for name, value in resources.items()}
        if grammar is not None:
            bound["grammar"] = grammar
        decoder = Execute(lm, resources=bound)(step)
        result = decoder.generate(prompt, max_new_tokens=max_new_tokens, config=config)
    except (ModelError, ValueError, ExecuteError, DecodingError) as error:
        _fail(str(error))
    if as_json:
        click.echo(json.dumps({"pipeline": json.loads(to_json(step)), "text": result.text,
                               "tokens": result.tokens, "stats": result.stats.as_dict()},
                              indent=2))
        return
    click.echo(result.text)
    click.echo("---", err=True)
    click.echo(f"pipeline: {' >> '.join(box.name for box in step.boxes)}", err=True)
    click.echo(result.stats.summary(), err=True)


@main.command()
@click.option("--model", "model_spec", default="default:small", show_default=True,
              help="A local model folder, a Hugging Face Hub id, or default:tiny|small.")
@click.option("--prompt", default=None, help="The question, as the model should see it.")
@click.option("--prompt-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the question from this file instead.")
@click.option("--passage", default=None, help="The passage the answer is a span of.")
@click.option("--passage-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the passage from this file instead.")
@click.option("--encoding", default="utf-8", show_default=True,
              help="Text encoding of the files.")
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(min=1),
              help="How many distinct spans to print, most probable first.")
@click.option("--max-span-tokens", default=None, type=click.IntRange(min=1),
              help="The longest span in tokens (default: the whole passage).")
@click.option("--end", default="\n", show_default=True,
              help="The one-token text that ends an answer besides the end token ('' for "
                   "the end token alone).")
@click.option("--greedy", is_flag=True,
              help="Constrained greedy decoding instead of the exact search (the baseline).")
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the spans as JSON.")
def span(model_spec: str, prompt: str | None, prompt_file: Path | None, passage: str | None,
         passage_file: Path | None, encoding: str, top_k: int, max_span_tokens: int | None,
         end: str, greedy: bool, dtype: str, as_json: bool) -> None:
    """Answer with a span of a passage: the most probable spans, found exactly."""
    texts = []
    for name, text, path in (("prompt", prompt, prompt_file), ("passage", passage,
                                                                passage_file)):
        if (text is None) == (path is None):
            _fail(f"give exactly one of --{name} TEXT or --{name}-file PATH")
        if path is not None:
            text = _read_prompt_file(path, encoding)
        else:
            _check_prompt_text(text)
        texts.append(text)
    from diagrammar.decoding.span import best_span, greedy_span
    from diagrammar.models.errors import ModelError

    try:
        lm = resolve_model(model_spec, dtype)
        options = {"end": end or None, "max_span_tokens": max_span_tokens}
        spans = ([greedy_span(lm, texts[0], texts[1], **options)] if greedy
                 else best_span(lm, texts[0], texts[1], top_k=top_k, **options))
    except (ModelError, ValueError) as error:
        _fail(str(error))
    if as_json:
        click.echo(json.dumps([{"text": s.text, "start_char": s.start_char,
                                "end_char": s.end_char, "log_prob": s.log_prob,
                                "token_ids": list(s.token_ids)} for s in spans], indent=2))
        return
    for found in spans:
        click.echo(f"{found.log_prob:10.4f}  [{found.start_char}:{found.end_char}]  "
                   f"{found.text!r}")


@main.command()
@click.option("--pipeline", "pipeline_spec", default="prompt-lookup", show_default=True,
              help="A pipeline name, a JSON file or a JSON string.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("pipeline.png"), show_default=True, help="Where to write the PNG.")
def draw(pipeline_spec: str, output: Path) -> None:
    """Draw a pipeline as a PNG picture."""
    from diagrammar.functors.draw import Draw

    step = _load_pipeline(pipeline_spec)
    _check_draw_output(output)
    try:
        path = Draw()(step, output)
    except OSError as error:
        _fail(f"cannot write {output}: {error.strerror}")
    click.echo(str(path))


@main.command(name="train-default")
@click.option("--size", type=click.Choice(["tiny", "small", "all"]), default="small",
              show_default=True, help="Which embedded default model to train.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to cache it (default: $DIAGRAMMAR_CACHE or the user cache folder).")
@click.option("--force", is_flag=True, help="Retrain even if a current model is cached.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--ship", is_flag=True,
              help="Then ship it: float16 weights, tokenizer and manifest into the package's "
                   "diagrammar/models/default/shipped/ (for maintainers).")
def train_default_command(size: str, cache_dir: Path | None, force: bool, quiet: bool,
                          ship: bool) -> None:
    """Train (or find cached) the embedded default model on this machine's standard library."""
    from diagrammar.models.default import SIZES, CacheDirError, summary, train_default
    from diagrammar.models.default.shipped import export_shipped

    for name in SIZES if size == "all" else (size,):
        try:
            path = train_default(name, cache_dir=cache_dir, force=force, progress=not quiet)
        except CacheDirError as error:
            _fail(str(error))
        click.echo(summary(name, cache_dir, path))
        if ship:
            click.echo(f"shipped: {export_shipped(name, path)}")


@main.command(name="pipelines")
def list_pipelines() -> None:
    """List the named pipelines."""
    for name in sorted(PIPELINES):
        step = PIPELINES[name]()
        click.echo(f"{name:<24} {' >> '.join(box.name for box in step.boxes)}")


@main.command()
@click.argument("pipeline_spec")
def show(pipeline_spec: str) -> None:
    """Print a pipeline (name, file or JSON) as JSON."""
    click.echo(to_json(_load_pipeline(pipeline_spec)))


@main.command()
@click.option("--model", "model_spec", default="default:small", show_default=True,
              help="A local Hugging Face model folder, a Hugging Face Hub id or default:tiny / "
                   "default:small (as for generate; with --ray, every worker loads it).")
@click.option("--pipeline", "pipeline_spec", default="prompt-lookup", show_default=True,
              help="A pipeline name (see `diagrammar pipelines`), a JSON file or a JSON string.")
@click.option("--input", "input_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help='JSONL, one prompt a line: {"prompt": TEXT} or {"ids": [...]}, with an '
                   'optional "id" (default: the line number) and "max_new_tokens".')
@click.option("--output", "output_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL results, appended as each prompt finishes; ids already there are "
                   "skipped, so re-running an interrupted job resumes it.")
@click.option("--max-new-tokens", default=128, show_default=True, type=click.IntRange(min=0),
              help="The budget of a line that gives none.")
@click.option("--max-batch", default=8, show_default=True, type=click.IntRange(min=1),
              help="The most prompts decoded at once by one model (bounds memory).")
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads (default: torch's choice; one per worker with --ray).")
@click.option("--resource", "resource_specs", multiple=True, metavar="NAME=VALUE",
              help="Bind a resource the pipeline names (repeatable), as for generate.")
@_sampling_options("Seed of the sampling (each prompt is seeded alike; default: fresh "
                   "entropy).")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS",
              help="Shard the prompts over Ray actors, one model each: 'auto' joins a running "
                   "cluster (else starts a local one), or give a cluster address. Needs "
                   "pip install 'diagrammar[ray]'.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --ray: the actors to start (default: the cluster's CPUs).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="With --ray: prompts per chunk handed to an actor (default: 2 x --max-batch "
                   "or fewer).")
@click.option("--max-restarts", type=click.IntRange(min=0), default=None,
              help="With --ray: dead actors replaced before the job stops (default: --workers).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def batch(model_spec: str, pipeline_spec: str, input_path: Path, output_path: Path,
          max_new_tokens: int, max_batch: int, dtype: str, threads: int | None,
          resource_specs: tuple[str, ...], temperature: float, top_k: int | None,
          top_p: float | None, seed: int | None, ray_address: str | None, workers: int | None,
          chunk_size: int | None, max_restarts: int | None, quiet: bool) -> None:
    """Decode the prompts of a JSONL file, appending each result to a JSONL file as it finishes.

    Each result is one line {"id", "text", "tokens", "stats"}, written as its prompt
    finishes. Bad input lines are reported with their line numbers and skipped. A re-run with
    the same --output skips the ids already there, so an interrupted job loses nothing.
    """
    from diagrammar.decoding.config import GenerationConfig
    from diagrammar.decoding.steps import DecodingError
    from diagrammar.functors.execute import ExecuteError
    from diagrammar.jobs import (
        DecodeOptions,
        DecoderFactory,
        JobError,
        LocalRunner,
        RayRunner,
        run_batch,
        stderr_report,
    )
    from diagrammar.jobs.ray_runner import import_ray
    from diagrammar.models.errors import ModelError

    if ray_address is None:
        given = [name for name, value in (("--workers", workers), ("--chunk-size", chunk_size),
                                          ("--max-restarts", max_restarts)) if value is not None]
        if given:
            _fail(f"{', '.join(given)} only apply with --ray (give --ray auto or an address)")
    resources = _resource_specs(resource_specs)
    step = _load_pipeline(pipeline_spec)
    if step.dom != Context or step.cod != Context:
        _fail(f"pipeline goes {step.dom} -> {step.cod}, but batch needs a decoding step "
              "that goes Context -> Context (e.g. a drafter inside speculative(...)); see "
              "`diagrammar pipelines`")
    try:
        config = GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        factory = DecoderFactory(model_spec, to_json(step), tuple(resources.items()), dtype,
                                 threads, resolve_resource=_resource)
        options = DecodeOptions(max_new_tokens, config, max_batch)
        if ray_address is None:
            runner: LocalRunner | RayRunner = LocalRunner(factory, options)
        else:
            import_ray()
            runner = RayRunner(factory, options, address=ray_address, workers=workers,
                               chunk_size=chunk_size, max_restarts=max_restarts,
                               report=stderr_report)
        summary = run_batch(input_path, output_path, runner, progress=not quiet)
    except (JobError, ModelError, ValueError, ExecuteError, DecodingError,
            DiagramError) as error:
        _fail(str(error))
    click.echo(summary.describe(), err=True)
    if isinstance(runner, RayRunner) and runner.restarts:
        click.echo(f"ray: {runner.restarts} worker(s) replaced, {runner.requeued} chunk(s) "
                   "re-run", err=True)
    if summary.skipped and not summary.done and not summary.already_done:
        _fail(f"no prompt of {input_path} could run: every line was skipped")


main.add_command(bench_command, name="bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
