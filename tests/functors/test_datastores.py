"""What a ``Retrieval`` box's resource may be: a Datastore, a saved folder, text files, a list
of texts, or the default corpus; built once per corpus and tokenizer, then loaded
memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from diagrammar.diagrams import Retrieval, autoregressive, speculative
from diagrammar.functors import Execute
from diagrammar.functors.datastores import (
    DEFAULT_CORPUS,
    datastore_cache_dir,
    load_datastore,
    tokenizer_identity,
)
from diagrammar.models import HFCausalLM


@pytest.fixture
def lm(saved_model_dir):
    return HFCausalLM.from_pretrained(str(saved_model_dir))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIAGRAMMAR_CACHE", str(tmp_path / "cache"))


def test_texts_files_and_folders_are_encoded_with_the_targets_tokenizer(lm, tmp_path):
    text = "def add(a, b):\n    return a + b\n"
    from_list = load_datastore([text], lm)
    assert from_list.tokens[:-1].tolist() == lm.encode(text)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.py").write_text(text)
    (tmp_path / "docs" / "skip.bin").write_bytes(b"\x00\xff")
    from_folder = load_datastore(tmp_path / "docs", lm)
    assert from_folder.tokens.tolist() == from_list.tokens.tolist()
    assert isinstance(from_folder.tokens, np.memmap)        # the second build was a cache hit
    assert len(list(datastore_cache_dir().iterdir())) == 1
    saved = from_list.save(tmp_path / "saved")
    assert load_datastore(str(saved), lm).tokens.tolist() == from_list.tokens.tolist()


def test_the_default_corpus_is_the_training_corpus(lm, monkeypatch):
    import diagrammar.models.default.corpus as corpus

    documents = [corpus.Document("a.py", "x = 1\n"), corpus.Document("b.py", "y = 2\n")]
    monkeypatch.setattr(corpus, "training_documents", lambda: documents)
    store = load_datastore(DEFAULT_CORPUS, lm)
    assert store.documents == 2 and store.tokens[:-1].tolist()[:len(lm.encode("x = 1\n"))] \
        == lm.encode("x = 1\n")
    assert load_datastore(f"{DEFAULT_CORPUS}:1", lm).documents == 1
    with pytest.raises(ValueError, match="N a positive number"):
        load_datastore(f"{DEFAULT_CORPUS}:zero", lm)


def test_bad_datastores_are_clear_errors(lm, tmp_path, model_factory):
    with pytest.raises(ValueError, match="no such file or folder"):
        load_datastore(str(tmp_path / "missing"), lm)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no text files"):
        load_datastore(tmp_path / "empty", lm)
    with pytest.raises(ValueError, match="needs the target's tokenizer"):
        load_datastore(["some text"], HFCausalLM(model_factory("gpt2", 0)))
    with pytest.raises(ValueError, match="cannot make a datastore of int"):
        load_datastore(3, lm)
    step = speculative(Retrieval())
    with pytest.raises(ValueError, match=r"Retrieval: datastore 'nowhere'"):
        Execute(lm, resources={"datastore": "nowhere"})(step)


def test_tokenizer_identity_follows_the_tokenizer(lm, model_factory):
    assert tokenizer_identity(lm) == tokenizer_identity(lm) != "none"
    assert tokenizer_identity(HFCausalLM(model_factory("gpt2", 0))) == "none"


def test_a_retrieval_pipeline_decodes_from_a_text_datastore(lm):
    """A datastore of text holds the continuation: retrieval drafts it and it is accepted.
    (Only for a continuation whose text tokenizes back into the same tokens: the random test
    model may write runs that merge into other tokens once decoded, so of a few prompts the
    first that round-trips is used.)"""
    for prompt in ("def add(a, b):\n    return", "import os\n", "class A:\n    x = 1\n",
                   "for i in range(3):\n", "# a comment\n", "x = [1, 2, 3]\n"):
        ids = lm.encode(prompt)
        plain = Execute(lm)(autoregressive()).generate(ids, 24)
        corpus = [prompt + lm.decode(plain.tokens)]
        if lm.encode(corpus[0])[:len(ids) + len(plain.tokens)] == ids + plain.tokens:
            break
    else:
        pytest.fail("no prompt's continuation tokenizes back into the same tokens")
    result = Execute(lm, resources={"datastore": corpus})(speculative(Retrieval())).generate(
        ids, 24)
    assert result.tokens == plain.tokens
    assert result.stats.mean_accepted > 1.5   # drafts from the text were accepted
