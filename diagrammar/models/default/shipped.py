"""Default models shipped inside the package, as float16 safetensors with a manifest.

A size trained with the project's recipe can be *shipped*: its weights, cast to float16, go
into ``diagrammar/models/default/shipped/SIZE/`` with the tokenizer and a manifest (recipe
hash, corpus digest, held-out scores of the float16 weights, training time, date, and the
weights' SHA-256). :func:`~diagrammar.models.default.default` then loads it without training.

A shipped folder is used only when it checks out: its manifest's recipe hash is today's
recipe (at the precision it was trained with) and the weights' digest is the manifest's. A
model trained locally into the cache takes precedence when its recipe matches today's.

Example (which sizes this copy of the package ships; nothing is loaded)::

    from diagrammar.models.default.shipped import is_shipped
    [size for size in ("tiny", "small") if is_shipped(size)]
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .cache import MANIFEST, atomic_dir, write_json
from .recipes import RECIPES, check_size

__all__ = ["SHIPPED_DIR", "WEIGHTS", "export_shipped", "is_shipped", "shipped_manifest",
           "shipped_path"]

#: Where shipped models live inside the package.
SHIPPED_DIR = Path(__file__).parent / "shipped"
#: The weights file of a shipped (or cached) model folder.
WEIGHTS = "model.safetensors"
_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")


def shipped_path(size: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the shipped ``size`` model (it may not exist).

    Args:
        size: one of ``SIZES``.
        root: the folder of shipped models; default :data:`SHIPPED_DIR`.

    Example:
        >>> shipped_path("tiny", "/tmp/ship").as_posix()
        '/tmp/ship/tiny'
    """
    check_size(size)
    return Path(root if root is not None else SHIPPED_DIR) / size


def shipped_manifest(size: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The manifest of the shipped ``size`` model.

    Raises:
        FileNotFoundError: nothing is shipped for ``size``.
    """
    path = shipped_path(size, root) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"no shipped default model {size!r} (no {path})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_shipped(size: str, root: str | os.PathLike[str] | None = None) -> bool:
    """Whether a usable ``size`` model is shipped: today's recipe, intact weights.

    Example:
        >>> is_shipped("tiny", "/no/such/folder")
        False
    """
    try:
        meta = shipped_manifest(size, root)
    except (FileNotFoundError, ValueError):
        return False
    shipped = meta.get("shipped") or {}
    precision = meta.get("precision")
    if not isinstance(precision, str) or meta.get("recipe_hash") != RECIPES[size].hash(
            precision):
        return False
    weights = shipped_path(size, root) / WEIGHTS
    return weights.is_file() and shipped.get("sha256") == _sha256(weights)


def export_shipped(size: str, source: str | os.PathLike[str],
                   root: str | os.PathLike[str] | None = None) -> Path:
    """Ships the model in ``source`` (a trained default-model folder) as ``size``.

    Casts the weights to float16, copies the tokenizer and writes the manifest: the source's,
    plus the held-out scores of the float16 weights (``heldout_loss``/``heldout_accuracy``;
    the source's float32 scores move under ``trained``) and a ``shipped`` block (dtype, size,
    SHA-256, date). Writes atomically.

    Args:
        size: one of ``SIZES``.
        source: a folder written by :func:`~diagrammar.models.default.train_default`.
        root: the folder of shipped models; default :data:`SHIPPED_DIR` (inside the package).

    Returns:
        The shipped folder.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from .corpus import heldout_sources
    from .evaluation import evaluate
    from .tokenizer import encode_documents
    from .training import fixed_threads

    source = Path(source)
    meta = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    if meta.get("size") != size:
        raise ValueError(f"{source} holds the {meta.get('size')!r} model, not {size!r}")
    model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=False)
    model = model.to(torch.float16)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(source, trust_remote_code=False)
    recipe = meta["recipe"]
    held = {name: np.asarray(encode_documents(tokenizer, [text]))
            for name, text in heldout_sources().items()}
    if recipe.get("eval_max_tokens"):
        held = {name: ids[: recipe["eval_max_tokens"]] for name, ids in held.items()}
    with fixed_threads(recipe.get("threads", 1)):
        scored = evaluate(model.to(torch.float32), held, recipe["eval_seq_len"],
                          recipe["eval_batch_size"])
    final = shipped_path(size, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(final) as tmp:
        model.to(torch.float16).save_pretrained(tmp)
        for name in _COPIED:
            if (source / name).is_file() and not (tmp / name).exists():
                shutil.copy2(source / name, tmp / name)
        trained = {key: meta.pop(key) for key in ("heldout_loss", "heldout_accuracy",
                                                  "heldout_per_module") if key in meta}
        meta.update({
            "trained": trained,
            "heldout_loss": round(scored.loss, 4),
            "heldout_accuracy": round(scored.accuracy, 4),
            "heldout_per_module": scored.per_module,
            "shipped": {
                "dtype": "float16",
                "bytes": (tmp / WEIGHTS).stat().st_size,
                "sha256": _sha256(tmp / WEIGHTS),
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            },
        })
        write_json(tmp / MANIFEST, meta)
        tmp.chmod(0o755)                              # a package folder, readable by all
        for path in tmp.iterdir():
            path.chmod(0o644)
    return final
