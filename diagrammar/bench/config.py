"""What a benchmark runs: its settings, and the models its model specs name.

A *model spec* is a local Hugging Face model folder or ``default:tiny`` / ``default:small``
(the embedded default models, trained on first use). :func:`default_assistant` picks the
assistant of ``hf/assisted`` when none is given, and :func:`load_bench_model` loads a spec
with its manifest.

Example:
    >>> config = BenchConfig.for_quick(max_new_tokens=8)
    >>> config.model, config.per_category, config.max_new_tokens
    ('default:tiny', 2, 8)
    >>> default_assistant(config.model, None), default_assistant("/models/gpt2", None)
    ('default:tiny', None)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagrammar.bench.exactness import DEFAULT_TIE_MARGIN
from diagrammar.models.resolve import DEFAULT_PREFIX

__all__ = ["DEFAULT_ASSISTANT", "QUICK_COST_SIZES", "REFERENCE", "BenchConfig", "LoadedModel",
           "default_assistant", "load_bench_model"]

#: The reference method: speedups and exactness are measured against it.
REFERENCE = "hf/greedy"
#: Tree sizes (tokens scored in one pass, root included) of the quick cost curve.
QUICK_COST_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
#: The assistant of ``hf/assisted`` when the target is a default model and none is given.
DEFAULT_ASSISTANT = "default:tiny"


@dataclass
class BenchConfig:
    """What to run.

    Attributes:
        model: a model spec: a local Hugging Face model folder, or ``default:tiny`` /
            ``default:small``.
        assistant: the assistant model of ``hf/assisted`` (a model spec); ``None`` picks one
            with :func:`default_assistant`.
        threads: torch threads, fixed for the whole run.
        per_category: prompts per category.
        max_new_tokens: new tokens per generation.
        pipelines: our pipelines to run (names in ``PIPELINES``); ``None`` = all registered.
        tie_margin: see :data:`~diagrammar.bench.exactness.DEFAULT_TIE_MARGIN`.
        cost_sizes: tree sizes of the verification cost curve (tokens per pass, root
            included).
        cost_repeats: timed passes per size.
        cost_context: context length (tokens in the cache) of the cost curve.
        warmup: untimed generations per method before the timed ones.
        progress: show a tqdm progress bar.
        quick: recorded in the report (set by :meth:`for_quick`).
        temperature: sampling methods run at this temperature against ``hf/sample``; 0
            leaves them out.
        datastore: the corpus retrieval pipelines (REST, RASD) read (see
            :func:`~diagrammar.functors.datastores.load_datastore`); ``None`` leaves them out.
    """

    model: str = "default:small"
    assistant: str | None = None
    threads: int = 1
    per_category: int = 20
    max_new_tokens: int = 128
    pipelines: Sequence[str] | None = None
    tie_margin: float = DEFAULT_TIE_MARGIN
    cost_sizes: Sequence[int] = tuple(range(1, 129))
    cost_repeats: int = 7
    cost_context: int = 400
    warmup: int = 1
    progress: bool = True
    quick: bool = False
    temperature: float = 0.7
    datastore: str | None = "default-corpus"

    @classmethod
    def for_quick(cls, **overrides: Any) -> BenchConfig:
        """The ``--quick`` settings: the harness check run by the tests (under a minute on 2
        cores).

        Args:
            **overrides: fields to change; ``None`` values are ignored, so a command line can
                pass its unset options as they are.

        Returns:
            The tiny model, 2 prompts per category, 32 new tokens, a coarse cost curve and a
            retrieval datastore of 40 corpus files (indexing the whole corpus takes longer than
            the rest), with ``overrides`` applied.

        Example:
            >>> BenchConfig.for_quick(model=None, per_category=5).model
            'default:tiny'
        """
        settings: dict[str, Any] = dict(model="default:tiny", per_category=2, max_new_tokens=32,
                                        cost_sizes=QUICK_COST_SIZES, cost_repeats=5,
                                        cost_context=200, quick=True,
                                        datastore="default-corpus:40")
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)


def default_assistant(model: str, assistant: str | None) -> str | None:
    """The assistant model spec of ``hf/assisted``.

    Args:
        model: the target's model spec.
        assistant: the assistant asked for, if any.

    Returns:
        ``assistant`` when given; else :data:`DEFAULT_ASSISTANT` for a default target model,
        and ``None`` (``hf/assisted`` is skipped) for a model folder.

    Example:
        >>> default_assistant("default:small", None), default_assistant("default:small", "x")
        ('default:tiny', 'x')
    """
    if assistant is not None:
        return assistant
    return DEFAULT_ASSISTANT if model.startswith(DEFAULT_PREFIX) else None


@dataclass
class LoadedModel:
    """A model ready to benchmark.

    Attributes:
        spec: the model spec it was loaded from.
        lm: the :class:`~diagrammar.models.hf.HFCausalLM` wrapper.
        manifest: the default model's manifest, or a model folder's ``manifest.json``
            (``None`` when there is none).
    """

    spec: str
    lm: Any  # HFCausalLM
    manifest: dict[str, Any] | None

    @property
    def description(self) -> str:
        """One line for the report: spec, architecture, parameters, layers, context."""
        config = self.lm.config
        params = sum(p.numel() for p in self.lm.model.parameters())
        return (f"{self.spec} ({type(self.lm.model).__name__}, {params / 1e6:.1f} M parameters, "
                f"{getattr(config, 'n_layer', getattr(config, 'num_hidden_layers', '?'))} "
                f"layers, context {self.lm.max_positions})")


def load_bench_model(spec: str) -> LoadedModel:
    """Loads a model spec for the benchmark.

    Args:
        spec: ``default:SIZE`` (trained first if not cached) or a local model folder.

    Returns:
        The model with its manifest.

    Raises:
        ValueError: an unknown default model size.
        diagrammar.models.errors.ModelError: a folder that holds no loadable model.

    Example (trains the tiny model on first use, so not a doctest)::

        load_bench_model("default:tiny").lm.max_positions   # 1024
    """
    from diagrammar.models.resolve import resolve_model

    lm = resolve_model(spec)
    if spec.startswith(DEFAULT_PREFIX):
        from diagrammar.models.default import loaded_manifest

        return LoadedModel(spec, lm, loaded_manifest(spec[len(DEFAULT_PREFIX):]))
    meta_path = Path(spec).expanduser() / "manifest.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    return LoadedModel(spec, lm, meta)
