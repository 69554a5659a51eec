"""Tests of the loader of lambeq's MC/RP files (small files in lambeq's format, in tmp_path)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from diagrammar.diagrams.pregroup import parse
from diagrammar.qnlp.data import RP_LABELS, Example, mc_lexicon
from diagrammar.qnlp.lambeq_data import (
    LAMBEQ_MC_LABELS,
    load_lambeq_dataset,
    read_lambeq_file,
    strip_full_stop,
    write_lambeq_file,
)

MC = {  # lambeq's MC convention: 1 = food, 0 = IT; two spaces after the label, as lambeq
    "train": ["1  man cooks meal .", "0  woman runs program .", "1  skillful man bakes dinner .",
              "0  person debugs useful software ."],
    "dev": ["1  woman prepares tasty sauce .", "0  man runs application ."],
    "test": ["1  person cooks dinner .", "0  skillful woman debugs program ."],
}


def _rp_lines(n: int, prefix: str = "noun") -> list[str]:
    # one space after the label, as lambeq's RP files; 0 = subject, 1 = object relative
    return [f"0 {prefix}{i} that verb{i} other{i} ." if i % 3 else
            f"1 {prefix}{i} that other{i} verb{i} ." for i in range(n)]


def _write(folder: Path, name: str, splits: dict[str, list[str]], newline: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in splits.items():
        text = "\n".join(lines) + ("\n" if newline else "")  # lambeq's RP files lack the last
        (folder / f"{name}_{split}_data.txt").write_text(text)
    return folder


def test_mc_labels_as_lambeq_defines_them_and_full_stop_stripped(tmp_path):
    mc = load_lambeq_dataset(_write(tmp_path, "mc", MC), "mc")
    assert (mc.name, mc.target, mc.labels) == ("MC", "s", LAMBEQ_MC_LABELS)
    assert mc.labels[1] == "food" and mc.labels[0] == "IT"  # not the generator's 0 = food
    assert mc.train[0] == Example("man cooks meal", 1)
    assert [e.label for e in mc.train] == [1, 0, 1, 0]
    assert (len(mc.train), len(mc.dev), len(mc.test)) == (4, 2, 2)
    for e in mc.all_examples():
        assert not e.sentence.endswith(".") and e.sentence == e.sentence.strip()
    food = {"cooks", "bakes", "tasty", "meal", "dinner", "sauce"}
    assert all((e.label == 1) == bool(food & set(e.sentence.split())) for e in mc.all_examples())


def test_our_parser_and_lambeqs_reader_see_the_same_words(tmp_path):
    import lambeq

    mc = load_lambeq_dataset(_write(tmp_path, "mc", MC), "MC")
    for e in mc.all_examples():
        ours = parse(e.sentence, mc_lexicon())
        theirs = lambeq.cups_reader.sentence2diagram(e.sentence)
        our_words = [box.name for box in ours.boxes if box.dom == type(ours.dom)()]
        their_words = [box.name for box in theirs.boxes  # cups_reader adds a START word
                       if not box.dom and box.name != "START"]
        assert our_words == their_words == e.sentence.split()  # no "." word for lambeq


def test_rp_dev_split_is_seeded_stratified_and_never_from_test(tmp_path):
    train_lines, test_lines = _rp_lines(30), _rp_lines(12, prefix="held")
    folder = _write(tmp_path, "rp", {"train": train_lines, "test": test_lines}, newline=False)
    rp = load_lambeq_dataset(folder, "RP", dev_fraction=0.2, seed=3)
    assert (rp.name, rp.target, rp.labels) == ("RP", "n", RP_LABELS)
    whole = read_lambeq_file(folder / "rp_train_data.txt")
    assert sorted(rp.train + rp.dev, key=whole.index) == list(whole)  # a partition of train
    assert [e for e in whole if e in rp.train] == list(rp.train)  # file order kept
    counts = Counter(e.label for e in whole)  # 20 subject, 10 object relatives
    assert Counter(e.label for e in rp.dev) == {0: 4, 1: 2}  # 20% of each label
    assert Counter(e.label for e in rp.train) == {0: 16, 1: 8}
    assert counts == {0: 20, 1: 10}
    assert rp.test == read_lambeq_file(folder / "rp_test_data.txt")
    test = {e.sentence for e in rp.test}
    assert not test & {e.sentence for e in rp.train + rp.dev}
    assert load_lambeq_dataset(folder, "rp", dev_fraction=0.2, seed=3) == rp
    others = {load_lambeq_dataset(folder, "RP", seed=s).dev for s in range(5)}
    assert len(others) > 1  # the seed chooses the dev split
    assert all(load_lambeq_dataset(folder, "RP", seed=s).test == rp.test for s in range(5))


def test_write_and_read_round_trip(tmp_path):
    examples = (Example("man cooks meal", 1), Example("skillful woman runs program", 0))
    path = write_lambeq_file(tmp_path / "x.txt", examples)
    assert path.read_text() == "1 man cooks meal .\n0 skillful woman runs program .\n"
    assert read_lambeq_file(path) == examples
    for name, splits in (("mc", MC), ("rp", {"train": _rp_lines(10), "test": _rp_lines(3, "t")})):
        folder = _write(tmp_path / name, name, splits)
        data = load_lambeq_dataset(folder, name)
        again = tmp_path / f"{name}_again"
        again.mkdir()
        for split in splits:
            original = read_lambeq_file(folder / f"{name}_{split}_data.txt")
            write_lambeq_file(again / f"{name}_{split}_data.txt", original)
        assert load_lambeq_dataset(again, name) == data
    assert strip_full_stop(" a b .  ") == "a b" and strip_full_stop("a b") == "a b"
    assert read_lambeq_file(_write(tmp_path / "blank", "mc", {"x": ["", "1 a .", "  "]})
                            / "mc_x_data.txt") == (Example("a", 1),)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such lambeq data folder"):
        load_lambeq_dataset(tmp_path / "nowhere", "MC")
    folder = _write(tmp_path / "mc", "mc", {"train": MC["train"], "test": MC["test"]})
    with pytest.raises(FileNotFoundError, match="mc_dev_data.txt: no such lambeq data file"):
        load_lambeq_dataset(folder, "MC")
    with pytest.raises(ValueError, match="unknown lambeq data set"):
        load_lambeq_dataset(folder, "XX")
    for bad in ("2  man cooks meal .", "food  man cooks meal .", "1", "1  .", "1\t ."):
        _write(folder, "mc", {"dev": ["1  woman bakes meal .", bad]})
        with pytest.raises(ValueError, match=r"mc_dev_data.txt:2: expected") as err:
            load_lambeq_dataset(folder, "MC")
        assert "\n" not in str(err.value)
    _write(folder, "mc", {"dev": [""]})
    with pytest.raises(ValueError, match="mc_dev_data.txt: no examples"):
        load_lambeq_dataset(folder, "MC")
    _write(folder, "mc", {"dev": ["1  person cooks dinner ."]})  # a test sentence
    with pytest.raises(ValueError, match="test sentence.*dev split.*person cooks dinner"):
        load_lambeq_dataset(folder, "MC")
    rp = _write(tmp_path / "rp", "rp", {"train": _rp_lines(4), "test": _rp_lines(2, "t")})
    with pytest.raises(ValueError, match="cannot carve a dev split"):
        load_lambeq_dataset(rp, "RP", dev_fraction=0.2)  # 1 object relative: none left
