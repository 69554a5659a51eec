"""The JAX backend's model: GPT-2 and Llama-style transformers in JAX, with tree verification.

``Execute(model, backend="jax")`` loads a :class:`JaxCausalLM` from a Hugging Face folder (or
``default:SIZE``, or a Hub id) and runs every pipeline through its sessions, which follow the
same :class:`~diagrammar.decoding.protocols.Session` contract as the torch backend's. One
concept per module, each built on the previous one:

- :mod:`.architecture`: what ``config.json`` says (GPT-2 or Llama; anything else refused);
- :mod:`.weights`: the safetensors as a parameter tree (read with NumPy, no torch);
- :mod:`.transformer`: the forward pass over a fixed-capacity KV cache with a tree mask, and
  the cache compaction (pure functions);
- :mod:`.session`: :class:`JaxSession`, one sequence's cache, with shapes bucketed so that
  compiles are bounded;
- :mod:`.model`: :class:`JaxCausalLM`, the ``LanguageModel`` owning the jitted functions and
  counting their compiles;
- :mod:`.loader`: :func:`load_jax_model`, the backend's loader.

The attention is XLA's einsum by default, or the Pallas tree-attention kernel
(``JaxCausalLM(..., attention="pallas")`` or ``DIAGRAMMAR_JAX_ATTENTION=pallas``; see
:mod:`.model`). Nothing here imports torch: a folder loads and decodes where torch is not
installed (the tokenizer comes through ``transformers``, which then works without it).

Used by the *per-step loop*, Python drafts, accepts and commits and the device runs the
verification pass and the compaction. A greedy pipeline whose boxes all have array
implementations (no draft, prompt lookup's chain, Token Recycling's static template) runs
instead as one compiled ``lax.while_loop`` over the same forward pass
(:mod:`diagrammar.decoding.compiled`, chosen by :mod:`diagrammar.functors.compiled`;
``stats.mode`` says which loop ran).

Example (with a model folder)::

    from diagrammar.diagrams import autoregressive
    from diagrammar.functors import Execute

    decoder = Execute("default:small", backend="jax")(autoregressive())
    decoder.generate("def add(a, b):\\n", max_new_tokens=16).text
    decoder.model.compiles          # one per (padded rows, cache capacity)
"""

from diagrammar.models.jax.architecture import Architecture
from diagrammar.models.jax.loader import load_jax_model
from diagrammar.models.jax.model import JaxCausalLM
from diagrammar.models.jax.session import JaxSession, bucket, padded_rows

__all__ = ["Architecture", "JaxCausalLM", "JaxSession", "bucket", "load_jax_model",
           "padded_rows"]
