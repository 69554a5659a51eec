"""Fixtures of the batch-job tests: a decoder factory on the small saved test model (a random
GPT-2 with a BPE tokenizer, see ``tests/conftest.py``), prompts for it, and input files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagrammar.jobs import DecodeOptions, DecoderFactory

PROMPTS = ["def add(a, b):", "import os\nimport sys", "class Box:\n    def __init__(self):",
           "for i in range(10):", "return self.value", "x = [1, 2, 3]\ny =", "# a comment",
           "while True:\n    break", "def f(x):\n    return x", "print('hi')", "try:\n    pass",
           "with open(path) as f:"]


@pytest.fixture(scope="session")
def factory(saved_model_dir) -> DecoderFactory:
    """Builds a prompt-lookup decoder on the saved test model (128 positions), one thread."""
    return DecoderFactory(str(saved_model_dir), "prompt-lookup", threads=1)


@pytest.fixture(scope="session")
def options() -> DecodeOptions:
    return DecodeOptions(max_new_tokens=12, max_batch=3)


def _write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))
    return path


@pytest.fixture(scope="session")
def write_jsonl():
    """``write_jsonl(path, lines)`` writes ``lines`` (objects as JSON, strings as they are)
    one a line and returns the path."""
    return _write_jsonl


@pytest.fixture
def prompts_file(tmp_path) -> Path:
    """Twelve good prompts, ids ``p0`` ... ``p11``, one with its own budget."""
    lines: list[object] = [{"id": f"p{n}", "prompt": text} for n, text in enumerate(PROMPTS)]
    lines[4] = {**lines[4], "max_new_tokens": 5}
    return _write_jsonl(tmp_path / "prompts.jsonl", lines)
