"""Settings page: values in effect (and where they come from), URL secrets never shown, validation, save failures;
Save hands the runtime new settings and never writes os.environ."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import settings as user_settings
from engine.config import Settings
from tests.fake_openai import FakeOpenAIServer
from ui.runtime import get_runtime

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SECRET_URL = "http://alice:hunter2-pw@127.0.0.1:9/v1?api-key=QKEY-123"
SECRETS = ("hunter2-pw", "alice", "QKEY-123", "api-key")


def _settings_path() -> Path:
    return Path(os.environ["DATA_DIR"]).resolve() / "settings.json"


def _saved() -> user_settings.Settings:
    return user_settings.load(_settings_path())


def _in_effect() -> Settings:
    return get_runtime().settings


def _write_settings_file(**values: object) -> None:
    path = _settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values), encoding="utf-8")


def _page() -> AppTest:
    get_runtime().update_settings(Settings.from_env())  # as if the studio started now, with this environment and file
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/settings.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _save(at: AppTest) -> None:
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert not at.exception, at.exception


def _shown(at: AppTest) -> str:
    parts = [
        str(e.value)
        for kind in ("markdown", "caption", "info", "success", "warning", "error", "code", "text", "text_input")
        for e in at.get(kind)
    ]
    parts += [str(e.label) for kind in ("text_input", "checkbox", "button") for e in at.get(kind)]
    return "\n".join(parts)


def test_a_base_url_with_credentials_is_shown_without_them_and_kept_on_save() -> None:
    _write_settings_file(base_url=SECRET_URL, model="m1")
    at = _page()
    assert at.text_input(key="settings_base_url").value == "http://127.0.0.1:9/v1"
    assert any("`http://127.0.0.1:9/v1`" in s.value for s in at.success)  # a code span: no backslashes shown
    assert any("not shown here" in c.value for c in at.caption), "the page says a part of the URL is hidden"
    shown = _shown(at)
    for secret in SECRETS:
        assert secret not in shown
    at.text_input(key="settings_model").input("m2")  # another field changes; the URL is left as shown
    _save(at)
    assert _saved().base_url == SECRET_URL and _saved().model == "m2"
    assert _in_effect().llm.base_url == SECRET_URL and _in_effect().llm.model == "m2"
    assert "OPENAI_BASE_URL" not in os.environ and "OPENAI_MODEL" not in os.environ, "Save never writes os.environ"
    assert any("Saved to" in s.value for s in at.success)


def test_forget_the_hidden_part_saves_the_url_as_shown() -> None:
    _write_settings_file(base_url=SECRET_URL)
    at = _page()
    at.checkbox(key="settings_forget_url_secrets").check()
    _save(at)
    assert _saved().base_url == "http://127.0.0.1:9/v1" == _in_effect().llm.base_url
    assert "OPENAI_BASE_URL" not in os.environ
    assert not at.checkbox, "nothing hidden any more"


def test_a_url_typed_with_a_password_leaves_the_field_in_its_public_form() -> None:
    at = _page()
    at.text_input(key="settings_base_url").input(SECRET_URL)
    _save(at)
    assert _saved().base_url == SECRET_URL
    assert at.text_input(key="settings_base_url").value == "http://127.0.0.1:9/v1"
    shown = _shown(at)
    for secret in SECRETS:
        assert secret not in shown


def test_an_environment_variable_over_the_saved_value_is_shown_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    _write_settings_file(base_url="http://127.0.0.1:9/v1", model="from-file", embeddings="offline")
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "openai")
    at = _page()
    assert at.text_input(key="settings_model").value == "from-env"
    assert at.radio(key="settings_embeddings").value == "openai"
    captions = [c.value for c in at.caption]
    assert any("`OPENAI_MODEL` from the environment, which wins over the saved value" in c for c in captions)
    assert any("`MEMORY_EMBEDDINGS` from the environment, which wins over the saved value" in c for c in captions)
    assert not any("OPENAI_BASE_URL` from the environment" in c for c in captions), "the URL is the file's"

    at.number_input(key="settings_timeout").set_value(60.0)  # saving another field leaves both as they are
    _save(at)
    saved = _saved()
    assert (saved.model, saved.embeddings, saved.new_workflow_timeout_s) == ("from-file", "offline", 60.0)
    assert (_in_effect().llm.model, _in_effect().memory.embeddings) == ("from-env", "openai")
    assert os.environ["OPENAI_MODEL"] == "from-env" and os.environ["MEMORY_EMBEDDINGS"] == "openai"

    at.text_input(key="settings_model").input("typed")  # a change applies at once and is saved
    _save(at)
    assert _saved().model == "typed" == _in_effect().llm.model
    assert os.environ["OPENAI_MODEL"] == "from-env", "the environment is left as it was"
    assert not any("OPENAI_MODEL` from the environment" in c.value for c in at.caption)


def test_a_value_only_in_the_environment_is_not_copied_into_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://bob:env-secret@127.0.0.1:9/v1")
    at = _page()
    assert at.text_input(key="settings_base_url").value == "http://127.0.0.1:9/v1"
    assert any("`OPENAI_BASE_URL` from the environment (the settings file has none)" in c.value for c in at.caption)
    assert "env-secret" not in _shown(at)
    at.text_input(key="settings_model").input("m")
    _save(at)
    assert _saved().base_url == "" and "env-secret" not in _settings_path().read_text()
    assert _in_effect().llm.base_url == os.environ["OPENAI_BASE_URL"] == "http://bob:env-secret@127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("http://127.0.0.1:abc/v1", "the port must be a number"),
        ("127.0.0.1:11434/v1", "must start with http:// or https://"),
        ("ftp://example.com/v1", "must start with http:// or https://"),
        ("http:///v1", "names no host"),
    ],
)
def test_an_invalid_base_url_is_not_saved(typed: str, problem: str) -> None:
    at = _page()
    at.text_input(key="settings_base_url").input(typed)
    at.text_input(key="settings_model").input("m")
    _save(at)
    errors = " ".join(e.value for e in at.error).replace("\\", "")  # md_escape'd: compare without backslashes
    assert "Nothing was saved: the Base URL is not usable" in errors and problem in errors
    assert not _settings_path().exists() and "OPENAI_BASE_URL" not in os.environ
    assert not any("Saved to" in s.value for s in at.success)


def test_a_malformed_url_in_effect_is_reported_and_the_connection_test_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://carol:pw-secret@127.0.0.1:abc/v1")
    at = _page()
    assert any("is not usable" in e.value and "port" in e.value for e in at.error)
    at.button(key="settings_test").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "the base URL `http://127.0.0.1:abc/v1` is not a usable URL: the port must be a number" in errors
    assert "pw-secret" not in _shown(at) and "carol" not in _shown(at)


def test_saving_into_an_unwritable_data_dir_says_where(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    get_runtime()  # the store opened in a writable folder; the settings then name one where nothing can be written
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DATA_DIR", str(blocker / "data"))  # its parent is a file: nothing can be made in it
    at = _page()
    at.text_input(key="settings_model").input("m")
    _save(at)
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Nothing was saved: could not write" in errors and str(blocker / "data" / "settings.json") in errors
    assert "DATA_DIR" in errors
    assert _in_effect().llm.model == "", "nothing is applied when the file cannot be written"


def test_the_connection_test_names_the_endpoint_without_credentials(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake server answers 404 quoting the path it got, which carries the URL's query: that must not show."""
    url = fake_openai.base_url.replace("http://", "http://dave:pw-secret-9@") + "?api-key=QKEY-789"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-key-456")
    at = _page()
    at.button(key="settings_test").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert f"the endpoint at `{fake_openai.base_url}` has no models list (HTTP 404): check OPENAI_BASE_URL" in errors
    assert "Unknown path" in errors, "the endpoint's own words are shown, redacted"
    shown = _shown(at)
    for secret in ("pw-secret-9", "dave", "QKEY-789", "sk-very-secret-key-456"):
        assert secret not in shown


@pytest.mark.parametrize(("value", "refused"), [(None, False), ("openai", False), ("MiniLM", False), ("bert", True)])
def test_an_embeddings_value_memory_does_not_know_is_refused_with_one_line(
    monkeypatch: pytest.MonkeyPatch, value: str | None, refused: bool
) -> None:
    if value is not None:
        monkeypatch.setenv("MEMORY_EMBEDDINGS", value)
    get_runtime.clear()  # the studio starts with this environment
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    line = "Configuration: MEMORY_EMBEDDINGS='bert' is not one of local, minilm, offline, openai"
    assert (line in errors) is refused
