"""What the JAX transformer needs to know about a model, read from its ``config.json``.

An :class:`Architecture` is the frozen, hashable description of one decoder-only model: its
family (``"gpt2"`` or ``"llama"``), shapes, normalisation, activation, position scheme and
whether the output head is tied to the input embedding. It is read from the ``config.json``
of a Hugging Face folder with :meth:`Architecture.from_config`, which refuses, in one line,
anything the JAX transformer would not reproduce exactly (another ``model_type``, a rotary
scaling it does not implement, cross-attention, ...).

>>> arch = Architecture.from_config({"model_type": "gpt2", "vocab_size": 32, "n_embd": 16,
...                                  "n_layer": 2, "n_head": 2, "n_positions": 64})
>>> arch.family, arch.heads, arch.kv_heads, arch.head_dim, arch.inner, arch.tied
('gpt2', 2, 2, 8, 64, True)
>>> Architecture.from_config({"model_type": "bert"})
Traceback (most recent call last):
...
diagrammar.models.errors.ModelLoadError: the JAX backend runs GPT-2 and Llama-style models \
(model_type gpt2, llama), not model_type 'bert': use the torch backend for it
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from diagrammar.models.errors import ModelLoadError

#: The ``model_type`` values the JAX transformer runs.
MODEL_TYPES = ("gpt2", "llama")
#: Activations by their Hugging Face name (``activation_function`` / ``hidden_act``).
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish")
#: Rotary scalings implemented (``rope_parameters["rope_type"]``).
ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class Architecture:
    """The shape and arithmetic of a GPT-2 or Llama-style decoder.

    Attributes:
        family: ``"gpt2"`` (learned positions, LayerNorm, fused qkv with biases) or
            ``"llama"`` (rotary positions, RMSNorm, separate projections, gated MLP).
        vocab: rows of the output head.
        width: the residual stream's width.
        layers: the number of blocks.
        heads: query heads.
        kv_heads: key/value heads (fewer than ``heads`` for grouped-query attention).
        head_dim: the size of each head.
        inner: the MLP's hidden width.
        eps: the normalisation epsilon.
        activation: the MLP activation's Hugging Face name.
        max_positions: the context the model was built for (``None`` when unbounded).
        tied: whether the output head is the input embedding.
        scale: the attention score scale (``head_dim ** -0.5``, or 1 for GPT-2 with
            ``scale_attn_weights`` false).
        inverse_layer_scale: GPT-2's ``scale_attn_by_inverse_layer_idx`` (layer ``i`` divides
            the scores by ``i + 1``).
        attention_bias: whether the Llama projections q, k, v, o have biases.
        mlp_bias: whether the Llama MLP projections have biases.
        inv_freq: the rotary inverse frequencies (Llama; float64, after scaling).
    """

    family: str
    vocab: int
    width: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    inner: int
    eps: float
    activation: str
    max_positions: int | None
    tied: bool
    scale: float
    inverse_layer_scale: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    inv_freq: tuple[float, ...] = ()

    @property
    def groups(self) -> int:
        """Query heads per key/value head."""
        return self.heads // self.kv_heads

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Architecture:
        """The architecture a Hugging Face ``config.json`` (as a dict) describes.

        Raises:
            ModelLoadError: an unsupported ``model_type`` or setting, named in one line.
        """
        model_type = config.get("model_type")
        if model_type == "gpt2":
            return _gpt2(config)
        if model_type == "llama":
            return _llama(config)
        raise ModelLoadError(
            f"the JAX backend runs GPT-2 and Llama-style models (model_type "
            f"{', '.join(MODEL_TYPES)}), not model_type {model_type!r}: use the torch backend "
            "for it")


def _require(config: dict[str, Any], *names: str) -> list[Any]:
    missing = [name for name in names if config.get(name) is None]
    if missing:
        raise ModelLoadError(f"the {config.get('model_type')} config has no "
                             f"{', '.join(missing)}")
    return [config[name] for name in names]


def _activation(name: Any, model_type: str) -> str:
    if name not in ACTIVATIONS:
        raise ModelLoadError(f"the JAX backend has no activation {name!r} (model_type "
                             f"{model_type}); it has {', '.join(ACTIVATIONS)}")
    return str(name)


def _refuse(config: dict[str, Any], model_type: str, **settings: Any) -> None:
    """Refuses settings the JAX transformer does not reproduce: name -> the value it assumes."""
    for name, assumed in settings.items():
        value = config.get(name)
        if value is not None and value != assumed:
            raise ModelLoadError(f"the JAX backend does not implement {name}={value!r} "
                                 f"(model_type {model_type}): use the torch backend")


def _gpt2(config: dict[str, Any]) -> Architecture:
    vocab, width, layers, heads = _require(config, "vocab_size", "n_embd", "n_layer", "n_head")
    if width % heads:
        raise ModelLoadError(f"n_embd {width} is not a multiple of n_head {heads}")
    _refuse(config, "gpt2", add_cross_attention=False)
    head_dim = width // heads
    return Architecture(
        family="gpt2", vocab=vocab, width=width, layers=layers, heads=heads, kv_heads=heads,
        head_dim=head_dim, inner=config.get("n_inner") or 4 * width,
        eps=float(config.get("layer_norm_epsilon", 1e-5)),
        activation=_activation(config.get("activation_function", "gelu_new"), "gpt2"),
        max_positions=config.get("n_positions"), tied=True,
        scale=head_dim ** -0.5 if config.get("scale_attn_weights", True) else 1.0,
        inverse_layer_scale=bool(config.get("scale_attn_by_inverse_layer_idx", False)))


def rope_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """The rotary parameters, from ``rope_parameters`` (transformers 5) or the older
    ``rope_theta`` / ``rope_scaling`` keys.

    >>> rope_parameters({"rope_theta": 500000.0, "rope_scaling": None})
    {'rope_type': 'default', 'rope_theta': 500000.0}
    """
    found = config.get("rope_parameters")
    if isinstance(found, dict) and "rope_theta" in found:
        parameters = dict(found)
    else:
        parameters = dict(config.get("rope_scaling") or {})
        parameters["rope_theta"] = config.get("rope_theta", 10000.0)
    kind = parameters.pop("rope_type", None) or parameters.pop("type", None) or "default"
    return {"rope_type": kind, **parameters}


def inverse_frequencies(head_dim: int, parameters: dict[str, Any],
                        max_positions: int | None) -> np.ndarray:
    """Rotary inverse frequencies in float64, as Hugging Face computes them (in float32).

    >>> inverse_frequencies(4, {"rope_type": "default", "rope_theta": 100.0}, None).tolist()
    [1.0, 0.1]
    """
    kind = parameters["rope_type"]
    if kind not in ROPE_TYPES:
        raise ModelLoadError(f"the JAX backend has no rotary scaling {kind!r}; it has "
                             f"{', '.join(ROPE_TYPES)}: use the torch backend")
    if parameters.get("partial_rotary_factor", 1.0) != 1.0:
        raise ModelLoadError("the JAX backend does not implement partial_rotary_factor "
                             f"{parameters['partial_rotary_factor']}")
    base = float(parameters["rope_theta"])
    inv_freq = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if kind == "linear":
        inv_freq = inv_freq / float(parameters["factor"])
    elif kind == "llama3":
        factor = float(parameters["factor"])
        low, high = float(parameters["low_freq_factor"]), float(parameters["high_freq_factor"])
        old = float(parameters.get("original_max_position_embeddings") or max_positions)
        low_wavelength, high_wavelength = old / low, old / high
        wavelength = 2 * math.pi / inv_freq
        scaled = np.where(wavelength > low_wavelength, inv_freq / factor, inv_freq)
        smooth = (old / wavelength - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelength >= high_wavelength) & (wavelength <= low_wavelength)
        inv_freq = np.where(medium, smoothed, scaled)
    return inv_freq


def _llama(config: dict[str, Any]) -> Architecture:
    vocab, width, layers, heads, inner = _require(
        config, "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size")
    kv_heads = config.get("num_key_value_heads") or heads
    if heads % kv_heads:
        raise ModelLoadError(f"num_attention_heads {heads} is not a multiple of "
                             f"num_key_value_heads {kv_heads}")
    head_dim = config.get("head_dim") or width // heads
    _refuse(config, "llama", pretraining_tp=1)
    max_positions = config.get("max_position_embeddings")
    inv_freq = inverse_frequencies(head_dim, rope_parameters(config), max_positions)
    return Architecture(
        family="llama", vocab=vocab, width=width, layers=layers, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, inner=inner,
        eps=float(config.get("rms_norm_eps", 1e-6)),
        activation=_activation(config.get("hidden_act", "silu"), "llama"),
        max_positions=max_positions, tied=bool(config.get("tie_word_embeddings", False)),
        scale=head_dim ** -0.5, attention_bias=bool(config.get("attention_bias", False)),
        mlp_bias=bool(config.get("mlp_bias", False)),
        inv_freq=tuple(float(f) for f in inv_freq))


__all__ = ["ACTIVATIONS", "MODEL_TYPES", "ROPE_TYPES", "Architecture", "inverse_frequencies",
           "rope_parameters"]
