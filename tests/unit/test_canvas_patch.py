"""The patched streamlit-flow build (ui/canvas.py) and the node icons (ui/icons.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ui import canvas, icons
from ui.flow import node_content

EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")


def test_every_patch_matches_the_installed_bundle_once() -> None:
    bundle = (canvas.SOURCE / canvas.BUNDLE).read_text(encoding="utf-8")
    patched = canvas.patched_bundle(bundle)
    for _what, old, new in canvas.PATCHES:
        assert bundle.count(old) == 1 and old not in patched and patched.count(new) == 1


@pytest.mark.parametrize("index", range(len(canvas.PATCHES)))
def test_a_bundle_without_an_anchor_is_refused_with_the_version_to_install(index: int) -> None:
    bundle = (canvas.SOURCE / canvas.BUNDLE).read_text(encoding="utf-8")
    what, old, _new = canvas.PATCHES[index]
    with pytest.raises(canvas.CanvasPatchError, match=re.escape(f"pip install {canvas.PACKAGE}")) as caught:
        canvas.patched_bundle(bundle.replace(old, ""))
    assert what in str(caught.value)


def test_the_served_build_loads_the_viewport_policy_first() -> None:
    folder = canvas.build_dir()
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert html.index("canvas_view.js") < html.index(canvas.BUNDLE.rsplit("/", 1)[-1])
    assert (folder / "canvas_view.js").read_bytes() == canvas.HELPER.read_bytes()
    assert "window.__studioFlow.placed(S,e.args)" in (folder / canvas.BUNDLE).read_text(encoding="utf-8")
    assert canvas.build_dir() == folder, "made once, then reused"


@pytest.mark.parametrize("node_type", [*icons.NODE_ICONS, "unknown-type"])
def test_node_icons_need_no_emoji_font(node_type: str) -> None:
    content = node_content({"id": "n1", "type": node_type, "label": "A label"})
    assert not EMOJI.search(content) and not EMOJI.search(icons.material(node_type))
    assert re.search(r'<i class="bi bi-[a-z0-9-]+" aria-hidden="true"></i>', content)


def test_the_canvas_icon_font_has_every_bootstrap_icon_used() -> None:
    css = next((canvas.SOURCE / "static" / "css").glob("main.*.css")).read_text(encoding="utf-8")
    for icon in [*icons.NODE_ICONS.values(), icons.UNKNOWN]:
        assert f".bi-{icon.bootstrap}:before" in css, icon


def test_a_folder_under_the_build_name_that_others_can_write_is_never_served(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(canvas.tempfile, "gettempdir", lambda: str(tmp_path))
    planted = tmp_path / f"workflow-studio-canvas-{canvas._digest()}"
    planted.mkdir()
    (planted / "index.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    planted.chmod(0o777)
    served = canvas.build_dir()
    assert served != planted and "canvas_view.js" in (served / "index.html").read_text(encoding="utf-8")
    assert not served.stat().st_mode & 0o022, "nobody else can write into it"
    planted.chmod(0o700)
    assert canvas.build_dir() == planted, "a private folder of ours is reused as it is"
