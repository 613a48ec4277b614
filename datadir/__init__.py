"""Owner-only permissions for the data folder and what the studio keeps in it.

Why this module exists: ``settings.json`` can hold an endpoint URL with
credentials in it, ``studio.db`` holds every run's inputs and outputs,
``memory.db`` and ``chroma/`` hold what agents remembered. Created under the
usual umask they were 0644 files in a 0755 folder: readable by every local
user. Here the data folder is made 0700 and the files 0600 -- SQLite's
``-wal``/``-shm``/``-journal`` too (SQLite gives them the mode of the database
file, which is created 0600 before SQLite opens it), and Chroma's whole tree --
and an existing folder or file that is looser is TIGHTENED (logged once per
path). A folder the user named explicitly (a ``DATABASE_URL`` pointing
elsewhere, say) is not changed; the database files in it are.

It is its own small package because both ``engine`` (the run store, the
settings file) and ``memory`` use it, memory may not import engine, and the
store must keep working when ``memory`` cannot be imported (the API then
answers 503 for memory only); it imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "folder_for",
    "private_dir",
    "private_file",
    "private_sqlite",
    "private_tree",
    "write_private_text",
]

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` when it grants anything to group or others (never loosens)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return  # never chmod through a symlink
    current = stat.S_IMODE(st.st_mode)
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as exc:  # not ours (another user's folder): leave it, say so
        logger.warning("cannot make %s private (%s); it stays mode %o", path, exc.strerror or exc, current)
        return
    logger.info("made %s private: mode %o -> %o", path, current, current & mode)


def private_dir(path: Path) -> Path:
    """Create ``path`` (parents as usual) and make it 0700, tightening an existing folder."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path, *, create: bool = False) -> None:
    """Make ``path`` 0600 (tightening it); with ``create``, create it empty and 0600 when missing."""
    if create and not os.path.lexists(path):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process: tightened below
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE))
    _tighten(path, PRIVATE_FILE_MODE)


def folder_for(path: Path, data_dir: Path | None) -> None:
    """Create the folder of ``path``: private when it is the data folder ``data_dir``, else as usual
    (the user's own)."""
    folder = path.parent
    if data_dir is not None and folder.resolve() == data_dir.expanduser().resolve():
        private_dir(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)


def private_sqlite(path: Path) -> None:
    """Before SQLite opens ``path``: the file 0600 (created empty when missing), its sidecars 0600.

    An empty file is a valid empty database; SQLite gives the ``-wal`` and
    ``-shm`` files it makes the database file's mode, so they are 0600 too.
    """
    private_file(path, create=True)
    for suffix in SQLITE_SIDECARS:
        _tighten(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)


def private_tree(path: Path) -> None:
    """Tighten a folder and everything in it: folders 0700, files 0600 (symlinks are not followed)."""
    _tighten(path, PRIVATE_DIR_MODE)
    for folder, dirs, files in os.walk(path):
        for name in dirs:
            _tighten(Path(folder) / name, PRIVATE_DIR_MODE)
        for name in files:
            _tighten(Path(folder) / name, PRIVATE_FILE_MODE)


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically as a 0600 file (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0),
                 PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, PRIVATE_FILE_MODE)  # a stale temporary file may have been looser
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
