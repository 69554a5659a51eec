"""Grammar-aligned sampling: ASAp, the sampler whose outputs follow the model's distribution
*conditioned on* the grammar, where plain masking does not.

Grammar-constrained decoding (GCD) masks the tokens a grammar refuses and renormalises, step by
step. Its outputs are grammatical, but their probabilities are not the model's conditioned on
the grammar: a prefix whose grammatical continuations are unlikely under the model is taken as
often as the model takes that prefix at all. "Grammar-Aligned Decoding" (Park et al., 2024)
calls sampling from the exact conditional ``P(w | w in L)`` *grammar-aligned decoding* and
gives ASAp (adaptive sampling with approximate expected futures), implemented here.

**The expected future grammaticality** of a prefix ``w`` is
``EFG(w) = sum of P(c | w) over the completions c with w·c in L``. Sampling each token with
probability proportional to ``P(t | w) · EFG(w·t)`` is exactly ``P(w | L)``; ASAp keeps a trie
of the prefixes it has sampled, each with an over-approximation ``EFG~`` of that value:

- a token the grammar allows and that was never sampled after ``w`` counts as 1 (a token it
  refuses as 0), so the first sample is a GCD sample;
- the end token counts as 1 where the grammar accepts (the future of a complete output is
  certain);
- after each complete sample, the prefixes along its path are refined bottom-up:
  ``EFG~(w) = sum_t P(t | w) · EFG~(w·t)``, with the children's refined values.

The values only decrease towards the true ``EFG`` and, where every prefix has been refined, are
exact; the sampling distribution converges to the exact conditional. :meth:`AlignedSampler.
probability` gives the probability the *current* state assigns to an output, exactly (the
product of the normalised weights along its path), so convergence can be measured without
sampling noise (``tests/decoding/test_aligned.py``; ``benchmarks/gad_kl.py``).

**Choices of this implementation** (the paper's setting is Lark/EBNF grammars on 7B models):

- *Outputs are bounded.* An output has at most ``max_new_tokens`` tokens, the end token
  included, and this bound is part of the grammar: a content token is allowed only where an end
  token can still follow it. The exact conditional is then a finite distribution, and the
  sampler learns which prefixes cannot finish within the bound like any other dead end.
- *Dead ends.* A prefix after which nothing can follow (the grammar allows nothing, the bound
  leaves no room, or the model gives every allowed token probability 0) gets ``EFG~ = 0``; the
  sampler refines the path to it and starts the sample again from the root. When the root's
  value reaches 0, no output remains: :class:`EmptyLanguageError`.
- *End tokens* are the model's ``eos_token_ids`` (or ``end_tokens``), allowed exactly where the
  matcher is accepting; what the matcher's mask says about them is not consulted. An output
  ends with one of them.
- *Scores.* Next-token distributions are a temperature-1 softmax in float64 of the model's
  scores, computed once per prefix and kept in the trie (nothing is recomputed across samples);
  ``EFG~`` values are kept as logarithms, so long outputs do not underflow. One session is
  moved from prefix to prefix with ``truncate`` and ``verify`` (the prompt is prefilled once).
- *GCD for comparison.* ``AlignedSampler(..., adaptive=False)`` samples by plain masking (with
  the same length bound) and never learns; when it hits a dead end it starts again, which is
  what a user of GCD would do with an output that cannot end. :meth:`AlignedSampler.
  gcd_probability` is the probability of one plain-masking descent.

The whole trie stays in memory (two float64 numbers per allowed token of every prefix
visited): a sampler is meant for many samples of one prompt, as in the paper.

>>> import numpy as np
>>> class Unigram:                  # a toy model: 0 = "a", 1 = "b", 2 = end, whatever came before
...     eos_token_ids, vocab_size = frozenset({2}), 3
...     def check_length(self, prompt_length, max_new_tokens): pass
...     def session(self, prompt):
...         return self
...     def verify(self, root, tokens, parents):
...         return np.log(np.tile([0.6, 0.2, 0.2], (1 + len(tokens), 1)))
...     def keep(self, path): pass
...     def truncate(self, length): pass
>>> class AAorB:                    # the language {"aa", "b"}, as a matcher
...     def __init__(self): self.seen = []
...     def allowed(self):
...         return np.array([self.seen in ([], [0]), self.seen == [], False])
...     def advance(self, tokens): self.seen += list(tokens); return True
...     def rollback(self, count): del self.seen[len(self.seen) - count:]
...     def is_accepting(self): return self.seen in ([0, 0], [1])
...     def is_stopped(self): return self.is_accepting()
>>> class Grammar:
...     def matcher(self): return AAorB()
>>> sampler = AlignedSampler(Grammar(), Unigram(), prompt=[2], max_new_tokens=4)
>>> exact = {(0, 0, 2): .6 * .6 * .2, (1, 2): .2 * .2}      # P(w), then P(w | L):
>>> exact = {w: p / sum(exact.values()) for w, p in exact.items()}
>>> [round(exact[w], 3) for w in sorted(exact)]
[0.643, 0.357]
>>> [round(sampler.probability(w), 3) for w in sorted(exact)]     # iteration 0: GCD
[0.75, 0.25]
>>> rng = np.random.default_rng(0)
>>> outputs = {tuple(sampler.sample(rng)) for _ in range(20)}
>>> sorted(outputs)
[(0, 0, 2), (1, 2)]
>>> [round(sampler.probability(w), 3) for w in sorted(exact)]     # ASAp, refined
[0.643, 0.357]
>>> [round(sampler.gcd_probability(w), 3) for w in sorted(exact)]
[0.75, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagrammar.decoding.sampling import sample_token


class EmptyLanguageError(ValueError):
    """No complete output remains: the grammar allows none within the token bound, or the
    model gives every one of them probability 0."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Temperature-1 log-probabilities of a row of scores, in float64.

    >>> np.exp(log_softmax(np.log(np.array([1.0, 3.0])))).round(3).tolist()
    [0.25, 0.75]
    """
    logits = np.asarray(logits, dtype=np.float64)
    top = np.max(logits)
    if not np.isfinite(top):
        return np.full_like(logits, -np.inf)
    shifted = logits - top
    return shifted - np.log(np.sum(np.exp(shifted)))


def log_sum(values: np.ndarray) -> float:
    """``log(sum(exp(values)))``; ``-inf`` for no values or all ``-inf``.

    >>> round(log_sum(np.log(np.array([0.25, 0.5]))), 6) == round(math.log(0.75), 6)
    True
    >>> log_sum(np.array([]))
    -inf
    """
    if values.size == 0:
        return -math.inf
    top = float(np.max(values))
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.sum(np.exp(values - top))))


def score_row64(scores: Any, row: int) -> np.ndarray:
    """One row of a scores array (torch, NumPy, JAX) as float64, without a detour through
    float32 (torch rows are cast to float64 on their device, bf16 and fp16 included).

    >>> score_row64(np.array([[1, 2], [3, 4]]), 1).tolist()
    [3.0, 4.0]
    """
    value = scores[row]
    if hasattr(value, "detach"):
        value = value.detach().double().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _common_length(first: Sequence[int], second: Sequence[int]) -> int:
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


class PrefixScorer:
    """Next-token log-probabilities of prompt + generated prefixes, from one session.

    The session's cache follows the last prefix scored; a new prefix rolls it back to the
    common part (``truncate``) and verifies the rest as a chain, so moving between siblings costs
    one token and the prompt is prefilled once.
    """

    def __init__(self, model: Any, prompt: Sequence[int]) -> None:
        self.prompt = [int(token) for token in prompt]
        self.session = model.session(self.prompt)
        self.cached = self.prompt[:-1]          # the tokens the session's cache holds
        self.calls = 0

    def log_probs(self, generated: Sequence[int]) -> np.ndarray:
        """``log P(t | prompt + generated)`` for every ``t`` of the model's scores."""
        sequence = self.prompt + [int(token) for token in generated]
        common = _common_length(self.cached, sequence[:-1])
        if common < len(self.cached):
            self.session.truncate(common)
            del self.cached[common:]
        chain = sequence[common + 1:]
        scores = self.session.verify(sequence[common], chain, list(range(-1, len(chain) - 1)))
        self.session.keep(list(range(len(chain))))
        self.cached = sequence
        self.calls += 1
        return log_softmax(score_row64(scores, len(chain)))


class MatcherCursor:
    """A matcher moved between prefixes by rolling back to their common part and advancing."""

    def __init__(self, matcher: Any) -> None:
        self.matcher = matcher
        self.consumed: list[int] = []

    def move_to(self, tokens: Sequence[int]) -> Any:
        """The matcher, having consumed exactly ``tokens``."""
        common = _common_length(self.consumed, tokens)
        if common < len(self.consumed):
            self.matcher.rollback(len(self.consumed) - common)
            del self.consumed[common:]
        rest = [int(token) for token in tokens[common:]]
        if rest and not self.matcher.advance(rest):
            raise RuntimeError(f"the matcher refused tokens {rest} it had allowed after "
                               f"{list(self.consumed)}: the grammar's matcher is inconsistent")
        self.consumed += rest
        return self.matcher


@dataclass
class Prefix:
    """A node of the trie: one prefix of generated tokens and what may follow it.

    Attributes:
        depth: the number of generated tokens (no end token) in the prefix.
        tokens: the tokens allowed next (content tokens, then end tokens where it may end).
        log_probs: ``log P(t | prefix)`` for those tokens.
        log_futures: ``log EFG~(prefix · t)``: 0 until refined; always 0 for end tokens.
        slots: token -> its index in the arrays above.
        children: the content tokens taken after it, with their prefixes.
    """

    depth: int
    tokens: np.ndarray
    log_probs: np.ndarray
    log_futures: np.ndarray
    slots: dict[int, int]
    children: dict[int, Prefix] = field(default_factory=dict)

    def log_weights(self) -> np.ndarray:
        """``log(P(t | prefix) · EFG~(prefix · t))`` per allowed token."""
        return self.log_probs + self.log_futures

    def log_future(self) -> float:
        """``log EFG~(prefix)`` from its children's current values."""
        return log_sum(self.log_weights())


class AlignedSampler:
    """ASAp over a compiled grammar and a language model (see the module).

    Args:
        grammar: anything with ``matcher()`` returning a fresh
            :class:`~.protocol.Matcher` (a compiled grammar).
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel`.
        prompt: the prompt's token ids (at least one).
        max_new_tokens: the most tokens of an output, its end token included.
        end_tokens: the tokens that end an output; the model's ``eos_token_ids`` by default.
        adaptive: false for plain grammar-constrained sampling (masking only, never refined).

    Attributes:
        iterations: complete samples drawn.
        dead_ends: descents that reached a prefix with no way to go on (and started again).

    Raises:
        ValueError: an empty prompt, a bound below 1, no end token or one outside the
            vocabulary.
    """

    #: Restarts of a non-adaptive sample before giving up (a GCD run can die forever).
    MAX_RESTARTS = 10_000

    def __init__(self, grammar: Any, model: Any, prompt: Sequence[int], max_new_tokens: int,
                 end_tokens: Iterable[int] | None = None, adaptive: bool = True) -> None:
        prompt = [int(token) for token in prompt]
        if not prompt:
            raise ValueError("the prompt is empty: give at least one token")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1 (room for the end token), "
                             f"not {max_new_tokens}")
        ends = model.eos_token_ids if end_tokens is None else end_tokens
        self.end_tokens = frozenset(int(token) for token in ends)
        if not self.end_tokens:
            raise ValueError("no end token: the model has no eos_token_ids; pass end_tokens= "
                             "(an output ends with one of them where the grammar accepts)")
        outside = sorted(t for t in self.end_tokens if not 0 <= t < model.vocab_size)
        if outside:
            raise ValueError(f"end tokens {outside} are outside the model's vocabulary of "
                             f"{model.vocab_size}")
        model.check_length(len(prompt), max_new_tokens)
        self.max_new_tokens = max_new_tokens
        self.vocab_size = int(model.vocab_size)
        self.adaptive = adaptive
        self.scorer = PrefixScorer(model, prompt)
        self.cursor = MatcherCursor(grammar.matcher())
        self._sorted_ends = np.array(sorted(self.end_tokens), dtype=np.int64)
        self.iterations = 0
        self.dead_ends = 0
        self.prefixes = 0
        self.root = self._expand([])

    # -- the trie ---------------------------------------------------------------------------
    def _allowed_tokens(self, generated: Sequence[int], width: int) -> np.ndarray:
        """Tokens allowed after ``generated``: the grammar's content tokens where the bound
        leaves room for an end token after them, then the end tokens where it accepts."""
        matcher = self.cursor.move_to(generated)
        parts = []
        if len(generated) + 1 < self.max_new_tokens:
            mask = np.asarray(matcher.allowed(), dtype=bool)[:width]
            content = np.flatnonzero(mask)
            parts.append(content[~np.isin(content, self._sorted_ends)])
        if matcher.is_accepting():
            parts.append(self._sorted_ends[self._sorted_ends < width])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _expand(self, generated: Sequence[int]) -> Prefix:
        """The trie node of ``generated``, made now (the model scores it where some token
        may follow)."""
        tokens = self._allowed_tokens(generated, width=self.vocab_size)
        log_probs = np.zeros(0, dtype=np.float64)
        if tokens.size:
            log_probs = self.scorer.log_probs(generated)[tokens]
        self.prefixes += 1
        return Prefix(depth=len(generated), tokens=tokens.astype(np.int64),
                      log_probs=log_probs, log_futures=np.zeros(tokens.size),
                      slots={int(token): index for index, token in enumerate(tokens)})

    def child(self, node: Prefix, token: int, generated: Sequence[int]) -> Prefix:
        """The node after ``node`` and the content token ``token`` (``generated`` ends with
        it), made on first use."""
        child = node.children.get(token)
        if child is None:
            child = node.children[token] = self._expand(generated)
        return child

    # -- sampling ---------------------------------------------------------------------------
    def _descend(self, rng: np.random.Generator) -> tuple[list[Prefix], list[int], bool]:
        """One walk from the root: the nodes visited, the tokens drawn, and whether it ended
        with an end token (false: a dead end)."""
        node, nodes, tokens = self.root, [self.root], []
        while True:
            log_weights = node.log_weights() if self.adaptive else node.log_probs
            if log_weights.size == 0 or np.max(log_weights) == -math.inf:
                return nodes, tokens, False
            index = sample_token(np.exp(log_weights - np.max(log_weights)), rng)
            token = int(node.tokens[index])
            tokens.append(token)
            if token in self.end_tokens:
                return nodes, tokens, True
            node = self.child(node, token, tokens)
            nodes.append(node)

    def _refine(self, nodes: list[Prefix], tokens: list[int]) -> float:
        """Refines ``EFG~`` bottom-up along a walk; returns the root's new log value."""
        value = -math.inf
        for depth in range(len(nodes) - 1, -1, -1):
            value = nodes[depth].log_future()
            if depth:
                parent = nodes[depth - 1]
                parent.log_futures[parent.slots[tokens[depth - 1]]] = value
        return value

    def sample(self, rng: np.random.Generator) -> list[int]:
        """One ASAp iteration: a complete output (ending with an end token), after which the
        trie is refined along its path (dead ends met on the way are refined too).

        Raises:
            EmptyLanguageError: no output remains (or, non-adaptive, none was found in
                :attr:`MAX_RESTARTS` walks).
        """
        walks = 0
        while self.adaptive or walks < self.MAX_RESTARTS:
            if self.adaptive and self.root.log_future() == -math.inf:
                break               # every way is known to die: terminates, the trie is finite
            nodes, tokens, complete = self._descend(rng)
            walks += 1
            if self.adaptive:
                self._refine(nodes, tokens)
            if complete:
                self.iterations += 1
                return tokens
            self.dead_ends += 1
        raise EmptyLanguageError(
            f"the grammar allows no complete output of at most {self.max_new_tokens} tokens "
            "(end token included) that the model gives a nonzero probability"
            + ("" if self.adaptive else f" (none found in {self.MAX_RESTARTS} masked walks)"))

    # -- exact probabilities ----------------------------------------------------------------
    def _check_output(self, tokens: Sequence[int]) -> list[int]:
        tokens = [int(token) for token in tokens]
        if not tokens or tokens[-1] not in self.end_tokens:
            raise ValueError(f"an output ends with an end token {sorted(self.end_tokens)}; "
                             f"got {tokens}")
        if any(token in self.end_tokens for token in tokens[:-1]):
            raise ValueError(f"an end token comes before the end of {tokens}")
        return tokens

    def _log_path(self, tokens: Sequence[int],
                  log_step: Callable[[Prefix, int], float]) -> float:
        node = self.root
        total = 0.0
        for position, token in enumerate(tokens):
            index = node.slots.get(token)
            if index is None:
                return -math.inf
            total += log_step(node, index)
            if position + 1 < len(tokens):
                node = self.child(node, token, tokens[:position + 1])
        return total

    def log_probability(self, tokens: Sequence[int]) -> float:
        """Log of :meth:`probability`."""
        tokens = self._check_output(tokens)
        if not self.adaptive:
            return self.log_gcd_probability(tokens)

        def step(node: Prefix, index: int) -> float:
            weights = node.log_weights()
            return float(weights[index]) - log_sum(weights)

        return self._log_path(tokens, step)

    def probability(self, tokens: Sequence[int]) -> float:
        """The probability that one walk from the current state draws ``tokens`` (an output
        with its end token): the product, along its path, of each token's weight
        ``P(t | w) · EFG~(w·t)`` over the sum of the weights at ``w``. Exact, from the trie;
        prefixes not yet in the trie are scored and added, which changes no probability.

        While dead ends remain undiscovered, walks can die and the probabilities of the
        outputs sum to less than 1 (a sample then starts again); they sum to 1 once the trie
        is exact, and then equal ``P(tokens | L)``.
        """
        return math.exp(self.log_probability(tokens))

    def log_gcd_probability(self, tokens: Sequence[int]) -> float:
        """Log of :meth:`gcd_probability`."""
        tokens = self._check_output(tokens)

        def step(node: Prefix, index: int) -> float:
            return float(node.log_probs[index]) - log_sum(node.log_probs)

        return self._log_path(tokens, step)

    def gcd_probability(self, tokens: Sequence[int]) -> float:
        """The probability that plain masking (with the same length bound) draws ``tokens``
        in one walk: the product of ``P(t | w)`` over the allowed tokens' total at ``w``."""
        return math.exp(self.log_gcd_probability(tokens))

    def log_language_bound(self) -> float:
        """``log EFG~`` of the empty prefix: an upper bound on ``log P(L)`` (the model's
        probability of writing an output in the language), tight once the trie is exact."""
        return self.root.log_future()


# -- exact enumeration, for measuring ------------------------------------------------------
def language_probabilities(grammar: Any, model: Any, prompt: Sequence[int],
                           max_new_tokens: int, end_tokens: Iterable[int] | None = None,
                           max_outputs: int = 100_000) -> dict[tuple[int, ...], float]:
    """Every output of the language (at most ``max_new_tokens`` tokens, end token included)
    with the model's probability ``P(w)`` of writing it, by walking every allowed prefix
    (outputs of probability 0 are left out). Normalised, it is the exact conditional that
    ASAp converges to.

    Raises:
        ValueError: more than ``max_outputs`` outputs (enumeration is for small languages).
    """
    sampler = AlignedSampler(grammar, model, prompt, max_new_tokens, end_tokens,
                             adaptive=False)
    outputs: dict[tuple[int, ...], float] = {}
    stack: list[tuple[Prefix, tuple[int, ...], float]] = [(sampler.root, (), 0.0)]
    while stack:
        node, generated, log_prefix = stack.pop()
        for index in range(node.tokens.size - 1, -1, -1):
            log_probability = log_prefix + float(node.log_probs[index])
            if log_probability == -math.inf:
                continue
            token = int(node.tokens[index])
            if token in sampler.end_tokens:
                outputs[(*generated, token)] = math.exp(log_probability)
                if len(outputs) > max_outputs:
                    raise ValueError(f"the language has more than {max_outputs} outputs of "
                                     f"at most {max_new_tokens} tokens: too many to enumerate")
                continue
            longer = (*generated, token)
            stack.append((sampler.child(node, token, longer), longer, log_probability))
    return outputs


def normalised(probabilities: Mapping[tuple[int, ...], float]) -> dict[tuple[int, ...], float]:
    """The distribution proportional to ``probabilities``.

    Raises:
        EmptyLanguageError: they sum to 0.
    """
    total = math.fsum(probabilities.values())
    if not total > 0:
        raise EmptyLanguageError("no output of the language has a nonzero probability")
    return {output: value / total for output, value in probabilities.items()}


def kl_divergence(exact: Mapping[tuple[int, ...], float],
                  probability: Callable[[Sequence[int]], float]) -> float:
    """``KL(exact || q)`` in nats, where ``q(w) = probability(w)`` (a sampler's, possibly
    summing to less than 1 over ``exact``'s support, which only adds to the divergence);
    ``inf`` where ``q`` misses an output ``exact`` has.

    >>> kl_divergence({(1,): 0.5, (2,): 0.5}, {(1,): 0.5, (2,): 0.5}.get)
    0.0
    """
    terms = []
    for output, p in exact.items():
        if p <= 0:
            continue
        q = probability(output)
        if not q > 0:
            return math.inf
        terms.append(p * (math.log(p) - math.log(q)))
    return math.fsum(terms)


# -- for users -------------------------------------------------------------------------------
def compiled_grammar(grammar: Any, model: Any, engine: str = "llguidance") -> Any:
    """``grammar`` itself when it is compiled (has ``matcher()``), else the grammar resource
    (a regex ``"regex:..."``, a JSON Schema dict, a Pydantic class, Lark text, a file...; see
    :func:`diagrammar.functors.grammars.load_grammar`) compiled for the model's tokenizer."""
    if callable(getattr(grammar, "matcher", None)):
        return grammar
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.functors.grammars import load_grammar

    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("compiling a grammar needs the model's tokenizer; this model has "
                         "none: pass a compiled grammar")
    return compile_grammar(load_grammar(grammar), tokenizer, model.vocab_size, engine=engine)


def aligned_samples(model: Any, prompt: str | Sequence[int], grammar: Any, n: int,
                    max_new_tokens: int = 32, seed: int = 0, engine: str = "llguidance",
                    end_tokens: Iterable[int] | None = None,
                    adaptive: bool = True) -> list[list[int]]:
    """``n`` successive ASAp samples of one prompt (each ends with an end token; later ones
    follow the grammar-conditioned distribution more closely).

    Args:
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel`.
        prompt: text (encoded with the model's tokenizer) or token ids.
        grammar: a compiled grammar or a grammar resource (see :func:`compiled_grammar`).
        n: how many samples.
        max_new_tokens: the most tokens of an output, its end token included.
        seed: seeds the sampler's random generator.
        engine: the grammar engine for a resource (``"llguidance"`` or ``"xgrammar"``).
        end_tokens: the tokens that end an output (the model's ``eos_token_ids`` by default).
        adaptive: false for plain grammar-constrained sampling, for comparison.
    """
    ids = model.encode(prompt) if isinstance(prompt, str) else list(prompt)
    sampler = AlignedSampler(compiled_grammar(grammar, model, engine), model, ids,
                             max_new_tokens, end_tokens, adaptive)
    rng = np.random.default_rng(seed)
    return [sampler.sample(rng) for _ in range(n)]


__all__ = ["AlignedSampler", "EmptyLanguageError", "Prefix", "PrefixScorer", "MatcherCursor",
           "aligned_samples", "compiled_grammar", "language_probabilities", "normalised",
           "kl_divergence", "log_softmax", "log_sum", "score_row64"]
