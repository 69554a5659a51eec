"""The training recipe of the embedded default model (tokenizer, data, optimiser, evaluation).

Everything here is deterministic: the corpus is read in sorted order, the tokenizer trainer is
deterministic, every random draw comes from a seeded generator, the number of optimiser steps is
fixed by the recipe (never by the clock) and torch runs with a fixed number of threads.  Same
machine + same recipe gives the same weights.

Most users want :func:`diagrammar.models.default.default`; this module is the recipe itself.

Example (a few steps of a toy recipe; the real ones are in ``RECIPES``):
    >>> from diagrammar.models.default_training import RECIPES, train_tokenizer
    >>> sorted(RECIPES)
    ['small', 'tiny']
    >>> RECIPES["tiny"].n_positions >= 1024
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from .stdlib_corpus import HELDOUT_MODULES, Document

__all__ = [
    "EOS_TOKEN",
    "RECIPES",
    "TOKENIZER_RECIPE",
    "EvalResult",
    "Recipe",
    "TokenizerRecipe",
    "bf16_supported",
    "fixed_threads",
    "encode_documents",
    "evaluate",
    "train_model",
    "train_tokenizer",
]

#: Bumped whenever the training code changes in a way that changes the weights.
RECIPE_VERSION = 1

EOS_TOKEN = "<|endoftext|>"


@dataclass(frozen=True)
class TokenizerRecipe:
    """Byte-level BPE tokenizer recipe, shared by every size (so any size drafts for another)."""

    vocab_size: int = 4096
    min_frequency: int = 2
    eos_token: str = EOS_TOKEN
    version: int = RECIPE_VERSION

    def hash(self) -> str:
        """Short stable hash of the recipe fields."""
        return _hash_fields(dataclasses.asdict(self))


TOKENIZER_RECIPE = TokenizerRecipe()


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one default-model size.

    ``steps`` (not a time limit) decides how long training runs, so a recipe is reproducible;
    the first ``short_seq_steps`` steps may use shorter windows (``short_seq_len``, with
    proportionally more rows, so every step sees ``batch_size * seq_len`` tokens): cheaper
    attention and more varied batches early, while the final full-length steps still train
    every position embedding;
    ``time_budget_s`` is the target wall time on 2 cores, only used to warn when the projected
    time exceeds it.
    """

    size: str
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int = 1024
    seq_len: int = 1024
    batch_size: int = 4
    short_seq_len: int = 0  # 0 = every step uses seq_len
    short_seq_steps: int = 0  # leading steps on short windows (same tokens per step)
    steps: int = 256
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta2: float = 0.95
    grad_clip: float = 1.0
    dropout: float = 0.0
    seed: int = 1234
    threads: int = 2
    eval_seq_len: int = 1024
    eval_batch_size: int = 4
    eval_max_tokens: int = 0  # per held-out module; 0 = all (quick test recipes cap it)
    time_budget_s: float = 120.0

    def hash(self, precision: str, tokenizer: TokenizerRecipe = TOKENIZER_RECIPE) -> str:
        """Hash of everything that decides the weights (besides the corpus text and machine)."""
        fields = dataclasses.asdict(self)
        fields.pop("time_budget_s")
        return _hash_fields(
            {
                "recipe": fields,
                "tokenizer": dataclasses.asdict(tokenizer),
                "heldout": list(HELDOUT_MODULES),
                "precision": precision,
                "version": RECIPE_VERSION,
            }
        )

    def model_config(self, vocab_size: int, eos_id: int) -> GPT2Config:
        """The GPT-2 configuration of this size."""
        return GPT2Config(
            vocab_size=vocab_size,
            n_positions=self.n_positions,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=eos_id,
            tie_word_embeddings=True,
        )


#: The sizes.  Both start on 128-token windows (16 per step) and spend the last 20% of their
#: steps on full 1024-token windows (2 per step), so every position embedding is trained;
#: ``benchmarks/recipe_sweep.py`` measured that schedule, and 4 rather than 6 layers for
#: ``small``, as the best use of the budget (held-out loss at equal tokens, and faster).
#: ``tiny``: 1.05 M parameters, 512 steps of 2048 tokens (1 M tokens) on one thread, under
#: 2 minutes (tests, CI, drafting).  ``small``: 4.5 M parameters, 3000 steps of 2048 tokens
#: (6.1 M tokens, about 2.3 passes over the corpus), about 17 minutes on 2 cores (1001 s
#: measured), inside the 25-minute budget; one cached forward step costs a few ms, well above
#: the decode loop's own per-step overhead, like a real LLM.
RECIPES: dict[str, Recipe] = {
    "tiny": Recipe(
        size="tiny",
        n_layer=2,
        n_embd=128,
        n_head=4,
        batch_size=2,
        short_seq_len=128,
        short_seq_steps=410,
        steps=512,
        lr=3e-3,
        warmup_steps=30,
        # One thread: tiny's matrices gain little from two, and a single thread does not
        # collapse when the (shared, 2-core) machine is busy, as two OpenMP threads do.
        threads=1,
        time_budget_s=120.0,
    ),
    "small": Recipe(
        size="small",
        n_layer=4,
        n_embd=256,
        n_head=4,
        batch_size=2,
        short_seq_len=128,
        short_seq_steps=2400,
        steps=3000,
        lr=2e-3,
        warmup_steps=180,
        time_budget_s=25 * 60.0,
    ),
}


def _hash_fields(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def bf16_supported() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX).

    Training uses bfloat16 autocast only there (about 2-3x faster); elsewhere it stays float32.
    The choice is part of the recipe hash and the manifest.
    """
    if platform.system() != "Linux":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, restoring the old count afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(
    docs: Sequence[Document], recipe: TokenizerRecipe = TOKENIZER_RECIPE
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE tokenizer on ``docs`` and wrap it for Hugging Face.

    Byte-level means every string round-trips exactly (``decode(encode(s)) == s``).

    Example:
        >>> from diagrammar.models.stdlib_corpus import Document
        >>> tok = train_tokenizer([Document("a.py", "def f(x):\\n    return x\\n" * 50)],
        ...                       TokenizerRecipe(vocab_size=300))
        >>> tok.decode(tok("def g(y):\\n\\treturn y")["input_ids"])
        'def g(y):\\n\\treturn y'
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        special_tokens=[recipe.eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((d.text for d in docs), trainer=trainer, length=len(docs))
    return wrap_tokenizer(tok, recipe.eos_token)


def wrap_tokenizer(tok: Tokenizer, eos_token: str = EOS_TOKEN) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers.Tokenizer`` as a ``PreTrainedTokenizerFast`` with eos = pad = bos."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=eos_token,
        eos_token=eos_token,
        unk_token=eos_token,
        pad_token=eos_token,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )


def encode_documents(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> np.ndarray:
    """Token ids of ``texts`` as one stream, each text preceded by the eos token."""
    eos = tokenizer.eos_token_id
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    pieces: list[np.ndarray] = []
    for enc in encodings:
        pieces.append(np.array([eos], dtype=np.int32))
        pieces.append(np.asarray(enc.ids, dtype=np.int32))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)


# --------------------------------------------------------------------------- data


def _windows(
    stream: torch.Tensor, seq_len: int, batch_size: int, steps: int, gen: torch.Generator
) -> Iterator[torch.Tensor]:
    """``steps`` batches of ``seq_len + 1`` token windows.

    Each pass over the stream starts at a random shift and visits every window once, in a
    random order; so repeated passes see differently aligned windows.
    """
    n_windows = (len(stream) - 1) // seq_len - 1
    if n_windows < batch_size:
        raise ValueError(f"corpus too small: {len(stream)} tokens for windows of {seq_len}")
    order: list[int] = []
    emitted = 0
    while emitted < steps:
        if len(order) < batch_size:
            shift = int(torch.randint(0, seq_len, (1,), generator=gen))
            perm = torch.randperm(n_windows, generator=gen)
            order.extend((shift + perm * seq_len).tolist())
        starts, order = order[:batch_size], order[batch_size:]
        yield torch.stack([stream[s : s + seq_len + 1] for s in starts])
        emitted += 1


def _batches(stream: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """The recipe's ``steps`` training batches: short windows first (if any), then full ones.

    Example:
        >>> r = Recipe("x", 1, 8, 1, seq_len=8, batch_size=2, steps=3,
        ...            short_seq_len=4, short_seq_steps=2)
        >>> [tuple(b.shape) for b in _batches(torch.arange(100), r, torch.Generator())]
        [(4, 5), (4, 5), (2, 9)]
    """
    short = min(recipe.short_seq_steps, recipe.steps) if recipe.short_seq_len else 0
    if short:
        if recipe.seq_len % recipe.short_seq_len:
            raise ValueError(
                f"short_seq_len {recipe.short_seq_len} must divide seq_len {recipe.seq_len}"
            )
        rows = recipe.batch_size * (recipe.seq_len // recipe.short_seq_len)
        yield from _windows(stream, recipe.short_seq_len, rows, short, gen)
    yield from _windows(stream, recipe.seq_len, recipe.batch_size, recipe.steps - short, gen)


def _lr_at(step: int, recipe: Recipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    span = max(1, recipe.steps - recipe.warmup_steps)
    progress = min(1.0, (step - recipe.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return recipe.lr * (recipe.min_lr_ratio + (1.0 - recipe.min_lr_ratio) * cosine)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalResult:
    """Held-out cross-entropy (nats/token), next-token accuracy and token count."""

    loss: float
    accuracy: float
    tokens: int
    per_module: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@torch.inference_mode()
def evaluate(
    model: GPT2LMHeadModel,
    streams: dict[str, np.ndarray],
    seq_len: int = 1024,
    batch_size: int = 4,
) -> EvalResult:
    """Next-token loss and accuracy of ``model`` on each stream, in float32.

    Each stream is cut into consecutive, non-overlapping windows of up to ``seq_len + 1``
    tokens; every token after the first of a window is predicted from the tokens before it
    in that window.
    """
    was_training = model.training
    model.eval()
    total_loss, total_correct, total = 0.0, 0, 0
    per_module: dict[str, dict[str, float]] = {}
    for name, ids in streams.items():
        windows = [
            torch.from_numpy(ids[s : s + seq_len + 1].astype(np.int64))
            for s in range(0, max(1, len(ids) - 1), seq_len)
        ]
        windows = [w for w in windows if len(w) >= 2]
        m_loss, m_correct, m_total = 0.0, 0, 0
        # Same-length windows batch together; the last (shorter) one goes alone.
        for i in range(0, len(windows), batch_size):
            group = windows[i : i + batch_size]
            for chunk in _same_length_groups(group):
                batch = torch.stack(chunk)
                inputs = batch[:, :-1]
                mask = torch.ones_like(inputs)  # eos doubles as pad: say there is no padding
                logits = model(input_ids=inputs, attention_mask=mask).logits.float()
                target = batch[:, 1:]
                loss = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
                )
                m_loss += float(loss)
                m_correct += int((logits.argmax(-1) == target).sum())
                m_total += target.numel()
        per_module[name] = {
            "loss": m_loss / max(1, m_total),
            "accuracy": m_correct / max(1, m_total),
            "tokens": m_total,
        }
        total_loss += m_loss
        total_correct += m_correct
        total += m_total
    model.train(was_training)
    return EvalResult(
        loss=total_loss / max(1, total),
        accuracy=total_correct / max(1, total),
        tokens=total,
        per_module=per_module,
    )


def _same_length_groups(windows: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[int, list[torch.Tensor]] = {}
    for w in windows:
        groups.setdefault(len(w), []).append(w)
    return list(groups.values())


# --------------------------------------------------------------------------- training


def train_model(
    recipe: Recipe,
    tokenizer: PreTrainedTokenizerFast,
    train_ids: np.ndarray,
    *,
    precision: str | None = None,
    progress: bool = True,
) -> tuple[GPT2LMHeadModel, dict[str, Any]]:
    """Train a GPT-2 model of ``recipe`` on the token stream ``train_ids``.

    Returns the model (eval mode, float32) and a dict of training facts (wall time, final
    training loss, tokens seen, precision).  Deterministic for a fixed recipe, corpus and
    machine.
    """
    precision = precision or ("bf16-autocast" if bf16_supported() else "fp32")
    use_bf16 = precision == "bf16-autocast"
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos token")
    started = time.perf_counter()
    with fixed_threads(recipe.threads):
        torch.manual_seed(recipe.seed)
        model = GPT2LMHeadModel(recipe.model_config(len(tokenizer), eos))
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": recipe.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=recipe.lr,
            betas=(0.9, recipe.beta2),
            eps=1e-8,
        )
        gen = torch.Generator().manual_seed(recipe.seed + 1)
        stream = torch.from_numpy(train_ids.astype(np.int64))
        bar = tqdm(
            total=recipe.steps,
            desc=f"training default model [{recipe.size}]",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
            # In a log file (not a terminal) a line every few seconds is plenty.
            mininterval=0.25 if sys.stderr.isatty() else 5.0,
        )
        warned = False
        smoothed: float | None = None
        loss_value = float("nan")
        try:
            for step, batch in enumerate(_batches(stream, recipe, gen)):
                for group in opt.param_groups:
                    group["lr"] = _lr_at(step, recipe)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(input_ids=batch[:, :-1]).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                opt.step()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"training loss became {loss_value} at step {step}")
                smoothed = loss_value if smoothed is None else 0.9 * smoothed + 0.1 * loss_value
                bar.set_postfix(loss=f"{smoothed:.3f}", refresh=False)
                bar.update(1)
                if not warned and step + 1 == max(5, recipe.steps // 20):
                    projected = (time.perf_counter() - started) / (step + 1) * recipe.steps
                    if projected > recipe.time_budget_s:
                        warned = True
                        warnings.warn(
                            f"default model [{recipe.size}]: projected training time "
                            f"{projected:.0f}s exceeds the {recipe.time_budget_s:.0f}s target "
                            "(busy or slow machine); the result will be the same, only later",
                            RuntimeWarning,
                            stacklevel=2,
                        )
        finally:
            bar.close()
        model.eval()
    facts = {
        "train_seconds": time.perf_counter() - started,
        "final_train_loss": smoothed if smoothed is not None else loss_value,
        "train_tokens_seen": recipe.steps * recipe.batch_size * recipe.seq_len,
        "train_tokens_in_corpus": int(len(train_ids)),
        "precision": precision,
        "threads": recipe.threads,
    }
    return model, facts
