"""The Run page: a finished run's graph, result, tool calls and tokens; a live run and cancel;
model output shown as text, never as HTML, links or images."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.fake_openai import FakeOpenAIServer
from ui import graph_view
from ui.canvas import ROOMY_CSS
from ui.nav import RUN_ID
from ui.node_panel import TRACES, statuses_of

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CALCULATOR = str(ROOT / "examples" / "calculator_agent.json")
HOSTILE = (
    "Hi <img src=x onerror=alert(1)> and <script>alert(1)</script> and ![x](http://127.0.0.1:9/x.png) "
    "[click](javascript:alert(1))"
)


def run_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if run_id is not None:
        at.session_state[RUN_ID] = run_id
    at.run()
    at.switch_page("views/run.py").run()
    assert not at.exception, at.exception
    return at


def rerun_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 20) -> AppTest:
    """AppTest does not tick ``run_every``: rerun (as the fragment would) until ``done``."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if done(at) or time.monotonic() > deadline:
            return at
        time.sleep(0.1)


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption])


def flow_statuses(at: AppTest) -> dict[str, str]:
    """Node id -> the status the Run page's graph draws (the run's folded trace, ``ui.node_panel``)."""
    run_id, trace = list(at.session_state[TRACES].items())[-1]
    nodes = [n["id"] for n in at.session_state["run_docs"][run_id]["nodes"]]
    return statuses_of(trace, nodes)


def test_no_run_yet_says_how_to_start_one() -> None:
    at = run_page()
    assert any("No runs yet" in i.value for i in at.info)


def test_completed_calculator_run_shows_graph_result_tools_and_tokens(runtime: Runtime) -> None:
    run_id = runtime.submit(CALCULATOR)
    assert runtime.wait(run_id, 20).status == "completed"
    at = run_page(run_id)
    text = markdown_text(at)
    assert ":green-badge[completed]" in text
    assert flow_statuses(at) == {"start": "succeeded", "solver": "succeeded", "answer": "succeeded"}
    assert at.session_state["run_views"][run_id].node_status == {
        "start": "succeeded",
        "solver": "succeeded",
        "answer": "succeeded",
    }
    progress = at.get("progress")[0]
    assert progress.proto.value == 100 and progress.proto.text == "3 succeeded of 3"
    assert any("84" in str(j.value) for j in at.json), "the result is in the JSON viewer"
    assert "**answer**" in text, "each output has a section"
    answer = runtime.status(run_id).result["answer"]
    assert [t.value for t in at.text].count(answer) == 2, "the streamed text and the result, as plain text"
    calls = at.dataframe[0].value
    assert (
        list(calls["tool"]) == ["calculator"]
        and "(12 + 30) * 2" in calls["args"][0]
        and calls["result / error"][0] == "84"
    )
    assert calls["ms"][0] is not None and calls["status"][0] == "ok"
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Prompt tokens"]) > 0 and int(metrics["Completion tokens"]) > 0
    assert "answered by the offline model" in text
    assert at.button(key="run_cancel").disabled


def test_choosing_a_run_from_the_selector(runtime: Runtime) -> None:
    run_id = runtime.submit(CALCULATOR)
    runtime.wait(run_id, 20)
    runtime.store.flush()
    at = run_page()
    assert any("Choose a run" in i.value for i in at.info)
    at.selectbox(key="run_pick").select(run_id).run()
    assert not at.exception
    assert at.session_state[RUN_ID] == run_id
    assert ":green-badge[completed]" in markdown_text(at)


def test_live_run_shows_running_then_cancel_ends_it(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.2")
    run_id = runtime.submit(CALCULATOR)
    at = run_page(run_id)
    at = rerun_until(at, lambda a: flow_statuses(a).get("solver") == "running")
    assert ":blue-badge[running]" in markdown_text(at)
    assert flow_statuses(at)["start"] == "succeeded"
    cancel = at.button(key="run_cancel")
    assert not cancel.disabled
    cancel.click().run()
    assert runtime.wait(run_id, 20).status == "cancelled"
    at = rerun_until(at, lambda a: ":orange-badge[cancelled]" in markdown_text(a))
    assert ":orange-badge[cancelled]" in markdown_text(at)
    assert flow_statuses(at)["solver"] == "cancelled"
    assert at.button(key="run_cancel").disabled
    assert any("cancelled" in w.value for w in at.warning)


def test_streamed_tokens_are_read_incrementally(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0.05")
    run_id = runtime.submit(CALCULATOR)
    at = run_page(run_id)
    seen: list[int] = []
    at = rerun_until(
        at, lambda a: seen.append(a.session_state["run_views"][run_id].last_seq) or runtime.status(run_id).finished
    )
    at.run()
    view = at.session_state["run_views"][run_id]
    assert view.last_seq == len(runtime.store.events(run_id)) and seen == sorted(seen)
    assert view.tokens["solver"] == runtime.status(run_id).result["answer"]


def _hostile_workflow() -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "Hostile echo",
        "inputs": {"q": {"type": "string", "default": "say it"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "bot", "type": "agent", "label": "<b>Bot</b>", "config": {"prompt": "{{ inputs.q }}"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.bot.output }}"}},
        ],
        "edges": [{"source": "start", "target": "bot"}, {"source": "bot", "target": "out"}],
    }


def test_model_output_is_shown_as_text_never_html(
    runtime: Runtime, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.enqueue_text(HOSTILE)
    run_id = runtime.submit(_hostile_workflow())
    info = runtime.wait(run_id, 20)
    assert info.status == "completed" and info.result == {"out": HOSTILE}
    at = run_page(run_id)
    texts = [t.value for t in at.text]
    assert texts.count(HOSTILE) == 2, "the streamed text and the result are shown as typed, by st.text"
    markdowns = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success]
    assert all(not m.proto.allow_html for m in [*at.markdown, *at.caption]), "nothing uses unsafe_allow_html"
    for m in markdowns:  # no Markdown element carries model text (escaped Markdown still autolinks bare URLs)
        assert "onerror" not in m.value and "127.0.0.1:9" not in m.value and "javascript:" not in m.value
    # the only raw HTML is the page's own fixed stylesheet (ui.canvas.roomy_page), never model text
    assert all(h.proto.body == ROOMY_CSS for h in at.get("html")), "no raw HTML element but the page's stylesheet"
    (drawing,) = at.session_state["graph_view_layouts"].values()  # the graph's labels go to its script as data,
    assert next(n for n in drawing["nodes"] if n[0] == "bot")[:3] == ["bot", "<b>Bot</b>", "agent"]  # set as text
    assert "innerHTML" not in graph_view.SCRIPT
    assert "answered by the offline model" not in "\n".join(m.value for m in markdowns)


def test_a_link_with_the_run_id_opens_that_run(runtime: Runtime) -> None:
    run_id = runtime.submit(CALCULATOR)
    runtime.wait(run_id, 20)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("views/run.py").run()
    assert not at.exception, at.exception
    assert at.session_state[RUN_ID] == run_id and ":green-badge[completed]" in markdown_text(at)


def test_map_items_stream_per_index(runtime: Runtime) -> None:
    run_id = runtime.submit(str(ROOT / "examples" / "parallel_summaries.json"))
    assert runtime.wait(run_id, 20).status == "completed"
    at = run_page(run_id)
    captions = [c.value for c in at.caption]
    for index in range(3):
        assert any("Summarise each" in c and f"item {index}" in c for c in captions)
    assert set(at.session_state["run_views"][run_id].tokens) == {"summaries[0]", "summaries[1]", "summaries[2]"}


def test_memory_reads_and_writes_are_listed_with_scores() -> None:
    def script() -> None:
        from engine.events import Event
        from ui.run_parts import render_memory
        from ui.status import RunView

        hits = [{"text": "Cats purr <img src=x>", "score": 0.91}, {"text": "Dogs bark", "score": 0.42}]
        view = RunView()
        view.apply(
            [
                Event(1, "r", 0.0, "run.started", None, {"inputs": {}}),
                Event(2, "r", 1.0, "memory.recalled", "bot", {"agent_id": "helper", "query": "cats <b>", "hits": hits}),
                Event(3, "r", 2.0, "memory.saved", "bot", {"agent_id": "helper", "text": "likes ![x](http://e/x.png)"}),
            ]
        )
        render_memory(view)

    at = AppTest.from_function(script).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown]
    assert any("**recalled** for `helper`: 2 hit(s)" in m for m in shown)
    assert any("**saved** for `helper`" in m for m in shown)
    texts = [t.value for t in at.text]
    assert "cats <b>" in texts and '{"text": "likes ![x](http://e/x.png)"}' in texts, "model text shown as typed"
    hits_table = at.dataframe[0].value
    assert list(hits_table["score"]) == [0.91, 0.42] and hits_table["text"][0] == "Cats purr <img src=x>"


@pytest.mark.parametrize(
    ("limit", "expected", "hidden"),
    [
        (4, ["a2", "a5", "a4", "a3"], 2),  # the running node first (though older), then the latest
        (1, ["a2"], 5),  # the running one is always shown
        (None, ["a2", "a5", "a4", "a3", "a1", "a0"], 0),
    ],
)
def test_live_streams_show_running_then_latest(limit: int | None, expected: list[str], hidden: int) -> None:
    def script(limit: int | None) -> None:
        from engine.events import Event
        from ui.run_parts import render_streams
        from ui.status import RunView

        events = [Event(1, "r", 0.0, "run.started", None, {"inputs": {}})]
        for i in range(6):
            node = f"a{i}"
            events += [
                Event(len(events) + 1, "r", i, "node.started", node, {}),
                Event(len(events) + 2, "r", i, "llm.token", node, {"delta": f"text of {node}"}),
            ]
            if i != 2:
                events.append(Event(len(events) + 1, "r", i, "node.completed", node, {"output": node}))
        view = RunView()
        view.apply(events)
        render_streams(view, {}, limit=limit)

    at = AppTest.from_function(script, args=(limit,)).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.text] == [f"text of {n}" for n in expected]
    assert "· running" in at.caption[0].value
    more = [c.value for c in at.caption if "earlier output" in c.value]
    assert more == ([f"… and {hidden} earlier output(s): every node's output is in History once the run ends."]
                    if hidden else [])


def test_open_in_history_shows_the_same_run(runtime: Runtime) -> None:
    run_id = runtime.submit(CALCULATOR)
    runtime.wait(run_id, 20)
    runtime.store.flush()
    at = run_page(run_id)
    at.button(key="run_to_history").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["History"] and at.selectbox(key="history_run").value == run_id


def test_streamed_text_restarts_with_each_step_and_retry() -> None:
    """llm.token deltas of one (attempt, step) join to that step's text; a new step or a retry starts afresh,
    so a retried agent does not show the failed attempt's text glued to the answer."""
    from engine.events import Event
    from ui.status import RunView

    def token(seq: int, delta: str, **marks: int) -> Event:
        return Event(seq, "r", 0.0, "llm.token", "bot", {"delta": delta, **marks})

    view = RunView()
    view.apply([token(1, "Let me ", step=0, attempt=1), token(2, "compute.", step=0, attempt=1)])
    assert view.tokens["bot"] == "Let me compute."
    view.apply([token(3, "partial ", step=1, attempt=1)])
    assert view.tokens["bot"] == "partial "
    view.apply([token(4, "Final", step=0, attempt=2), token(5, ".", step=0, attempt=2)])
    assert view.tokens["bot"] == "Final."
    view.apply([token(6, "no marks")])  # events from before attempts were recorded: one stream
    view.apply([token(7, " at all")])
    assert view.tokens["bot"] == "no marks at all"


def test_the_page_keeps_its_run_when_the_session_loses_it_or_the_selector_comes_back_empty(runtime: Runtime) -> None:
    """A Run page once lost its run right after an approval decision under load (the address without
    ``?run=``, the selector empty): the address names the run, so a page without one takes it again;
    and an empty selector value never unsets the run shown."""
    run_id = runtime.submit(CALCULATOR)
    runtime.wait(run_id, 20)
    runtime.store.flush()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("views/run.py").run()
    assert at.session_state[RUN_ID] == run_id
    del at.session_state[RUN_ID]  # what a lost session state leaves: the address, no run
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[RUN_ID] == run_id and at.query_params["run"] == run_id
    assert ":green-badge[completed]" in markdown_text(at)
    del at.query_params["run"]  # so that only the selector could say which run (the address says it again after)
    at.selectbox(key="run_pick").set_value(None).run()  # the selector reports no value
    assert not at.exception, at.exception
    assert at.session_state[RUN_ID] == run_id and at.query_params["run"] == run_id
    assert at.selectbox(key="run_pick").value == run_id
    at.run()  # any later run sends the box its value again: a browser whose copy was reset shows the run again
    assert at.selectbox(key="run_pick").proto.set_value and at.selectbox(key="run_pick").value == run_id
