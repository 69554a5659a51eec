"""A small Transformer encoder–decoder for word-sequence to word-sequence tasks, trained
from scratch: the neural baseline NSR is compared with on SCAN (Vaswani et al.'s
architecture with sinusoidal positions, as in the SCAN baselines; scaled down to CPU
minutes).

>>> pairs = [("walk", "WALK"), ("walk twice", "WALK WALK"), ("run", "RUN"),
...          ("run twice", "RUN RUN")] * 8
>>> model = train_seq2seq(pairs, Seq2SeqConfig(steps=200, dim=32, layers=1, batch=8,
...                                     dropout=0.0),
...                       progress=False)
>>> model.translate(["walk twice", "run"])
['WALK WALK', 'RUN']
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Architecture and optimisation of the baseline."""

    dim: int = 64
    heads: int = 4
    layers: int = 2
    feedforward: int = 256
    dropout: float = 0.1
    steps: int = 6000
    batch: int = 64
    learning_rate: float = 1e-3
    max_length: int = 64
    seed: int = 0
    #: ``"words"``: space-separated words (output words joined by spaces); ``"pieces"``:
    #: letters runs, single digits, single spaces and single other characters, joined back
    #: exactly — for text with numbers and punctuation (SQL, table cells); ``"spaced"``: as
    #: pieces, but a single space joins the piece after it (about a third fewer tokens).
    tokens: str = "words"
    #: the most tokens :meth:`Seq2Seq.translate` writes (None: ``max_length``); lets a model
    #: read long inputs (positions: ``2 * max_length``) but write short outputs.
    max_output: int | None = None
    #: a copy mechanism (pointer-generator, See et al. 2017): source and target share one
    #: vocabulary, and each output token is a mixture, weighed by a learned gate, of the
    #: vocabulary softmax and an attention over the source tokens — so a token is copied
    #: from the input (digits of a number, a name in a cell) instead of learned word by word.
    copy: bool = False
    #: batches drawn from buckets of pairs of similar length (the pairs sorted by length,
    #: cut into buckets of ``8 * batch``; each step a random bucket, weighed by its size,
    #: then a random batch of it): every pair is as likely as before, but short pairs are
    #: no longer padded to the longest of a mixed batch — much less compute where lengths
    #: differ widely (Binder's parse and map pairs).
    bucket: bool = False


ALPHABET = string.ascii_letters + string.digits + string.punctuation
"""Characters a 'pieces' or 'spaced' vocabulary always has as tokens (alone, and after a
space): a grammar constraining the output can always be followed to its end, character by
character, even where the training targets never spelled what it needs."""

_PIECES = re.compile(r"[A-Za-z_]+|\d| |[^A-Za-z_\d ]")
_SPACED = re.compile(r" ?[A-Za-z_]+| ?\d| ?[^A-Za-z_\d ]| ")


def tokenize(text: str, kind: str = "words") -> list[str]:
    """``text`` as tokens: words, or pieces (see :class:`Seq2SeqConfig`).

    >>> tokenize("W 24-17 (OT)", "pieces")
    ['W', ' ', '2', '4', '-', '1', '7', ' ', '(', 'OT', ')']
    >>> tokenize("W 24-17  (OT)", "spaced")
    ['W', ' 2', '4', '-', '1', '7', ' ', ' (', 'OT', ')']
    """
    if kind == "words":
        return text.split()
    if kind == "pieces":
        return _PIECES.findall(text)
    if kind == "spaced":
        return _SPACED.findall(text)
    raise ValueError(f"tokens are 'words', 'pieces' or 'spaced', not {kind!r}")


def detokenize(tokens: Sequence[str], kind: str = "words") -> str:
    """The text of ``tokens``: the inverse of :func:`tokenize` (up to spacing, for words)."""
    return " ".join(tokens) if kind == "words" else "".join(tokens)


class _Vocabulary:
    def __init__(self, sentences: Sequence[str], kind: str) -> None:
        self.kind = kind
        words = {word for sentence in sentences for word in self.tokens(sentence)}
        if kind != "words":   # every printable character, alone and after a space: any
            words |= set(ALPHABET) | {" " + c for c in ALPHABET} | {" "}  # text is spellable
        words = sorted(words)
        self.words = [*SPECIALS, *words]
        self.ids = {word: i for i, word in enumerate(self.words)}

    def encode(self, sentence: str) -> list[int]:
        return [self.ids.get(word, PAD) for word in self.tokens(sentence)]

    def tokens(self, sentence: str) -> list[str]:
        # 'spaced' text is read as if after a space, so a word is one token wherever it
        # stands (first in an output, or after a space in an input): what copying needs
        return tokenize(" " + sentence if self.kind == "spaced" else sentence, self.kind)

    def decode(self, tokens: Sequence[str]) -> str:
        text = detokenize(tokens, self.kind)
        return text[1:] if self.kind == "spaced" and text.startswith(" ") else text


def _positions(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length).unsqueeze(1)
    scale = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)
    return table


class Seq2Seq(nn.Module):
    """The encoder–decoder with its two vocabularies (one shared, with ``config.copy``);
    :meth:`translate` decodes greedily or samples."""

    def __init__(self, sources: Sequence[str], targets: Sequence[str],
                 config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        if config.copy:  # one vocabulary: a source token's id is its id as an output
            self.source_vocabulary = _Vocabulary([*sources, *targets], config.tokens)
            self.target_vocabulary = self.source_vocabulary
        else:
            self.source_vocabulary = _Vocabulary(sources, config.tokens)
            self.target_vocabulary = _Vocabulary(targets, config.tokens)
        self.source_embedding = nn.Embedding(len(self.source_vocabulary.words), config.dim)
        self.target_embedding = nn.Embedding(len(self.target_vocabulary.words), config.dim)
        self.register_buffer("positions", _positions(2 * config.max_length, config.dim))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(config.dim, config.heads, config.feedforward,
                                       config.dropout, batch_first=True),
            config.layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(config.dim, config.heads, config.feedforward,
                                       config.dropout, batch_first=True), config.layers)
        self.output = nn.Linear(config.dim, len(self.target_vocabulary.words))
        if config.copy:
            self.copy_query = nn.Linear(config.dim, config.dim)
            self.copy_key = nn.Linear(config.dim, config.dim)
            self.copy_gate = nn.Linear(2 * config.dim, 1)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.positions.shape[0]:
            raise ValueError(f"a sequence of {ids.shape[1]} tokens is longer than the "
                             f"{self.positions.shape[0]} positions of this model "
                             "(2 * config.max_length)")
        return embedding(ids) * math.sqrt(self.config.dim) + self.positions[:ids.shape[1]]

    def _encode(self, source: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._embed(self.source_embedding, source),
                            src_key_padding_mask=source == PAD)

    def _decode(self, target_in: torch.Tensor, memory: torch.Tensor,
                source: torch.Tensor) -> torch.Tensor:
        length = target_in.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool).triu(1)
        hidden = self.decoder(self._embed(self.target_embedding, target_in), memory,
                              tgt_mask=causal, tgt_key_padding_mask=target_in == PAD,
                              memory_key_padding_mask=source == PAD)
        if not self.config.copy:
            return self.output(hidden)
        return self._mix(hidden, memory, source)

    def _mix(self, hidden: torch.Tensor, memory: torch.Tensor,
             source: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the copy mechanism: ``gate * softmax(vocabulary logits) +
        (1 - gate) * attention mass on each source token's id``. Normalised, so
        cross-entropy, argmax and tempered sampling use them as they use logits."""
        scores = self.copy_query(hidden) @ self.copy_key(memory).transpose(1, 2)
        scores = scores / math.sqrt(self.config.dim)
        attention = torch.softmax(scores.masked_fill((source == PAD)[:, None, :], -1e9), -1)
        context = attention @ memory
        gate = torch.sigmoid(self.copy_gate(torch.cat([hidden, context], dim=-1)))
        vocabulary = torch.softmax(self.output(hidden), dim=-1)
        index = source[:, None, :].expand(-1, hidden.shape[1], -1)
        copied = torch.zeros_like(vocabulary).scatter_add(2, index, attention)
        return (gate * vocabulary + (1 - gate) * copied).clamp_min(1e-12).log()

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        return self._decode(target_in, self._encode(source), source)

    @torch.no_grad()
    def translate(self, sources: Sequence[str], batch: int = 256, *,
                  temperature: float = 0.0, generator: torch.Generator | None = None,
                  matchers: Sequence[Any] | None = None) -> list[str]:
        """Greedy decoding (``temperature`` 0) or sampling at ``temperature``, up to
        ``config.max_output`` (default ``config.max_length``) output tokens each.

        ``matchers`` (one per source, or None for a free one) constrain the output: each
        step only the tokens ``matcher.allowed()`` marks (a boolean array over the target
        vocabulary) may be chosen, and the chosen one is passed to ``matcher.advance``:
        a grammar engine's matcher compiled against the target vocabulary's words, for
        one (:mod:`diagrammar.functors.table_qa` wires one)."""
        if matchers is not None and len(matchers) != len(sources):
            raise ValueError(f"{len(matchers)} matchers for {len(sources)} sources")
        self.eval()
        results: list[str] = []
        for start in range(0, len(sources), batch):
            chunk = sources[start:start + batch]
            guides = list(matchers[start:start + batch]) if matchers is not None else None
            source = _pad([self.source_vocabulary.encode(s) for s in chunk])
            memory = self._encode(source)
            output = torch.full((len(chunk), 1), BOS, dtype=torch.long)
            done = torch.zeros(len(chunk), dtype=torch.bool)
            for _ in range(self.config.max_output or self.config.max_length):
                logits = self._decode(output, memory, source)[:, -1]
                if guides is not None:
                    logits = _constrain(logits, guides, done)
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    step = torch.multinomial(probs, 1, generator=generator)[:, 0]
                else:
                    step = logits.argmax(-1)
                step = torch.where(done, torch.full_like(step, PAD), step)
                if guides is not None:
                    for row, guide in enumerate(guides):
                        if guide is not None and not done[row]:
                            guide.advance([int(step[row])])
                output = torch.cat([output, step[:, None]], dim=1)
                done |= step == EOS
                if done.all():
                    break
            words = self.target_vocabulary.words
            for row in output[:, 1:].tolist():
                tokens = []
                for token in row:
                    if token in (EOS, PAD):
                        break
                    tokens.append(words[token])
                results.append(self.target_vocabulary.decode(tokens))
        return results


def _constrain(logits: torch.Tensor, guides: Sequence[Any],
               done: torch.Tensor) -> torch.Tensor:
    """``logits`` with the tokens each row's matcher forbids at minus infinity (rows with
    no matcher, or done, untouched; a matcher that allows nothing lets the output end)."""
    allowed = torch.ones_like(logits, dtype=torch.bool)
    for row, guide in enumerate(guides):
        if guide is None or done[row]:
            continue
        mask = torch.from_numpy(np.asarray(guide.allowed(), dtype=bool)[:logits.shape[1]])
        if not mask.any():
            mask[EOS] = True
        allowed[row] = mask
    return logits.masked_fill(~allowed, float("-inf"))


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [PAD] * (width - len(row)) for row in rows])


def _buckets(encoded: Sequence[tuple[list[int], list[int]]],
             size: int) -> list[list[tuple[list[int], list[int]]]]:
    ordered = sorted(encoded, key=lambda pair: (len(pair[0]), len(pair[1])))
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]


def train_seq2seq(pairs: Sequence[tuple[str, str]], config: Seq2SeqConfig = Seq2SeqConfig(),
                  *, progress: bool = True,
                  checkpoint: Callable[[int, Seq2Seq], None] | None = None,
                  every: int = 500) -> Seq2Seq:
    """Train on ``(source, target)`` sentence pairs for ``config.steps`` batches (drawn
    uniformly, or from length buckets with ``config.bucket``; Adam
    with a linear warm-up over the first 5% and a cosine decay, cross-entropy with teacher
    forcing), seeded. ``checkpoint(step, model)`` is called
    every ``every`` steps and at the end (the model in eval mode; training resumes after)."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = Seq2Seq([s for s, _ in pairs], [t for _, t in pairs], config)
    encoded = [(model.source_vocabulary.encode(s),
                [BOS, *model.target_vocabulary.encode(t), EOS]) for s, t in pairs]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    warmup = max(config.steps // 20, 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(
        (step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * step / config.steps))))
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    steps = range(config.steps)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="seq2seq", unit="batch", leave=False)
    model.train()
    size = min(config.batch, len(encoded))
    pools = _buckets(encoded, 8 * size) if config.bucket else [encoded]
    weights = [len(pool) for pool in pools]
    for step in steps:
        pool = rng.choices(pools, weights)[0] if len(pools) > 1 else pools[0]
        batch = rng.sample(pool, min(size, len(pool)))
        source = _pad([s for s, _ in batch])
        target = _pad([t for _, t in batch])
        logits = model(source, target[:, :-1])
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if checkpoint is not None and (step + 1) % every == 0 and step + 1 < config.steps:
            model.eval()
            checkpoint(step + 1, model)
            model.train()
    model.eval()
    if checkpoint is not None:
        checkpoint(config.steps, model)
    return model
