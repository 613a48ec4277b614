"""Ask before leaving a page with unsaved changes: the browser's own "Leave site?" prompt.

A ``st.components.v2`` component (mounted in the app's page itself, not in an
iframe) keeps one ``beforeunload`` listener on the window and a flag the page
sets on every run: while the flag is up, a reload, closing the tab or
navigating away asks first. Leaving the page inside the app (another page in
the sidebar) keeps the session, so it is not asked about; the component
lowers the flag when it is unmounted. Browsers show their own text, never
ours, and only after the user has interacted with the page.
"""

from __future__ import annotations

import streamlit as st

_JS = """
export default function(component) {
    const { data } = component;
    const w = window.top && window.top.location.origin === window.location.origin ? window.top : window;
    w.__studioUnsaved = Boolean(data.unsaved);
    if (!w.__studioLeaveGuard) {
        w.__studioLeaveGuard = (event) => {
            if (!w.__studioUnsaved) return undefined;
            event.preventDefault();
            event.returnValue = "";
            return "";
        };
        w.addEventListener("beforeunload", w.__studioLeaveGuard);
    }
    return () => { w.__studioUnsaved = false; };
}
"""

_guard = st.components.v2.component("workflow_studio.leave_guard", js=_JS, html="<span hidden></span>")


def guard(*, unsaved: bool, key: str) -> None:
    """Ask before the browser leaves the page while ``unsaved`` (call it on every run of the page)."""
    _guard(key=key, data={"unsaved": bool(unsaved)})
