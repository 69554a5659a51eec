"""A tokenizer given as its list of token strings, for grammar engines.

Grammar engines compile a grammar against a tokenizer's vocabulary (the bytes each token
spells). Hugging Face tokenizers carry that list; a model trained here with its own small
vocabulary (:mod:`diagrammar.models.seq2seq`) has only the token strings.
:class:`TokenVocabulary` presents such a list the way the engines read a tokenizer, so
:func:`~diagrammar.decoding.constraints.engines.compile_grammar` constrains that model too.

>>> vocabulary = TokenVocabulary(["<pad>", "<bos>", "<eos>", "SELECT", " 1", " ", "1"],
...                              eos_token_id=2, special_token_ids=(0, 1, 2))
>>> len(vocabulary), vocabulary.encode("SELECT 1"), vocabulary(b"SELECT  1")
(7, [3, 4], [3, 5, 4])
"""

from __future__ import annotations

from collections.abc import Sequence


class TokenVocabulary:
    """A tokenizer as its ``tokens`` (strings, by id): ``eos_token_id`` ends an output,
    ``special_token_ids`` spell nothing (padding, start, end). Text is tokenized greedily,
    longest token first (any tokenization serves the engines: they read forced text with
    it); a character no token spells is an error.

    Raises:
        ValueError: an end token outside the vocabulary, or text no token spells.
    """

    def __init__(self, tokens: Sequence[str], eos_token_id: int,
                 special_token_ids: Sequence[int] = (), bos_token_id: int | None = None
                 ) -> None:
        if not 0 <= eos_token_id < len(tokens):
            raise ValueError(f"the end token {eos_token_id} is not among the "
                             f"{len(tokens)} tokens")
        self.eos_token_id = eos_token_id
        self.bos_token_id = bos_token_id
        self.special_token_ids = sorted({*special_token_ids, eos_token_id})
        special = set(self.special_token_ids)
        # llguidance reads special tokens by a leading 0xFF byte; they spell no text
        self.tokens = [b"\xff" + token.encode() if i in special else token.encode()
                       for i, token in enumerate(tokens)]
        self._ids = {token: i for i, token in enumerate(self.tokens) if i not in special}
        self._longest = max((len(token) for token in self._ids), default=0)

    def __len__(self) -> int:
        return len(self.tokens)

    def __call__(self, text: bytes | str) -> list[int]:
        data = text.encode() if isinstance(text, str) else text
        ids, start = [], 0
        while start < len(data):
            for end in range(min(len(data), start + self._longest), start, -1):
                token = self._ids.get(data[start:end])
                if token is not None:
                    ids.append(token)
                    start = end
                    break
            else:
                raise ValueError(f"no token spells {data[start:start + 1]!r} "
                                 f"(at byte {start} of {data!r})")
        return ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """``text`` as token ids (the Hugging Face name; no special tokens are added)."""
        return self(text)


__all__ = ["TokenVocabulary"]
