"""The studio as a user gets it from ``pip install .``: a wheel with every package and data file, a
``workflow-studio`` command that validates and runs the shipped examples offline from another folder,
and ``workflow-studio ui`` serving the installed dashboard on 127.0.0.1 only.

Nothing is downloaded: the wheel is built from a copy of the working tree (so no build/ or *.egg-info
lands in the repository) with the machine's setuptools (``--no-build-isolation``), and installed with
``--no-deps --no-index`` into a venv that sees the machine's packages (``--system-site-packages``).
Every command runs from a folder that is not the checkout, without PYTHONPATH or any model key.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("app.py", "datadir", "engine", "examples", "memory", "tools", "ui", "views", ".streamlit")
COPIED = (*SHIPPED, "pyproject.toml", "README.md", "LICENSE")
DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "DATABASE_URL", "FILES_ROOT", "TOOLS_MODULES", "VIRTUAL_ENV")


def _copy_tree(dest: Path) -> Path:
    """The files a build reads, copied from the working tree (uncommitted changes included)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "secrets.toml")
    dest.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _env(home: Path) -> dict[str, str]:
    """The user's environment, less anything that would point at the checkout, a model or a store."""
    env = {
        k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not k.startswith(("OPENAI_", "MEMORY_"))
    }
    env.update(
        DATA_DIR=str(home / "data"),
        PYTHONNOUSERSITE="1",
        OFFLINE_TOKEN_DELAY_S="0",
        WEB_SEARCH_PROVIDER="searxng",
        SEARXNG_URL="http://127.0.0.1:9",
    )
    return env


def _venv(path: Path) -> Path:
    """A venv that sees the machine's packages; its own pip is the machine's (no download, no ensurepip)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)], check=True)
    return path / "bin"


def _pip_install(bin_dir: Path, *args: str, cwd: Path, env: dict[str, str]) -> None:
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
           "--force-reinstall"]  # into the venv even if the machine has this version installed
    done = _run([*pip, *args], cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("install")


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    source = _copy_tree(work / "src")
    dist = work / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(dist)],
        cwd=work,
        env=_env(work),
        timeout=180,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (found,) = dist.glob("agentic_workflow_studio-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(work: Path, wheel: Path) -> Path:
    """The ``bin`` folder of a venv with the wheel installed."""
    bin_dir = _venv(work / "venv")
    _pip_install(bin_dir, str(wheel), cwd=work, env=_env(work))
    return bin_dir


@pytest.fixture()
def elsewhere(work: Path) -> Path:
    """A working folder far from the checkout, like a user's."""
    folder = work / "user"
    folder.mkdir(exist_ok=True)
    return folder


def _repo_files(package: str) -> set[str]:
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "secrets.toml"
    }


def test_the_wheel_holds_every_package_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"app.py"}
    for package in ("datadir", "engine", "examples", "memory", "tools", "ui", "views"):
        expected |= _repo_files(package)
    assert expected - names == set()  # nothing of the product left out (.py, .js, .json, .md, .gz)
    assert "engine/streamlit_config/config.toml" in names  # the repository's .streamlit/config.toml
    shipped = {n for n in names if ".dist-info/" not in n}
    assert shipped - expected == {"engine/streamlit_config/config.toml"}  # and nothing else: no tests/, bench/
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "workflow-studio = engine.cli:console" in zipfile.ZipFile(wheel).read(meta).decode()
    assert any(".dist-info/" in n and n.endswith("/LICENSE") for n in names)


def test_installed_packages_come_from_the_venv_and_plugins_can_import_tool(installed: Path, elsewhere: Path) -> None:
    probe = (
        "import json, engine, tools, memory, ui, datadir\n"
        "from tools import tool\n"
        "print(json.dumps([m.__file__ for m in (engine, tools, memory, ui, datadir)]))\n"
    )
    done = _run([str(installed / "python"), "-c", probe], cwd=elsewhere, env=_env(elsewhere))
    assert done.returncode == 0, done.stderr
    venv = installed.parent.resolve()
    for path in json.loads(done.stdout):
        assert Path(path).resolve().is_relative_to(venv), path


def _run_together(commands: dict[str, tuple[list[str], Path, dict[str, str]]]) -> dict[str, tuple[int, str, str]]:
    """Run independent commands at once (each its own process); their exit codes, stdout and stderr by name."""
    started = {
        name: subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (args, cwd, env) in commands.items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = (process.returncode, out, err)
    return done


def test_workflow_studio_validates_and_runs_examples_offline_from_another_folder(
    installed: Path, elsewhere: Path
) -> None:
    other = elsewhere.parent / "user-other"
    other.mkdir()
    env, other_env = _env(elsewhere), _env(other)
    del env["DATA_DIR"], other_env["DATA_DIR"]  # the default: ./data in the folder the command starts from
    cmd = str(installed / "workflow-studio")
    done = _run_together({
        "examples": ([cmd, "examples"], elsewhere, env),
        "validate": ([cmd, "validate", "triage_branch"], elsewhere, env),
        "run": ([cmd, "run", "calculator_agent", "--quiet"], elsewhere, env),
        "digest": ([cmd, "run", "file_digest", "--quiet"], other, other_env),  # reads the shipped sample file
        "missing": ([cmd, "run", "no_such_workflow"], elsewhere, env),
    })
    code, out, err = done["examples"]
    assert code == 0, err
    assert "calculator_agent\t" in out and str(installed.parent) in out

    code, out, err = done["validate"]
    assert code == 0, err
    assert "valid (5 nodes" in err

    code, out, err = done["run"]
    assert code == 0, err
    assert "84" in json.loads(out)["answer"]
    assert "offline model" in err
    assert (elsewhere / "data" / "studio.db").is_file()  # the user's data folder, not site-packages

    code, out, err = done["digest"]
    assert code == 0, err
    assert json.loads(out)["digest"]["file"] == "meeting_notes.md"
    assert (other / "data" / "studio.db").is_file()

    code, out, err = done["missing"]
    assert code == 2
    assert "no_such_workflow" in err and "Traceback" not in err


def test_the_installed_dashboard_renders_its_home_page(installed: Path, elsewhere: Path) -> None:
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "from engine import dashboard\n"
        "at = AppTest.from_file(str(dashboard.app_path()), default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print('\\n'.join(str(m.value) for m in at.markdown))\n"
        "print(dashboard.app_path())\n"
    )
    done = _run([str(installed / "python"), "-c", script], cwd=elsewhere, env=_env(elsewhere))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "**Calculator agent**" in done.stdout  # a template read from the installed examples/
    assert Path(done.stdout.strip().splitlines()[-1]).resolve().is_relative_to(installed.parent.resolve())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture()
def dashboard(installed: Path, elsewhere: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = _free_port()
    process = subprocess.Popen(
        [str(installed / "workflow-studio"), "ui", "--server.port", str(port)],
        cwd=elsewhere,
        env=_env(elsewhere),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        process.terminate()  # the launcher exec'd streamlit: this pid is streamlit itself
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_workflow_studio_ui_serves_the_dashboard_on_loopback_only(
    dashboard: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = dashboard
    deadline = time.monotonic() + 45
    health = ""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                health = answer.read().decode()
                break
        except OSError:
            time.sleep(0.2)
    assert health == "ok", process.stdout.read() if process.poll() is not None and process.stdout else "no answer"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
    assert _listening(port) == {"0100007F"}  # 127.0.0.1, as .streamlit/config.toml says; not 0.0.0.0 or ::
    assert process.poll() is None


def test_editable_install_runs_from_the_source_folder(work: Path, wheel: Path) -> None:
    source = work / "src"  # the wheel's source copy: the editable build writes its egg-info there, not in the repo
    bin_dir = _venv(work / "venv-editable")
    elsewhere = work / "user-editable"
    elsewhere.mkdir()
    env = _env(elsewhere)
    _pip_install(bin_dir, "-e", str(source), cwd=elsewhere, env=env)
    probe = "import engine, importlib.util as u; print(engine.__file__); print(u.find_spec('app').origin)"
    where = _run([str(bin_dir / "python"), "-c", probe], cwd=elsewhere, env=env)
    assert where.returncode == 0, where.stderr
    assert all(Path(line).resolve().is_relative_to(source.resolve()) for line in where.stdout.split())
    valid = _run([str(bin_dir / "workflow-studio"), "validate", "calculator_agent"], cwd=elsewhere, env=env)
    assert valid.returncode == 0, valid.stderr
    assert str(source / "examples" / "calculator_agent.json") in valid.stderr


PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "studio-word-count"
version = "0.1.0"
dependencies = ["agentic-workflow-studio"]

[project.entry-points."workflow_studio.tools"]
word_count = "word_count_tool"

[tool.setuptools]
py-modules = ["word_count_tool"]
"""

PLUGIN_MODULE = '''\
from tools import tool


@tool
def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: the text to count.
    """
    return len(text.split())
'''

PLUGIN_WORKFLOW = {
    "format": "workflow/v1",
    "name": "Count words",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "count", "type": "tool", "config": {"tool": "word_count", "args": {"text": "{{ inputs.text }}"}}},
        {"id": "result", "type": "output", "config": {"value": "{{ nodes.count.output }}"}},
    ],
    "edges": [{"source": "start", "target": "count"}, {"source": "count", "target": "result"}],
}


def test_a_plugin_package_depending_on_the_studio_adds_a_tool(installed: Path, work: Path) -> None:
    plugin = work / "plugin"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (plugin / "word_count_tool.py").write_text(PLUGIN_MODULE)
    user = work / "user-plugin"
    user.mkdir()
    env = _env(user)
    _pip_install(installed, str(plugin), cwd=user, env=env)
    (user / "count.json").write_text(json.dumps(PLUGIN_WORKFLOW))
    ran = _run([str(installed / "workflow-studio"), "run", "count.json", "--input", "text=one two three", "--quiet"],
               cwd=user, env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"result": 3}
