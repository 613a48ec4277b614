"""file_reader: contained to FILES_ROOT; hostile paths refused with a clear message, through tools.call_tool."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import tools
import tools.builtin.file_reader  # noqa: F401  (registers "file_reader")
from tools.builtin.file_reader import read_text_file
from tools.errors import FileReaderError


@dataclass
class Layout:
    """tmp/root is FILES_ROOT; tmp/root_evil and tmp/outside are next to it."""

    tmp: Path
    root: Path
    evil: Path
    outside: Path


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    root = tmp_path / "root"
    evil = tmp_path / "root_evil"
    outside = tmp_path / "outside"
    for folder in (root, evil, outside):
        folder.mkdir()
    (root / "hello.txt").write_text("hello\n", encoding="utf-8")
    (evil / "x.txt").write_text("EVIL SECRET\n", encoding="utf-8")
    (outside / "secret.txt").write_text("OUTSIDE SECRET\n", encoding="utf-8")
    monkeypatch.setenv("FILES_ROOT", str(root))
    monkeypatch.delenv("FILE_READER_MAX_BYTES", raising=False)
    return Layout(tmp_path, root, evil, outside)


async def _read(path: str) -> tools.ToolResult:
    return await tools.call_tool("file_reader", {"path": path})


# Each hostile case: prepare the layout, return the path argument; the error must contain `expected`.
Setup = Callable[[Layout], str]


def _dotdot_escape(t: Layout) -> str:
    return "../outside/secret.txt"


def _dotdot_inside_then_out(t: Layout) -> str:
    (t.root / "sub").mkdir()
    return "sub/../../outside/secret.txt"


def _absolute_outside(t: Layout) -> str:
    return str(t.outside / "secret.txt")


def _etc_passwd(t: Layout) -> str:
    return "/etc/passwd"


def _symlink_outside(t: Layout) -> str:
    (t.root / "innocent.txt").symlink_to(t.outside / "secret.txt")
    return "innocent.txt"


def _symlinked_dir_outside(t: Layout) -> str:
    (t.root / "docs").symlink_to(t.outside, target_is_directory=True)
    return "docs/secret.txt"


def _symlink_proc_environ(t: Layout) -> str:
    (t.root / "env.txt").symlink_to("/proc/self/environ")
    return "env.txt"


def _prefix_trick_relative(t: Layout) -> str:
    return "../root_evil/x.txt"


def _prefix_trick_absolute(t: Layout) -> str:
    return str(t.evil / "x.txt")


def _prefix_trick_symlink(t: Layout) -> str:
    (t.root / "link.txt").symlink_to(t.evil / "x.txt")
    return "link.txt"


def _fifo(t: Layout) -> str:
    os.mkfifo(t.root / "pipe.txt")
    return "pipe.txt"


def _socket(t: Layout) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(t.root / "sock.txt"))
    sock.close()  # the socket file stays
    return "sock.txt"


def _dev_zero_symlink(t: Layout) -> str:
    (t.root / "zero.txt").symlink_to("/dev/zero")
    return "zero.txt"


def _proc_absolute(t: Layout) -> str:
    return "/proc/self/environ"


def _sys_absolute(t: Layout) -> str:
    return "/sys/kernel/hostname"


def _directory(t: Layout) -> str:
    (t.root / "notes").mkdir()
    (t.root / "notes" / "a.txt").write_text("a", encoding="utf-8")
    return "notes"


def _root_itself(t: Layout) -> str:
    return "."


def _binary(t: Layout) -> str:
    (t.root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return "image.txt"


def _dotenv(t: Layout) -> str:
    (t.root / ".env").write_text("OPENAI_API_KEY=sk-secret\n", encoding="utf-8")
    return ".env"


def _dotenv_variant(t: Layout) -> str:
    (t.root / ".env.production").write_text("OPENAI_API_KEY=sk-secret\n", encoding="utf-8")
    return ".env.production"


def _secrets_toml(t: Layout) -> str:
    (t.root / ".streamlit").mkdir()
    (t.root / ".streamlit" / "secrets.toml").write_text('OPENAI_API_KEY = "sk-secret"\n', encoding="utf-8")
    return ".streamlit/secrets.toml"


def _id_rsa(t: Layout) -> str:
    (t.root / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n", encoding="utf-8")
    return "id_rsa"


def _pem(t: Layout) -> str:
    (t.root / "server.PEM").write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    return "server.PEM"


def _ssh_dir(t: Layout) -> str:
    (t.root / ".ssh").mkdir()
    (t.root / ".ssh" / "config").write_text("Host *\n", encoding="utf-8")
    return ".ssh/config"


def _symlink_to_secret_inside(t: Layout) -> str:
    (t.root / ".env").write_text("OPENAI_API_KEY=sk-secret\n", encoding="utf-8")
    (t.root / "readme.txt").symlink_to(t.root / ".env")
    return "readme.txt"


def _symlink_loop(t: Layout) -> str:
    (t.root / "a.txt").symlink_to(t.root / "b.txt")
    (t.root / "b.txt").symlink_to(t.root / "a.txt")
    return "a.txt"


def _nul_in_path(t: Layout) -> str:
    return "hello.txt\x00.png"


def _missing(t: Layout) -> str:
    return "nope.txt"


def _empty(t: Layout) -> str:
    return "   "


_ESCAPED = "is outside the allowed files folder(s); only files inside the files folder can be read"

HOSTILE: list[tuple[str, Setup, str]] = [
    ("dotdot-escape", _dotdot_escape, "'..' is not allowed"),
    ("dotdot-inside-then-out", _dotdot_inside_then_out, "'..' is not allowed"),
    ("absolute-outside", _absolute_outside, _ESCAPED),
    ("etc-passwd", _etc_passwd, _ESCAPED),
    ("symlink-outside", _symlink_outside, _ESCAPED),
    ("symlinked-dir-outside", _symlinked_dir_outside, _ESCAPED),
    ("symlink-proc-environ", _symlink_proc_environ, _ESCAPED),
    ("prefix-trick-relative", _prefix_trick_relative, "'..' is not allowed"),
    ("prefix-trick-absolute", _prefix_trick_absolute, _ESCAPED),
    ("prefix-trick-symlink", _prefix_trick_symlink, _ESCAPED),
    ("fifo", _fifo, "FIFO"),
    ("socket", _socket, "socket"),
    ("dev-zero-symlink", _dev_zero_symlink, _ESCAPED),
    ("proc-absolute", _proc_absolute, _ESCAPED),
    ("sys-absolute", _sys_absolute, _ESCAPED),
    ("directory", _directory, "is a directory"),
    ("root-itself", _root_itself, "is a directory"),
    ("binary", _binary, "binary file"),
    ("dotenv", _dotenv, "secrets file"),
    ("dotenv-variant", _dotenv_variant, "secrets file"),
    ("secrets-toml", _secrets_toml, "secrets file"),
    ("id-rsa", _id_rsa, "secrets file"),
    ("pem-any-case", _pem, "secrets file"),
    ("ssh-dir", _ssh_dir, "secrets file"),
    ("symlink-to-secret-inside", _symlink_to_secret_inside, "points to a secrets file"),
    ("symlink-loop", _symlink_loop, "symlink loop"),
    ("nul-in-path", _nul_in_path, "NUL"),
    ("missing", _missing, "file not found"),
    ("empty", _empty, "the path is empty"),
]

_LEAKS = ("EVIL SECRET", "OUTSIDE SECRET", "sk-secret", "root:x:0", "PRIVATE KEY")


@pytest.mark.parametrize(("setup", "expected"), [pytest.param(s, e, id=i) for i, s, e in HOSTILE])
async def test_hostile_paths_are_refused(layout: Layout, setup: Setup, expected: str) -> None:
    path = setup(layout)
    started = time.monotonic()
    result = await _read(path)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"took {elapsed:.2f} s"  # a FIFO (or anything else) must never hang
    assert not result.ok, f"read {path!r}: {result.value!r}"
    assert result.value is None
    assert expected in result.error, result.error
    assert not any(leak in result.error for leak in _LEAKS)
    if str(layout.outside) not in path:
        assert str(layout.outside) not in result.error  # where a symlink points is not revealed


@pytest.mark.parametrize(
    ("root", "path"),
    [("/dev", "zero"), ("/dev", "/dev/zero"), ("/", "proc/self/environ"), ("/", "sys/kernel"), ("/", "/sys/kernel")],
)
async def test_proc_sys_dev_are_refused_even_inside_a_root(
    monkeypatch: pytest.MonkeyPatch, root: str, path: str
) -> None:
    monkeypatch.setenv("FILES_ROOT", root)
    started = time.monotonic()
    result = await _read(path)
    assert time.monotonic() - started < 1.0
    assert not result.ok and "/proc, /sys or /dev" in result.error


async def test_fifo_with_a_writer_absent_does_not_hang_even_via_symlink(layout: Layout) -> None:
    os.mkfifo(layout.root / "pipe")
    (layout.root / "alias.txt").symlink_to(layout.root / "pipe")
    started = time.monotonic()
    result = await _read("alias.txt")
    assert time.monotonic() - started < 1.0
    assert not result.ok and "FIFO" in result.error


async def test_happy_path_nested_file(layout: Layout) -> None:
    nested = layout.root / "projects" / "alpha"
    nested.mkdir(parents=True)
    (nested / "notes.md").write_text("# Alpha\nline two\n", encoding="utf-8")
    result = await _read("projects/alpha/notes.md")
    assert result.ok, result.error
    content = "# Alpha\nline two\n"
    assert result.value == {"path": "projects/alpha/notes.md", "size": 17, "truncated": False, "content": content}


async def test_absolute_path_inside_the_root_is_accepted(layout: Layout) -> None:
    result = await _read(str(layout.root / "hello.txt"))
    assert result.ok, result.error
    assert result.value["path"] == "hello.txt" and result.value["content"] == "hello\n"


async def test_symlink_inside_the_root_is_followed(layout: Layout) -> None:
    (layout.root / "alias.txt").symlink_to(layout.root / "hello.txt")
    result = await _read("alias.txt")
    assert result.ok and result.value["path"] == "hello.txt" and result.value["content"] == "hello\n"


async def test_unicode_content_and_invalid_utf8(layout: Layout) -> None:
    text = "Grüße, 世界! 🚀 — naïve café\n"
    (layout.root / "uni.txt").write_text(text, encoding="utf-8")
    result = await _read("uni.txt")
    assert result.ok and result.value["content"] == text
    assert result.value["size"] == len(text.encode("utf-8"))
    (layout.root / "latin1.txt").write_bytes("café".encode("latin-1"))
    result = await _read("latin1.txt")
    assert result.ok and result.value["content"] == "caf\ufffd"
    (layout.root / "ünï cödé name.txt").write_text("ok", encoding="utf-8")
    result = await _read("ünï cödé name.txt")
    assert result.ok and result.value["path"] == "ünï cödé name.txt"


async def test_over_cap_file_returns_a_prefix_and_a_marker(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILE_READER_MAX_BYTES", "1000")
    body = ("0123456789" * 100 + "\n") * 50  # 50,050 bytes
    (layout.root / "big.log").write_text(body, encoding="utf-8")
    result = await _read("big.log")
    assert result.ok, result.error
    value = result.value
    assert value["truncated"] is True and value["size"] == 50_050
    assert value["content"].startswith(body[:1000])
    marker = value["content"][1000:]
    assert "truncated" in marker and "50050 bytes" in marker


async def test_cap_does_not_split_a_multibyte_character(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILE_READER_MAX_BYTES", "5")
    (layout.root / "euro.txt").write_text("ab€€€", encoding="utf-8")  # 2 + 3*3 bytes; the cap cuts the 2nd €
    result = await _read("euro.txt")
    assert result.ok and result.value["truncated"] is True
    assert result.value["content"].startswith("ab€\n") and "\ufffd" not in result.value["content"]
    assert "11 bytes" in result.value["content"]


async def test_default_cap_is_16_kb(layout: Layout) -> None:
    (layout.root / "exact.txt").write_bytes(b"a" * 16 * 1024)
    (layout.root / "over.txt").write_bytes(b"a" * (16 * 1024 + 1))
    exact = await tools.call_tool("file_reader", {"path": "exact.txt"}, max_result_chars=10**6)
    over = await tools.call_tool("file_reader", {"path": "over.txt"}, max_result_chars=10**6)
    assert exact.ok and exact.value["truncated"] is False
    assert over.ok and over.value["truncated"] is True and f"{16 * 1024 + 1} bytes" in over.value["content"]


async def test_empty_file(layout: Layout) -> None:
    (layout.root / "empty.txt").write_bytes(b"")
    result = await _read("empty.txt")
    assert result.ok and result.value == {"path": "empty.txt", "size": 0, "truncated": False, "content": ""}


async def test_multiple_roots(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    second = layout.tmp / "second"
    second.mkdir()
    (second / "only-here.txt").write_text("from the second root", encoding="utf-8")
    (second / "hello.txt").write_text("shadowed", encoding="utf-8")
    monkeypatch.setenv("FILES_ROOT", os.pathsep.join([str(layout.root), str(layout.tmp / "missing"), str(second)]))
    result = await _read("only-here.txt")
    assert result.ok and result.value["content"] == "from the second root"
    result = await _read("hello.txt")  # roots are searched in order
    assert result.ok and result.value["content"] == "hello\n"
    result = await _read(str(second / "hello.txt"))
    assert result.ok and result.value["content"] == "shadowed"
    result = await _read(str(layout.evil / "x.txt"))
    assert not result.ok and "outside" in result.error


async def test_default_root_is_created_under_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FILES_ROOT", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    result = await _read("missing.txt")
    assert not result.ok and "file not found" in result.error
    assert (tmp_path / "data" / "files").is_dir()
    (tmp_path / "data" / "files" / "a.txt").write_text("A", encoding="utf-8")
    result = await _read("a.txt")
    assert result.ok and result.value["content"] == "A"


async def test_root_that_is_a_symlink_works(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = layout.tmp / "alias_root"
    alias.symlink_to(layout.root, target_is_directory=True)
    monkeypatch.setenv("FILES_ROOT", str(alias))
    assert (await _read("hello.txt")).ok
    assert (await _read(str(alias / "hello.txt"))).ok
    assert not (await _read(str(layout.evil / "x.txt"))).ok


async def test_no_existing_root_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILES_ROOT", str(tmp_path / "does-not-exist"))
    result = await _read("a.txt")
    assert not result.ok and "FILES_ROOT" in result.error


async def test_bad_arguments_are_refused_by_the_schema(layout: Layout) -> None:
    for args in ({}, {"path": 3}, {"path": "a", "mode": "w"}):
        result = await tools.call_tool("file_reader", args)
        assert not result.ok and result.error.startswith("Invalid arguments for tool 'file_reader'")


async def test_outside_gets_one_message_whether_or_not_the_file_exists(layout: Layout) -> None:
    """An absolute path outside the roots must not tell whether something is there (/etc/shadow or not)."""
    (layout.root / "dangling.txt").symlink_to(layout.outside / "nothing-here.txt")
    (layout.root / "pointing.txt").symlink_to(layout.outside / "secret.txt")
    pairs = [
        ("/etc/shadow", "/etc/no-such-file-here"),
        (str(layout.outside / "secret.txt"), str(layout.outside / "nothing-here.txt")),
        (str(layout.outside), str(layout.tmp / "no-such-dir")),
        ("pointing.txt", "dangling.txt"),  # a symlink out: to something, and to nothing
    ]
    for existing, missing in pairs:
        first, second = await _read(existing), await _read(missing)
        assert not first.ok and not second.ok
        assert first.error.replace(existing, "X") == second.error.replace(missing, "X"), (first.error, second.error)
        assert _ESCAPED in first.error


async def test_directory_swapped_for_a_symlink_never_yields_a_refused_name(layout: Layout) -> None:
    """A race: docs/ flips between a real folder and a symlink to .ssh/ while docs/config is read.

    Every read returns docs/config's own text or refuses; never .ssh/config's (it was 66 times in 20 s).
    """
    ssh = layout.root / ".ssh"
    ssh.mkdir()
    (ssh / "config").write_text("Host * IdentityFile PRIVATE-SSH-CONFIG\n", encoding="utf-8")
    docs, parked = layout.root / "docs", layout.root / "docs.real"
    docs.mkdir()
    (docs / "config").write_text("public configuration\n", encoding="utf-8")
    stop = threading.Event()
    swaps = 0

    def swapper() -> None:
        nonlocal swaps
        while not stop.is_set():
            os.rename(docs, parked)
            os.symlink(".ssh", docs)
            os.unlink(docs)
            os.rename(parked, docs)
            swaps += 1

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    outcomes: dict[str, int] = {"public": 0, "refused": 0, "LEAKED": 0}
    deadline = time.monotonic() + 3.0
    try:
        while time.monotonic() < deadline:
            try:
                result = read_text_file("docs/config")
            except FileReaderError:
                outcomes["refused"] += 1
                continue
            outcomes["LEAKED" if "PRIVATE-SSH-CONFIG" in result["content"] else "public"] += 1
    finally:
        stop.set()
        thread.join(5)
    assert swaps > 100 and outcomes["public"] > 0, (swaps, outcomes)
    assert outcomes["LEAKED"] == 0, outcomes
