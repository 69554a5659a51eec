"""Building and loading a size's cached model: :func:`train_default`, :func:`default`.

:func:`train_default` runs the whole recipe (corpus, shared tokenizer, training loop, held-out
scoring) and writes the size's folder atomically with its ``manifest.json``; :func:`default`
loads that folder, training it first when it is missing or stale (its manifest's recipe hash is
not today's); :func:`summary` describes it in one line.

Example (the error when nothing is cached and training is not allowed):
    >>> import tempfile
    >>> from diagrammar.models.default.build import default
    >>> with tempfile.TemporaryDirectory() as cache:
    ...     default("tiny", cache_dir=cache, train_if_missing=False)
    Traceback (most recent call last):
    ...
    FileNotFoundError: the default model 'tiny' is not trained (or is stale) at ...
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import (
    MANIFEST,
    TOKENIZER_MANIFEST,
    atomic_dir,
    cache_root,
    default_path,
    ensure_writable,
    is_current,
    locked,
    manifest,
    write_json,
)
from .corpus import HELDOUT_MODULES, corpus_digest, heldout_sources, stdlib_dir, training_documents
from .evaluation import evaluate
from .recipes import RECIPES, Recipe, check_size, training_precision
from .tokenizer import encode_documents, ensure_tokenizer
from .training import fixed_threads, train_model

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

__all__ = ["default", "summary", "train_default"]

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def train_default(
    size: str = "small",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    recipe: Recipe | None = None,
) -> Path:
    """Train the ``size`` default model (and the shared tokenizer if needed); return its folder.

    Does nothing when an up-to-date model is cached, unless ``force``.  Writes atomically:
    a failure or interruption leaves no partial folder behind.

    Args:
        size: one of ``SIZES``.
        cache_dir: see :func:`~diagrammar.models.default.cache.cache_root`.
        force: retrain even if a current model is cached.
        progress: show the tokenizer line and the training progress bar (stderr).
        recipe: overrides the size's recipe, e.g. for a short run in tests; such a model is
            considered stale by :func:`default`.

    Returns:
        The size's folder (see :func:`~diagrammar.models.default.cache.default_path`).

    Raises:
        ValueError: unknown ``size``.
        CacheDirError: the cache directory cannot be written.

    Example (trains for a minute or two, so not a doctest)::

        path = train_default("tiny")
        sorted(p.name for p in path.iterdir())   # config.json, manifest.json, model.safetensors...
    """
    check_size(size)
    root = cache_root(cache_dir)
    ensure_writable(root)
    final = root / size
    rec = RECIPES[size] if recipe is None else recipe
    precision = training_precision()
    want_hash = rec.hash(precision)
    with locked(root, size):
        if not force and is_current(size, cache_dir) and recipe is None:
            return final
        started = time.perf_counter()
        docs = training_documents()
        digest = corpus_digest(docs)
        heldout = heldout_sources()
        tokenizer, tok_folder = ensure_tokenizer(root, docs, digest, progress)
        train_ids = encode_documents(tokenizer, [d.text for d in docs])
        held_ids = {name: encode_documents(tokenizer, [text]) for name, text in heldout.items()}
        model, facts = train_model(
            rec, tokenizer, train_ids, precision=precision, progress=progress
        )
        if rec.eval_max_tokens:
            held_ids = {k: v[: rec.eval_max_tokens] for k, v in held_ids.items()}
        with fixed_threads(rec.threads):
            result = evaluate(model, held_ids, rec.eval_seq_len, rec.eval_batch_size)
        n_params = sum(p.numel() for p in model.parameters())
        import torch
        import transformers

        meta = {
            "size": size,
            "recipe_hash": want_hash,
            "recipe": dataclasses.asdict(rec),
            "config": model.config.to_diff_dict(),
            "parameters": n_params,
            "vocab_size": len(tokenizer),
            "tokenizer_hash": json.loads((tok_folder / TOKENIZER_MANIFEST).read_text())[
                "tokenizer_hash"
            ],
            "train_seconds": round(facts["train_seconds"], 2),
            "total_seconds": round(time.perf_counter() - started, 2),
            "time_budget_s": rec.time_budget_s,
            "final_train_loss": round(facts["final_train_loss"], 4),
            "train_tokens_seen": facts["train_tokens_seen"],
            "train_tokens_in_corpus": facts["train_tokens_in_corpus"],
            "train_files": len(docs),
            "corpus_digest": digest,
            "stdlib_dir": str(stdlib_dir()),
            "precision": facts["precision"],
            "threads": facts["threads"],
            "heldout_modules": list(HELDOUT_MODULES),
            "heldout_loss": round(result.loss, 4),
            "heldout_accuracy": round(result.accuracy, 4),
            "heldout_tokens": result.tokens,
            "heldout_per_module": result.per_module,
            "python_version": sys.version.split()[0],
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        with atomic_dir(final) as tmp:
            model.save_pretrained(tmp)
            for name in _TOKENIZER_FILES:
                shutil.copy2(tok_folder / name, tmp / name)
            write_json(tmp / MANIFEST, meta)
    return final


def default(
    size: str = "small",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    train_if_missing: bool = True,
    progress: bool = True,
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """The default ``(model, tokenizer)`` of ``size``, loaded from the cache or trained first.

    Args:
        size: one of ``SIZES``.
        cache_dir: see :func:`~diagrammar.models.default.cache.cache_root`.
        train_if_missing: train when the model is not cached or is stale.
        progress: show training progress (only when training).

    Returns:
        A ``GPT2LMHeadModel`` in eval mode (float32, CPU) and a ``PreTrainedTokenizerFast``
        whose eos token is ``<|endoftext|>``.

    Raises:
        ValueError: unknown ``size`` (the message lists the valid sizes).
        FileNotFoundError: not cached (or stale) and ``train_if_missing`` is false.
        CacheDirError: training is needed but the cache directory cannot be written.

    Example:
        >>> model, tok = default("tiny")
        >>> model.training, tok.eos_token
        (False, '<|endoftext|>')
    """
    check_size(size)
    if not is_current(size, cache_dir):
        if not train_if_missing:
            path = default_path(size, cache_dir)
            raise FileNotFoundError(
                f"the default model {size!r} is not trained (or is stale) at {path}; run "
                f"`diagrammar train-default --size {size}` or pass train_if_missing=True"
            )
        train_default(size, cache_dir=cache_dir, progress=progress)
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = default_path(size, cache_dir)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False)
    model.eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path, trust_remote_code=False)
    return model, tokenizer


def summary(
    size: str, cache_dir: str | os.PathLike[str] | None = None, path: Path | None = None
) -> str:
    """One line describing the cached ``size`` model (path, parameters, held-out scores).

    Args:
        size: one of ``SIZES``.
        cache_dir: see :func:`~diagrammar.models.default.cache.cache_root`.
        path: the folder to name in the line; default :func:`default_path`.

    Raises:
        FileNotFoundError: the model is not trained yet.
    """
    m = manifest(size, cache_dir)
    path = path or default_path(size, cache_dir)
    return (
        f"{size}: {path}  params={m['parameters']:,}  train={m['train_seconds']:.0f}s  "
        f"heldout loss={m['heldout_loss']:.3f} acc={m['heldout_accuracy']:.3f}"
    )
