"""A model folder's safetensors, read into the parameter tree of the JAX transformer.

Tensors are read with safetensors' NumPy API (no torch); a dtype NumPy lacks (bfloat16, the
float8 kinds) is read from the file's raw bytes through ``ml_dtypes``, which JAX ships. The
tensors are then arranged for the transformer of :mod:`.transformer`:

- linear weights as ``(in, out)`` matrices (torch ``Linear`` stores ``(out, in)``; GPT-2's
  ``Conv1D`` already stores ``(in, out)``), so a projection is ``x @ w``;
- one dict of tensors per block (``params["blocks"][layer][name]``): separate arrays, since
  slicing a stacked one would copy the weights on every pass on a CPU;
- the output head as ``(vocab, width)``: the input embedding itself when tied.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from diagrammar.models.errors import ModelLoadError
from diagrammar.models.jax.architecture import Architecture

#: safetensors dtype names NumPy itself lacks, by their ``ml_dtypes`` name.
_EXTRA_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def _raw(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Tensors of a dtype NumPy lacks, read from the file's bytes (the safetensors layout: an
    8-byte little-endian header size, a JSON header, then the data)."""
    import ml_dtypes

    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
        found = {}
        for name in names:
            entry = header[name]
            kind = _EXTRA_DTYPES.get(entry["dtype"])
            if kind is None:
                raise ModelLoadError(f"tensor {name} in {path} has dtype {entry['dtype']}, "
                                     "which the JAX backend cannot read")
            begin, end = entry["data_offsets"]
            handle.seek(8 + size + begin)
            data = np.frombuffer(handle.read(end - begin), dtype=getattr(ml_dtypes, kind))
            found[name] = data.reshape(entry["shape"])
    return found


def read_safetensors(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of the folder's ``*.safetensors`` files (one file or shards), by name."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"model folder {folder} has no *.safetensors weights: the JAX "
                             "backend reads safetensors only (save the model with "
                             "save_pretrained(), which writes them)")
    tensors: dict[str, np.ndarray] = {}
    for path in files:
        unreadable = []
        with safe_open(path, framework="numpy") as handle:
            for name in handle.keys():
                try:
                    tensors[name] = handle.get_tensor(name)
                except TypeError:          # a dtype NumPy does not know (bfloat16, ...)
                    unreadable.append(name)
        tensors.update(_raw(path, unreadable) if unreadable else {})
    return tensors


class _Reader:
    """Takes tensors out of a checkpoint by name, with one clear error for a missing one."""

    def __init__(self, tensors: dict[str, np.ndarray], prefix: str, folder: Any) -> None:
        self.tensors = tensors
        self.prefix = prefix if any(name.startswith(prefix) for name in tensors) else ""
        self.folder = folder

    def has(self, name: str) -> bool:
        return self.prefix + name in self.tensors or name in self.tensors

    def __call__(self, name: str, transpose: bool = False) -> np.ndarray:
        for key in (self.prefix + name, name):
            if key in self.tensors:
                tensor = self.tensors[key]
                return tensor.T if transpose else tensor
        raise ModelLoadError(f"the weights in {self.folder} have no tensor {self.prefix}{name}")


def gpt2_parameters(tensors: dict[str, np.ndarray], arch: Architecture,
                    folder: Any = "the folder") -> dict[str, Any]:
    """GPT-2 parameters (keys with or without the ``transformer.`` prefix)."""
    read = _Reader(tensors, "transformer.", folder)
    blocks = []
    for i in range(arch.layers):
        p = f"h.{i}."
        blocks.append({
            "ln1_w": read(p + "ln_1.weight"), "ln1_b": read(p + "ln_1.bias"),
            "qkv_w": read(p + "attn.c_attn.weight"), "qkv_b": read(p + "attn.c_attn.bias"),
            "o_w": read(p + "attn.c_proj.weight"), "o_b": read(p + "attn.c_proj.bias"),
            "ln2_w": read(p + "ln_2.weight"), "ln2_b": read(p + "ln_2.bias"),
            "fc_w": read(p + "mlp.c_fc.weight"), "fc_b": read(p + "mlp.c_fc.bias"),
            "proj_w": read(p + "mlp.c_proj.weight"), "proj_b": read(p + "mlp.c_proj.bias"),
        })
    embedding = read("wte.weight")
    head = tensors.get("lm_head.weight", embedding)
    return {"embedding": embedding, "positions": read("wpe.weight"), "blocks": blocks,
            "final_w": read("ln_f.weight"), "final_b": read("ln_f.bias"), "head": head}


def llama_parameters(tensors: dict[str, np.ndarray], arch: Architecture,
                     folder: Any = "the folder") -> dict[str, Any]:
    """Llama parameters (keys with or without the ``model.`` prefix)."""
    read = _Reader(tensors, "model.", folder)
    blocks = []
    for i in range(arch.layers):
        p = f"layers.{i}."
        block = {"ln1_w": read(p + "input_layernorm.weight"),
                 "ln2_w": read(p + "post_attention_layernorm.weight")}
        for name, module in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"),
                             ("v", "self_attn.v_proj"), ("o", "self_attn.o_proj"),
                             ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                             ("down", "mlp.down_proj")):
            block[name + "_w"] = read(f"{p}{module}.weight", transpose=True)
            biased = arch.mlp_bias if module.startswith("mlp") else arch.attention_bias
            if biased:
                block[name + "_b"] = read(f"{p}{module}.bias")
        blocks.append(block)
    embedding = read("embed_tokens.weight")
    if "lm_head.weight" in tensors:
        head = tensors["lm_head.weight"]
    elif arch.tied:
        head = embedding
    else:
        raise ModelLoadError(f"the weights in {folder} have no lm_head.weight, and the config "
                             "does not tie it to the embedding (tie_word_embeddings false)")
    return {"embedding": embedding, "blocks": blocks, "final_w": read("norm.weight"),
            "head": head}


def parameters(tensors: dict[str, np.ndarray], arch: Architecture,
               folder: Any = "the folder") -> dict[str, Any]:
    """The parameter tree (NumPy arrays, the checkpoint's dtype) for ``arch``."""
    build = gpt2_parameters if arch.family == "gpt2" else llama_parameters
    return build(tensors, arch, folder)


__all__ = ["gpt2_parameters", "llama_parameters", "parameters", "read_safetensors"]
