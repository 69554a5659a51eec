"""The JAX backend runs where torch cannot be imported.

A fresh Python process sets ``sys.modules["torch"] = None`` before anything else (what
``import torch`` and ``importlib.util.find_spec("torch")`` see when torch is not installed;
transformers then loads its tokenizers without torch), decodes a saved GPT-2 folder with the
prompt-lookup and Token Recycling pipelines on the JAX backend (with the einsum attention; and
prompt lookup with the Pallas kernel, in its interpreter), and reports its tokens. They must be
the ones this process (with torch) decodes, and no ``torch`` module may have been imported
there.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from diagrammar.diagrams import PIPELINES
from diagrammar.functors import Execute

VOCAB = 48
EOS = 3
PROMPT = "t5 t6 t7 t8 t5 t6 t7 t8 t5 t6"

SCRIPT = """
import json, sys
sys.modules["torch"] = None                    # as if torch were not installed
from diagrammar.functors import Execute
from diagrammar.diagrams import PIPELINES
from diagrammar.models.jax import JaxCausalLM

folder, prompt = sys.argv[1:3]
execute = Execute(folder, backend="jax")
found = {name: execute(PIPELINES[name]()).generate(prompt, 16).tokens
         for name in ("prompt-lookup", "token-recycling")}
text = execute(PIPELINES["prompt-lookup"]()).generate(prompt, 4).text
pallas = Execute(JaxCausalLM.from_folder(folder, attention="pallas"), backend="jax")
found["pallas"] = pallas(PIPELINES["prompt-lookup"]()).generate(prompt, 16).tokens
loaded = sorted(name for name, module in sys.modules.items()
                if name.split(".")[0] == "torch" and module is not None)
print(json.dumps({"tokens": found, "text": text, "torch": loaded}))
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A random sharpened GPT-2 with a word-level tokenizer (``t0`` ... ``t47``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=128, n_embd=32, n_layer=1,
                                       n_head=4, eos_token_id=EOS, bos_token_id=EOS))
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(4.0)
    model.save_pretrained(path)
    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, eos_token=f"t{EOS}").save_pretrained(path)
    return path


def test_the_jax_backend_decodes_without_torch(folder):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), PROMPT],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == []
    execute = Execute(str(folder), backend="jax")
    found = report["tokens"]
    for name in ("prompt-lookup", "token-recycling"):
        assert len(found[name]) == 16
        assert found[name] == execute(PIPELINES[name]()).generate(PROMPT, 16).tokens, name
    assert found["pallas"] == found["prompt-lookup"]
    assert report["text"] == execute.model.decode(found["prompt-lookup"][:4])
