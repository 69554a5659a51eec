"""The JAX language model: a Hugging Face folder's weights as JAX arrays, behind the
:class:`~diagrammar.decoding.protocols.LanguageModel` contract.

:meth:`JaxCausalLM.from_folder` reads ``config.json`` (:mod:`.architecture`), the safetensors
(:mod:`.weights`, no torch), ``generation_config.json`` (the end tokens, and a refusal of the
settings Hugging Face applies to greedy decoding, as :class:`~diagrammar.models.HFCausalLM`
does) and the tokenizer (``transformers.AutoTokenizer``). Its sessions
(:class:`~.session.JaxSession`) run three jitted functions:

- ``verify``: :func:`~.transformer.forward` with the output head, one compile per (padded
  rows, cache capacity) (see :mod:`.session` for the sizes);
- ``prefill``: the same without the head;
- ``compact``: :func:`~.transformer.compact`, one compile per (path bucket, capacity).

The cache is donated to each of them, so it is updated in place. The architecture is a static
argument, so models of one architecture and dtype share their compiles (reloading a folder
compiles nothing). Every trace a model causes is recorded: :attr:`JaxCausalLM.compiled` lists
``(function, padded size, capacity)`` per compile, :attr:`JaxCausalLM.compiles` counts them and
:attr:`JaxCausalLM.compile_seconds` sums the time of the calls that compiled.

``dtype`` is float32 by default; float64 needs 64-bit JAX (``jax_enable_x64``), and is what
the tests compare with the torch backend at 1e-9.

``attention`` picks the passes' attention (:func:`~.transformer.forward`): ``"xla"``, the
einsum over the cache with a dense mask, or ``"pallas"``, the tree-attention kernel of
:mod:`diagrammar.kernels.pallas_tree`. Without one, the ``DIAGRAMMAR_JAX_ATTENTION``
environment variable decides, else :func:`default_attention`: ``"xla"`` everywhere for now. On
a CPU the kernel runs in Pallas' interpreter, an emulator that checks the kernel but is slower
than XLA's own CPU code, so ``"xla"`` is the right default there; on a GPU the default stays
``"xla"`` until the compiled kernel has been measured against it (no GPU was at hand when this
was written). Both give the same tokens (the tests compare them in float32).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diagrammar.models.errors import (
    GenerationConfigError,
    ModelLoadError,
    check_context,
)
from diagrammar.models.hf_folder import greedy_settings, load_tokenizer
from diagrammar.models.jax import transformer
from diagrammar.models.jax.architecture import Architecture
from diagrammar.models.jax.session import JaxSession
from diagrammar.models.jax.transformer import Cache
from diagrammar.models.jax.weights import parameters, read_safetensors
from diagrammar.models.text import TokenizerText

#: dtype names :class:`JaxCausalLM` takes.
DTYPES = ("float32", "float64", "bfloat16", "float16")
#: The environment variable read for the attention when :class:`JaxCausalLM` is given none.
ATTENTION_VARIABLE = "DIAGRAMMAR_JAX_ATTENTION"
#: The attention implementations :class:`JaxCausalLM` takes (see :mod:`.transformer`).
ATTENTIONS = transformer.ATTENTIONS


def resolve_dtype(dtype: Any) -> Any:
    """``dtype`` (a name or a dtype) as a jnp dtype, checking that JAX can hold it.

    Raises:
        ValueError: an unknown dtype, or float64 while ``jax_enable_x64`` is off.
    """
    name = jnp.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"the JAX backend computes in {', '.join(DTYPES)}, not {dtype!r}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs 64-bit JAX: call "
                         "jax.config.update('jax_enable_x64', True) before loading the model")
    return jnp.dtype(name)


def default_attention(device: Any) -> str:
    """The attention a model on ``device`` runs when none is asked for: ``"xla"``.

    On a CPU, Pallas runs its kernels in an interpreter (an emulator, for tests), which XLA's
    compiled einsum outruns. On a GPU, ``"xla"`` too until the compiled Pallas kernel has been
    measured against it (that measurement is still to be made)."""
    del device          # the same answer on every platform, until a GPU measurement says more
    return "xla"


def choose_attention(attention: str | None, device: Any, dtype: Any) -> str:
    """``attention``, else ``$DIAGRAMMAR_JAX_ATTENTION``, else :func:`default_attention`,
    checked: a clear ``ValueError`` for an unknown name or for ``"pallas"`` in float64."""
    variable = attention is None
    if variable:
        attention = os.environ.get(ATTENTION_VARIABLE, "").strip() or default_attention(device)
    source = f" (from ${ATTENTION_VARIABLE})" if variable else ""
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}{source}: choose one of "
                         f"{', '.join(map(repr, ATTENTIONS))}")
    if attention == "pallas" and jnp.dtype(dtype) == jnp.float64:
        raise ValueError(f"attention='pallas'{source} has no float64 kernel: use "
                         "attention='xla' for a float64 model")
    return attention


def _read_json(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None
    if not isinstance(found, dict):
        raise ModelLoadError(f"{path} does not hold a JSON object")
    return found


def _generation_settings(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """What Hugging Face's model would use as its generation config: the folder's
    ``generation_config.json``, else the generation keys of ``config.json``."""
    path = folder / "generation_config.json"
    return _read_json(path) if path.is_file() else config


def _check_generation_settings(folder: Path, settings: dict[str, Any], has_eos: bool) -> None:
    from types import SimpleNamespace

    found = greedy_settings(SimpleNamespace(**settings), has_eos)
    if found:
        shown = ", ".join(f"{name}={value!r}" for name, value in found.items())
        raise GenerationConfigError(
            f"the generation config in {folder} sets {shown}, which Hugging Face generate "
            "applies even to greedy decoding and diagrammar's decoders do not: remove "
            f"{'it' if len(found) == 1 else 'them'} from generation_config.json to decode "
            "without")


#: Traces not yet claimed by a model (see ``JaxCausalLM._timed``): the jitted functions are
#: shared by all models, so two models of one architecture and dtype compile once.
_TRACES: list[tuple[str, int, int]] = []


@partial(jax.jit, static_argnames=("arch", "logits", "attention"), donate_argnums=(1, 2))
def _forward(params, keys, values, ids, positions, tree_mask, start, *, arch, logits,
             attention="xla"):
    _TRACES.append(("verify" if logits else "prefill", int(ids.shape[0]), int(keys[0].shape[1])))
    return transformer.forward(params, keys, values, ids, positions, tree_mask, start,
                               arch=arch, logits=logits, attention=attention)


@partial(jax.jit, donate_argnums=(0, 1))
def _compact(keys, values, sources, destination):
    _TRACES.append(("compact", int(sources.shape[0]), int(keys[0].shape[1])))
    return transformer.compact(keys, values, sources, destination)


class JaxCausalLM(TokenizerText):
    """A GPT-2 or Llama-style causal LM in JAX, ready for tree verification.

    Args:
        architecture: the model's :class:`~.architecture.Architecture`.
        params: the parameter tree of :mod:`.weights` (NumPy or jax arrays; cast to ``dtype``).
        tokenizer: a Hugging Face tokenizer, or ``None`` (prompts are then token ids).
        eos_token_ids: the tokens that end a generation.
        dtype: ``"float32"`` (default), ``"float64"`` (needs ``jax_enable_x64``),
            ``"bfloat16"`` or ``"float16"``.
        device: the jax device to hold weights and caches (default: JAX's default device).
        attention: ``"xla"`` or ``"pallas"`` (default: ``$DIAGRAMMAR_JAX_ATTENTION``, else
            :func:`default_attention`; see the module docstring).

    Attributes:
        attention: the attention in effect.
        compiled: ``(function, padded size, capacity)`` of every compile so far.
        compile_seconds: wall time of the calls that compiled (compiling and running).
        host_scores: whether ``verify`` returns NumPy scores (on a CPU, where that is free)
            rather than device arrays.
    """

    def __init__(self, architecture: Architecture, params: dict[str, Any], tokenizer=None,
                 eos_token_ids: frozenset[int] = frozenset(), dtype: Any = "float32",
                 device: Any = None, attention: str | None = None) -> None:
        self.architecture = architecture
        self.dtype = resolve_dtype(dtype)
        self.device = device if device is not None else jax.devices()[0]
        self.attention = choose_attention(attention, self.device, self.dtype)
        self.params = jax.device_put(
            jax.tree.map(lambda array: jnp.asarray(array, dtype=self.dtype), params),
            self.device)
        self.tokenizer = tokenizer
        self.vocab_size: int = int(self.params["head"].shape[0])
        self.eos_token_ids = frozenset(e for e in eos_token_ids if 0 <= e < self.vocab_size)
        self.max_positions: int | None = architecture.max_positions
        self.host_scores = self.device.platform == "cpu"
        self.folder: Path | None = None
        self.compiled: list[tuple[str, int, int]] = []
        self.compile_seconds = 0.0
        self._planned_length = 0

    @property
    def compiles(self) -> int:
        """How many compiles this model's passes caused."""
        return len(self.compiled)

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, path: str | os.PathLike, dtype: Any = "float32", *,
                    require_tokenizer: bool = True, device: Any = None,
                    attention: str | None = None) -> JaxCausalLM:
        """Loads a model saved with ``save_pretrained()`` (config.json, safetensors, tokenizer);
        ``dtype``, ``device`` and ``attention`` as :class:`JaxCausalLM` takes them.

        Raises:
            ModelLoadError: a missing folder or file, or a model the JAX backend does not run
                (the message names the ``model_type`` or setting).
        """
        folder = Path(os.fspath(path)).expanduser()
        hint = "give the folder of a Hugging Face model saved with save_pretrained()"
        if not folder.exists():
            raise ModelLoadError(f"model path {folder} does not exist: {hint}")
        if not folder.is_dir():
            raise ModelLoadError(f"model path {folder} is not a folder: {hint}")
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"model path {folder} has no config.json: {hint}")
        config = _read_json(folder / "config.json")
        architecture = Architecture.from_config(config)
        dtype = resolve_dtype(dtype)
        params = parameters(read_safetensors(folder), architecture, folder)
        settings = _generation_settings(folder, config)
        eos = settings.get("eos_token_id")
        eos_ids = frozenset(e for e in (eos if isinstance(eos, (list, tuple)) else [eos])
                            if isinstance(e, int))
        _check_generation_settings(folder, settings, bool(eos_ids))
        tokenizer = load_tokenizer(folder, require_tokenizer)
        model = cls(architecture, params, tokenizer, eos_ids, dtype, device, attention)
        model.folder = folder
        return model

    # -- sessions ---------------------------------------------------------------------------------
    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        """Raises :class:`ContextTooLongError` when prompt plus new tokens cannot fit.

        The length is also remembered as the next session's planned capacity (the decoding
        loop checks the length just before it opens the session), so that a generation
        allocates its cache once.
        """
        check_context(prompt_length, max_new_tokens, self.max_positions)
        self._planned_length = prompt_length + max_new_tokens

    def session(self, prompt_ids: Sequence[int], capacity: int | None = None) -> JaxSession:
        """Prefills a cache with the prompt (all but its last token) and returns the session."""
        planned, self._planned_length = self._planned_length, 0
        return JaxSession(self, prompt_ids, capacity or planned or None)

    # -- what sessions run ------------------------------------------------------------------------
    def empty_cache(self, capacity: int) -> tuple[Cache, Cache]:
        """Zeroed keys and values for ``capacity`` positions on the model's device: one
        ``(kv_heads, capacity, head_dim)`` array per layer."""
        arch = self.architecture
        shape = (arch.kv_heads, capacity, arch.head_dim)

        def zeros() -> Cache:
            return tuple(jnp.zeros(shape, self.dtype, device=self.device)
                         for _ in range(arch.layers))

        return zeros(), zeros()

    def grow_cache(self, keys: Cache, values: Cache, capacity: int) -> tuple[Cache, Cache]:
        """The cache padded to ``capacity`` positions."""
        widths = ((0, 0), (0, capacity - keys[0].shape[1]), (0, 0))
        return (tuple(jnp.pad(array, widths) for array in keys),
                tuple(jnp.pad(array, widths) for array in values))

    def _timed(self, function: Any, *args: Any, **static: Any) -> Any:
        """Runs a jitted function; the traces it caused become this model's compiles."""
        before = len(_TRACES)
        began = time.perf_counter()
        result = function(*args, **static)
        if len(_TRACES) > before:
            self.compile_seconds += time.perf_counter() - began
            self.compiled += _TRACES[before:]
            del _TRACES[before:]
        return result

    def run_forward(self, keys: Cache, values: Cache, ids: np.ndarray, positions: np.ndarray,
                    tree_mask: np.ndarray, start: int, logits: bool = True
                    ) -> tuple[Any, Cache, Cache]:
        """One pass (:func:`~.transformer.forward`); the cache given is donated."""
        return self._timed(_forward, self.params, keys, values, ids, positions, tree_mask,
                           np.int32(start), arch=self.architecture, logits=logits,
                           attention=self.attention)

    def run_compact(self, keys: Cache, values: Cache, sources: np.ndarray, destination: int
                    ) -> tuple[Cache, Cache]:
        """One compaction (:func:`~.transformer.compact`); the cache given is donated."""
        return self._timed(_compact, keys, values, sources, np.int32(destination))

    def __repr__(self) -> str:
        arch = self.architecture
        where = f", folder={str(self.folder)!r}" if self.folder else ""
        return (f"JaxCausalLM({arch.family}, layers={arch.layers}, width={arch.width}, "
                f"vocab={self.vocab_size}, dtype={self.dtype.name}, "
                f"attention={self.attention!r}{where})")


__all__ = ["ATTENTIONS", "ATTENTION_VARIABLE", "DTYPES", "JaxCausalLM", "choose_attention",
           "default_attention", "resolve_dtype"]
