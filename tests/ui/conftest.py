"""AppTest fixtures: every test gets a runtime of its own over its own DATA_DIR."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.runtime import Runtime
from ui.runtime import get_runtime


@pytest.fixture(autouse=True)
def runtime() -> Iterator[Runtime]:
    """The runtime the pages get from ``st.cache_resource``, fresh per test (DATA_DIR differs per test)."""
    get_runtime.clear()
    rt = get_runtime()
    yield rt
    rt.shutdown(timeout=10)
    get_runtime.clear()
