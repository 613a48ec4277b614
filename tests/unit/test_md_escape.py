"""ui.text.md_escape: Markdown punctuation escaped, URLs shown as code spans (an escaped URL would be
autolinked with its backslashes showing, as ``http://127\\.0\\.0\\.1:8000/v1``)."""

from __future__ import annotations

import pytest

from ui.text import md_escape

CASES = [
    ("Agents use http://127.0.0.1:8000/v1.", "Agents use `http://127.0.0.1:8000/v1`\\."),
    ("at https://api.openai.com/v1, then", "at `https://api.openai.com/v1`, then"),
    ("(see http://h:1/v1)", "\\(see `http://h:1/v1`\\)"),
    ("![x](http://127.0.0.1:9/x.png)", "\\!\\[x\\]\\(`http://127.0.0.1:9/x.png`\\)"),
    ("[click](javascript:alert(1))", "\\[click\\]\\(javascript:alert\\(1\\)\\)"),
    ("www.example.com is a site", "`www.example.com` is a site"),
    ("a_b*c 1.5", "a\\_b\\*c 1\\.5"),
    ("no url: 127.0.0.1:8000", "no url: 127\\.0\\.0\\.1:8000"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_md_escape(text: str, expected: str) -> None:
    assert md_escape(text) == expected


def test_no_url_keeps_a_backslash_in_it() -> None:
    for text, _ in CASES:
        for span in md_escape(text).split("`")[1::2]:
            assert "\\" not in span
