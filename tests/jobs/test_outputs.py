from __future__ import annotations

import json

from diagrammar.jobs.outputs import ResultsFile, read_results


def record(job_id, text="t"):
    return {"id": job_id, "text": text, "tokens": [1, 2], "stats": {"steps": 1}}


def test_results_are_appended_flushed_and_not_repeated(tmp_path):
    path = tmp_path / "out.jsonl"
    results = ResultsFile(path)
    assert results.done == set() and not path.exists()
    assert results.write(record("a"))
    assert json.loads(path.read_text()) == record("a")         # flushed at once, before close
    assert not results.write(record("a", "again"))            # an id is written once
    assert results.write(record(2))
    results.close()
    assert read_results(path) == {"a": record("a"), "2": record(2)}


def test_a_rerun_skips_the_ids_done_and_cuts_an_unfinished_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(record("a")) + "\n" + json.dumps(record(7)) + "\n"
                    + '{"id": "b", "text": "cut he')
    results = ResultsFile(path)
    assert results.done == {"a", "7"}
    assert len(results.notes) == 1 and f"{path} line 3: an unfinished record" in results.notes[0]
    assert path.read_text().endswith("}\n")                  # the broken tail is gone
    with results:
        results.write(record("b"))
    assert list(read_results(path)) == ["a", "7", "b"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_last_record_without_its_newline_is_kept_and_completed(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(record("a")))
    with ResultsFile(path) as results:
        assert results.done == {"a"} and not results.notes
        results.write(record("b"))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_lines_that_are_not_results_are_noted_and_left(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('garbage\n\n{"no": "id"}\n' + json.dumps(record("a")) + "\n")
    results = ResultsFile(path)
    assert results.done == {"a"}
    assert [note.split(": ", 1)[0] for note in results.notes] == \
        [f"{path} line 1", f"{path} line 3"]
    assert path.read_text().startswith("garbage\n")            # not ours to delete
    assert list(read_results(path)) == ["a"]
