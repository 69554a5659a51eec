"""The training loop of the default model: batch schedule, learning rate, progress bar.

Everything here is deterministic: every random draw comes from a seeded generator, the number
of optimiser steps is fixed by the recipe (never by the clock) and torch runs with a fixed
number of threads.  Same machine + same recipe + same corpus gives the same weights.

Example (the batch schedule of a toy recipe: two steps of short windows, then full ones):
    >>> import torch
    >>> from diagrammar.models.default.recipes import Recipe
    >>> from diagrammar.models.default.training import batches
    >>> r = Recipe("x", 1, 8, 1, seq_len=8, batch_size=2, steps=3,
    ...            short_seq_len=4, short_seq_steps=2)
    >>> [tuple(b.shape) for b in batches(torch.arange(100), r, torch.Generator())]
    [(4, 5), (4, 5), (2, 9)]
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from .recipes import Recipe, training_precision

__all__ = ["batches", "fixed_threads", "lr_at", "train_model"]


@contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, restoring the old count afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- batch schedule


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


def batches(stream: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """The recipe's ``steps`` training batches: short windows first (if any), then full ones.

    Args:
        stream: the training corpus as one 1-D tensor of token ids.
        recipe: decides the window lengths, rows per batch and number of steps.
        gen: the generator of every random draw (window shifts and order).

    Returns:
        An iterator of ``(rows, window + 1)`` tensors; every batch holds
        ``recipe.batch_size * recipe.seq_len`` predicted tokens.

    Raises:
        ValueError: ``short_seq_len`` does not divide ``seq_len``, or the stream is too short.
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


def lr_at(step: int, recipe: Recipe) -> float:
    """Learning rate of ``step``: linear warm-up, then cosine decay to ``min_lr_ratio * lr``.

    Example:
        >>> r = Recipe("x", 1, 8, 1, steps=120, lr=1.0, warmup_steps=20, min_lr_ratio=0.1)
        >>> lr_at(0, r), lr_at(19, r), lr_at(70, r), lr_at(120, r)
        (0.05, 1.0, 0.55, 0.1)
    """
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    span = max(1, recipe.steps - recipe.warmup_steps)
    progress = min(1.0, (step - recipe.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return recipe.lr * (recipe.min_lr_ratio + (1.0 - recipe.min_lr_ratio) * cosine)


# --------------------------------------------------------------------------- training loop


def train_model(
    recipe: Recipe,
    tokenizer: PreTrainedTokenizerFast,
    train_ids: np.ndarray,
    *,
    precision: str | None = None,
    progress: bool = True,
) -> tuple[GPT2LMHeadModel, dict[str, Any]]:
    """Train a GPT-2 model of ``recipe`` on the token stream ``train_ids``.

    Deterministic for a fixed recipe, corpus and machine.  Warns (``RuntimeWarning``) once when
    the projected time exceeds ``recipe.time_budget_s``; the result is the same, only later.

    Args:
        recipe: shape, optimiser and batch schedule.
        tokenizer: gives the vocabulary size and the eos token.
        train_ids: the training corpus as one stream of token ids.
        precision: ``"bf16-autocast"`` or ``"fp32"``; default the best this CPU has.
        progress: show a progress bar (on stderr) with the smoothed training loss.

    Returns:
        The model (eval mode, float32) and a dict of training facts: ``train_seconds``,
        ``final_train_loss``, ``train_tokens_seen``, ``train_tokens_in_corpus``,
        ``precision``, ``threads``.

    Raises:
        ValueError: the tokenizer has no eos token, or the corpus is too small.
        FloatingPointError: the training loss became NaN or infinite.
    """
    precision = precision or training_precision()
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
            for step, batch in enumerate(batches(stream, recipe, gen)):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, recipe)
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
