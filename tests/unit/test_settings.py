"""engine.settings (the settings file, what a Save means), engine.config.Settings over it, engine.llm URL helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import settings as user_settings
from engine.config import Settings
from engine.llm import HIDDEN_URL, public_url, url_problems

# ------------------------------------------------------------ public_url / url_problems


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:hunter2@127.0.0.1:9/v1?token=abc#frag", "http://127.0.0.1:9/v1"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("http://user:p%40ss@host:abc/v1?api-key=k", "http://host:abc/v1"),  # malformed port: shown, no raise
        ("http://[::1/v1?api-key=k", "http://[::1/v1"),  # urlsplit raises ValueError on this one
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("localhost:11434/v1?key=k", "localhost:11434/v1"),
        ("http://u:pa/ss@host/v1", HIDDEN_URL),  # an unencoded "/" in a password: no part is safe to show
        ("http://u:p#ss@host/v1", HIDDEN_URL),
        ("u:secret@host/v1", HIDDEN_URL),
        ("", ""),
    ],
)
def test_public_url_drops_user_info_query_and_fragment_and_never_raises(url: str, shown: str) -> None:
    assert public_url(url) == shown


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://host:abc/v1", "the port must be a number from 1 to 65535"),
        ("http://host:99999/v1", "the port must be a number from 1 to 65535"),
        ("ftp://host/v1", "it must start with http:// or https://"),
        ("127.0.0.1:11434/v1", "it must start with http:// or https://"),
        ("http:///v1", "it names no host"),
        ("http://:80/v1", "it names no host"),
        ("http://[::1/v1", "the host is not a valid IPv6 address"),
        ("http://a b/v1", "it contains spaces or control characters"),
        ("http://u:pa/ss@host/v1", "it has an '@' after the host"),
        ("", "it is empty"),
    ],
)
def test_url_problems_say_what_is_wrong_without_quoting_the_url(url: str, problem: str) -> None:
    problems = url_problems(url)
    assert any(p.startswith(problem) for p in problems), problems
    assert not any(part in p for p in problems for part in ("abc", "99999", "pa/ss", "ftp"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434/v1",
        "https://api.openai.com/v1",
        "http://u:p%2Fw@host:8000/v1?api-version=1",
        "http://[::1]:8080/v1",
        "https://example.com",
        "http://host:/v1",
    ],
)
def test_url_problems_accept_usable_urls(url: str) -> None:
    assert url_problems(url) == []


# ------------------------------------------------------------ in effect, sources, save


def _from(environ: dict[str, str], tmp_path: Path) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path), **environ})


def test_in_effect_and_sources_follow_the_environment_over_the_file(tmp_path: Path) -> None:
    saved = user_settings.Settings(
        base_url="http://file/v1", model="file-model", embeddings="offline", new_workflow_timeout_s=30.0
    )
    user_settings.save(saved, tmp_path / "settings.json")
    # as if the deployment had set these at startup; "local" is the same as "offline": no override
    settings = _from({"OPENAI_MODEL": "env-model", "MEMORY_EMBEDDINGS": "local"}, tmp_path)
    effective = settings.in_effect()
    assert (effective.base_url, effective.model, effective.embeddings) == ("http://file/v1", "env-model", "offline")
    assert effective.new_workflow_timeout_s == 30.0
    assert dict(settings.sources) == {"model": "override"}

    user_settings.save(user_settings.Settings(model="env-model"), tmp_path / "settings.json")
    settings = _from({"OPENAI_MODEL": "env-model", "OPENAI_BASE_URL": "http://env/v1"}, tmp_path)
    assert dict(settings.sources) == {"base_url": "environment"}  # a value the file has none of


def test_without_a_settings_file_every_environment_value_is_from_the_environment(tmp_path: Path) -> None:
    # no file: not an override of the default "offline"
    settings = _from({"MEMORY_EMBEDDINGS": "openai", "OPENAI_MODEL": "env-model"}, tmp_path)
    assert not settings.settings_file.exists()
    assert dict(settings.sources) == {"embeddings": "environment", "model": "environment"}


def test_saving_applies_at_once_except_the_fields_kept_and_never_writes_os_environ(tmp_path: Path) -> None:
    before = dict(os.environ)
    settings = _from({"OPENAI_MODEL": "env-model", "OPENAI_BASE_URL": "http://env/v1"}, tmp_path)
    saved = user_settings.Settings(base_url="http://saved/v1", model="saved-model")
    user_settings.save(saved, settings.settings_file)
    after = settings.with_saved(saved, keep=["model"])
    assert user_settings.load(settings.settings_file).model == "saved-model"
    assert after.llm.model == "env-model", "a kept field stays as it is in effect"
    assert after.llm.base_url == "http://saved/v1", "a saved field applies over the environment"
    assert after.memory.openai_base_url == "http://saved/v1", "memory's endpoint follows"
    assert dict(after.sources) == {"model": "environment"}
    assert settings.llm.base_url == "http://env/v1", "the settings handed out before are unchanged"
    assert dict(os.environ) == before


def test_save_raises_oserror_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        user_settings.save(user_settings.Settings(model="m"), blocker / "data" / "settings.json")
    assert "OPENAI_MODEL" not in os.environ


@pytest.mark.parametrize(
    ("form", "saved_url", "keep", "problems"),
    [
        # every field left as shown: the file keeps its values (hidden URL part included), nothing applied
        ({"base_url": "http://h:1/v1"}, "http://u:pw@h:1/v1", ("base_url", "model", "embeddings"), ()),
        # forgetting the hidden part saves the URL as shown
        ({"base_url": "http://h:1/v1", "forget_hidden_url": True}, "http://h:1/v1", ("model", "embeddings"), ()),
        # a new URL replaces the whole one; a bad one is refused with what is wrong
        ({"base_url": " http://other:2/v1 "}, "http://other:2/v1", ("model", "embeddings"), ()),
        (
            {"base_url": "http://h:abc/v1"},
            None,
            ("model", "embeddings"),
            ("the port must be a number from 1 to 65535",),
        ),
        # emptied: the default endpoint
        ({"base_url": ""}, "", ("model", "embeddings"), ()),
        ({"base_url": "http://h:1/v1", "model": "m2", "embeddings": "openai"}, "http://u:pw@h:1/v1", ("base_url",), ()),
    ],
)
def test_edit_keeps_what_was_left_as_shown(
    form: dict[str, object], saved_url: str | None, keep: tuple[str, ...], problems: tuple[str, ...]
) -> None:
    saved = user_settings.Settings(
        base_url="http://u:pw@h:1/v1", model="m", embeddings="offline", prices={"m": {"input": 1, "output": 2}}
    )
    values = {"forget_hidden_url": False, "model": "m", "embeddings": "offline", "new_workflow_timeout_s": 30.0, **form}
    result = user_settings.edit(saved, saved, **values)  # type: ignore[arg-type]
    assert result.problems == problems
    assert result.keep == keep
    if saved_url is not None:
        assert result.settings.base_url == saved_url
    assert result.settings.prices == saved.prices and result.settings.new_workflow_timeout_s == 30.0
