"""Shared fixtures: small random models built in the test (no downloads) and a saved model
folder with a tokenizer trained here."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# Triton reads TRITON_INTERPRET when it decorates a kernel, and some installed packages import
# it during collection: set it before anything else (the kernel tests and the kernels' doctests
# run Triton interpreted on the CPU; DIAGRAMMAR_KERNEL_DEVICE=cuda runs them compiled).
if os.environ.get("DIAGRAMMAR_KERNEL_DEVICE", "cpu") == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

logging.getLogger("transformers").setLevel(logging.ERROR)
# Helper modules of the tests (e.g. the NumPy backend) import by their own unique names.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def scoped_box_registry():
    """Box classes a test defines are registered only for that test."""
    from diagrammar.diagrams import box_registry

    with box_registry() as registry:
        yield registry

EOS = 3


def greedy_step(drafter):
    """A drafter wired into a greedy decoding step without diagrams (draft, verify, accept,
    commit), with its start hook: what :func:`diagrammar.decoding.loop.decode` takes."""
    from diagrammar.decoding.steps import (
        DrafterStep,
        commit_step,
        greedy_accept_step,
        verify_step,
    )

    wired = DrafterStep(drafter)

    def step(state):
        state, tree = wired(state)
        state, tree, scores = verify_step(state, tree)
        state, accepted = greedy_accept_step(state, tree, scores)
        return commit_step(state, accepted)[0]

    return step, wired.start


def make_model(kind: str, seed: int, vocab: int = 48, layers: int = 2, width: int = 32,
               heads: int = 4, positions: int = 256, dtype: torch.dtype = torch.float64):
    """A randomly initialised GPT-2 or Llama-style causal LM."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=width,
                            n_layer=layers, n_head=heads, eos_token_id=EOS, bos_token_id=EOS)
        model = GPT2LMHeadModel(config)
    elif kind == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=2 * width,
                             num_hidden_layers=layers, num_attention_heads=heads,
                             num_key_value_heads=max(1, heads // 2),
                             max_position_embeddings=positions, eos_token_id=EOS,
                             bos_token_id=1)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(kind)
    # Sharpen the random model so that greedy decoding is not dominated by near-ties.
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(4.0)
    return model.to(dtype).eval()


@pytest.fixture(scope="session")
def model_factory():
    return make_model


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory) -> Path:
    """A GPT-2 model and a byte-level BPE tokenizer trained on this repository's source."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")
    source = Path(__file__).parent.parent / "diagrammar"
    corpus = [path.read_text() for path in sorted(source.glob("**/*.py"))]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer,
                                        eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2,
                        n_head=2, eos_token_id=tokenizer.eos_token_id,
                        bos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# The tiny default model ships with the package; a current one in the cache (``$DIAGRAMMAR_CACHE``
# or the user cache directory) comes first, exactly as :func:`diagrammar.models.default.default`
# decides. Only a checkout without the shipped weights trains it here.
@pytest.fixture(scope="session")
def default_tiny_path() -> Path:
    """Folder of the tiny default model: the cached one when current, else the shipped one
    (trained here only when neither exists)."""
    from diagrammar.models.default import model_folder, train_default

    return model_folder("tiny") or train_default("tiny", progress=False)


@pytest.fixture(scope="session")
def default_tiny(default_tiny_path):
    """``(model, tokenizer)`` of the tiny default model."""
    from diagrammar.models.default import default

    return default("tiny", train_if_missing=False, progress=False)
