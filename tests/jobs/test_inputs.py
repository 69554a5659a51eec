from __future__ import annotations

import pytest

from diagrammar.jobs.inputs import InputLineError, Job, id_key, parse_job, parse_jobs, read_jobs


def test_a_good_line_gives_its_job():
    assert parse_job('{"id": "x", "prompt": "a", "max_new_tokens": 0}', 3) == \
        Job("x", 3, "a", 0)
    assert parse_job('{"ids": [5, 6], "note": "kept aside"}', 9) == Job(9, 9, (5, 6), None)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[1, 2]", 'expected a JSON object with "prompt" or "ids", got [1, 2]'),
    ('{"id": 1}', 'no "prompt" (text) or "ids" (token ids)'),
    ('{"prompt": "a", "ids": [1]}', 'give exactly one of "prompt" (text) or "ids"'),
    ('{"prompt": ["a"]}', '"prompt" must be a string, got ["a"]'),
    ('{"ids": [1, "2"]}', '"ids" must be a list of integer token ids'),
    ('{"ids": [1, true]}', '"ids" must be a list of integer token ids'),
    ('{"ids": 5}', '"ids" must be a list of integer token ids, got 5'),
    ('{"prompt": "a", "id": 1.5}', '"id" must be a string or an integer, got 1.5'),
    ('{"prompt": "a", "id": true}', '"id" must be a string or an integer, got true'),
    ('{"prompt": "a", "id": null}', '"id" must be a string or an integer, got null'),
    ('{"prompt": "a", "max_new_tokens": -1}', '"max_new_tokens" must be an integer >= 0'),
    ('{"prompt": "a", "max_new_tokens": "8"}', '"max_new_tokens" must be an integer >= 0'),
])
def test_a_bad_line_says_what_is_wrong(text, message):
    with pytest.raises(InputLineError, match=None) as error:
        parse_job(text, 1)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_lines_are_reported_by_number_and_the_others_kept(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n'
                     b'\n'                                   # blank: skipped silently
                     b'{"prompt": "b"\n'                     # line 3: broken JSON
                     b'{"prompt": "\xff"}\n'                 # line 4: not UTF-8
                     b'{"id": "k", "prompt": "c"}\n'
                     b'{"id": "k", "prompt": "d"}\n'         # line 6: id of line 5
                     b'{"id": "1", "prompt": "e"}\n'         # line 7: "1" is line 1's id
                     b'{"ids": [1, 2]}')                     # line 8, no final newline
    jobs, errors = read_jobs(path)
    assert [(job.id, job.line) for job in jobs] == [(1, 1), ("k", 5), (8, 8)]
    assert [error.line for error in errors] == [3, 4, 6, 7]
    assert errors[1].message == "not valid UTF-8 (byte 0xff at position 12)"
    assert errors[2].describe(path) == \
        f'{path} line 6: id "k" was already used on line 5: ids must be unique'
    assert "already used on line 1" in errors[3].message


def test_ids_compare_as_text():
    assert id_key(12) == id_key("12") == "12"
    jobs, errors = parse_jobs(['{"id": 2, "prompt": "a"}', '{"prompt": "b"}'])
    assert [job.key for job in jobs] == ["2"] and errors[0].line == 2


def test_windows_line_ends_and_whitespace_are_fine():
    jobs, errors = parse_jobs([b'  {"prompt": "a"}  \r', b'{"ids": [3]}\r'])
    assert not errors and [job.prompt for job in jobs] == ["a", (3,)]
