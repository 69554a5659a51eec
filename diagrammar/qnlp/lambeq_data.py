"""lambeq's published MC and RP data sets, read from a folder in lambeq's own format.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = Path(tmp, "mc_train_data.txt").write_text(
...         "1  man cooks meal .\\n0  woman runs program .\\n")
...     _ = Path(tmp, "mc_dev_data.txt").write_text("1  woman bakes dinner .\\n")
...     _ = Path(tmp, "mc_test_data.txt").write_text("0  man debugs software .\\n")
...     mc = load_lambeq_dataset(tmp, "MC")
>>> mc.train[0]
Example(sentence='man cooks meal', label=1)
>>> mc.labels[1], mc.target
('food', 's')

Each line of a file is a label (``0`` or ``1``), white space (lambeq's MC files use two
spaces, its RP files one) and the sentence, which ends in `` .``.  :func:`read_lambeq_file`
strips that full stop, and it is the only place that does: our parser (whose tokenizer
drops punctuation anyway) and lambeq's readers (which would otherwise see ``"."`` as a word
with a type of its own) get the same sentence.

**Labels are kept as the files define them**, which for MC is the opposite of the project's
generator (:mod:`diagrammar.qnlp.data`, ``0`` = food):

- MC: ``1`` = food, ``0`` = IT, so :data:`LAMBEQ_MC_LABELS` is ``("IT", "food")``;
- RP: ``0`` = subject relative, ``1`` = object relative, the same as
  :data:`~diagrammar.qnlp.data.RP_LABELS`.

``Dataset.labels[label]`` names the class in both cases.  lambeq's RP data has no dev file:
:func:`load_lambeq_dataset` carves a seeded, stratified dev split from the train file (never
from the test file).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from diagrammar.qnlp.data import RP_LABELS, Dataset, Example

__all__ = [
    "LAMBEQ_MC_LABELS",
    "load_lambeq_dataset",
    "read_lambeq_file",
    "strip_full_stop",
    "write_lambeq_file",
]

LAMBEQ_MC_LABELS = ("IT", "food")  # lambeq's MC files: 0 = IT, 1 = food

# Per data set: the splits read from files, the label names, the target type.
_FILES = {"MC": ("train", "dev", "test"), "RP": ("train", "test")}
_LABELS = {"MC": LAMBEQ_MC_LABELS, "RP": RP_LABELS}
_TARGETS = {"MC": "s", "RP": "n"}


def strip_full_stop(sentence: str) -> str:
    """The sentence without surrounding white space and without its final ``"."``.

    >>> strip_full_stop("  man cooks meal .")
    'man cooks meal'
    """
    sentence = sentence.strip()
    if sentence.endswith("."):
        sentence = sentence[:-1].rstrip()
    return sentence


def read_lambeq_file(path: str | Path) -> tuple[Example, ...]:
    """The labelled sentences of one lambeq data file, full stops stripped.

    Args:
        path: a file whose lines are ``<0|1><white space><sentence> .``; blank lines are
            skipped.

    Returns:
        The examples in file order, labels as written.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line is malformed (the message gives file and line number), or the
            file has no examples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such lambeq data file")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        sentence = strip_full_stop(parts[1]) if len(parts) == 2 else ""
        if parts[0] not in ("0", "1") or not sentence:
            raise ValueError(f"{path}:{number}: expected '<0|1> <sentence> .', got {line!r}")
        rows.append(Example(sentence, int(parts[0])))
    if not rows:
        raise ValueError(f"{path}: no examples")
    return tuple(rows)


def write_lambeq_file(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write examples as lambeq does: ``<label> <sentence> .`` per line.

    Args:
        path: the file to write (its folder must exist).
        examples: the examples; their sentences carry no final full stop.

    Returns:
        The path.
    """
    path = Path(path)
    path.write_text("".join(f"{ex.label} {ex.sentence} .\n" for ex in examples),
                    encoding="utf-8")
    return path


def _stratified_split(examples: tuple[Example, ...], dev_fraction: float, seed: int,
                      source: Path) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """(train, dev): ``round(dev_fraction * n)`` examples of each label go to dev."""
    rng = random.Random(seed)
    dev_positions: set[int] = set()
    for label in sorted({ex.label for ex in examples}):
        positions = [i for i, ex in enumerate(examples) if ex.label == label]
        count = round(dev_fraction * len(positions))
        if not 0 < count < len(positions):
            raise ValueError(f"{source}: cannot carve a dev split of {dev_fraction} from "
                             f"{len(positions)} examples of label {label}")
        dev_positions.update(rng.sample(positions, count))
    train = tuple(ex for i, ex in enumerate(examples) if i not in dev_positions)
    dev = tuple(ex for i, ex in enumerate(examples) if i in dev_positions)
    return train, dev


def load_lambeq_dataset(folder: str | Path, name: str, dev_fraction: float = 0.2,
                        seed: int = 0) -> Dataset:
    """Read lambeq's MC or RP data set from a folder of its original files.

    MC reads ``mc_train_data.txt``, ``mc_dev_data.txt`` and ``mc_test_data.txt``.  RP reads
    ``rp_train_data.txt`` and ``rp_test_data.txt`` and, as there is no dev file, moves
    ``round(dev_fraction * n)`` train examples of each label (chosen with ``seed``) to the
    dev split; train and dev keep the file's order.  The test file is never touched.

    Args:
        folder: the folder holding lambeq's files.
        name: ``"MC"`` or ``"RP"`` (any case).
        dev_fraction: RP only: the share of each label's train examples moved to dev.
        seed: RP only: the same seed gives the same dev split.

    Returns:
        The :class:`~diagrammar.qnlp.data.Dataset`, labels as the files define them
        (``labels`` is :data:`LAMBEQ_MC_LABELS` for MC, ``RP_LABELS`` for RP) and
        sentences without their full stop.

    Raises:
        ValueError: unknown name, a malformed line (file and line number), a dev split
            that would leave a label without train or dev examples, or a sentence of the
            test split that is also in train or dev.
        FileNotFoundError: the folder or one of its files is missing.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "rp_train_data.txt").write_text("".join(
    ...         f"{i % 2} phrase {i} .\\n" for i in range(10)))
    ...     _ = Path(tmp, "rp_test_data.txt").write_text("0 a test phrase .\\n")
    ...     rp = load_lambeq_dataset(tmp, "RP", dev_fraction=0.4, seed=1)
    >>> len(rp.train), sorted(ex.label for ex in rp.dev), rp.test[0].sentence
    (6, [0, 0, 1, 1], 'a test phrase')
    """
    key = name.upper()
    if key not in _FILES:
        raise ValueError(f"unknown lambeq data set {name!r}; expected 'MC' or 'RP'")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such lambeq data folder")
    paths = {split: folder / f"{key.lower()}_{split}_data.txt" for split in _FILES[key]}
    splits = {split: read_lambeq_file(path) for split, path in paths.items()}
    if key == "RP":
        splits["train"], splits["dev"] = _stratified_split(
            splits["train"], dev_fraction, seed, paths["train"])
    test = {ex.sentence for ex in splits["test"]}
    for split in ("train", "dev"):
        shared = sorted(test & {ex.sentence for ex in splits[split]})
        if shared:
            raise ValueError(f"{paths['test']}: {len(shared)} test sentence(s) also in the "
                             f"{split} split, e.g. {shared[0]!r}")
    return Dataset(key, splits["train"], splits["dev"], splits["test"], _LABELS[key],
                   _TARGETS[key])
