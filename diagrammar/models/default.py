"""The embedded default model: a small GPT-2 trained by the project on the Python standard library.

diagrammar needs a real language model for its demos, tests and benchmarks, and cannot download
one.  So it trains its own, on the machine it runs on: a byte-level BPE tokenizer and GPT-2
models of two sizes, on the pure-Python standard library of the running interpreter, minus the
held-out modules of :mod:`diagrammar.models.stdlib_corpus` (which evaluation and prompts use).

Sizes (both share one tokenizer, so either can draft for the other):

* ``tiny``  -- 2 layers x 128, 1.05 M parameters, 512 steps of 2048 tokens on one thread;
  meant to train in under 2 minutes on an idle machine.  Tests, CI and drafting.
* ``small`` -- 4 layers x 256, 4.5 M parameters, 3000 steps of 2048 tokens on two threads;
  about 17 minutes on 2 cores (1001 s measured), leaving room in the 25-minute budget for a
  busy machine.  The demo and benchmarks' target model; one cached single-token forward step
  takes a few milliseconds.

Both spend 80% of their steps on 128-token windows and the rest on 1024-token windows (see
``RECIPES`` in :mod:`diagrammar.models.default_training` and ``benchmarks/recipe_sweep.py``).

Training is deterministic (seeded, step-counted, fixed torch thread count).  On a busy machine
it is slower, never different; two OpenMP threads competing with other processes for 2 cores can
be many times slower than one, so train ``small`` on an otherwise idle machine.

Results are cached under the user cache directory (``platformdirs``), or ``$DIAGRAMMAR_CACHE``,
or ``cache_dir=``::

    <cache>/default-model/tokenizer/      shared tokenizer (+ tokenizer_manifest.json)
    <cache>/default-model/tiny/           save_pretrained model + tokenizer + manifest.json
    <cache>/default-model/small/

Each size's folder is a plain local Hugging Face model path, so ``default_path("small")`` works
with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` and anywhere a
``--model PATH`` is accepted.  Folders are written atomically (trained in a temporary sibling,
then renamed into place), under a file lock.

Example:
    >>> from diagrammar.models.default import default, manifest
    >>> model, tokenizer = default("tiny")          # trains on first use (1-2 minutes)
    >>> ids = tokenizer("def add(a, b):\\n", return_tensors="pt").input_ids
    >>> out = model.generate(ids, max_new_tokens=8, do_sample=False)
    >>> manifest("tiny")["heldout_accuracy"] > 0.05
    True

Command line: ``diagrammar train-default --size small``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .stdlib_corpus import (
    HELDOUT_MODULES,
    corpus_digest,
    heldout_sources,
    stdlib_dir,
    training_documents,
)

__all__ = [
    "HELDOUT_MODULES",
    "SIZES",
    "CacheDirError",
    "cache_root",
    "default",
    "default_path",
    "default_tokenizer",
    "heldout_sources",
    "manifest",
    "summary",
    "recipe_hash",
    "tokenizer_path",
    "train_default",
]

SIZES: tuple[str, ...] = ("tiny", "small")
CACHE_ENV = "DIAGRAMMAR_CACHE"
MANIFEST = "manifest.json"
TOKENIZER_MANIFEST = "tokenizer_manifest.json"
_SUBDIR = "default-model"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class CacheDirError(OSError):
    """The model cache directory cannot be created or written."""


# --------------------------------------------------------------------------- paths


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Root of the default-model cache: ``cache_dir``, else ``$DIAGRAMMAR_CACHE``, else the user
    cache directory of ``platformdirs`` (e.g. ``~/.cache/diagrammar``), plus ``default-model``.

    Example:
        >>> cache_root("/tmp/somewhere").as_posix()
        '/tmp/somewhere/default-model'
    """
    if cache_dir is None:
        env = os.environ.get(CACHE_ENV)
        if env:
            cache_dir = env
        else:
            import platformdirs

            cache_dir = platformdirs.user_cache_dir("diagrammar", appauthor=False)
    return Path(cache_dir).expanduser() / _SUBDIR


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown default model size {size!r}; valid sizes: {', '.join(SIZES)}")


def default_path(size: str = "small", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the cached ``size`` model (``save_pretrained`` layout, tokenizer included).

    The folder may not exist yet; :func:`train_default` or :func:`default` create it.

    Example:
        >>> default_path("tiny", "/tmp/c").as_posix()
        '/tmp/c/default-model/tiny'
    """
    _check_size(size)
    return cache_root(cache_dir) / size


def tokenizer_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the shared tokenizer (loadable with ``AutoTokenizer.from_pretrained``)."""
    return cache_root(cache_dir) / "tokenizer"


def recipe_hash(size: str) -> str:
    """Hash identifying the current recipe of ``size`` on this machine.

    A cached model whose manifest has another hash is stale and is retrained by
    :func:`default`.
    """
    _check_size(size)
    from .default_training import RECIPES, bf16_supported

    return RECIPES[size].hash(_precision(bf16_supported()))


def _precision(bf16: bool) -> str:
    return "bf16-autocast" if bf16 else "fp32"


def manifest(size: str = "small", cache_dir: str | os.PathLike[str] | None = None) -> dict:
    """The ``manifest.json`` of the cached ``size`` model.

    Raises:
        FileNotFoundError: when that model has not been trained yet.

    Example (needs a trained tiny model, so not a doctest)::

        m = manifest("tiny")
        m["heldout_accuracy"], m["parameters"], m["recipe_hash"]
    """
    path = default_path(size, cache_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(
            f"the default model {size!r} is not trained yet (no {path}); run "
            f"`diagrammar train-default --size {size}` or call "
            f"diagrammar.models.default.train_default({size!r})"
        ) from None


def _is_current(size: str, cache_dir: str | os.PathLike[str] | None) -> bool:
    try:
        return manifest(size, cache_dir).get("recipe_hash") == recipe_hash(size)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- cache helpers


def _ensure_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CacheDirError(
            f"cannot write the diagrammar model cache at {root} ({err.strerror or err}); "
            f"set {CACHE_ENV} to a writable directory or pass cache_dir="
        ) from err


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``root/.name.lock`` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / f".{name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary sibling of ``final``; on success it replaces ``final``.

    On any exception the temporary folder is removed and ``final`` is left untouched.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- tokenizer


def _ensure_tokenizer(root: Path, docs: list, digest: str, progress: bool):
    """Load the shared tokenizer, training it first if it is missing or stale."""
    from transformers import PreTrainedTokenizerFast

    from .default_training import TOKENIZER_RECIPE, train_tokenizer

    folder = root / "tokenizer"
    want = TOKENIZER_RECIPE.hash()
    with _locked(root, "tokenizer"):
        try:
            meta = json.loads((folder / TOKENIZER_MANIFEST).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            meta = {}
        if meta.get("tokenizer_hash") != want:
            if progress:
                print(f"training the default tokenizer on {len(docs)} files...", file=sys.stderr)
            started = time.perf_counter()
            tok = train_tokenizer(docs, TOKENIZER_RECIPE)
            with _atomic_dir(folder) as tmp:
                tok.save_pretrained(tmp)
                _write_json(
                    tmp / TOKENIZER_MANIFEST,
                    {
                        "tokenizer_hash": want,
                        "vocab_size": len(tok),
                        "corpus_digest": digest,
                        "train_seconds": round(time.perf_counter() - started, 3),
                    },
                )
        return PreTrainedTokenizerFast.from_pretrained(folder), folder


# --------------------------------------------------------------------------- public API


def train_default(
    size: str = "small",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    recipe: Any = None,
) -> Path:
    """Train the ``size`` default model (and the shared tokenizer if needed); return its folder.

    Does nothing when an up-to-date model is cached, unless ``force``.  Writes atomically:
    a failure or interruption leaves no partial folder behind.  ``recipe`` (a
    :class:`~diagrammar.models.default_training.Recipe`) overrides the size's recipe, e.g. for
    a short run in tests; such a model is considered stale by :func:`default`.

    Raises:
        ValueError: unknown ``size``.
        CacheDirError: the cache directory cannot be written.

    Example (trains for a minute or two, so not a doctest)::

        path = train_default("tiny")
        sorted(p.name for p in path.iterdir())   # config.json, manifest.json, model.safetensors...
    """
    _check_size(size)
    from .default_training import (
        RECIPES,
        bf16_supported,
        encode_documents,
        evaluate,
        fixed_threads,
        train_model,
    )

    root = cache_root(cache_dir)
    _ensure_writable(root)
    final = root / size
    rec = RECIPES[size] if recipe is None else recipe
    precision = _precision(bf16_supported())
    want_hash = rec.hash(precision)
    with _locked(root, size):
        if not force and _is_current(size, cache_dir) and recipe is None:
            return final
        started = time.perf_counter()
        docs = training_documents()
        digest = corpus_digest(docs)
        heldout = heldout_sources()
        tokenizer, tok_folder = _ensure_tokenizer(root, docs, digest, progress)
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
            "recipe": _recipe_dict(rec),
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
        with _atomic_dir(final) as tmp:
            model.save_pretrained(tmp)
            for name in _TOKENIZER_FILES:
                shutil.copy2(tok_folder / name, tmp / name)
            _write_json(tmp / MANIFEST, meta)
    return final


def _recipe_dict(rec: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(rec)


def default(
    size: str = "small",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    train_if_missing: bool = True,
    progress: bool = True,
):
    """The default ``(model, tokenizer)`` of ``size``, loaded from the cache or trained first.

    The model is a ``GPT2LMHeadModel`` in eval mode (float32, CPU); the tokenizer a
    ``PreTrainedTokenizerFast`` whose eos token is ``<|endoftext|>``.

    Raises:
        ValueError: unknown ``size`` (the message lists the valid sizes).
        FileNotFoundError: not cached (or stale) and ``train_if_missing`` is false.
        CacheDirError: training is needed but the cache directory cannot be written.

    Example:
        >>> model, tok = default("tiny")
        >>> model.training, tok.eos_token
        (False, '<|endoftext|>')
    """
    _check_size(size)
    if not _is_current(size, cache_dir):
        if not train_if_missing:
            path = default_path(size, cache_dir)
            raise FileNotFoundError(
                f"the default model {size!r} is not trained (or is stale) at {path}; run "
                f"`diagrammar train-default --size {size}` or pass train_if_missing=True"
            )
        train_default(size, cache_dir=cache_dir, progress=progress)
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = default_path(size, cache_dir)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    return model, tokenizer


def default_tokenizer(
    *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True
):
    """The shared byte-level BPE tokenizer of every default size, trained first if missing.

    Training it takes seconds (no model is trained).  Useful for custom training recipes and
    recipe sweeps (``benchmarks/recipe_sweep.py``).

    Raises:
        CacheDirError: training is needed but the cache directory cannot be written.

    Example:
        >>> tok = default_tokenizer(progress=False)
        >>> len(tok), tok.eos_token
        (4096, '<|endoftext|>')
    """
    root = cache_root(cache_dir)
    _ensure_writable(root)
    docs = training_documents()
    return _ensure_tokenizer(root, docs, corpus_digest(docs), progress)[0]


def summary(
    size: str, cache_dir: str | os.PathLike[str] | None = None, path: Path | None = None
) -> str:
    """One line describing the cached ``size`` model (path, parameters, held-out scores)."""
    m = manifest(size, cache_dir)
    path = path or default_path(size, cache_dir)
    return (
        f"{size}: {path}  params={m['parameters']:,}  train={m['train_seconds']:.0f}s  "
        f"heldout loss={m['heldout_loss']:.3f} acc={m['heldout_accuracy']:.3f}"
    )

