"""One way to name a model everywhere: a local folder, ``default:SIZE``, or a Hub id.

A Hugging Face Hub id (``org/name``, when no such local path exists) is resolved through the
Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``): a cached copy is used without
touching the network; otherwise it is downloaded (config, weights, tokenizer files; never the
repository's Python code) unless the Hub is offline (``HF_HUB_OFFLINE=1``), in which case, or
when the Hub cannot be reached within :data:`HUB_TIMEOUT` seconds, one line says so.

>>> from diagrammar.models.resolve import DEFAULT_PREFIX, resolve_model
>>> resolve_model("default:huge")
Traceback (most recent call last):
...
ValueError: unknown default model size 'huge'; valid sizes: tiny, small
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from diagrammar.models.errors import ModelLoadError

# The torch backend is imported where it is used: the JAX backend resolves names with this
# module and runs without torch.
if TYPE_CHECKING:
    import torch

    from diagrammar.models.hf import HFCausalLM

#: Prefix naming the embedded default model, as in ``default:small``.
DEFAULT_PREFIX = "default:"


def resolve_model(spec: str | os.PathLike, dtype: torch.dtype | None = None) -> HFCausalLM:
    """The model named by ``spec``: ``default:tiny`` / ``default:small`` (shipped with the
    package, or trained here on first use), a local Hugging Face model folder, or a Hub id
    ``org/name`` (see :func:`hub_snapshot`).
    """
    from diagrammar.models.hf import HFCausalLM, load_model

    text = os.fspath(spec)
    if text.startswith(DEFAULT_PREFIX):
        from diagrammar.models.default import SIZES, default, model_folder

        size = text[len(DEFAULT_PREFIX):]
        if size not in SIZES:
            raise ValueError(f"unknown default model size {size!r}; valid sizes: "
                             f"{', '.join(SIZES)}")
        if model_folder(size) is None:
            print(f"the default {size} model is not trained (or is stale): training it first "
                  f"(`diagrammar train-default --size {size}` does the same)", file=sys.stderr)
        model, tokenizer = default(size)
        if dtype is not None:
            model = model.to(dtype)
        return HFCausalLM(model, tokenizer)
    return load_model(text, dtype=dtype)


#: Seconds to wait for each request to the Hugging Face Hub before giving up.
HUB_TIMEOUT = 10.0

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
_CONFIG_FILES = ("config.json", "generation_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt",
                    "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                    "chat_template.jinja", "chat_template.json")


def is_hub_id(text: str) -> bool:
    """Whether ``text`` reads as a Hugging Face Hub model id ``org/name``.

    >>> is_hub_id("openai-community/gpt2"), is_hub_id("./models/x"), is_hub_id("/abs/path")
    (True, False, False)
    """
    return (bool(_HUB_ID.fullmatch(text)) and "--" not in text and ".." not in text
            and not text.endswith((".", ".git")))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (``HF_HUB_CACHE``, else
    ``HF_HOME``/hub), else huggingface_hub's own setting."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """Whether the Hub is off limits: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` as set now,
    else huggingface_hub's own setting (read when it was imported)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    if value:
        return _truthy(value)
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def files_to_fetch(names: list[str]) -> list[str]:
    """The files of a Hub repository that loading its causal LM needs: config, one set of
    weights (safetensors first), tokenizer files; never code, never other formats.

    >>> files_to_fetch(["config.json", "model.safetensors", "pytorch_model.bin", "modeling.py",
    ...                 "tokenizer.json", "onnx/model.onnx", "README.md"])
    ['config.json', 'model.safetensors', 'tokenizer.json']
    """
    top = [name for name in names if "/" not in name]
    wanted = [name for name in top
              if name in _CONFIG_FILES or name in _TOKENIZER_FILES or name.endswith(".tiktoken")]
    for index, prefix, suffix in (("model.safetensors.index.json", "model-", ".safetensors"),
                                  ("model.safetensors", None, None),
                                  ("pytorch_model.bin.index.json", "pytorch_model-", ".bin"),
                                  ("pytorch_model.bin", None, None)):
        if index in top:
            wanted.append(index)
            if prefix:
                wanted += [name for name in top
                           if name.startswith(prefix) and name.endswith(suffix)]
            break
    else:
        wanted += [name for name in top if name.endswith(".safetensors")]
    return [name for name in names if name in set(wanted)]


def hub_snapshot(repo_id: str) -> Path:
    """The local folder of Hub model ``repo_id``: its snapshot in the Hugging Face cache, found
    without the network, else downloaded (unless offline); one :class:`ModelLoadError` line
    when neither works."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    cache = hub_cache_dir()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or a broken cache entry): look further
        folder = None
    if folder is not None and (folder / "config.json").is_file() and _has_weights(folder):
        return folder
    where = (f"model {repo_id} is neither a local folder nor a Hugging Face Hub id in the "
             f"local cache ({cache})")
    if hub_offline():
        if folder is not None:
            return folder  # incomplete: the loader names what is missing
        raise ModelLoadError(f"{where}, and the Hub is offline (HF_HUB_OFFLINE=1): download it "
                             "once with network access, or give a local model folder")
    try:
        info = HfApi().model_info(repo_id, timeout=HUB_TIMEOUT)
        files = files_to_fetch([sibling.rfilename for sibling in info.siblings or []])
        return Path(snapshot_download(repo_id, cache_dir=cache, allow_patterns=files,
                                      etag_timeout=HUB_TIMEOUT))
    except RepositoryNotFoundError:
        raise ModelLoadError(f"{where}, and the Hub has no model {repo_id} (or it is private or "
                             "gated: log in with `hf auth login`)") from None
    except Exception as error:  # noqa: BLE001 - any network failure becomes one line
        text = str(error).strip()
        reason = f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
        raise ModelLoadError(f"{where}, and the Hub cannot be reached ({reason}): connect to "
                             "the network, or give a local model folder") from None


__all__ = ["DEFAULT_PREFIX", "HUB_TIMEOUT", "resolve_model", "is_hub_id", "hub_snapshot",
           "hub_cache_dir", "hub_offline", "files_to_fetch"]
