"""The default model's corpus: held-out modules are never trained on, and are big enough to cut
benchmark prompts from; the byte-level tokenizer round-trips any text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.models import default as dm
from diagrammar.models.default import (
    HELDOUT_MODULES,
    Document,
    corpus_digest,
    module_name,
    training_documents,
)

# Definitions that exist only in the held-out modules' source.
HELDOUT_SIGNATURES = [
    "class SequenceMatcher",
    "def unified_diff(",
    "class Fraction(",
    "class ConfigParser(",
    "class PrettyPrinter",
    "def median_low(",
    "class TextCalendar",
    "class TextWrapper",
]


def test_heldout_modules_are_not_in_the_training_corpus():
    docs = training_documents()
    modules = {d.module for d in docs}
    assert not modules & set(HELDOUT_MODULES)
    assert len(docs) > 300 and "json.decoder" in modules and "os" in modules
    sources = dm.heldout_sources()
    texts = {d.text for d in docs}
    assert not texts & set(sources.values())
    corpus = "\n".join(texts)
    for signature in HELDOUT_SIGNATURES:
        assert signature in "".join(sources.values()), signature
        assert signature not in corpus, signature


def test_tests_and_generated_tables_are_excluded():
    paths = [d.path for d in training_documents()]
    assert not [p for p in paths if re.search(r"(^|/)(test|tests|idle_test|encodings)/", p)]
    assert not [p for p in paths if "site-packages" in p or "_sysconfigdata" in p]


def test_corpus_is_deterministic():
    a, b = training_documents(), training_documents()
    assert [d.path for d in a] == sorted(d.path for d in a)
    assert corpus_digest(a) == corpus_digest(b)
    assert corpus_digest([Document("a.py", "x")]) != corpus_digest([Document("b.py", "x")])


def test_heldout_sources_are_big_enough_for_benchmark_prompts():
    sources = dm.heldout_sources()
    assert list(sources) == list(HELDOUT_MODULES)
    defs = sum(len(re.findall(r"^\s*def \w+\(", s, re.M)) for s in sources.values())
    docstrings = sum(s.count('"""') // 2 for s in sources.values())
    assert defs >= 200 and docstrings >= 150
    assert sum(len(s) > 40_000 for s in sources.values()) >= 3  # long-context prompts


def test_module_name():
    assert module_name("json/__init__.py") == "json"
    assert module_name("email/mime/text.py") == "email.mime.text"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_tokenizer_round_trips_any_text(default_tiny, text):
    _, tokenizer = default_tiny
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text
