"""engine.settings (values in effect, environment overrides, saving) and engine.llm's base URL helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import settings as user_settings
from engine.llm import HIDDEN_URL, public_url, url_problems


@pytest.fixture(autouse=True)
def _restore_exported_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """save() and apply() write os.environ: put those variables back as they were after each test."""
    for variable in user_settings.ENV_VARIABLES.values():
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


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


def test_in_effect_and_sources_follow_the_environment_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = user_settings.Settings(
        base_url="http://file/v1", model="file-model", embeddings="offline", new_workflow_timeout_s=30.0
    )
    user_settings.save(saved)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")  # as if the deployment had set these at startup
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "local")  # the same as "offline": no override
    effective = user_settings.in_effect(saved)
    assert (effective.base_url, effective.model, effective.embeddings) == ("http://file/v1", "env-model", "offline")
    assert effective.new_workflow_timeout_s == 30.0
    assert user_settings.sources(saved) == {"model": "override"}

    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")  # and a value the file has none of
    assert user_settings.sources(user_settings.Settings(model="env-model")) == {"base_url": "environment"}


def test_without_a_settings_file_every_environment_value_is_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "openai")  # no file: not an override of the default "offline"
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    assert not user_settings.settings_path().exists()
    assert user_settings.sources() == {"embeddings": "environment", "model": "environment"}


def test_save_applies_at_once_except_the_fields_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    user_settings.save(user_settings.Settings(base_url="http://saved/v1", model="saved-model"), keep=["model"])
    assert user_settings.load().model == "saved-model"
    assert os.environ["OPENAI_MODEL"] == "env-model", "a kept field stays as it is in effect"
    assert os.environ["OPENAI_BASE_URL"] == "http://saved/v1", "a saved field applies over the environment"


def test_save_raises_oserror_and_applies_nothing_when_the_file_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DATA_DIR", str(blocker / "data"))
    with pytest.raises(OSError):
        user_settings.save(user_settings.Settings(model="m"))
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
