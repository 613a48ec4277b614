"""The validation cache (issue 17): a document whose content hash was compiled is not validated again.

The spy counts calls of the real validator (it still runs); nothing stands in for it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import WorkflowInvalid, load_workflow
from engine import validate as validate_module
from engine.runtime import Runtime
from tools import ToolRegistry


def _doc(name: str = "cache test", tool: str | None = None) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "input"},
        {"id": "add", "type": "transform", "config": {"expression": "1 + 1"}},
    ]
    edges = [{"source": "start", "target": "add"}]
    if tool is not None:
        nodes.append({"id": "call", "type": "tool", "config": {"tool": tool, "args": {}}})
        edges.append({"source": "add", "target": "call"})
    return {"format": "workflow/v1", "name": name, "nodes": nodes, "edges": edges}


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the documents the real validator ran on."""
    validate_module.clear_validation_cache()
    seen: list[str] = []
    real = validate_module._validate

    def counting(raw: Any, registry: ToolRegistry) -> Any:
        seen.append(str(raw.get("name")))
        return real(raw, registry)

    monkeypatch.setattr(validate_module, "_validate", counting)
    yield seen
    validate_module.clear_validation_cache()


def test_an_equal_document_is_validated_once(validations: list[str]) -> None:
    first = load_workflow(_doc())
    again = load_workflow(copy.deepcopy(_doc()))  # equal, not the same object
    assert again is first
    assert validations == ["cache test"]
    other = load_workflow(_doc(name="another"))
    assert other is not first and validations == ["cache test", "another"]


def test_a_changed_value_type_is_a_new_document(validations: list[str]) -> None:
    with_int = _doc()
    with_int["settings"] = {"max_iterations": 5}
    with_float = copy.deepcopy(with_int)
    with_float["settings"]["max_iterations"] = 5.5  # equal as JSON text would not tell 5 from "5"
    load_workflow(with_int)
    with pytest.raises(WorkflowInvalid):
        load_workflow(with_float)
    assert len(validations) == 2


def test_a_tool_registered_or_removed_since_means_validating_again(validations: list[str]) -> None:
    registry = ToolRegistry()
    doc = _doc(tool="cache_probe")
    with pytest.raises(WorkflowInvalid, match="cache_probe"):
        load_workflow(doc, tools=registry)

    def cache_probe() -> int:
        """Return one."""
        return 1

    registry.register(cache_probe)
    load_workflow(doc, tools=registry)
    load_workflow(doc, tools=registry)
    registry.unregister("cache_probe")
    with pytest.raises(WorkflowInvalid, match="cache_probe"):
        load_workflow(doc, tools=registry)
    assert len(validations) == 3


def test_a_second_submit_of_the_same_document_does_not_validate_again(tmp_path: Path, validations: list[str]) -> None:
    with Runtime(data_dir=tmp_path) as runtime:
        first = runtime.submit(_doc())
        second = runtime.submit(copy.deepcopy(_doc()))
        assert runtime.wait(first).status == "completed"
        assert runtime.wait(second).status == "completed"
        assert validations == ["cache test"]
        saved = runtime.reader.workflows()
        assert [(w.name, w.latest_version) for w in saved] == [("cache test", 1)]
