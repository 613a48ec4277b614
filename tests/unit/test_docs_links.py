"""The documentation's relative links resolve: every file and every #anchor they name exists.

The README is a short front door and the rest lives in docs/; a link that points at a
moved section or a file that was never written is the first thing a new reader hits.
Links outside the repository (http, mailto) are not checked here. Anchors follow
GitHub's heading slugs (lower case, punctuation dropped, spaces to hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_DOCS = [ROOT / name for name in ("CONTRIBUTING.md", "CHANGELOG.md")]
DOCS = [ROOT / "README.md", *ROOT_DOCS, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without code: links inside code blocks and code spans are examples, not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_the_slugs_follow_github() -> None:
    assert slug("Drafts: the Builder never loses work") == "drafts-the-builder-never-loses-work"
    assert slug("`max_tokens`") == "max_tokens"
    assert slug("Rerun from a node (a fork)") == "rerun-from-a-node-a-fork"
    assert slug("HTTP API and dashboard") == "http-api-and-dashboard"


def test_the_link_finder_sees_links_and_skips_code() -> None:
    text = "See [a](a.md), ![b](b.png) and [c](c.md#x).\n```\n[no](no.md)\n```\nand `[no](no.md)`."
    assert LINK.findall(_prose(text)) == ["a.md", "b.png", "c.md#x"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)


def test_the_readme_is_a_short_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for command in ("pip install -r requirements.txt", "streamlit run app.py", "http://127.0.0.1:8501"):
        assert command in readme
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_docs_file_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    orphans = [str(p.relative_to(ROOT)) for p in DOCS[1:] if p.resolve() not in linked]
    assert not orphans, f"docs/ files the README does not link: {orphans}"
