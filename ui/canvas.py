"""The workflow canvas: streamlit-flow's React Flow component with a viewport that behaves.

streamlit-flow 1.6.1 fits the view after *every* state it accepts from Python (so each redraw threw
away the user's pan and zoom), never refits when the canvas changes width, and leaves new nodes
wherever they land. Its Python API has no way to change that, and its frontend cannot be rebuilt
here (no npm registry), so this module serves a patched copy of the installed package's own build:

* the build is copied to a folder under the system temp dir named by a digest of the installed
  bundle and this patch (a changed package or patch gets a new folder), owned by this user and
  writable by nobody else (a folder under that name that is not so is never served: the browser
  runs its scripts); ``canvas_view.js`` (next to this module: the whole viewport policy, readable) is loaded first;
* four one-line insertions in the bundle (:data:`PATCHES`, each must match exactly once, else the
  app stops with a message naming the expected package version) call into it: after each layout
  pass, when a drawing arrives, on every pan/zoom end, and for the minimap's node colours; React
  Flow's own initial ``fitView`` is turned off (``canvas_view.js`` fits);
* a ``<style>`` makes the connection handles easier to hit (10 px instead of 6 px).

:func:`canvas` is streamlit-flow's ``streamlit_flow()`` with the same arguments plus ``view_key``:
a new key is a new view (fitted), the same key keeps the user's viewport across reruns.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components
import streamlit_flow
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.layouts import ManualLayout
from streamlit_flow.state import StreamlitFlowState

PACKAGE = "streamlit-flow-component==1.6.1"
SOURCE = Path(streamlit_flow.__file__).resolve().parent / "frontend" / "build"
BUNDLE = "static/js/main.9ad46f33.js"
HELPER = Path(__file__).resolve().with_name("canvas_view.js")
MIN_ZOOM = 0.05  # an 80- or 200-node graph fits in the canvas (streamlit-flow's default stops at 0.5)

# (what, text in the minified bundle, replacement). Names: `e` the component's props, `S` its React
# Flow instance, `n`/`r` the "view fitted after layout" flag and its setter, `i` the current nodes.
PATCHES: list[tuple[str, str, str]] = [
    (
        "place the view after each layout pass (was: fitView every time)",
        "(0,f.useEffect)((()=>{!n&&e.args.fitView&&(A(),r(!0))}),[n,e.args.fitView])",
        "(0,f.useEffect)((()=>{!1===n&&(window.__studioFlow.placed(S,e.args),r(!0))}),[n,e.args.fitView])",
    ),
    (
        "note the nodes a drawing from Python adds",
        "l<=e.args.timestamp&&(b(!0),",
        "l<=e.args.timestamp&&(window.__studioFlow.incoming(i,e.args.nodes),b(!0),",
    ),
    (
        "no React Flow fit on init; save the viewport on every pan/zoom end",
        "fitView:e.args.fitView,style:e.args.style",
        "fitView:!1,onMoveEnd:(t,v)=>window.__studioFlow.moved(v),style:e.args.style",
    ),
    (
        "minimap nodes in the nodes' own colours",
        "(0,qp.jsx)(Sb,{pannable:!0,zoomable:!0})",
        "(0,qp.jsx)(Sb,{pannable:!0,zoomable:!0,nodeColor:window.__studioFlow.minimapColor,nodeStrokeColor:'#64748b',nodeStrokeWidth:4})",
    ),
]
HEAD_INSERT = (
    '<script src="./canvas_view.js"></script>'
    "<style>.react-flow__handle{width:10px;height:10px;border-radius:5px}</style>"
)


class CanvasPatchError(RuntimeError):
    """The installed streamlit-flow build is not the one the patch was written for."""


def _digest() -> str:
    h = hashlib.sha256()
    h.update((SOURCE / BUNDLE).read_bytes())
    h.update(HELPER.read_bytes())
    h.update(repr((PATCHES, HEAD_INSERT)).encode())
    return h.hexdigest()[:16]


def patched_bundle(text: str) -> str:
    """The bundle with :data:`PATCHES` applied; each anchor must occur exactly once."""
    for what, old, new in PATCHES:
        count = text.count(old)
        if count != 1:
            raise CanvasPatchError(
                f"The canvas needs {PACKAGE} (its build differs: {count} matches for the patch '{what}'). "
                f"Install it with: pip install {PACKAGE}"
            )
        text = text.replace(old, new)
    return text


def build_dir() -> Path:
    """The patched build, made once per (installed bundle, patch) and shared by every process."""
    target = Path(tempfile.gettempdir()) / f"workflow-studio-canvas-{_digest()}"
    if (target / "index.html").is_file() and _private(target):
        return target
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    serve = target
    try:
        shutil.copytree(SOURCE, staging, dirs_exist_ok=True)
        bundle = staging / BUNDLE
        bundle.write_text(patched_bundle(bundle.read_text(encoding="utf-8")), encoding="utf-8")
        shutil.copyfile(HELPER, staging / "canvas_view.js")
        index = staging / "index.html"
        html = index.read_text(encoding="utf-8")
        if html.count("<head>") != 1:
            raise CanvasPatchError(f"The canvas needs {PACKAGE} (its index.html differs).")
        index.write_text(html.replace("<head>", "<head>" + HEAD_INSERT), encoding="utf-8")
        try:
            os.rename(staging, target)  # atomic: another process may have finished first, then theirs stays
        except OSError:
            if not ((target / "index.html").is_file() and _private(target)):
                serve = staging  # someone else's folder under that name: serve our own private copy
    finally:
        if serve is not staging:
            shutil.rmtree(staging, ignore_errors=True)
    return serve


def _private(folder: Path) -> bool:
    """Whether ``folder`` is ours alone: the browser runs the scripts in it, and the temp dir is shared."""
    if not hasattr(os, "getuid"):
        return True  # (no POSIX owners: the per-user temp dir is private)
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


_component = components.declare_component("streamlit_flow", path=str(build_dir()))


def canvas(
    key: str,
    state: StreamlitFlowState,
    *,
    view_key: str,
    height: int = 500,
    show_controls: bool = True,
    show_minimap: bool = True,
    allow_new_edges: bool = False,
    get_node_on_click: bool = False,
    get_edge_on_click: bool = False,
    pan_on_drag: bool = True,
    allow_zoom: bool = True,
    min_zoom: float = MIN_ZOOM,
    enable_node_menu: bool = False,
    enable_edge_menu: bool = False,
) -> StreamlitFlowState:
    """Draw ``state`` (arguments as ``streamlit_flow.streamlit_flow``); ``view_key`` names the view."""
    value: Any = _component(
        nodes=[node.asdict() for node in state.nodes],
        edges=[edge.asdict() for edge in state.edges],
        height=height,
        showControls=show_controls,
        fitView=True,
        showMiniMap=show_minimap,
        style={},
        animateNewEdges=False,
        allowNewEdges=allow_new_edges,
        layoutOptions=ManualLayout().__to_dict__(),
        getNodeOnClick=get_node_on_click,
        getEdgeOnClick=get_edge_on_click,
        panOnDrag=pan_on_drag,
        allowZoom=allow_zoom,
        minZoom=min_zoom,
        enableNodeMenu=enable_node_menu,
        enablePaneMenu=False,
        enableEdgeMenu=enable_edge_menu,
        hideWatermark=True,
        viewKey=view_key,
        key=key,
        timestamp=state.timestamp,
        component="streamlit_flow",
    )
    if value is None:
        return state
    return StreamlitFlowState(
        nodes=[StreamlitFlowNode.from_dict(node) for node in value["nodes"]],
        edges=[StreamlitFlowEdge.from_dict(edge) for edge in value["edges"]],
        selected_id=value["selectedId"],
        timestamp=value["timestamp"],
    )


ROOMY_CSS = """<style>
[data-testid="stMainBlockContainer"] {
  padding-left: 1.5rem; padding-right: 1.5rem; padding-top: 2.5rem; max-width: none;
}
</style>"""


def roomy_page() -> None:
    """Narrow page margins on a page with a canvas (the style goes when the page is left)."""
    import streamlit as st

    st.html(ROOMY_CSS)
