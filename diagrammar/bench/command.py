"""The benchmark's command line, shared by ``benchmarks/spec_bench.py`` and ``diagrammar bench``.

Bad options (an ``--out`` that cannot be written, an unknown pipeline or model) fail with one
line and exit status 1; ``--out`` is checked before any model is loaded.

Example:
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(command, ["--help"]).output.splitlines()[0]
    'Usage: bench [OPTIONS]'
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

__all__ = ["DEFAULT_OUT", "command", "main"]

#: Where reports go by default.
DEFAULT_OUT = Path("benchmarks") / "results"


def main(*, quick: bool = False, model: str | None = None, assistant: str | None = None,
         threads: int = 1, out: str | Path = DEFAULT_OUT, prompts: int | None = None,
         max_new_tokens: int | None = None, pipelines: Sequence[str] = (),
         tie_margin: float | None = None, progress: bool = True,
         temperature: float | None = None, datastore: str | None = None) -> int:
    """Runs the benchmark, writes JSON/Markdown/PNG into ``out``, prints the Markdown.

    Args:
        quick: start from :meth:`BenchConfig.for_quick` rather than the full settings.
        model: the target's model spec (``None``: the settings' default).
        assistant: the assistant's model spec for ``hf/assisted``.
        threads: torch threads.
        out: the report folder; checked before anything runs.
        prompts: prompts per category.
        max_new_tokens: new tokens per generation.
        pipelines: our pipelines to run (empty: every registered one).
        tie_margin: logit margin below which a divergence is a near-tie.
        progress: show a progress bar.
        temperature: the sampling methods' temperature (0: none run; ``None``: 0.7).
        datastore: the retrieval pipelines' corpus (``"none"``: they do not run; ``None``:
            the settings' default).

    Returns:
        The exit status: 0, or 1 when a lossless method diverged from Hugging Face greedy
        at a clear logit margin (a bug; the reports are written first).

    Raises:
        diagrammar.bench.report.ReportPathError: ``out`` cannot be written (raised at once).
        ValueError: an unknown pipeline or default model size.
        diagrammar.models.errors.ModelError: a model folder that cannot be loaded.
    """
    from diagrammar.bench.config import BenchConfig
    from diagrammar.bench.report import check_out_dir, to_markdown, write_reports
    from diagrammar.bench.runner import run_benchmark

    out = check_out_dir(out)

    options = dict(model=model, assistant=assistant, threads=threads, per_category=prompts,
                   max_new_tokens=max_new_tokens, pipelines=tuple(pipelines) or None,
                   tie_margin=tie_margin, progress=progress, temperature=temperature,
                   datastore=datastore)
    if quick:
        config = BenchConfig.for_quick(**options)
    else:
        config = BenchConfig(**{k: v for k, v in options.items() if v is not None})
    if datastore == "none":
        config.datastore = None
    result = run_benchmark(config)
    paths = write_reports(result, out)
    click.echo(to_markdown(result))
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}", err=True)
    for run in result.near_ties:
        click.echo(f"warning: near-tie: {run.method} on {run.prompt} diverged from hf/greedy at "
                   f"token {run.divergence.position} (logit margin {run.divergence.margin:.3g})",
                   err=True)
    if not result.ok:
        click.echo(f"error: {len(result.bugs)} generation(s) of lossless methods diverged from "
                   "hf/greedy with a clear logit margin (not a near-tie): a bug. See the "
                   f"Exactness section of {paths['markdown']}.", err=True)
        return 1
    return 0


@click.command(name="bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quick", is_flag=True,
              help="Harness check: tiny model, 2 prompts per category, 32 new tokens.")
@click.option("--model", default=None,
              help="A local Hugging Face model folder, or default:tiny / default:small "
                   "[default: default:small; default:tiny with --quick].")
@click.option("--assistant", default=None,
              help="Assistant model for hf/assisted [default: default:tiny for a default model; "
                   "skipped for a --model PATH without it].")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads, fixed for the run (1 is robust on a shared machine).")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT,
              show_default=True, help="Folder for the JSON, Markdown and PNG reports.")
@click.option("--prompts", type=click.IntRange(min=1), default=None,
              help="Prompts per category [default: 20; 2 with --quick].")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="New tokens per generation [default: 128; 32 with --quick].")
@click.option("--pipeline", "pipelines", multiple=True,
              help="Only these of our pipelines (repeatable) [default: every registered one].")
@click.option("--tie-margin", type=float, default=None,
              help="Logit margin below which a divergence is a near-tie [default: 1e-3].")
@click.option("--temperature", type=click.FloatRange(min=0.0), default=None,
              help="Temperature of the sampling methods, against HF generate(do_sample=True); "
                   "0 runs none [default: 0.7].")
@click.option("--datastore", default=None,
              help="Corpus of the retrieval pipelines: default-corpus[:N], a saved datastore "
                   "folder, text files, or none [default: default-corpus; default-corpus:40 "
                   "with --quick].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def command(quick: bool, model: str | None, assistant: str | None, threads: int, out: Path,
            prompts: int | None, max_new_tokens: int | None, pipelines: tuple[str, ...],
            tie_margin: float | None, temperature: float | None, datastore: str | None,
            no_progress: bool) -> None:
    """Spec-Bench-style benchmark: Hugging Face generate (greedy, prompt lookup, assisted)
    against our pipelines, per prompt category, interleaved in one run."""
    from diagrammar.models.errors import ModelError

    try:
        status = main(quick=quick, model=model, assistant=assistant, threads=threads, out=out,
                      prompts=prompts, max_new_tokens=max_new_tokens, pipelines=pipelines,
                      tie_margin=tie_margin, progress=not no_progress,
                      temperature=temperature, datastore=datastore)
    except (ModelError, ValueError) as error:  # ReportPathError included: a bad --out
        raise click.ClickException(str(error)) from None
    sys.exit(status)
