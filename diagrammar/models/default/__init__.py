"""The embedded default model: small GPT-2 models trained by the project on Python source.

diagrammar cannot download a model, so it trains its own with a recorded recipe: a
byte-level BPE tokenizer and GPT-2 models of two sizes, ``tiny`` (1.05 M parameters, under
2 minutes; tests, CI, drafting) and ``small`` (4.5 M parameters, about an hour on 2 cores;
demo and benchmarks), on the running interpreter's standard library minus held-out modules
(and, for ``small``, the source of a few installed packages).  Both ship inside the package
(float16), so nothing trains unless a user retrains locally.
Training is deterministic; results are cached (``$DIAGRAMMAR_CACHE`` or the user cache), each
size's folder a plain Hugging Face model path.  Command line: ``diagrammar train-default``.

Modules, one concept each: ``corpus`` (the stdlib corpus, held-out modules), ``recipes``
(:class:`Recipe`, :data:`RECIPES`, :data:`SIZES`, :func:`recipe_hash`), ``cache`` (folders,
atomic writes, manifests), ``tokenizer`` (the shared BPE tokenizer), ``training`` (batch
schedule, training loop), ``evaluation`` (held-out scoring) and ``build`` (:func:`train_default`,
:func:`default`).  They import the standard library, numpy, torch, tokenizers, transformers,
tqdm and platformdirs, and nothing else of diagrammar.

Example (nothing is trained):
    >>> from diagrammar.models.default import SIZES, default_path, recipe_hash
    >>> SIZES
    ('tiny', 'small')
    >>> default_path("small", "/tmp/cache").as_posix()
    '/tmp/cache/default-model/small'
    >>> recipe_hash("tiny") != recipe_hash("small")
    True

With a trained model (``default("tiny")`` trains on first use, then loads from the cache)::

    model, tokenizer = default("tiny")
    ids = tokenizer("def add(a, b):\\n", return_tensors="pt").input_ids
    model.generate(ids, max_new_tokens=8, do_sample=False)
    manifest("tiny")["heldout_accuracy"]
"""

from .build import default, loaded_manifest, model_folder, summary, train_default
from .cache import (
    CACHE_ENV,
    CacheDirError,
    cache_root,
    default_path,
    manifest,
    tokenizer_path,
)
from .corpus import (
    HELDOUT_MODULES,
    Document,
    corpus_digest,
    heldout_sources,
    module_name,
    package_dir,
    package_documents,
    shares_heldout_lines,
    stdlib_dir,
    stream_documents,
    training_documents,
)
from .evaluation import EvalResult, evaluate
from .recipes import (
    EOS_TOKEN,
    RECIPES,
    SIZES,
    TOKENIZER_RECIPE,
    Recipe,
    TokenizerRecipe,
    bf16_supported,
    recipe_hash,
)
from .tokenizer import default_tokenizer, encode_documents, train_tokenizer
from .training import fixed_threads, train_model

__all__ = [
    "loaded_manifest",
    "model_folder",
    "CACHE_ENV",
    "EOS_TOKEN",
    "HELDOUT_MODULES",
    "RECIPES",
    "SIZES",
    "TOKENIZER_RECIPE",
    "CacheDirError",
    "Document",
    "EvalResult",
    "Recipe",
    "TokenizerRecipe",
    "bf16_supported",
    "cache_root",
    "corpus_digest",
    "default",
    "default_path",
    "default_tokenizer",
    "encode_documents",
    "evaluate",
    "fixed_threads",
    "heldout_sources",
    "manifest",
    "module_name",
    "package_dir",
    "package_documents",
    "recipe_hash",
    "stdlib_dir",
    "summary",
    "tokenizer_path",
    "train_default",
    "train_model",
    "train_tokenizer",
    "shares_heldout_lines",
    "stream_documents",
    "training_documents",
]
