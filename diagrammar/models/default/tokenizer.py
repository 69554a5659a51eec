"""The byte-level BPE tokenizer shared by every default-model size.

One tokenizer (4096 tokens, ``TOKENIZER_RECIPE``) serves every size, so any size can draft for
another.  It is trained on the training corpus, in seconds, and cached in
``<cache>/default-model/tokenizer/``; each size's folder holds a copy.  Byte-level means every
string round-trips exactly (``decode(encode(s)) == s``).

Example:
    >>> from diagrammar.models.default.corpus import Document
    >>> from diagrammar.models.default.recipes import TokenizerRecipe
    >>> from diagrammar.models.default.tokenizer import encode_documents, train_tokenizer
    >>> tok = train_tokenizer([Document("a.py", "x = 1\\n" * 50)], TokenizerRecipe(vocab_size=300))
    >>> ids = encode_documents(tok, ["x = 1\\n", "y"]).tolist()
    >>> second = ids.index(tok.eos_token_id, 1)   # each text starts with eos
    >>> ids[0] == tok.eos_token_id, tok.decode(ids[1:second]), tok.decode(ids[second + 1:])
    (True, 'x = 1\\n', 'y')
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .cache import TOKENIZER_MANIFEST, atomic_dir, cache_root, ensure_writable, locked, write_json
from .corpus import Document, corpus_digest, training_documents
from .recipes import EOS_TOKEN, TOKENIZER_RECIPE, TokenizerRecipe

__all__ = [
    "default_tokenizer",
    "encode_documents",
    "ensure_tokenizer",
    "train_tokenizer",
    "wrap_tokenizer",
]


def train_tokenizer(
    docs: Sequence[Document], recipe: TokenizerRecipe = TOKENIZER_RECIPE
) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE tokenizer on ``docs`` and wrap it for Hugging Face.

    Args:
        docs: the training documents.
        recipe: vocabulary size, minimum pair frequency, eos token.

    Returns:
        A tokenizer whose eos, bos, pad and unk tokens are all ``recipe.eos_token``.

    Example:
        >>> from diagrammar.models.default.corpus import Document
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
    """Token ids of ``texts`` as one stream, each text preceded by the eos token.

    Args:
        tokenizer: a tokenizer with an eos token.
        texts: the documents, in order.

    Returns:
        A 1-D ``int32`` array (empty when ``texts`` is).
    """
    eos = tokenizer.eos_token_id
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    pieces: list[np.ndarray] = []
    for enc in encodings:
        pieces.append(np.array([eos], dtype=np.int32))
        pieces.append(np.asarray(enc.ids, dtype=np.int32))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)


def ensure_tokenizer(
    root: Path, docs: Sequence[Document], digest: str, progress: bool
) -> tuple[PreTrainedTokenizerFast, Path]:
    """Load the shared tokenizer from ``root``, training it first if it is missing or stale.

    Args:
        root: the cache root (see :func:`~diagrammar.models.default.cache.cache_root`).
        docs: the training corpus, used only when the tokenizer must be trained.
        digest: the corpus digest, recorded in the tokenizer's manifest.
        progress: print a line to stderr before training.

    Returns:
        The tokenizer and its folder.
    """
    folder = root / "tokenizer"
    want = TOKENIZER_RECIPE.hash()
    with locked(root, "tokenizer"):
        try:
            meta = json.loads((folder / TOKENIZER_MANIFEST).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            meta = {}
        if meta.get("tokenizer_hash") != want:
            if progress:
                print(f"training the default tokenizer on {len(docs)} files...", file=sys.stderr)
            started = time.perf_counter()
            tok = train_tokenizer(docs, TOKENIZER_RECIPE)
            with atomic_dir(folder) as tmp:
                tok.save_pretrained(tmp)
                write_json(
                    tmp / TOKENIZER_MANIFEST,
                    {
                        "tokenizer_hash": want,
                        "vocab_size": len(tok),
                        "corpus_digest": digest,
                        "train_seconds": round(time.perf_counter() - started, 3),
                    },
                )
        return PreTrainedTokenizerFast.from_pretrained(folder, trust_remote_code=False), folder


def default_tokenizer(
    *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True
) -> PreTrainedTokenizerFast:
    """The shared byte-level BPE tokenizer of every default size, trained first if missing.

    Training it takes seconds (no model is trained).  Useful for custom training recipes and
    recipe sweeps (``benchmarks/recipe_sweep.py``).

    Args:
        cache_dir: see :func:`~diagrammar.models.default.cache.cache_root`.
        progress: print a line to stderr before training.

    Returns:
        The tokenizer, loaded from ``<cache>/default-model/tokenizer/``.

    Raises:
        CacheDirError: training is needed but the cache directory cannot be written.

    Example:
        >>> tok = default_tokenizer(progress=False)
        >>> len(tok), tok.eos_token
        (4096, '<|endoftext|>')
    """
    root = cache_root(cache_dir)
    ensure_writable(root)
    docs = training_documents()
    return ensure_tokenizer(root, docs, corpus_digest(docs), progress)[0]
