"""The ``file_reader`` tool: read text files under configured root folders, and nothing else.

Why this module exists: agents need to read the user's documents, but the path
comes from the model (and so, indirectly, from whoever wrote the prompt or a
web page the model read). Peers shipped readers that followed ``..`` and
symlinks out of their folder (n8n CVE-2026-21858). This one is contained by
construction:

- Roots: ``FILES_ROOT`` (one folder or several separated by ``os.pathsep``);
  default ``<DATA_DIR or ./data>/files``, created when missing. A path is
  relative to a root (searched in order) or absolute and inside a root.
- ``..`` components are refused outright; then the path is resolved
  (every symlink followed) and must lie inside a resolved root, checked by path
  components (``Path.is_relative_to``, never a string prefix, so root
  ``/srv/root`` does not contain ``/srv/root_evil``). Containment is checked
  BEFORE existence, so a path outside the roots gets one message whether or
  not something is there (``/etc/shadow`` and ``/etc/nothing`` alike), and a
  symlink's target is never revealed. /proc, /sys and /dev are refused even if
  a root contains them.
- Secret files are refused by name, on the requested path and on the resolved
  one (``.env``, ``.env.*``, ``secrets.toml``, ``*.pem``, ``*.key``, ``id_rsa*``,
  ``.netrc``, anything under ``.ssh``, ...).
- What is opened is what was approved: the resolved path is opened component
  by component from the root's descriptor (``openat`` with ``O_NOFOLLOW``,
  ``O_DIRECTORY`` for folders), so a folder swapped for a symlink during the
  call (``docs`` -> ``.ssh``) fails the walk instead of opening
  ``.ssh/config``; the last component is ``fstatat``-ed first (only regular
  files: directories get a hint, FIFOs, sockets and devices are refused before
  any open), opened with ``O_NONBLOCK`` (a FIFO swapped in can never hang it),
  and checked again: ``fstat`` must be the same file, and its name as the
  kernel sees it (``/proc/self/fd``) must pass the roots, /proc-/sys-/dev and
  secret-name rules.
- Binaries (a NUL byte in the first 8 KB) are refused.
- A file over ``FILE_READER_MAX_BYTES`` (default 16 KB, so the whole marker fits in what a model is
  shown) is read as a capped prefix followed by a marker giving the file's full size; it is not refused.
- Text is decoded as UTF-8 with ``errors="replace"``.

Note: ``tools.call_tool`` caps result text at ``max_result_chars`` (20,000 by
default). Callers that want whole files up to the byte cap pass a larger
``max_result_chars``.
"""

from __future__ import annotations

import codecs
import errno
import fnmatch
import os
import stat
from pathlib import Path, PurePath

from tools import config as tool_settings
from tools.errors import FileReaderError
from tools.registry import tool

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FileReaderError",
    "file_reader",
    "is_secret_name",
    "read_text_file",
    "roots",
]

DEFAULT_MAX_BYTES = 16 * 1024
BINARY_SNIFF_BYTES = 8 * 1024
MAX_PATH_CHARS = 4096

_SECRET_NAME_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "secrets.toml",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "*.jks",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".htpasswd",
)
_SECRET_DIRS = {".ssh", ".gnupg", ".aws", ".docker", ".kube"}
_FORBIDDEN_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def is_secret_name(parts: tuple[str, ...] | list[str]) -> bool:
    """Whether a path (as components) names a secrets file or lies under a secrets folder."""
    lowered = [p.lower() for p in parts if p not in ("", ".", "/")]
    if any(p in _SECRET_DIRS for p in lowered[:-1]) or (lowered and lowered[-1] in _SECRET_DIRS):
        return True
    return bool(lowered) and any(fnmatch.fnmatchcase(lowered[-1], pat) for pat in _SECRET_NAME_PATTERNS)


# Read-only sample files the example workflows use; a root only while FILES_ROOT is unset.
SAMPLE_FILES = Path(__file__).resolve().parents[2] / "examples" / "files"


def roots() -> list[Path]:
    """The resolved root folders that exist (``FILES_ROOT``, else ``<DATA_DIR or ./data>/files`` and the samples)."""
    settings = tool_settings.current()
    entries = list(settings.files_root)
    if not entries:
        default = settings.data_dir / "files"
        try:
            default.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new data folder is private
            default.mkdir(exist_ok=True)
        except OSError as exc:
            raise FileReaderError(
                f"the files folder cannot be created ({exc.strerror or exc}); set FILES_ROOT"
            ) from None
        entries = [str(default), str(SAMPLE_FILES)]
    found: list[Path] = []
    for entry in entries:
        try:
            resolved = Path(entry).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # a configured root that does not exist is skipped (not created: it may be a typo)
        if resolved.is_dir() and resolved not in found:
            found.append(resolved)
    if not found:
        raise FileReaderError("no file folder is available: the folders in FILES_ROOT do not exist")
    return found


def _max_bytes() -> int:
    return tool_settings.current().file_reader_max_bytes


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _containing_root(path: Path, all_roots: list[Path]) -> Path | None:
    for root in all_roots:
        if _inside(path, root):
            return root
    return None


def _outside(shown: str) -> str:
    return (
        f"{shown!r} is outside the allowed files folder(s); only files inside the files folder can be read "
        "(give a path relative to it)"
    )


def _changed(shown: str) -> FileReaderError:
    return FileReaderError(f"{shown!r} changed while it was being opened; try again")


def _resolve(requested: str, all_roots: list[Path]) -> tuple[Path, Path]:
    """Validate the requested path; return (resolved real path, the root containing it)."""
    shown = requested if len(requested) <= 200 else requested[:199] + "…"
    pure = _checked_request(requested, shown)
    candidate = _candidate(pure, all_roots)

    # Where the path leads, following the symlinks that exist, WITHOUT requiring it to exist: a path
    # outside the roots gets the same message whether or not something is there (/etc/shadow or not).
    leads_to = _resolved(candidate, shown, strict=False)
    if _containing_root(leads_to, all_roots) is None:
        raise FileReaderError(_outside(shown))  # never says where a symlink points, nor whether it exists

    resolved = _resolved(candidate, shown, strict=True)
    root = _containing_root(resolved, all_roots)
    if root is None:  # something changed since the first resolution
        raise FileReaderError(_outside(shown))
    if any(_inside(resolved, tree) for tree in _FORBIDDEN_TREES):
        raise FileReaderError(f"{shown!r} is in /proc, /sys or /dev, which are never readable")
    if is_secret_name(resolved.relative_to(root).parts):
        raise FileReaderError(f"refusing to read {shown!r}: it points to a secrets file")
    return resolved, root


def _checked_request(requested: str, shown: str) -> PurePath:
    """The requested path as given, refused when empty, too long, climbing out or naming a secrets file."""
    if not requested:
        raise FileReaderError("the path is empty; give a file path relative to the files folder")
    if "\x00" in requested:
        raise FileReaderError("the path contains a NUL character")
    if len(requested) > MAX_PATH_CHARS:
        raise FileReaderError(f"the path is too long (more than {MAX_PATH_CHARS} characters)")
    pure = PurePath(requested)
    if ".." in pure.parts:
        raise FileReaderError(f"'..' is not allowed in paths ({shown!r}); give a path inside the files folder")
    if is_secret_name(pure.parts):
        raise FileReaderError(f"refusing to read {shown!r}: it looks like a secrets file")
    return pure


def _candidate(pure: PurePath, all_roots: list[Path]) -> Path:
    """An absolute path as is; a relative one under the first root where something has that name."""
    if pure.is_absolute():
        return Path(pure)
    candidates = [root / pure for root in all_roots]
    existing = [c for c in candidates if os.path.lexists(c)]
    return (existing or candidates)[0]


def _resolved(candidate: Path, shown: str, *, strict: bool) -> Path:
    """``candidate.resolve(strict=strict)``, its failures as one line (with ``strict``, a missing file too)."""
    try:
        return candidate.resolve(strict=strict)
    except RuntimeError:  # symlink loop (Python 3.11)
        raise FileReaderError(f"cannot resolve {shown!r}: symlink loop") from None
    except OSError as exc:
        if strict and isinstance(exc, FileNotFoundError):
            raise FileReaderError(f"file not found: {shown!r} (paths are relative to the files folder)") from None
        if exc.errno == errno.ELOOP:
            raise FileReaderError(f"cannot resolve {shown!r}: symlink loop") from None
        raise FileReaderError(f"cannot resolve {shown!r}: {exc.strerror or exc}") from None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_regular(st: os.stat_result, shown: str, rel: str) -> None:
    if stat.S_ISDIR(st.st_mode):
        example = f"{rel.rstrip('/')}/<file name>" if rel not in ("", ".") else "<file name>"
        raise FileReaderError(
            f"{shown!r} is a directory; file_reader reads files only: give the path of a file inside it "
            f"(e.g. {example!r})"
        )
    if not stat.S_ISREG(st.st_mode):
        raise FileReaderError(f"{shown!r} is {_kind(st.st_mode)}; only regular text files can be read")


def _read_prefix(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = (
    os.O_RDONLY
    | os.O_NOFOLLOW
    | os.O_CLOEXEC
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO never hangs
    | getattr(os, "O_NOCTTY", 0)
)


def _open_beneath(root: Path, parts: tuple[str, ...], shown: str, rel: str) -> tuple[int, os.stat_result]:
    """Open ``root/parts...`` component by component from the root's descriptor, following no symlink.

    ``parts`` is the resolved path, so it had no symlink when it was approved: a component that is a
    symlink now (a directory swapped for a link to ``.ssh`` during the call, say) fails the walk
    (O_NOFOLLOW), so what is opened is what was approved. Returns (descriptor, its fstat).
    """
    try:
        dir_fd = os.open(root, _DIR_FLAGS)
    except OSError:
        raise _changed(shown) from None
    try:
        for name in parts[:-1]:
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                raise FileReaderError(f"file not found: {shown!r} (paths are relative to the files folder)") from None
            except OSError:  # ELOOP / ENOTDIR: a component became a symlink or a file
                raise _changed(shown) from None
            os.close(dir_fd)
            dir_fd = next_fd
        if not parts:  # the root itself
            _check_regular(os.fstat(dir_fd), shown, rel)
        try:
            before = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise FileReaderError(f"file not found: {shown!r} (paths are relative to the files folder)") from None
        if stat.S_ISLNK(before.st_mode):
            raise _changed(shown)
        _check_regular(before, shown, rel)  # a directory, FIFO, socket or device is refused before opening
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _changed(shown) from None
            raise FileReaderError(f"cannot open {shown!r}: {exc.strerror or exc}") from None
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise _changed(shown)
    return fd, st


def _check_opened(fd: int, all_roots: list[Path], shown: str) -> None:
    """Check the name of what was actually opened (Linux: /proc/self/fd) against the roots and the rules."""
    proc_link = f"/proc/self/fd/{fd}"
    if not os.path.islink(proc_link):  # no /proc: the descriptor walk alone holds
        return
    try:
        real = Path(os.readlink(proc_link))
    except OSError:
        raise _changed(shown) from None
    root = _containing_root(real, all_roots)
    if (
        root is None
        or any(_inside(real, tree) for tree in _FORBIDDEN_TREES)
        or is_secret_name(real.relative_to(root).parts)
    ):
        raise _changed(shown)


def read_text_file(path: str) -> dict[str, object]:
    """Read a text file under the configured roots; see the module docstring for the rules.

    Returns:
        ``{"path", "size", "truncated", "content"}``: the path relative to its
        root, the file's full size in bytes, whether only a prefix was read,
        and the text (with a truncation marker when truncated).

    Raises:
        FileReaderError: the path is refused or the file cannot be read.
    """
    if not isinstance(path, str):
        raise FileReaderError(f"the path must be a string, got {type(path).__name__}")
    requested = path.strip()
    shown = requested if len(requested) <= 200 else requested[:199] + "…"
    all_roots = roots()
    limit = _max_bytes()
    resolved, root = _resolve(requested, all_roots)
    rel = resolved.relative_to(root).as_posix()

    fd, st = _open_beneath(root, resolved.relative_to(root).parts, shown, rel)
    try:
        _check_opened(fd, all_roots, shown)
        data = _read_prefix(fd, limit + 1)
    except OSError as exc:
        raise FileReaderError(f"cannot read {shown!r}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)

    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise FileReaderError(
            f"{shown!r} looks like a binary file (it contains NUL bytes); only text files can be read"
        )
    truncated = len(data) > limit
    size = max(st.st_size, len(data))
    if truncated:
        data = data[:limit]
        # Drop a multi-byte character cut in half by the cap instead of showing U+FFFD for it.
        text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)
        text += (
            f"\n\n[… truncated: the file is {size} bytes; only the first {limit} bytes are shown "
            f"(FILE_READER_MAX_BYTES)]"
        )
    else:
        text = data.decode("utf-8", errors="replace")
    return {"path": rel, "size": size, "truncated": truncated, "content": text}


@tool(timeout_s=10.0)
def file_reader(path: str) -> dict[str, object]:
    """Read a text file from the files folder. Returns {path, size, truncated, content}; a large file
    is cut to a prefix with a marker giving its full size. Only files inside the configured files
    folder(s) can be read: no '..', no directories, binaries, devices or secret files (.env, keys).

    Args:
        path: Path of the file, relative to the files folder (e.g. "notes/todo.md").
    """
    return read_text_file(path)
