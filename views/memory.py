"""Memory: what each agent remembers, where it came from, and why it is recalled.

Agents with counts; the short-term conversation as chat messages; long-term
memories with provenance (linking to the run that wrote them); a semantic
search that shows scores; edit, delete, clear (with confirmation) and adding
a memory by hand. Memory text is rendered as plain text, never as Markdown.

Every call into ``memory`` may raise ``MemoryStoreError`` (the store is down,
the embeddings setting changed since the memories were saved, ...): the page
says what failed and what to do, and never shows a traceback.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from engine.timefmt import format_ts
from memory import EmbedderMismatch, MemoryManager, MemoryStoreError, list_agents
from ui import flash
from ui.nav import open_in_history
from ui.runtime import get_runtime
from ui.text import md_escape

PAGE_SIZE = 20
FLASH = "memory_flash"  # a message for the next script run: what was done just before st.rerun()


def problem(what: str, exc: MemoryStoreError, agent: str | None = None) -> str:
    """An escaped message for ``st.error``: what failed, why, and what to do about it."""
    if isinstance(exc, EmbedderMismatch):
        whose = f"**{md_escape(agent)}**" if agent else "this agent"
        return (
            f"{md_escape(what)}: the long-term memories of {whose} were saved with another embedding model "
            f"({md_escape(exc.stored)}) than the one memory uses now ({md_escape(exc.requested)}), and vectors of "
            f"different models cannot be compared. To use them again, set **Memory embeddings** back to "
            f"**{exc.stored_setting}** on the Settings page; to start over with the new model, clear this agent's "
            "memories in the **Clear** tab."
        )
    return f"{md_escape(what)}: {md_escape(exc)}"


st.title("Memory")
st.caption(
    "Long-term memories live in ChromaDB with offline MiniLM embeddings "
    "(or the endpoint's, with MEMORY_EMBEDDINGS=openai); recent turns live beside the runs. "
    "Agents get memory through an agent node's `memory` config."
)

flash.show(FLASH)
memory_settings = get_runtime().settings.memory  # as the runs started now are configured

try:
    agents = list_agents(settings=memory_settings)
except MemoryStoreError as exc:
    st.error(problem("Memory is unavailable", exc))
    st.stop()

with st.sidebar:
    st.subheader("Add a memory by hand")
    with st.form("memory_add_form", clear_on_submit=True):
        new_agent = st.text_input("Agent id", key="memory_add_agent", placeholder="assistant-alice")
        new_text = st.text_area("Text", key="memory_add_text", placeholder="The user prefers short answers.")
        new_kind = st.selectbox("Kind", ["fact", "summary", "interaction"], key="memory_add_kind")
        added = st.form_submit_button("Add memory")
    if added:
        try:
            MemoryManager(new_agent.strip(), settings=memory_settings).add_memory(new_text, new_kind)
        except MemoryStoreError as exc:
            st.error(problem("Could not save the memory", exc, new_agent.strip()))
        else:
            st.success(f"Saved for {md_escape(new_agent.strip())}.")
            st.session_state["memory_agent"] = new_agent.strip()
            try:
                agents = list_agents(settings=memory_settings)
            except MemoryStoreError as exc:
                st.error(problem("Memory is unavailable", exc))
                st.stop()

if not agents:
    st.info(
        "No agent has memories yet. Run the **Memory chat** example (Home) twice, "
        "or add a memory by hand in the sidebar."
    )
    st.stop()

counts = pd.DataFrame(
    [{"agent": a.agent_id, "long-term memories": a.long_term_count, "recent turns": a.short_term_turns} for a in agents]
)
st.dataframe(counts, hide_index=True, width="stretch")

ids = [a.agent_id for a in agents]
if st.session_state.get("memory_agent") not in ids:
    st.session_state["memory_agent"] = ids[0]
agent_id = st.selectbox("Agent", ids, key="memory_agent")
try:
    manager = MemoryManager(agent_id, settings=memory_settings)
except MemoryStoreError as exc:
    st.error(problem("Memory is unavailable", exc, agent_id))
    st.stop()


_when = format_ts


def memories_page() -> list[Any]:
    """The page picker and that page of long-term memories, newest first ([] after an error, which is shown)."""
    try:
        total = manager.count()
    except MemoryStoreError as exc:
        st.error(problem("Could not read the long-term memories", exc, agent_id))
        return []
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, key=f"memory_page_{agent_id}")
    st.caption(f"{total} memories, newest first.")
    try:
        return manager.list_memories(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    except MemoryStoreError as exc:
        st.error(problem("Could not read the long-term memories", exc, agent_id))
        return []


search_tab, memories_tab, conversation_tab, danger_tab = st.tabs(
    ["Semantic search", "Long-term memories", "Recent conversation", "Clear"]
)

with search_tab:
    with st.form("memory_search_form"):
        query = st.text_input("Query", key="memory_query", placeholder="What is the user's name?")
        k = st.slider("Results", 1, 20, 5, key="memory_k")
        searched = st.form_submit_button("Search", type="primary")
    if searched and query.strip():
        try:
            hits = manager.recall(query, k)
        except MemoryStoreError as exc:
            st.error(problem("Could not search the memories", exc, agent_id))
        else:
            if not hits:
                st.info("No memories matched.")
            else:
                frame = pd.DataFrame(
                    [
                        {
                            "rank": i + 1,
                            "score": round(h.score, 3),
                            "distance": round(h.distance, 3),
                            "memory": h.text[:120],
                            "kind": h.metadata.get("kind"),
                            "run": h.metadata.get("run_id") or "",
                        }
                        for i, h in enumerate(hits)
                    ]
                )
                chart = (
                    alt.Chart(frame)
                    .mark_bar()
                    .encode(
                        x=alt.X("score:Q", scale=alt.Scale(domain=[0, 1]), title="score (cosine similarity)"),
                        y=alt.Y("rank:O", title="rank"),
                        tooltip=["rank", "score", "distance", "memory", "kind"],
                    )
                    .properties(height=max(120, 28 * len(frame)))
                )
                st.altair_chart(chart, width="stretch")
                st.dataframe(frame, hide_index=True, width="stretch")

with memories_tab:
    for record in memories_page():
        meta = dict(record.metadata)
        with st.container(border=True):
            st.text(record.text)
            run_id = meta.get("run_id")
            details = [f"kind: {md_escape(meta.get('kind', '?'))}", f"saved {_when(meta.get('created_at'))}"]
            if meta.get("updated_at"):
                details.append(f"edited {_when(meta.get('updated_at'))}")
            if meta.get("workflow"):
                details.append(f"workflow: {md_escape(meta['workflow'])}")
            if meta.get("node_id"):
                details.append(f"node: {md_escape(meta['node_id'])}")
            st.caption(" · ".join(details))
            link, edit, delete = st.columns([2, 1, 1])
            if run_id and link.button(
                f"Run {md_escape(str(run_id)[:8])}…", key=f"memory_run_{record.id}", icon=":material/history:"
            ):
                open_in_history(run_id)
            with edit.popover("Edit", icon=":material/edit:"):
                edited = st.text_area("Text", value=record.text, key=f"memory_edit_{record.id}")
                if st.button("Save (re-embeds)", key=f"memory_save_{record.id}"):
                    try:
                        manager.update(record.id, edited)
                    except MemoryStoreError as exc:
                        st.error(problem("Could not save the memory", exc, agent_id))
                    else:
                        flash.later(FLASH, "Memory saved.")
                        st.rerun()
            if delete.button("Delete", key=f"memory_delete_{record.id}", icon=":material/delete:"):
                try:
                    deleted = manager.delete(record.id)
                except MemoryStoreError as exc:
                    st.error(problem("Could not delete the memory", exc, agent_id))
                else:
                    flash.later(FLASH, "Memory deleted." if deleted else "That memory was already gone.")
                    st.rerun()

with conversation_tab:
    try:
        turns = list(reversed(manager.turns(limit=50)))
    except MemoryStoreError as exc:
        st.error(problem("Could not read the recent conversation", exc, agent_id))
    else:
        if not turns:
            st.info("No recent turns for this agent.")
        for turn in turns:
            if turn.user:
                with st.chat_message("user"):
                    st.text(turn.user)
            if turn.assistant:
                with st.chat_message("assistant"):
                    st.text(turn.assistant)
                    st.caption(
                        f"{_when(turn.created_at)}" + (f" · run {md_escape(turn.run_id[:8])}…" if turn.run_id else "")
                    )

with danger_tab:
    st.warning(f"Clearing forgets every long-term memory and recent turn of **{md_escape(agent_id)}**.")
    confirm = st.text_input("Type the agent id to confirm", key="memory_clear_confirm")
    if st.button("Clear this agent's memory", key="memory_clear", type="primary", disabled=confirm != agent_id):
        try:
            cleared = manager.clear()
        except MemoryStoreError as exc:
            st.error(problem("Could not clear this agent's memory", exc, agent_id))
        else:
            st.session_state.pop("memory_agent", None)
            flash.later(
                FLASH,
                f"Cleared {cleared.long_term} memories and {cleared.short_term} turns of **{md_escape(agent_id)}**.",
            )
            st.rerun()
