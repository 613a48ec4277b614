"""The one Runtime of the dashboard process, held by ``st.cache_resource``.

The runtime is handed the process's configuration (``engine.config.Settings``,
read from the environment and the settings file when it is created); the
Settings page's Save hands it new settings (``Runtime.update_settings``).

When the configuration does not parse (a bad value of an environment
variable) or the store cannot be opened (a read-only ``DATA_DIR``, a
``DATABASE_URL`` that is not a URL or lacks its driver, a server that does not
answer), every page shows that one-line message instead of a traceback:
``app.py`` calls :func:`runtime_or_stop` before any page runs. A failed
opening is not cached, so the next rerun tries again once the cause is fixed.
"""

from __future__ import annotations

import streamlit as st

from engine.config import ConfigInvalid, Settings
from engine.queue import QueueModeInvalid, open_runtime
from engine.runtime import Runtime
from engine.store import StoreError
from ui.text import md_escape


@st.cache_resource(show_spinner=False)
def get_runtime() -> Runtime:
    """The process-wide runtime (background loop + store, or the queue's: ``EXECUTION_MODE``); created on first
    use, with the settings read now."""
    return open_runtime(settings=Settings.from_env())


def runtime_or_stop() -> Runtime:
    """The runtime; when its settings do not parse or its store cannot be opened, the reason as one error and
    the script stops."""
    try:
        return get_runtime()
    except ConfigInvalid as exc:
        st.error(f"Configuration: {md_escape(exc)}", icon=":material/settings:")
        st.stop()
        raise  # st.stop() raises; this line is for type checkers
    except (StoreError, QueueModeInvalid) as exc:
        st.error(f"Store: {md_escape(exc)}", icon=":material/database:")
        st.stop()
        raise  # st.stop() raises; this line is for type checkers
