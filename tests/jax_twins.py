"""JAX twins of random Hugging Face test models, shared by the JAX backend's tests and the
losslessness suite.

A twin is the same weights saved with ``save_pretrained`` and loaded by
:class:`~diagrammar.models.jax.JaxCausalLM` in float64, next to the float64 torch model that
Hugging Face ``generate`` and the torch backend run as its reference.

Hugging Face's Llama computes RMSNorm and the rotary cos/sin tables in float32 even in a
float64 model (``hidden_states.to(torch.float32)``; ``position_ids.float() * inv_freq``), so
its float64 logits carry float32 rounding (~1e-7). The JAX model computes in its dtype; the
float64 reference Llama is therefore Hugging Face's own with those two float32 islands lifted
to float64 on its module instances (:func:`exact_llama`), so that the two compare arithmetic,
not rounding.

jax is imported inside the functions, so that importing this module does not import it.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


@contextmanager
def x64() -> Iterator[None]:
    """64-bit JAX inside the block; the previous setting is restored after it."""
    import jax

    saved = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", saved)


def exact_llama(model):
    """Hugging Face's Llama with RMSNorm and the rotary tables in the model's dtype (float64)
    instead of float32: the same formulas, set on this model's module instances only."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding

    def rms_norm(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True)
                                              + self.variance_epsilon))

    rope = model.config.rope_parameters
    dim = model.config.head_dim
    inv_freq = 1.0 / (rope["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    inv_freq = inv_freq / rope.get("factor", 1.0) if rope["rope_type"] == "linear" else inv_freq

    def rotary(self, x, position_ids):
        freqs = position_ids[..., None].double() * inv_freq
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    for module in model.modules():
        if isinstance(module, LlamaRMSNorm):
            module.forward = types.MethodType(rms_norm, module)
        elif isinstance(module, LlamaRotaryEmbedding):
            module.forward = types.MethodType(rotary, module)
    return model


def save_tokenizer(folder: Path, vocab: int = 48, eos: int = 3) -> None:
    """A word-level tokenizer over a random model's vocabulary (``t0`` ... ``t{vocab - 1}``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, eos_token=f"t{eos}").save_pretrained(folder)


def jax_twin(model, folder: Path) -> tuple[Any, Any]:
    """``(reference, twin)`` of a float64 Hugging Face GPT-2 or Llama ``model``.

    ``model`` is saved to ``folder`` (with a word-level tokenizer) and loaded back as a float64
    :class:`~diagrammar.models.jax.JaxCausalLM` (64-bit JAX must be on). ``reference`` is
    ``model`` itself for GPT-2 and an :func:`exact_llama` copy for Llama (``model`` is left as
    it is).
    """
    from diagrammar.models.jax import JaxCausalLM

    model.save_pretrained(folder)
    save_tokenizer(folder, model.config.vocab_size, model.config.eos_token_id)
    reference = (exact_llama(copy.deepcopy(model)) if model.config.model_type == "llama"
                 else model)
    return reference, JaxCausalLM.from_folder(folder, dtype="float64")


__all__ = ["exact_llama", "jax_twin", "save_tokenizer", "x64"]
