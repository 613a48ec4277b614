"""AppTest fixtures: every test gets a runtime of its own over its own DATA_DIR.

The runtime is made when a test or a page first uses it, as the dashboard's
is made when the first page opens: it reads its settings (``engine.config``)
then, so a test sets the environment (and writes a settings file) first,
like a deployment before starting the studio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from engine.runtime import Runtime
from ui.runtime import get_runtime


class _Started:
    """The dashboard's runtime, made on first use (attributes are the runtime's)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_runtime(), name)

    def __setattr__(self, name: str, value: Any) -> None:  # monkeypatch.setattr(runtime, ...) patches the runtime
        setattr(get_runtime(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(get_runtime(), name)


@pytest.fixture(autouse=True)
def runtime() -> Iterator[Runtime]:
    """The runtime the pages get from ``st.cache_resource``, fresh per test (DATA_DIR differs per test)."""
    get_runtime.clear()
    yield _Started()  # type: ignore[misc]
    with contextlib.suppress(Exception):  # a test whose settings or store never opened has none to stop
        get_runtime().shutdown(timeout=10)
    get_runtime.clear()
