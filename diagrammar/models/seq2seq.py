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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
        words = sorted({word for sentence in sentences for word in tokenize(sentence, kind)})
        self.words = [*SPECIALS, *words]
        self.ids = {word: i for i, word in enumerate(self.words)}

    def encode(self, sentence: str) -> list[int]:
        return [self.ids.get(word, PAD) for word in tokenize(sentence, self.kind)]


def _positions(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length).unsqueeze(1)
    scale = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * scale)
    table[:, 1::2] = torch.cos(position * scale)
    return table


class Seq2Seq(nn.Module):
    """The encoder–decoder with its two vocabularies; :meth:`translate` decodes greedily."""

    def __init__(self, sources: Sequence[str], targets: Sequence[str],
                 config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
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
        return self.output(hidden)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        return self._decode(target_in, self._encode(source), source)

    @torch.no_grad()
    def translate(self, sources: Sequence[str], batch: int = 256, *,
                  temperature: float = 0.0, generator: torch.Generator | None = None
                  ) -> list[str]:
        """Greedy decoding (``temperature`` 0) or sampling at ``temperature``, up to
        ``config.max_output`` (default ``config.max_length``) output tokens each."""
        self.eval()
        results: list[str] = []
        for start in range(0, len(sources), batch):
            chunk = sources[start:start + batch]
            source = _pad([self.source_vocabulary.encode(s) for s in chunk])
            memory = self._encode(source)
            output = torch.full((len(chunk), 1), BOS, dtype=torch.long)
            done = torch.zeros(len(chunk), dtype=torch.bool)
            for _ in range(self.config.max_output or self.config.max_length):
                logits = self._decode(output, memory, source)[:, -1]
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    step = torch.multinomial(probs, 1, generator=generator)[:, 0]
                else:
                    step = logits.argmax(-1)
                step = torch.where(done, torch.full_like(step, PAD), step)
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
                results.append(detokenize(tokens, self.config.tokens))
        return results


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [PAD] * (width - len(row)) for row in rows])


def train_seq2seq(pairs: Sequence[tuple[str, str]], config: Seq2SeqConfig = Seq2SeqConfig(),
                  *, progress: bool = True,
                  checkpoint: Callable[[int, Seq2Seq], None] | None = None,
                  every: int = 500) -> Seq2Seq:
    """Train on ``(source, target)`` sentence pairs for ``config.steps`` batches (Adam
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
    for step in steps:
        batch = rng.sample(encoded, min(config.batch, len(encoded)))
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
