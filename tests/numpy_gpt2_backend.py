"""A second backend for the tests: GPT-2 in NumPy over the same weights as the torch model.

It proves the seam: the step wiring only talks to a ``LanguageModel`` and its ``Session``, so
a backend is a loader plus one session class (this file), and every pipeline runs unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from diagrammar.models.session import CachedSession


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu_new(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def tree_layout(parents: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Depths of root and nodes and the ancestor mask, as NumPy arrays (root first)."""
    n = len(parents) + 1
    depths = np.zeros(n, dtype=np.int64)
    ancestors = np.eye(n, dtype=bool)
    for node, parent in enumerate(parents, start=1):
        depths[node] = depths[parent + 1] + 1
        ancestors[node] |= ancestors[parent + 1]
    return depths, ancestors


class NumpyGPT2:
    """A ``LanguageModel`` over a Hugging Face GPT-2's weights, computed in NumPy."""

    def __init__(self, model) -> None:
        weights = {name: tensor.detach().cpu().numpy().astype(np.float64)
                   for name, tensor in model.state_dict().items()}
        config = model.config
        self.config = config
        self.weights = weights
        self.layers = config.n_layer
        self.heads = config.n_head
        self.width = config.n_embd
        self.eps = config.layer_norm_epsilon
        self.max_positions = config.n_positions
        self.vocab_size = weights["transformer.wte.weight"].shape[0]
        eos = config.eos_token_id
        self.eos_token_ids = frozenset() if eos is None else frozenset({eos})

    def encode(self, text: str) -> list[int]:
        raise ValueError("the NumPy test model has no tokenizer")

    def decode(self, ids: Sequence[int]) -> str:
        raise ValueError("the NumPy test model has no tokenizer")

    def check_length(self, prompt_length: int, max_new_tokens: int) -> None:
        if prompt_length < 1 or prompt_length + max_new_tokens > self.max_positions:
            raise ValueError("prompt and new tokens do not fit")

    def session(self, prompt_ids: Sequence[int]) -> NumpySession:
        return NumpySession(self, list(prompt_ids))


class NumpySession(CachedSession):
    """Keys and values in NumPy arrays that grow as the sequence does."""

    def __init__(self, model: NumpyGPT2, prompt: list[int]) -> None:
        super().__init__(0)
        self.model = model
        head_dim = model.width // model.heads
        self.keys = [np.zeros((model.heads, 0, head_dim)) for _ in range(model.layers)]
        self.values = [np.zeros((model.heads, 0, head_dim)) for _ in range(model.layers)]
        if len(prompt) > 1:
            self._score(prompt[:-1], list(range(-1, len(prompt) - 3)))
            self.cache_length = len(prompt) - 1

    def _score(self, ids: list[int], parents: Sequence[int]) -> np.ndarray:
        m, w = self.model, self.model.weights
        n, start = len(ids), self.cache_length
        depths, ancestors = tree_layout(parents)
        positions = start + depths
        mask = np.concatenate([np.ones((n, start), dtype=bool), ancestors], axis=1)
        heads, width = m.heads, m.width
        head_dim = width // heads
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][positions]
        for i in range(m.layers):
            p = f"transformer.h.{i}."
            h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], m.eps)
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (part.reshape(n, heads, head_dim).transpose(1, 0, 2)
                       for part in np.split(qkv, 3, axis=1))
            self.keys[i] = np.concatenate([self.keys[i][:, :start], k], axis=1)
            self.values[i] = np.concatenate([self.values[i][:, :start], v], axis=1)
            logits = q @ self.keys[i].transpose(0, 2, 1) / math.sqrt(head_dim)
            logits = np.where(mask, logits, -np.inf)
            logits -= logits.max(-1, keepdims=True)
            weights = np.exp(logits)
            weights /= weights.sum(-1, keepdims=True)
            attended = (weights @ self.values[i]).transpose(1, 0, 2).reshape(n, width)
            x = x + attended @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], m.eps)
            h = _gelu_new(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], m.eps)
        return x @ w["transformer.wte.weight"].T

    def _move(self, sources: list[int], destination: int) -> None:
        end = destination + len(sources)
        for layer in range(self.model.layers):
            self.keys[layer][:, destination:end] = self.keys[layer][:, sources]
            self.values[layer][:, destination:end] = self.values[layer][:, sources]

    def _truncate(self, length: int) -> None:
        for layer in range(self.model.layers):
            self.keys[layer] = self.keys[layer][:, :length]
            self.values[layer] = self.values[layer][:, :length]
