"""The build configuration matches the repository: every package and data file listed, the declared
dependencies agree with the pinned set, and ``workflow-studio ui`` hands Streamlit the studio's settings.

(tests/integration/test_install.py builds and installs the wheel; these checks need no build.)
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from engine import cli, dashboard, examples

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
TOP_LEVEL = ("datadir", "engine", "examples", "memory", "tools", "ui", "views")  # the product's layout


def _source_dir(package: str) -> Path:
    mapped = SETUPTOOLS.get("package-dir", {})
    return ROOT / mapped[package] if package in mapped else ROOT.joinpath(*package.split("."))


def _folders() -> set[str]:
    """Every folder of the shipped top-level packages that holds a file, as a dotted package name."""
    found: set[str] = set()
    for top in TOP_LEVEL:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(".".join(path.parent.relative_to(ROOT).parts))
    return found


def test_every_folder_of_the_product_is_a_listed_package() -> None:
    listed = set(SETUPTOOLS["packages"])
    assert _folders() - listed == set()
    assert {p for p in listed if p.split(".")[0] not in TOP_LEVEL} == set()  # no tests/, bench/, scripts/
    assert all(_source_dir(p).is_dir() for p in listed)
    assert SETUPTOOLS["py-modules"] == ["app"]


def test_every_data_file_is_matched_by_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    unmatched = []
    for package in SETUPTOOLS["packages"]:
        for path in _source_dir(package).iterdir():
            shipped_as_data = path.is_file() and path.suffix != ".py" and path.name != "secrets.toml"
            if shipped_as_data and not any(fnmatch.fnmatch(path.name, glob) for glob in data.get(package, [])):
                unmatched.append(str(path.relative_to(ROOT)))
    assert unmatched == []


def test_the_streamlit_settings_ship_from_the_repositorys_own_file() -> None:
    assert SETUPTOOLS["package-dir"] == {"engine.streamlit_config": ".streamlit"}
    assert SETUPTOOLS["package-data"]["engine.streamlit_config"] == ["config.toml"]  # never secrets.toml


def _pins(path: Path) -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {canonicalize_name(r.name): r for r in (Requirement(line) for line in lines if line)}


def test_declared_dependencies_are_the_pinned_set_as_ranges() -> None:
    declared = {canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["project"]["dependencies"])}
    pinned = _pins(ROOT / "requirements.txt")
    assert declared.keys() == pinned.keys()
    for name, pin in pinned.items():
        (spec,) = pin.specifier
        assert spec.operator == "==", f"requirements.txt must pin {name}"
        assert declared[name].specifier.contains(spec.version), f"{name}=={spec.version} outside {declared[name]}"
        assert declared[name].extras == pin.extras
        assert not declared[name].specifier.contains("999"), f"{name} needs an upper bound"


def test_the_command_is_this_cli() -> None:
    assert PYPROJECT["project"]["scripts"] == {"workflow-studio": "engine.cli:console"}
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "x.json", "--no-such-flag"], prog="workflow-studio")
    assert exited.value.code == 2  # unknown arguments stay an error outside `ui`


def test_build_output_is_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert {"/build/", "/dist/", "*.egg-info/"} <= set(ignored)


def test_ui_passes_the_studios_settings_and_lets_the_user_override_one() -> None:
    command = dashboard.streamlit_command(["--server.port", "8600"])
    assert command[1:5] == ["-m", "streamlit", "run", str(ROOT / "app.py")]
    assert "--server.address=127.0.0.1" in command
    assert command.count("--server.allowedHosts=localhost") == 1 and "--server.allowedHosts=::1" in command
    assert "--server.enableXsrfProtection=true" in command and "--browser.gatherUsageStats=false" in command
    assert command[-2:] == ["--server.port", "8600"]

    shared = dashboard.streamlit_command(["--server.address=0.0.0.0", "--server.allowedHosts", "studio.lan"])
    studio_flags = shared[5:-3]
    assert not any(a.startswith(("--server.address=", "--server.allowedHosts=")) for a in studio_flags)
    assert "--server.enableCORS=true" in studio_flags  # the other settings stay


def test_streamlit_flags_from_a_config() -> None:
    config = {"server": {"headless": True, "allowedHosts": ["a", "b"], "corsAllowedOrigins": [], "port": 9}}
    assert dashboard.streamlit_flags(config) == [
        "--server.headless=true", "--server.allowedHosts=a", "--server.allowedHosts=b", "--server.port=9",
    ]
    assert dashboard.streamlit_flags(config, ["--server.port=1"])[-1] == "--server.allowedHosts=b"
    with pytest.raises(dashboard.DashboardError):
        dashboard.streamlit_flags({"address": "0.0.0.0"})


def test_examples_are_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = ROOT / "examples" / "calculator_agent.json"
    for given in ("calculator_agent", "calculator_agent.json", "examples/calculator_agent.json"):
        assert examples.workflow_file(given) == shipped
    (tmp_path / "calculator_agent.json").write_text("{}")
    assert examples.workflow_file("calculator_agent.json") == Path("calculator_agent.json")  # the user's file wins
    assert examples.workflow_file("elsewhere/calculator_agent") == Path("elsewhere/calculator_agent")
    assert examples.workflow_file("nothing") == Path("nothing")
    stems = [p.stem for p in examples.example_files()]
    assert "calculator_agent" in stems and "file_digest" in stems and stems == sorted(stems)
