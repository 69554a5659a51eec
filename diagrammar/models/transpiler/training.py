"""The transpiler model's recipe, training and cache: a small Llama-architecture causal LM
(rotary positions, so attention depends on distances, not on absolute positions) trained
from scratch on ``(source, target)`` text pairs to continue ``<bos> source <sep>`` with the
target. The loss is on target tokens only. The pairs come from the caller (``examples``: a
function of the recipe; :func:`diagrammar.functors.transpile.corpus_examples` makes the
Guess & Sketch corpus's), so this module knows nothing of how programs are generated.

The paper's model is a pretrained LM fine-tuned on real compiler output; here it is a
0.9M-parameter model trained in CPU minutes on generated programs (scaled down; the method
around it is the paper's). The trained model is a ``save_pretrained`` folder cached by its
recipe's hash (``<cache>/transpiler-model/<name>-<hash>``; ``<cache>`` as for the default
model: ``$DIAGRAMMAR_CACHE`` or the user cache directory), written atomically under a lock.

>>> recipe = TranslatorRecipe(programs=8, epochs=1, hidden=16, layers=1, heads=2, batch=4)
>>> def examples(recipe):
...     return [(f".in r0\\nadd r1, r0, {k}\\n.out r1", f"mov r1, r0\\naddi r1, {k}")
...             for k in range(recipe.programs)]
>>> import tempfile
>>> model, vocabulary = translator(recipe, examples, cache_dir=tempfile.mkdtemp(),
...                                progress=False)
>>> model.config.num_hidden_layers, len(vocabulary)
(1, 69)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from diagrammar.models.default.cache import atomic_dir, cache_root, locked, write_json
from diagrammar.models.default.training import fixed_threads
from diagrammar.models.transpiler.vocabulary import Vocabulary

#: Bump when the training code changes what a recipe produces.
CODE_VERSION = 2
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class TranslatorRecipe:
    """Everything that determines the trained model: the corpus (``programs`` pairs from
    the train distribution, ``seed``, whether each block is also an example of its own
    (``blocks``) and whether registers are randomly renamed (``rename``); read by the
    ``examples`` function), the architecture and the optimisation."""

    name: str = "small"
    programs: int = 12000
    seed: int = 0
    blocks: bool = True
    rename: bool = True
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    epochs: int = 3
    batch: int = 32
    learning_rate: float = 2e-3
    warmup: int = 200
    threads: int = 2

    def hash(self) -> str:
        fields = {**asdict(self), "code": CODE_VERSION}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


DEFAULT_RECIPE = TranslatorRecipe()


def model_path(recipe: TranslatorRecipe = DEFAULT_RECIPE,
               cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``recipe``'s model is (or will be) cached."""
    return cache_root(cache_dir).parent / "transpiler-model" / f"{recipe.name}-{recipe.hash()}"


def _config(recipe: TranslatorRecipe, vocabulary: Vocabulary):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(vocabulary), hidden_size=recipe.hidden,
                       intermediate_size=3 * recipe.hidden, num_hidden_layers=recipe.layers,
                       num_attention_heads=recipe.heads, num_key_value_heads=recipe.heads,
                       max_position_embeddings=4096, tie_word_embeddings=True,
                       bos_token_id=vocabulary.bos, eos_token_id=vocabulary.eos,
                       pad_token_id=vocabulary.pad)


Examples = Callable[[TranslatorRecipe], list[tuple[str, str]]]


def training_examples(recipe: TranslatorRecipe, vocabulary: Vocabulary,
                      examples: Examples) -> list[list[int]]:
    """Token ids of the ``(source, target)`` pairs ``examples(recipe)`` gives."""
    return [vocabulary.encode_pair(source, target) for source, target in examples(recipe)]


def _batches(examples: list[list[int]], size: int, pad: int, sep: int,
             rng: random.Random) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches of similar lengths (right-padded), in random order; labels are -100 up to
    and including ``<sep>`` and on padding."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    chunks = [sorted(order[i:i + 50 * size], key=lambda j: len(examples[j]))
              for i in range(0, len(order), 50 * size)]
    groups = [chunk[i:i + size] for chunk in chunks for i in range(0, len(chunk), size)]
    rng.shuffle(groups)
    batches = []
    for group in groups:
        length = max(len(examples[j]) for j in group)
        ids = torch.full((len(group), length), pad, dtype=torch.long)
        labels = torch.full((len(group), length), -100, dtype=torch.long)
        for row, j in enumerate(group):
            example = torch.tensor(examples[j])
            ids[row, :len(example)] = example
            start = examples[j].index(sep) + 1
            labels[row, start:len(example)] = example[start:]
        batches.append((ids, (ids != pad).long(), labels))
    return batches


def train_translator(recipe: TranslatorRecipe, examples: Examples,
                     cache_dir: str | os.PathLike[str] | None = None, *,
                     progress: bool = True) -> Path:
    """Trains ``recipe``'s model on ``examples(recipe)`` and writes it to
    :func:`model_path`; returns the folder."""
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    vocabulary = Vocabulary()
    final = model_path(recipe, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    data = training_examples(recipe, vocabulary, examples)
    model = LlamaForCausalLM(_config(recipe, vocabulary))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate,
                                  weight_decay=0.01, betas=(0.9, 0.98))
    steps = recipe.epochs * math.ceil(len(data) / recipe.batch)
    losses: list[float] = []
    with fixed_threads(recipe.threads), tqdm(total=steps, desc="transpiler model",
                                             disable=not progress) as bar:
        model.train()
        step = 0
        for _ in range(recipe.epochs):
            for ids, mask, labels in _batches(data, recipe.batch, vocabulary.pad,
                                              vocabulary.sep, rng):
                warm = min(1.0, (step + 1) / recipe.warmup)
                cosine = 0.1 + 0.45 * (1 + math.cos(math.pi * step / max(1, steps)))
                for group in optimizer.param_groups:
                    group["lr"] = recipe.learning_rate * warm * cosine
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
    model.eval()
    with locked(final.parent, final.name), atomic_dir(final) as folder:
        model.save_pretrained(folder)
        write_json(folder / MANIFEST, {
            "recipe": asdict(recipe), "hash": recipe.hash(), "steps": steps,
            "examples": len(data),
            "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
            "train_seconds": round(time.perf_counter() - started, 1),
            "parameters": sum(p.numel() for p in model.parameters())})
    return final


def translator(recipe: TranslatorRecipe, examples: Examples,
               cache_dir: str | os.PathLike[str] | None = None, *, progress: bool = True):
    """``(model, vocabulary)``: the cached model for ``recipe``, trained on
    ``examples(recipe)`` first if missing. The model computes attention eagerly, so it can
    return attention weights."""
    from transformers import LlamaForCausalLM

    folder = model_path(recipe, cache_dir)
    if not (folder / MANIFEST).is_file():
        train_translator(recipe, examples, cache_dir, progress=progress)
    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager")
    model.eval()
    return model, Vocabulary()


def manifest(recipe: TranslatorRecipe = DEFAULT_RECIPE,
             cache_dir: str | os.PathLike[str] | None = None) -> dict | None:
    """The cached model's manifest (recipe, steps, final loss, training time), if any."""
    path = model_path(recipe, cache_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["TranslatorRecipe", "DEFAULT_RECIPE", "train_translator", "translator",
           "model_path", "manifest", "training_examples"]
