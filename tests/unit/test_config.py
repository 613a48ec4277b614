"""engine.config.Settings.from_env: every variable read into the one settings object, bad values refused with one
line naming the variable, secrets kept out of reprs, the settings file under the environment."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.config import ApiSettings, LlmSettings, QueueSettings, Settings
from engine.errors import ConfigInvalid
from memory.config import MemorySettings
from tools.config import ToolSettings

Get = Callable[[Settings], Any]


def _memory(settings: Settings) -> MemorySettings:
    assert settings.memory is not None
    return settings.memory


# (variable, value, what it becomes in the settings, expected); one row per variable the docs list
READS: list[tuple[str, str, Get, Any]] = [
    ("OPENAI_API_KEY", "sk-1", lambda s: s.llm.api_key, "sk-1"),
    ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", lambda s: (s.llm.base_url, _memory(s).openai_base_url),
     ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")),
    ("OPENAI_MODEL", "m-1", lambda s: (s.llm.model, s.llm.default_model), ("m-1", "m-1")),
    ("OFFLINE_TOKEN_DELAY_S", "0", lambda s: s.llm.offline_token_delay_s, 0.0),
    ("DATA_DIR", "/tmp/somewhere", lambda s: (s.data_dir, s.tools.data_dir, _memory(s).data_dir),
     (Path("/tmp/somewhere"),) * 3),
    ("DATABASE_URL", "postgresql+psycopg://u@h/db", lambda s: s.database_url, "postgresql+psycopg://u@h/db"),
    ("MEMORY_DATABASE_URL", "sqlite:////tmp/m.db", lambda s: _memory(s).database_url, "sqlite:////tmp/m.db"),
    ("MEMORY_SHORT_TERM_TOKENS", "300", lambda s: _memory(s).short_term_tokens, 300),
    ("MEMORY_SHORT_TERM_MAX_TURNS", "7", lambda s: _memory(s).short_term_max_turns, 7),
    ("CHROMA_HOST", "chroma.lan", lambda s: _memory(s).chroma_host, "chroma.lan"),
    ("CHROMA_PORT", "9000", lambda s: _memory(s).chroma_port, 9000),
    ("MEMORY_COLLECTION", "team", lambda s: _memory(s).collection, "team"),
    ("MEMORY_MAX_CHARS", "500", lambda s: _memory(s).max_chars, 500),
    ("MEMORY_EMBEDDINGS", "openai", lambda s: _memory(s).embeddings, "openai"),
    ("MEMORY_EMBEDDINGS", "MiniLM", lambda s: _memory(s).embeddings, "offline"),
    ("MEMORY_EMBEDDING_MODEL", "te-3-large", lambda s: _memory(s).embedding_model, "te-3-large"),
    ("MEMORY_EMBEDDING_THREADS", "2", lambda s: _memory(s).embedding_threads, 2),
    ("MEMORY_MINILM_ONNX", "/opt/model.onnx", lambda s: _memory(s).minilm_onnx, "/opt/model.onnx"),
    ("TOOLS_MODULES", " a.b, c ,,", lambda s: s.tools.modules, ("a.b", "c")),
    ("MCP_CONFIG", "/etc/studio/mcp.json", lambda s: s.tools.mcp_config_file, Path("/etc/studio/mcp.json")),
    ("PYTHON_TOOL_ISOLATION", "unshare", lambda s: s.tools.isolation, "unshare"),
    ("PYTHON_TOOL_ALLOW_WEAK_SANDBOX", "1", lambda s: s.tools.allow_weak_sandbox, True),
    ("PYTHON_TOOL_ALLOW_WEAK_SANDBOX", "no", lambda s: s.tools.allow_weak_sandbox, False),
    ("PYTHON_TOOL_CGROUP", "/sys/fs/cgroup/studio", lambda s: s.tools.cgroup, "/sys/fs/cgroup/studio"),
    ("FILES_ROOT", f"/a{os.pathsep}/b", lambda s: s.tools.files_root, ("/a", "/b")),
    ("FILE_READER_MAX_BYTES", "1000", lambda s: s.tools.file_reader_max_bytes, 1000),
    ("WEB_SEARCH_PROVIDER", "DDGS", lambda s: s.tools.web_search_provider, "ddgs"),
    ("SEARXNG_URL", "http://127.0.0.1:8888", lambda s: s.tools.searxng_url, "http://127.0.0.1:8888"),
    ("WEB_SEARCH_TIMEOUT_S", "2.5", lambda s: s.tools.web_search_timeout_s, 2.5),
    ("WEB_SEARCH_TIMEOUT_S", "600", lambda s: s.tools.web_search_timeout_s, 60.0),  # capped
    ("API_TOKEN", "tok", lambda s: s.api.token, "tok"),
    ("API_ALLOWED_HOSTS", "studio.lan,*.example.lan", lambda s: s.api.allowed_hosts, ("studio.lan", "*.example.lan")),
    ("API_CORS_ORIGINS", "http://ui.lan", lambda s: s.api.cors_origins, ("http://ui.lan",)),
    ("API_MAX_BODY_BYTES", "2048", lambda s: s.api.max_body_bytes, 2048),
    ("API_CONN_TIMEOUT_S", "9", lambda s: s.api.conn_timeout_s, 9),
    ("API_MAX_CONNECTIONS", "20", lambda s: s.api.max_connections, 20),
    ("API_SSE_KEEPALIVE_S", "0.5", lambda s: s.api.sse_keepalive_s, 0.5),
    ("EXECUTION_MODE", "Queue", lambda s: s.queue.mode, "queue"),
    ("QUEUE_HEARTBEAT_S", "1", lambda s: s.queue.heartbeat_s, 1.0),
    ("QUEUE_STALLED_S", "3", lambda s: s.queue.stalled_s, 3.0),
    ("QUEUE_SWEEP_S", "0.5", lambda s: s.queue.sweep_s, 0.5),
    ("MAX_AUTO_RESUMES", "0", lambda s: s.queue.max_auto_resumes, 0),
]

# (variable, bad value, the rule the one line states)
BAD: list[tuple[str, str, str]] = [
    ("OFFLINE_TOKEN_DELAY_S", "soon", "must be a number of seconds at least 0"),
    ("OFFLINE_TOKEN_DELAY_S", "-1", "must be a number of seconds at least 0"),
    ("MEMORY_SHORT_TERM_TOKENS", "lots", "must be a number of tokens, a whole number of at least 1"),
    ("MEMORY_SHORT_TERM_MAX_TURNS", "0", "must be a number of turns, a whole number of at least 1"),
    ("CHROMA_PORT", "70000", "must be a whole number from 1 to 65535"),
    ("MEMORY_MAX_CHARS", "50", "must be a number of characters, a whole number of at least 100"),
    ("MEMORY_EMBEDDINGS", "bert", "is not one of local, minilm, offline, openai"),
    ("MEMORY_EMBEDDING_THREADS", "many", "must be a number of threads, a whole number from 1 to 256"),
    ("PYTHON_TOOL_ISOLATION", "docker", "is not one of bwrap, bwrap-root, rlimits-only, unshare"),
    ("PYTHON_TOOL_ALLOW_WEAK_SANDBOX", "maybe", "must be 1 or 0 (true/false, yes/no, on/off)"),
    ("FILE_READER_MAX_BYTES", "16k", "must be a number of bytes, a whole number of at least 1"),
    ("WEB_SEARCH_PROVIDER", "google", "is not one of auto, ddgs, searxng"),
    ("WEB_SEARCH_TIMEOUT_S", "nan", "must be a number of seconds above 0"),
    ("WEB_SEARCH_TIMEOUT_S", "0", "must be a number of seconds above 0"),
    ("API_MAX_BODY_BYTES", "-1", "must be a number of bytes, a whole number of at least 1"),
    ("API_CONN_TIMEOUT_S", "3601", "must be a number of seconds, a whole number from 1 to 3600"),
    ("API_MAX_CONNECTIONS", "x", "must be a number of connections, a whole number from 1 to 1000000"),
    ("API_SSE_KEEPALIVE_S", "3600", "must be a number of seconds above 0 and below 3600"),
    ("EXECUTION_MODE", "cluster", "must be 'local' (the default) or 'queue'"),
    ("QUEUE_HEARTBEAT_S", "0", "must be a number of seconds above 0"),
    ("QUEUE_STALLED_S", "soon", "must be a number of seconds above 0"),
    ("QUEUE_SWEEP_S", "-1", "must be a number of seconds above 0"),
    ("MAX_AUTO_RESUMES", "-1", "must be a number of resumes, a whole number of at least 0"),
]


def _read(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path), **environ})


@pytest.mark.parametrize(("variable", "value", "get", "expected"), READS, ids=[f"{r[0]}={r[1]}" for r in READS])
def test_each_variable_is_read_into_the_settings(
    tmp_path: Path, variable: str, value: str, get: Get, expected: Any
) -> None:
    assert get(_read(tmp_path, **{variable: value})) == expected


def test_every_documented_variable_is_read() -> None:
    """docs/configuration.md's variables (tests only aside) are the ones read here, and the other way round."""
    import re

    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    tables = docs.split("### Tests only")[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", tables, re.M))
    names = {name for pair in documented for name in pair if name} - {"TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"}
    assert names == {row[0] for row in READS}


def test_nothing_set_gives_the_documented_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("data").resolve() and settings.database_url is None
    assert settings.llm == LlmSettings() and not settings.llm.configured and settings.llm.default_model == "gpt-4o-mini"
    assert settings.api == ApiSettings()
    assert settings.queue == QueueSettings() and settings.queue.mode == "local"
    assert settings.tools == ToolSettings(data_dir=Path("data").resolve())
    assert settings.memory == MemorySettings(data_dir=Path("data").resolve())
    assert (settings.tools.file_reader_max_bytes, settings.tools.web_search_timeout_s) == (16384, 8.0)
    assert (settings.api.max_body_bytes, settings.api.conn_timeout_s, settings.api.max_connections) == (1048576, 5, 500)
    assert _memory(settings).short_term_tokens == 2000 and _memory(settings).chroma_port == 8000


def test_empty_and_blank_values_mean_unset(tmp_path: Path) -> None:
    blank = _read(tmp_path, OPENAI_MODEL="  ", CHROMA_PORT="", WEB_SEARCH_PROVIDER=" ", API_MAX_BODY_BYTES="")
    assert blank == _read(tmp_path)


@pytest.mark.parametrize(("variable", "value", "rule"), BAD, ids=[f"{r[0]}={r[1]}" for r in BAD])
def test_a_bad_value_is_refused_with_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, rule: str
) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        _read(tmp_path, **{variable: value})
    assert caught.value.problems == [f"{variable}={value!r} {rule}"]
    assert str(caught.value) == f"{variable}={value!r} {rule}"
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_every_bad_value_is_listed_at_once(tmp_path: Path) -> None:
    environ = {variable: value for variable, value, _ in BAD}  # the last row of a variable wins
    with pytest.raises(ConfigInvalid) as caught:
        _read(tmp_path, **environ)
    assert {line.split("=", 1)[0] for line in caught.value.problems} == {variable for variable, _, _ in BAD}
    assert len(caught.value.problems) == len({variable for variable, _, _ in BAD}), "each variable once"


def test_secrets_stay_out_of_every_repr(tmp_path: Path) -> None:
    settings = _read(
        tmp_path, OPENAI_API_KEY="sk-SECRET-1", API_TOKEN="tok-SECRET-2", OPENAI_BASE_URL="http://u:pw-SECRET-3@h/v1"
    )
    shown = repr(settings) + str(settings) + repr(settings.llm) + repr(settings.memory) + repr(settings.api)
    for secret in ("sk-SECRET-1", "tok-SECRET-2", "pw-SECRET-3"):
        assert secret not in shown


def test_the_settings_file_fills_in_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(
        json.dumps({"base_url": "http://file/v1", "model": "file-model", "embeddings": "openai", "prices": {}}),
        encoding="utf-8",
    )
    from_file = _read(tmp_path)
    assert (from_file.llm.base_url, from_file.llm.model, _memory(from_file).embeddings) == (
        "http://file/v1", "file-model", "openai",
    )
    assert dict(from_file.sources) == {}
    env_wins = _read(tmp_path, OPENAI_MODEL="env-model", MEMORY_EMBEDDINGS="offline")
    assert (env_wins.llm.base_url, env_wins.llm.model, _memory(env_wins).embeddings) == (
        "http://file/v1", "env-model", "offline",
    )
    assert dict(env_wins.sources) == {"model": "override", "embeddings": "override"}
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"model": "other-model"}), encoding="utf-8")
    assert Settings.from_env({"DATA_DIR": str(tmp_path)}, other).llm.model == "other-model"


def test_settings_are_immutable_and_reading_does_not_write_the_environment(tmp_path: Path) -> None:
    before = dict(os.environ)
    settings = _read(tmp_path, OPENAI_MODEL="m")
    with pytest.raises(AttributeError):
        settings.llm.model = "other"  # type: ignore[misc]
    assert dict(os.environ) == before


def _write_settings(folder: Path, model: str, *, age_s: float = 0.0) -> None:
    path = folder / "settings.json"
    path.write_text(json.dumps({"model": model}), encoding="utf-8")
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))


def test_now_reads_again_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_workflow`` without settings calls ``Settings.now()`` once per run: the environment and the settings
    file as they are then, not read again (0.2 ms) while neither changed."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    first = Settings.now()
    assert Settings.now() is first  # nothing changed: the same object
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    changed = Settings.now()
    assert changed.llm.model == "from-env" and Settings.now() is changed
    monkeypatch.delenv("OPENAI_MODEL")
    _write_settings(tmp_path, "aaaa")  # just written: read every time until it is older than its timestamp's grain
    assert Settings.now().llm.model == "aaaa"
    _write_settings(tmp_path, "bbbb")  # same size, same coarse mtime maybe: still seen
    assert Settings.now().llm.model == "bbbb"
    _write_settings(tmp_path, "cccc", age_s=60)
    old_file = Settings.now()
    assert old_file.llm.model == "cccc" and Settings.now() is old_file
    _write_settings(tmp_path, "dddd-longer", age_s=60)  # saved again: its size or time or inode differ
    assert Settings.now().llm.model == "dddd-longer"
    (tmp_path / "settings.json").unlink()
    assert Settings.now().llm.model != "dddd-longer"


def test_now_follows_a_relative_data_dir_to_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):
        (tmp_path / name / "data").mkdir(parents=True)
        _write_settings(tmp_path / name / "data", f"model-{name}", age_s=60)
    monkeypatch.setenv("DATA_DIR", "data")
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    monkeypatch.chdir(tmp_path / "one")
    assert Settings.now().llm.model == "model-one"
    monkeypatch.chdir(tmp_path / "two")
    assert Settings.now().llm.model == "model-two"
