"""What the transpiler model guesses, as Guess & Sketch uses it: beam candidates, and for
every guessed token its probability, its *alternatives* (the most likely tokens, up to
those covering ``coverage`` = 0.99 of the probability) and, for every guessed line, the
source line it attends to most (attention averaged over layers and heads, summed over the
line's tokens and each source line's tokens): the alignment of target lines to source
lines.

A line is *uncertain* when one of its tokens has more than one alternative; Guess & Sketch
turns the immediates of uncertain lines into holes
(:func:`~diagrammar.symbolic.sketch.holes_from_guess`).

>>> import tempfile
>>> from diagrammar.models.transpiler.training import TranslatorRecipe, translator
>>> recipe = TranslatorRecipe(programs=8, epochs=1, hidden=16, layers=1, heads=2, batch=4)
>>> def examples(recipe):
...     return [(f".in r0\\nadd r1, r0, {k}\\n.out r1", f"mov r1, r0\\naddi r1, {k}")
...             for k in range(recipe.programs)]
>>> model, vocabulary = translator(recipe, examples, cache_dir=tempfile.mkdtemp(),
...                                progress=False)
>>> source = ".width 32\\n.in r0\\nadd r1, r0, 7\\n.out r1"
>>> guesses = guess(model, vocabulary, source, beams=2, max_new_tokens=12)
>>> len(guesses), guesses[0].text.splitlines()[0], guesses[0].text.splitlines()[-1]
(2, '.width 32', '.out r1')
>>> all(len(g.alignment) == len(g.lines) for g in guesses)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from diagrammar.models.transpiler.vocabulary import Vocabulary


@dataclass(frozen=True)
class TokenGuess:
    """One guessed token: its text, probability and alternatives ``(token, probability)``,
    most likely first (the guessed token is among them unless it fell outside ``coverage``
    under beam search)."""

    token: str
    probability: float
    alternatives: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Guess:
    """One beam candidate: ``text`` (the source's header lines, the guessed ``lines``, the
    source's trailing ``.out`` lines), the beam's ``log_probability``, the ``tokens`` of
    each guessed line, and ``alignment``: for each guessed line the 1-based line of the
    source text it attends to most. ``first_line`` is the 1-based text line of
    ``lines[0]``."""

    text: str
    lines: tuple[str, ...]
    log_probability: float
    tokens: tuple[tuple[TokenGuess, ...], ...]
    alignment: tuple[int, ...]
    first_line: int

    def uncertain_lines(self) -> tuple[int, ...]:
        """Text lines (1-based) with a token that has more than one alternative."""
        return tuple(self.first_line + i for i, tokens in enumerate(self.tokens)
                     if any(len(t.alternatives) > 1 for t in tokens))

    def confidence(self) -> tuple[float, ...]:
        """Each guessed line's smallest token probability."""
        return tuple(min((t.probability for t in tokens), default=1.0)
                     for tokens in self.tokens)


def _frame(source: str) -> tuple[list[str], list[str]]:
    lines = source.strip("\n").split("\n")
    head = 0
    while head < len(lines) and lines[head].strip().startswith("."):
        head += 1
    tail = len(lines)
    while tail > head and lines[tail - 1].strip().startswith("."):
        tail -= 1
    return lines[:head], lines[tail:]


def _alternatives(probs: torch.Tensor, vocabulary: Vocabulary, coverage: float,
                  most: int) -> tuple[tuple[str, float], ...]:
    values, ids = torch.sort(probs, descending=True)
    chosen, total = [], 0.0
    for value, i in zip(values[:most].tolist(), ids[:most].tolist()):
        chosen.append((vocabulary.tokens[i], value))
        total += value
        if total >= coverage:
            break
    return tuple(chosen)


@torch.no_grad()
def guess(model, vocabulary: Vocabulary, source: str, *, beams: int = 4,
          coverage: float = 0.99, max_new_tokens: int | None = None,
          most_alternatives: int = 8) -> list[Guess]:
    """The ``beams`` best translations of the three-address ``source`` by beam search, best
    first, each with its token alternatives and line alignment (module docstring).
    ``max_new_tokens`` defaults to six times the source's token count."""
    prompt = vocabulary.encode_pair(source)
    budget = max_new_tokens or 6 * len(prompt) + 16
    ids = torch.tensor([prompt])
    output = model.generate(ids, attention_mask=torch.ones_like(ids), num_beams=beams,
                            num_return_sequences=beams, max_new_tokens=budget,
                            do_sample=False, eos_token_id=vocabulary.eos,
                            pad_token_id=vocabulary.pad, output_scores=True,
                            return_dict_in_generate=True)
    sequences = output.sequences
    scores = getattr(output, "sequences_scores", None)
    scores = scores.tolist() if scores is not None else [float("nan")] * len(sequences)
    head, tail = _frame(source)
    # source token positions -> 1-based source text lines
    source_line, line = [], 1
    for token in prompt[1:-1]:
        source_line.append(line)
        line += token == vocabulary.newline
    guesses = []
    for sequence, score in zip(sequences.tolist(), scores):
        generated = sequence[len(prompt):]
        while generated and generated[-1] == vocabulary.pad:
            generated.pop()
        if vocabulary.eos in generated:
            generated = generated[:generated.index(vocabulary.eos)]
        guesses.append(_annotate(model, vocabulary, prompt, generated, source_line, head,
                                 tail, score, coverage, most_alternatives))
    return guesses


def _annotate(model, vocabulary, prompt, generated, source_line, head, tail, score,
              coverage, most) -> Guess:
    full = torch.tensor([prompt + generated])
    out = model(input_ids=full, output_attentions=True)
    probs = torch.softmax(out.logits[0].float(), dim=-1)
    attention = torch.stack([a[0].float() for a in out.attentions]).mean(dim=(0, 1))
    start = len(prompt)
    lines_tokens: list[list[TokenGuess]] = [[]]
    lines_ids: list[list[int]] = [[]]
    line_weights: list[torch.Tensor] = []
    weights = torch.zeros(max(source_line, default=0) + 1)
    for offset, token in enumerate(generated):
        query = start + offset - 1  # the position whose prediction is this token
        p = probs[query]
        token_guess = TokenGuess(vocabulary.tokens[token], float(p[token]),
                                 _alternatives(p, vocabulary, coverage, most))
        row = attention[query, 1:1 + len(source_line)]
        weights.index_add_(0, torch.tensor(source_line), row)
        if token == vocabulary.newline:
            line_weights.append(weights)
            weights = torch.zeros_like(weights)
            lines_tokens[-1].append(token_guess)
            lines_tokens.append([])
            lines_ids.append([])
        else:
            lines_tokens[-1].append(token_guess)
            lines_ids[-1].append(token)
    if lines_ids[-1]:
        line_weights.append(weights)
    else:
        lines_tokens.pop()
        lines_ids.pop()
    first_instruction, last_instruction = len(head) + 1, max(source_line, default=1) - len(tail)
    alignment = []
    for w in line_weights:
        inside = w[first_instruction:last_instruction + 1]
        alignment.append(first_instruction + int(torch.argmax(inside)) if len(inside)
                         else first_instruction)
    lines = tuple(vocabulary.decode(ids) for ids in lines_ids)
    text = "\n".join([*head, *lines, *tail])
    if not math.isfinite(score):  # greedy search reports no score: sum the token log-probs
        score = sum(math.log(max(t.probability, 1e-30)) for ts in lines_tokens for t in ts)
    log_probability = score
    return Guess(text, lines, log_probability, tuple(tuple(t) for t in lines_tokens),
                 tuple(alignment), len(head) + 1)


__all__ = ["Guess", "TokenGuess", "guess"]
