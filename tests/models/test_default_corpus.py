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


def _write_package(root, files: dict[str, str]):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_package_documents_leave_out_tests_vendored_code_and_heldout_copies(tmp_path):
    copied = "\n".join(  # three long lines of textwrap: a copy of held-out code
        line
        for line in dm.heldout_sources()["textwrap"].splitlines()
        if len(line.strip()) >= 40
    )
    lines = copied.splitlines()[:3]
    root = _write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "from .core import f\n",
            "core.py": "def f(x):\n    return x + 1\n",
            "empty.py": "   \n",
            "tests/test_core.py": "def test_f():\n    assert True\n",
            "testing/helpers.py": "X = 1\n",
            "_vendor/six.py": "Y = 2\n",
            "copy_of_textwrap.py": "\n".join(lines) + "\n",
        },
    )
    (root / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    docs = dm.package_documents("pkg", root)
    assert [d.path for d in docs] == ["pkg/__init__.py", "pkg/core.py"]
    assert docs[1].module == "pkg.core"


def test_shares_heldout_lines_counts_long_lines_only():
    held = {"x" * 40, "y" * 40, "z" * 40}
    assert dm.shares_heldout_lines("\n".join(sorted(held)), held)
    assert not dm.shares_heldout_lines("x" * 40 + "\n" + "y" * 40, held)
    assert dm.shares_heldout_lines(("    " + "x" * 40 + "\n") * 3, held)
    assert not dm.shares_heldout_lines("short\n" * 10, held | {"short"})


def test_installed_package_corpus_has_no_heldout_code():
    docs = dm.package_documents("numpy")
    assert len(docs) > 100 and all(d.path.startswith("numpy/") for d in docs)
    corpus = "\n".join(d.text for d in docs)
    for signature in HELDOUT_SIGNATURES:
        assert signature not in corpus, signature


def test_missing_package_is_one_clear_error():
    import pytest

    with pytest.raises(ModuleNotFoundError, match="not installed"):
        dm.package_dir("no_such_package_for_the_corpus")
    with pytest.raises(ModuleNotFoundError, match="not installed"):
        dm.package_dir("textwrap")  # a module, not a package


def test_stream_documents_repeat_the_standard_library_before_the_packages(tmp_path):
    import pytest

    stdlib = training_documents()
    docs = dm.stream_documents(stdlib_repeats=2)
    assert [d.path for d in docs] == [d.path for d in stdlib] * 2
    assert corpus_digest(dm.stream_documents()) == corpus_digest(stdlib)
    with pytest.raises(ValueError, match="at least 1"):
        dm.stream_documents(stdlib_repeats=0)
