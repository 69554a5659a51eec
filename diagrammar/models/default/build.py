"""Building and loading a size's cached model: :func:`train_default`, :func:`default`.

:func:`train_default` runs the whole recipe (corpus, shared tokenizer, training loop, held-out
scoring) and writes the size's folder atomically with its ``manifest.json``; :func:`default`
loads the model :func:`model_folder` names (a current cached one, else the shipped one),
training it first when there is neither; :func:`summary` describes it in one line.

Example (a size that does not exist):
    >>> from diagrammar.models.default.build import default
    >>> default("huge", train_if_missing=False)
    Traceback (most recent call last):
    ...
    ValueError: unknown default model size 'huge'; valid sizes: tiny, small
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
from .corpus import (
    HELDOUT_MODULES,
    corpus_digest,
    heldout_sources,
    stdlib_dir,
    stream_documents,
    training_documents,
)
from .evaluation import evaluate
from .recipes import RECIPES, Recipe, check_size, training_precision
from .shipped import is_shipped, shipped_path
from .tokenizer import encode_documents, ensure_tokenizer
from .training import fixed_threads, train_model

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

__all__ = ["default", "loaded_manifest", "model_folder", "summary", "train_default"]

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
        stdlib_docs = training_documents()
        tokenizer, tok_folder = ensure_tokenizer(
            root, stdlib_docs, corpus_digest(stdlib_docs), progress
        )
        docs = stream_documents(rec.packages, rec.stdlib_repeats)
        digest = corpus_digest(docs)
        heldout = heldout_sources()
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
            "corpus_packages": {name: _version(name) for name in rec.packages},
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


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


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
    path = model_folder(size, cache_dir)
    if path is None:
        if not train_if_missing:
            path = default_path(size, cache_dir)
            raise FileNotFoundError(
                f"the default model {size!r} is not trained (or is stale) at {path} and none "
                f"is shipped; run `diagrammar train-default --size {size}` or pass "
                "train_if_missing=True"
            )
        path = train_default(size, cache_dir=cache_dir, progress=progress)
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False,
                                                 dtype=torch.float32)
    model.eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path, trust_remote_code=False)
    return model, tokenizer


def loaded_manifest(size: str, cache_dir: str | os.PathLike[str] | None = None) -> dict:
    """The manifest of the model :func:`default` loads (cached or shipped).

    Raises:
        FileNotFoundError: when neither a current cached model nor a shipped one exists.
    """
    folder = model_folder(size, cache_dir)
    if folder is None:
        raise FileNotFoundError(
            f"the default model {size!r} is neither trained nor shipped; run "
            f"`diagrammar train-default --size {size}`")
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def model_folder(size: str, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder :func:`default` loads ``size`` from, or ``None`` when it must train first.

    A model trained locally into the cache comes first when its recipe is today's; else the
    model shipped inside the package, when it checks out (see
    :mod:`~diagrammar.models.default.shipped`).

    Example:
        >>> import tempfile
        >>> from diagrammar.models.default.shipped import is_shipped, shipped_path
        >>> with tempfile.TemporaryDirectory() as empty_cache:
        ...     folder = model_folder("tiny", empty_cache)
        >>> folder == (shipped_path("tiny") if is_shipped("tiny") else None)
        True
    """
    check_size(size)
    if is_current(size, cache_dir):
        return default_path(size, cache_dir)
    if is_shipped(size):
        return shipped_path(size)
    return None


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
