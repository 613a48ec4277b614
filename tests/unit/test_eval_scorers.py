"""Each evaluation scorer, table-driven: good, wrong and bad expected values (engine/evals/scorers.py)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.evals.dataset import Dataset, DatasetInvalid, prepare_rows, read_dataset
from engine.evals.scorers import ScorerInvalid, parse_scorers, score, scorer
from engine.validate import load_workflow

CASES: list[tuple[str, Any, Any, float, str]] = [
    # spec, output, expected, score, a word of the reason
    ("exact", "  Paris ", "Paris", 1.0, "equal"),
    ("exact", "paris", "Paris", 0.0, "differs"),
    ("exact:ci", "paris", "PARIS", 1.0, "equal"),
    ("exact", {"a": 1}, '{"a": 1}', 1.0, "equal"),
    ("exact", "x", None, 0.0, "no expected"),
    ("exact", "x", "  ", 0.0, "no expected"),
    ("contains", "the answer is 42.", "42", 1.0, "contains"),
    ("contains", "the answer is 41.", "42", 0.0, "does not contain"),
    ("contains", "x", None, 0.0, "no expected"),
    ("regex", "order #123", r"#\d+", 1.0, "matches"),
    ("regex", "order #abc", r"#\d+", 0.0, "does not match"),
    ("regex", "x", "([unclosed", 0.0, "not a valid regular expression"),
    ("regex:^ok", "ok then", None, 1.0, "matches"),
    ("json:answer", '{"answer": 4}', "4", 1.0, "equals"),
    ("json:result.answer", {"answer": "Paris"}, "Paris", 1.0, "equals"),
    ("json:items.1", {"items": [1, 2]}, 2, 1.0, "equals"),
    ("json:answer", '{"answer": 5}', "4", 0.0, "expected"),
    ("json:answer", "not json", "4", 0.0, "not JSON"),
    ("json:missing", {"answer": 1}, "1", 0.0, "has no"),
    ("numeric", "Using calculator: 17 * 3 - 4 = 47. Offline answer: What is 17 * 3 - 4.", "47", 1.0, "within"),
    ("numeric", 2.5, 2.5, 1.0, "within"),
    ("numeric", "about 3.14", "3.1416", 0.0, "differs"),
    ("numeric:0.01", "about 3.14", "3.1416", 1.0, "within"),
    ("numeric:1%", "99.5", 100, 1.0, "within"),
    ("numeric:1%", "98", 100, 0.0, "differs"),
    ("numeric", "1,234", "1234", 1.0, "within"),
    ("numeric", "42", "forty-two", 0.0, "not a number"),
    ("numeric", "42", True, 0.0, "not a number"),
    ("numeric", "42", None, 0.0, "no expected"),
    ("numeric", "no digits here", "4", 0.0, "no number"),
]


@pytest.mark.parametrize(("spec", "output", "expected", "value", "word"), CASES)
def test_scorer_table(spec: str, output: Any, expected: Any, value: float, word: str) -> None:
    (parsed,) = parse_scorers([spec])
    got = score(parsed, output, expected)
    assert got.value == value, got.reason
    assert word in got.reason


@pytest.mark.parametrize(
    ("spec", "word"),
    [
        ("nope", "unknown"),
        ("exact:loud", "ci"),
        ("numeric:-1", "tolerance"),
        ("numeric:abc", "tolerance"),
        ("regex:([", "regular expression"),
        ("json", "path"),
    ],
)
def test_bad_scorer_specs_are_refused_all_at_once(spec: str, word: str) -> None:
    with pytest.raises(ScorerInvalid) as caught:
        parse_scorers([spec, "also-unknown"])
    assert len(caught.value.problems) == 2
    assert word in str(caught.value)


def test_custom_scorer_registry() -> None:
    @scorer("length_ok")
    def length_ok(output: Any, expected: Any, arg: str) -> tuple[float, str]:
        return (1.0 if len(str(output)) <= int(arg or 5) else 0.0), "length"

    @scorer("broken_one")
    def broken(output: Any, expected: Any, arg: str) -> float:
        raise RuntimeError("bug")

    short, long_, bad = parse_scorers(["length_ok:3", "length_ok", "broken_one"])
    assert score(short, "abcd", None).value == 0.0
    assert score(long_, "abcd", None).value == 1.0
    failed = score(bad, "x", None)
    assert failed.value == 0.0 and "RuntimeError" in failed.reason


WORKFLOW = {
    "format": "workflow/v1",
    "name": "typed",
    "inputs": {
        "n": {"type": "integer"},
        "x": {"type": "number", "default": 1.5},
        "flag": {"type": "boolean", "default": False},
        "tags": {"type": "array", "default": []},
    },
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "out", "type": "output", "config": {"value": "{{ inputs.n }}"}},
    ],
    "edges": [{"source": "start", "target": "out"}],
}


def test_csv_cells_convert_and_a_bad_cell_is_a_row_error() -> None:
    data = b'n,x,flag,tags,expected,note\n3,2.5,yes,"[1,2]",3,a\nthree,1,no,[],3,b\n4,,true,,4,c\n'
    rows = prepare_rows(load_workflow(WORKFLOW), read_dataset(data, "d.csv"))
    assert rows[0].inputs == {"n": 3, "x": 2.5, "flag": True, "tags": [1, 2]} and rows[0].error is None
    assert rows[0].meta == {"note": "a"} and rows[0].expected == "3"
    assert rows[1].error is not None and "input 'n'" in rows[1].error
    assert rows[2].inputs == {"n": 4, "flag": True}  # blank optional cells: their defaults


def test_jsonl_and_json_list_read_typed_values() -> None:
    jsonl = read_dataset(b'{"n": 1, "expected": 1}\n\n{"n": 2.0, "expected": 2}\n', "d.jsonl")
    listed = read_dataset(b'[{"n": 1.5}]', "d.json")
    assert [r.inputs for r in prepare_rows(load_workflow(WORKFLOW), jsonl)] == [{"n": 1}, {"n": 2}]
    assert prepare_rows(load_workflow(WORKFLOW), listed)[0].error is not None


def test_missing_required_column_and_expected_are_reported_together() -> None:
    with pytest.raises(DatasetInvalid) as caught:
        prepare_rows(load_workflow(WORKFLOW), Dataset("d.csv", ["x"], [{"x": 1}]), expected="answer")
    text = str(caught.value)
    assert "input 'n'" in text and "column 'answer'" in text
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("data", "name", "word"),
    [
        (b"", "d.csv", "no rows"),
        (b"[1, 2]", "d.json", "list of objects"),
        (b'{"n": 1}\nnot json\n', "d.jsonl", "line 2"),
        (b"n\n1\n", "d.txt", ".csv"),
        (b"\xff\xfe", "d.csv", "UTF-8"),
    ],
)
def test_unreadable_datasets(data: bytes, name: str, word: str) -> None:
    with pytest.raises(DatasetInvalid, match=word.replace(".", r"\.")):
        read_dataset(data, name)
