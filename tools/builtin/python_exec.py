"""The ``python`` tool: run a cell of model-written Python code in a contained child process.

Why this module exists: agents want to compute things with code, and code
written by a model (or by whoever injected text into its prompt) is hostile
input. Peers that ran it in the app process shipped remote code execution
(Langflow CVE-2025-3248, LangChain PALChain, smolagents escapes). Here the app
never executes the code: it is handed to a fresh child process running the
*system* interpreter (``/usr/bin/python3``) inside a sandbox, and only a JSON
description of what happened comes back.

What "contained" means (see docs/spec "Built-in tools: what 'contained'
means"): the code sees a private filesystem (the interpreter and its standard
library read-only, an empty writable working directory, nothing else of the
host: no /etc/passwd, no home directories, no project files), no environment
variable of the app, no network, and every process it started is gone when
the call returns -- success, failure or timeout.

Isolation layers, strongest available first (:func:`isolation_mode` says which
one is active; every result carries it as ``"isolation"``):

``bwrap``
    bubblewrap: new user, mount, pid, network, IPC, UTS and cgroup namespaces
    (``--unshare-all --unshare-user --disable-userns``), uid/gid 65534, an
    empty environment, a root made only of read-only ``/usr`` (plus the
    ``/lib``, ``/lib64``, ``/bin`` symlinks), a fresh ``/proc``, a minimal
    ``/dev``, size-capped tmpfs ``/tmp`` (the working directory) and
    ``/dev/shm``, everything else read-only; ``--die-with-parent`` and
    ``--new-session``. When the app runs as root, bwrap itself is started as
    uid 65534 so that the sandbox is an unprivileged user namespace and
    RLIMIT_NPROC is enforced; if that is refused (AppArmor's user-namespace
    restriction, for instance) this mode is unavailable -- it never silently
    becomes bwrap-as-root.
``unshare``
    fallback when bwrap is missing or refused (root only): ``unshare`` into new
    network, pid, mount, IPC and UTS namespaces; a small shell script builds the
    same private root (tmpfs, read-only bind of /usr, /proc, a few /dev nodes,
    a capped tmpfs /tmp) and ``chroot`` + ``setpriv`` drop to uid/gid 65534
    with no capabilities, no supplementary groups and no_new_privs.
``bwrap-root`` (weak)
    bwrap started as root, tried only after ``unshare``: the sandbox's uid
    65534 is the host's root and RLIMIT_NPROC does not apply to it. The tool
    REFUSES to run in this mode unless ``PYTHON_TOOL_ALLOW_WEAK_SANDBOX=1``.
``rlimits-only`` (weak)
    none is possible: the child still gets an empty environment, a private
    temporary working directory, uid 65534 when the app is root, the rlimits
    and the Python-level socket block -- but it can read whatever that user can
    read and the network is not isolated. The tool therefore REFUSES to run in
    this mode unless ``PYTHON_TOOL_ALLOW_WEAK_SANDBOX=1`` is set.

Always, in every mode: ``env`` is empty (bwrap/unshare modes set only PATH,
LANG and HOME inside), ``setrlimit`` in ``preexec_fn`` (CPU, address space,
processes -- effective for uid 65534 only --, file size, open files, no core
dumps), ``start_new_session=True`` and, when the call ends, ``killpg(SIGKILL)``
of the whole group; per call, a cgroup bounding the memory and the processes
of everything the call starts, which is also used to kill every remaining
process: cgroup v2 (a delegated subtree, ``memory.max``, ``pids.max``,
``cgroup.kill``) or cgroup v1 -- see ``_sandbox_cgroups.py``. Without either
the tool REFUSES to run unless ``PYTHON_TOOL_ALLOW_WEAK_SANDBOX=1``
(:func:`weaknesses` says why; every result carries ``"limits"``:
``cgroup-v2``, ``cgroup-v1`` or ``rlimits``). Inside the child, before the
code runs, ``socket`` refuses every address family but AF_UNIX and name
lookups fail (second layer).

The AST pre-check (:func:`precheck`) runs in the app process with
``ast.parse`` only -- it never executes anything -- and refuses obvious escape
attempts early with a readable message (imports of os/sys/subprocess/ctypes/
socket/..., dunder attribute walks, frame walks, format-string attribute
access, eval/exec/__import__). It is a courtesy, NOT the boundary: a
determined attacker can get past any such check; the sandbox is the boundary,
and the test suite proves it with the pre-check switched off.

The child runner is ``tools/builtin/_python_child.py``; its source is passed
with ``-c`` so that nothing of the project needs to be visible in the sandbox.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import errno
import json
import logging
import math
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import config as tool_settings
from tools.builtin._sandbox_cgroups import CGROUP_ENV_VAR, LIMITS_KINDS, limits_status
from tools.builtin._sandbox_cgroups import CallCgroups as _CallCgroups
from tools.errors import (
    CodeCancelled,
    CodeCrashed,
    CodeFailed,
    CodeMemoryLimit,
    CodeRefused,
    CodeSyntaxError,
    CodeTimeout,
    PythonToolError,
    SandboxUnavailable,
)
from tools.registry import tool

__all__ = [
    "ALLOW_WEAK_ENV_VAR",
    "CGROUP_ENV_VAR",
    "LIMITS_KINDS",
    "CHILD_PYTHON",
    "ISOLATION_ENV_VAR",
    "ISOLATION_MODES",
    "CodeCrashed",
    "CodeFailed",
    "CodeMemoryLimit",
    "CodeRefused",
    "CodeSyntaxError",
    "CodeTimeout",
    "DEFAULT_LIMITS",
    "Limits",
    "PythonToolError",
    "SandboxUnavailable",
    "available_isolation_modes",
    "isolation_detail",
    "isolation_mode",
    "precheck",
    "weaknesses",
    "python",
    "run_code",
]

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------- settings

CHILD_PYTHON = "/usr/bin/python3"
"""The interpreter run inside the sandbox: the system one, readable by uid 65534 and
made only of files under /usr (pyenv's interpreter lives under /root, which is 0700)."""

ISOLATION_MODES = tool_settings.ISOLATION_MODES
"""Possible isolation layers, strongest first; the last two are weak (see :data:`WEAK_MODES`)."""

WEAK_MODES = {
    "bwrap-root": "bwrap runs as root (the fallback when it cannot start as uid 65534), so the sandbox's uid "
                  "is the host's root and RLIMIT_NPROC does not apply to it",
    "rlimits-only": "no filesystem or network isolation (the code could read files and use the network)",
}
"""Modes the tool refuses unless ``PYTHON_TOOL_ALLOW_WEAK_SANDBOX=1`` (or the caller names the mode)."""

ISOLATION_ENV_VAR = "PYTHON_TOOL_ISOLATION"
"""Force a mode (one of :data:`ISOLATION_MODES`) instead of the strongest available."""

ALLOW_WEAK_ENV_VAR = "PYTHON_TOOL_ALLOW_WEAK_SANDBOX"
"""Set to 1 to let the tool run with a weakness: a weak mode, or no per-call memory/process limit."""

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
SANDBOX_WORKDIR = "/tmp"  # inside bwrap/unshare: a private, size-capped tmpfs

MAX_CODE_CHARS = 100_000
MAX_CONCURRENT_CALLS = 4


@dataclass(frozen=True)
class Limits:
    """Resource limits of one call."""

    wall_timeout_s: float = 10.0
    memory_bytes: int = 512 * 1024 * 1024  # RLIMIT_AS
    max_processes: int = 64  # RLIMIT_NPROC (uid 65534) and pids.max of the call's cgroup
    max_file_bytes: int = 16 * 1024 * 1024  # RLIMIT_FSIZE
    max_open_files: int = 64  # RLIMIT_NOFILE
    tmpfs_bytes: int = 64 * 1024 * 1024  # size of the writable /tmp (and /dev/shm)
    output_cap_bytes: int = 64 * 1024  # per stream (stdout, stderr) and for the value

    @property
    def cpu_seconds(self) -> int:
        return int(math.ceil(self.wall_timeout_s)) + 1


DEFAULT_LIMITS = Limits()
TOOL_TIMEOUT_S = DEFAULT_LIMITS.wall_timeout_s + 5.0  # the registry's outer bound; ours fires first

_CHILD_SOURCE = (Path(__file__).with_name("_python_child.py")).read_text(encoding="utf-8")
_RESULT_CAP_BYTES = 1024 * 1024  # the child's JSON result (value capped at output_cap_bytes in the child)
_EXIT_GRACE_S = 0.3  # after the main process exits, how long we wait for its pipes to close


# ------------------------------------------------------------------------- errors


# ---------------------------------------------------------------- AST pre-check

_REFUSED_MODULES: dict[str, str] = {}
for _names, _why in (
    (("os", "posix", "nt", "sys", "posixpath", "_posixsubprocess"), "operating-system access"),
    (("subprocess", "multiprocessing", "pty", "pexpect", "signal", "resource", "fcntl", "termios", "mmap"),
     "process and system control"),
    (("ctypes", "_ctypes", "cffi"), "calling native code"),
    (("socket", "_socket", "ssl", "socketserver", "select", "selectors", "asyncio", "http", "urllib",
      "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib",
      "xmlrpc", "webbrowser"), "network access (there is no network in the sandbox)"),
    (("importlib", "imp", "pkgutil", "runpy", "zipimport", "builtins", "__builtin__", "code", "codeop"),
     "import and execution machinery"),
    (("gc", "inspect", "types", "pdb", "bdb", "sysconfig", "_thread", "faulthandler", "tracemalloc"),
     "interpreter introspection"),
    (("pickle", "_pickle", "cPickle", "marshal", "shelve", "copyreg", "dill", "cloudpickle"),
     "deserialising code"),
):
    for _name in _names:
        _REFUSED_MODULES[_name] = _why

_REFUSED_CALLS = {
    "eval": "eval() is not allowed; write the code directly",
    "exec": "exec() is not allowed; write the code directly",
    "compile": "compile() is not allowed",
    "__import__": "__import__() is not allowed; use a plain import of an allowed module",
    "breakpoint": "breakpoint() is not allowed",
    "globals": "globals() is not allowed",
}

# Dunder names that ordinary code uses; every other __dunder__ attribute is refused.
_ALLOWED_DUNDERS = frozenset({
    "__init__", "__name__", "__doc__", "__qualname__", "__module__", "__str__", "__repr__", "__len__",
    "__iter__", "__next__", "__enter__", "__exit__", "__eq__", "__ne__", "__hash__", "__lt__", "__le__",
    "__gt__", "__ge__", "__add__", "__sub__", "__mul__", "__contains__", "__getitem__", "__setitem__",
    "__call__", "__version__", "__post_init__", "__main__", "__all__", "__slots__",
})
# Non-dunder attributes that lead from objects to frames, code and globals.
_REFUSED_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await",
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
    "co_code", "co_consts", "co_names", "func_globals", "func_code", "im_func", "mro",
})
# Special names that lead to the import machinery or the builtins module.
_REFUSED_NAMES = frozenset({
    "__builtins__", "__import__", "__loader__", "__spec__", "__build_class__", "__cached__", "__package__",
})
_DUNDER_RE = re.compile(r"__\w+__")
# "{0.__class__}".format(x), "{x.gi_frame}" ...: a replacement field that reaches an attribute.
_FORMAT_ATTR_RE = re.compile(r"\{[^{}!:]*\.\s*(?:_|gi_|cr_|ag_|f_|tb_|co_|func_|mro)")


def _refused_attr(attr: str) -> str | None:
    if attr in _REFUSED_NAMES:
        return f"access to {attr!r} is not allowed"
    if _DUNDER_RE.fullmatch(attr) and attr not in _ALLOWED_DUNDERS:
        return f"access to the special attribute {attr!r} is not allowed"
    if attr in _REFUSED_ATTRS:
        return f"access to the attribute {attr!r} (frames, code objects, method resolution) is not allowed"
    return None


def precheck(code: str) -> ast.Module:
    """Parse ``code`` (never executing it) and refuse obvious escape attempts.

    This gives early, readable refusals; it is NOT the security boundary (the
    sandbox is): anything it misses still runs contained.

    Raises:
        CodeSyntaxError: the code does not parse.
        CodeRefused: the code uses a construct the tool does not allow.
    """
    tree = _parse(code)
    for node in ast.walk(tree):
        why = _refusal(node)
        if why:
            raise _refused(node, why)
    return tree


def _parse(code: str) -> ast.Module:
    if not isinstance(code, str):
        raise CodeRefused(f"the code must be a string, got {type(code).__name__}")
    if len(code) > MAX_CODE_CHARS:
        raise CodeRefused(f"the code is too long ({len(code)} characters; the limit is {MAX_CODE_CHARS})")
    if "\x00" in code:
        raise CodeSyntaxError("SyntaxError: the code contains a NUL character")
    try:
        return ast.parse(code, filename="<cell>", mode="exec")
    except SyntaxError as exc:
        raise CodeSyntaxError(_format_syntax_error(exc)) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CodeSyntaxError(f"SyntaxError: the code cannot be parsed ({type(exc).__name__}: {exc})") from None


def _refused(node: ast.AST, why: str) -> CodeRefused:
    line = getattr(node, "lineno", None)
    where = f" (line {line})" if line else ""
    return CodeRefused(
        f"Refused by the python tool's pre-check{where}: {why}. The code runs in an isolated sandbox "
        "without network, host files or OS access; compute with the standard library "
        "(math, statistics, json, re, datetime, collections, itertools, decimal, fractions, random, ...)."
    )


def _refusal(node: ast.AST) -> str | None:
    """Why the pre-check refuses ``node`` (an import, attribute, name or string), or None."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in _REFUSED_MODULES:
                return f"importing {alias.name!r} ({_REFUSED_MODULES[top]}) is not allowed"
        return None
    if isinstance(node, ast.ImportFrom):
        return _import_from_refusal(node)
    if isinstance(node, ast.Attribute):
        return _refused_attr(node.attr)
    if isinstance(node, ast.Name):
        if node.id in _REFUSED_CALLS:
            return _REFUSED_CALLS[node.id]
        if node.id in _REFUSED_NAMES:
            return f"the special name {node.id!r} is not allowed"
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _string_refusal(node.value)
    return None


def _import_from_refusal(node: ast.ImportFrom) -> str | None:
    top = (node.module or "").split(".")[0]
    if node.level == 0 and top in _REFUSED_MODULES:
        return f"importing from {node.module!r} ({_REFUSED_MODULES[top]}) is not allowed"
    if node.level > 0:
        return "relative imports are not allowed"
    for alias in node.names:
        why = _refused_attr(alias.name)
        if why:
            return why
    return None


def _string_refusal(text: str) -> str | None:
    named = _refused_attr(text.strip()) if len(text) <= 64 else None
    if named:
        return f"the string {text.strip()!r} names a special attribute ({named})"
    if _FORMAT_ATTR_RE.search(text):
        return "format strings that reach into attributes ('{0.__class__}', ...) are not allowed"
    return None


_precheck = precheck  # run_code's keyword argument "precheck" shadows the function


def _format_syntax_error(exc: SyntaxError) -> str:
    where = []
    if exc.lineno:
        where.append(f"line {exc.lineno}")
    if exc.offset:
        where.append(f"column {exc.offset}")
    text = f"SyntaxError: {exc.msg}"
    if where:
        text += f" ({', '.join(where)})"
    if exc.text and exc.text.strip():
        snippet = exc.text.strip()
        text += f": {snippet[:120]}"
    return text


# ------------------------------------------------------------------- isolation

_probe_lock = threading.Lock()
_probed: dict[str, tuple[bool, str]] = {}  # mode -> (works, detail)


def _is_root() -> bool:
    return os.geteuid() == 0


def _bwrap_argv(limits: Limits, bwrap: str) -> list[str]:
    return [
        bwrap,
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "HOME", SANDBOX_WORKDIR,
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/sbin", "/sbin",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm",
        "--size", str(limits.tmpfs_bytes), "--tmpfs", SANDBOX_WORKDIR,
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--chdir", SANDBOX_WORKDIR,
        "--",
    ]


# Runs as root in fresh namespaces (unshare), builds a private root on the empty
# directory $1 (only mounted inside this mount namespace) and runs "$@" in it as
# uid/gid 65534 without capabilities. sh stays pid 1 of the new pid namespace: when
# it exits, the kernel kills every process left in the namespace.
_UNSHARE_SCRIPT = r"""
set -eu
R=$1; TMPSIZE=$2; shift 2
mount -t tmpfs -o size=1m,mode=0755,nosuid,nodev sandbox-root "$R"
mkdir "$R/usr" "$R/proc" "$R/tmp" "$R/dev" "$R/dev/shm"
mount --bind /usr "$R/usr"
mount -o remount,bind,ro,nosuid,nodev "$R/usr"
ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"; ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o size="$TMPSIZE",mode=1777,nosuid,nodev sandbox-tmp "$R/tmp"
mount -t tmpfs -o size="$TMPSIZE",mode=1777,nosuid,nodev,noexec sandbox-shm "$R/dev/shm"
for d in null zero full random urandom; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -o remount,ro,nosuid,nodev sandbox-root "$R"
cd /
set +e
chroot "$R" /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
exit $?
"""


def _unshare_argv(limits: Limits, root_dir: str) -> list[str]:
    return [
        shutil.which("unshare") or "/usr/bin/unshare",
        "--net", "--pid", "--fork", "--kill-child", "--mount", "--uts", "--ipc", "--propagation", "private",
        "--", "/bin/sh", "-c", _UNSHARE_SCRIPT, "sandbox-init", root_dir, str(limits.tmpfs_bytes),
    ]


def _probe(mode: str) -> tuple[bool, str]:
    """Run ``1+1`` in ``mode`` once; (works, detail)."""
    global _bwrap_as_nobody
    if mode == "rlimits-only":
        return os.path.exists(CHILD_PYTHON), "" if os.path.exists(CHILD_PYTHON) else f"{CHILD_PYTHON} is missing"
    if not os.path.exists(CHILD_PYTHON):
        return False, f"{CHILD_PYTHON} is missing"
    if mode in ("bwrap", "bwrap-root"):
        if not shutil.which("bwrap"):
            return False, "bwrap is not installed (apt-get install bubblewrap)"
        if mode == "bwrap-root" and not _is_root():
            return False, "only when the app runs as root (bwrap then runs as the app's own uid: see bwrap)"
        try:
            result = _run(mode, "1+1", DEFAULT_LIMITS, probing=True)
        except Exception as exc:  # noqa: BLE001  (any failure means: not usable)
            return False, f"bwrap is installed but refused: {str(exc)[:300]}"
        if result.get("value") != 2:
            return False, f"unexpected probe result {result!r}"
        if mode == "bwrap-root":
            return True, "bwrap started as root"
        return True, "bwrap started as uid 65534" if _is_root() else "bwrap"
    if mode == "unshare":
        if not _is_root():
            return False, "the unshare fallback needs root (to drop to uid 65534 after building the sandbox)"
        missing = [t for t in ("unshare", "mount", "chroot", "setpriv") if not shutil.which(t)
                   and not os.path.exists(f"/usr/sbin/{t}")]
        if missing:
            return False, f"missing tools: {', '.join(missing)}"
        try:
            result = _run(mode, "1+1", DEFAULT_LIMITS, probing=True)
            if result.get("value") == 2:
                return True, "unshare + chroot + setpriv"
            return False, f"unexpected probe result {result!r}"
        except Exception as exc:  # noqa: BLE001
            return False, f"unshare refused: {str(exc)[:300]}"
    raise ValueError(f"unknown isolation mode {mode!r}; expected one of {', '.join(ISOLATION_MODES)}")


def _mode_works(mode: str) -> tuple[bool, str]:
    with _probe_lock:
        if mode not in _probed:
            _probed[mode] = _probe(mode)
        return _probed[mode]


def available_isolation_modes() -> list[str]:
    """The isolation modes that work on this machine, strongest first (probes each once)."""
    return [mode for mode in ISOLATION_MODES if _mode_works(mode)[0]]


def isolation_mode() -> str:
    """The isolation the ``python`` tool uses here: the first of :data:`ISOLATION_MODES` that works.

    ``PYTHON_TOOL_ISOLATION`` forces a mode. A weak mode (:data:`WEAK_MODES`) or
    a machine without per-call cgroup limits makes the tool refuse to run unless
    ``PYTHON_TOOL_ALLOW_WEAK_SANDBOX=1`` (:func:`weaknesses` says why).
    """
    forced = tool_settings.current().isolation
    if forced in ISOLATION_MODES:
        return forced
    for mode in ISOLATION_MODES:
        if _mode_works(mode)[0]:
            return mode
    return "rlimits-only"


def isolation_detail(mode: str | None = None) -> str:
    """One line: whether ``mode`` (default: the active one) works, its per-call limits, and its weaknesses."""
    mode = mode or isolation_mode()
    works, detail = _mode_works(mode)
    line = f"{mode}: {'available' if works else 'unavailable'}{' (' + detail + ')' if detail else ''}"
    if not works:
        return line
    kind, limits_detail = limits_status(DEFAULT_LIMITS)
    line += f"; per-call limits: {kind} ({limits_detail})"
    weak = weaknesses(mode)
    if weak:
        line += f"; WEAK: {'; '.join(weak)} -- refused unless {ALLOW_WEAK_ENV_VAR}=1"
    return line


def weaknesses(mode: str | None = None, *, consented: bool = False) -> list[str]:
    """Why running in ``mode`` (default: the active one) would be weak; empty when it is not.

    ``consented``: the caller named ``mode`` explicitly, which counts as consent
    to the weakness of the mode itself (not to missing per-call limits).
    """
    mode = mode or isolation_mode()
    out = []
    if mode in WEAK_MODES and not consented:
        out.append(WEAK_MODES[mode])
    kind, detail = limits_status(DEFAULT_LIMITS)
    if kind == "rlimits":
        out.append(f"no per-call memory or process limit ({detail})")
    return out


# ---------------------------------------------------------------------- running


def _make_preexec(limits: Limits, cgroup_fds: list[int], drop_to_nobody: bool, nproc: int) -> Callable[[], None]:
    rlimits = [
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_FSIZE, limits.max_file_bytes, limits.max_file_bytes),
        (resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if hasattr(resource, "RLIMIT_MEMLOCK"):
        rlimits.append((resource.RLIMIT_MEMLOCK, 0, 0))
    if hasattr(resource, "RLIMIT_MSGQUEUE"):
        rlimits.append((resource.RLIMIT_MSGQUEUE, 0, 0))
    setrlimit, setgroups, setresgid, setresuid, write, getpid = (
        resource.setrlimit, os.setgroups, os.setresgid, os.setresuid, os.write, os.getpid,
    )

    def preexec() -> None:  # runs in the forked child, before exec; keep it to plain syscalls
        pid = str(getpid()).encode()
        for fd in cgroup_fds:
            try:  # noqa: SIM105 - preexec in the forked child: plain syscalls only, no context manager
                write(fd, pid)
            except OSError:
                pass
        for which, soft, hard in rlimits:
            setrlimit(which, (soft, hard))
        if drop_to_nobody:
            setgroups([])
            setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
            setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)

    return preexec


class _Capped:
    """Bytes read from a pipe, keeping at most ``cap`` of them."""

    def __init__(self, cap: int):
        self.cap = cap
        self.parts: list[bytes] = []
        self.kept = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.parts.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def text(self, what: str) -> str:
        text = b"".join(self.parts).decode("utf-8", "replace")
        if self.truncated:
            text += f"\n… [{what} truncated: {self.total} bytes in total, showing the first {self.kept}]"
        return text


@dataclass
class _Outcome:
    stdout: _Capped
    stderr: _Capped
    result: _Capped
    returncode: int | None = None
    timed_out: bool = False
    leftovers: list[int] = field(default_factory=list)


def _communicate(proc: subprocess.Popen[bytes], request: bytes, result_r: int, limits: Limits,
                 deadline: float, cancel: threading.Event | None = None) -> _Outcome:
    """Feed the request, read stdout/stderr/result with caps, until EOF, exit, the deadline or ``cancel``."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = _Outcome(_Capped(limits.output_cap_bytes), _Capped(limits.output_cap_bytes), _Capped(_RESULT_CAP_BYTES))
    sinks = {proc.stdout.fileno(): out.stdout, proc.stderr.fileno(): out.stderr, result_r: out.result}
    pending = memoryview(request)
    stdin_fd = proc.stdin.fileno()
    for fd in (*sinks, stdin_fd):
        os.set_blocking(fd, False)
    with selectors.DefaultSelector() as sel:
        for fd in sinks:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(stdin_fd, selectors.EVENT_WRITE)
        stdin_open = True
        exited_at: float | None = None
        while sinks or stdin_open:
            now = time.monotonic()
            if now >= deadline:
                out.timed_out = True
                break
            if cancel is not None and cancel.is_set():
                break  # the caller was cancelled: the finally of _run_slot kills everything
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _EXIT_GRACE_S:
                break  # the main process is gone; something it left behind holds a pipe
            timeout = min(deadline - now, 0.05)
            for key, _ in sel.select(timeout):
                fd = key.fd
                if fd == stdin_fd:
                    pending = _write_some(fd, pending)
                    if not pending:
                        sel.unregister(fd)
                        proc.stdin.close()
                        stdin_open = False
                    continue
                data = _read_some(fd)
                if data is None:
                    continue
                if data:
                    sinks[fd].add(data)
                else:
                    sel.unregister(fd)
                    del sinks[fd]
    if stdin_open:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return out


def _write_some(fd: int, pending: memoryview) -> memoryview:
    """Write what the child's stdin takes now of ``pending``; the rest (nothing once the child is gone)."""
    try:
        return pending[os.write(fd, pending[:65536]) :]
    except BlockingIOError:
        return pending
    except OSError:  # the child is gone or closed stdin
        return pending[:0]


def _read_some(fd: int) -> bytes | None:
    """What a pipe from the child holds now: None when nothing yet, b"" at its end (or when it broke)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


_call_slots = threading.BoundedSemaphore(MAX_CONCURRENT_CALLS)


def _run(
    mode: str, code: str, limits: Limits, *, probing: bool = False, cancel: threading.Event | None = None,
    require_cgroup: bool = False,
) -> dict[str, Any]:
    """Run ``code`` in a fresh contained child under ``mode``; the child's result plus outputs.

    ``require_cgroup``: refuse (SandboxUnavailable) when this call's cgroup cannot be made.
    """
    started = time.monotonic()
    deadline = started + limits.wall_timeout_s
    if not _call_slots.acquire(timeout=limits.wall_timeout_s):
        raise CodeTimeout(f"the python tool is busy ({MAX_CONCURRENT_CALLS} calls running); try again")
    try:
        return _run_slot(mode, code, limits, deadline, probing, cancel, require_cgroup)
    finally:
        _call_slots.release()


def _run_slot(
    mode: str, code: str, limits: Limits, deadline: float, probing: bool, cancel: threading.Event | None = None,
    require_cgroup: bool = False,
) -> dict[str, Any]:
    child = [CHILD_PYTHON, "-I", "-B", "-c", _CHILD_SOURCE]
    cleanup_dirs: list[str] = []
    env: dict[str, str] = {}
    cwd = "/"
    drop = False
    if mode in ("bwrap", "bwrap-root"):
        bwrap = shutil.which("bwrap") or "bwrap"
        argv = _bwrap_argv(limits, bwrap) + child
        drop = _is_root() and mode == "bwrap"  # never silently as root: that is the weak bwrap-root mode
        workdir = SANDBOX_WORKDIR
    elif mode == "unshare":
        root_dir = tempfile.mkdtemp(prefix="ws-python-root-")
        cleanup_dirs.append(root_dir)
        argv = _unshare_argv(limits, root_dir) + child
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": SANDBOX_WORKDIR}
        workdir = SANDBOX_WORKDIR
    elif mode == "rlimits-only":
        workdir = tempfile.mkdtemp(prefix="ws-python-work-")
        cleanup_dirs.append(workdir)
        drop = _is_root()
        if drop:
            os.chown(workdir, SANDBOX_UID, SANDBOX_GID)
        argv = child
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir}
        cwd = workdir
    else:
        raise ValueError(f"unknown isolation mode {mode!r}; expected one of {', '.join(ISOLATION_MODES)}")

    cgroups = _CallCgroups(limits)
    if require_cgroup and cgroups.kind == "rlimits":
        cgroups.close()
        for path in cleanup_dirs:
            shutil.rmtree(path, ignore_errors=True)
        raise SandboxUnavailable(
            f"The python tool could not create this call's cgroup, so nothing would bound its memory and "
            f"processes ({cgroups.why}). Set {ALLOW_WEAK_ENV_VAR}=1 to run with per-process rlimits only."
        )
    result_r, result_w = os.pipe()
    proc: subprocess.Popen[bytes] | None = None
    try:
        request = json.dumps(
            {"code": code, "result_fd": result_w, "workdir": workdir, "value_cap": limits.output_cap_bytes},
            ensure_ascii=False,
        ).encode("utf-8", "surrogatepass")
        try:
            proc = _start(argv, env, cwd, result_w, limits, cgroups, drop, deadline, mode)
        finally:
            os.close(result_w)
        try:
            outcome = _communicate(proc, request, result_r, limits, deadline, cancel)
        finally:
            _kill_everything(proc, cgroups)
        if cancel is not None and cancel.is_set():
            raise CodeCancelled("the call was cancelled; the code and every process it started were stopped")
        outcome.returncode = proc.returncode
        result = _interpret(mode, outcome, limits, cgroups, probing)
        result["limits"] = cgroups.kind
        return result
    finally:
        os.close(result_r)
        if proc is not None:
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        cgroups.close()
        for path in cleanup_dirs:
            shutil.rmtree(path, ignore_errors=True)


START_ATTEMPTS = 6  # EAGAIN from fork/exec: no free process slot for the moment (the 5 waits total ~1.5 s)


def _start(
    argv: list[str], env: dict[str, str], cwd: str, result_w: int, limits: Limits, cgroups: _CallCgroups,
    drop: bool, deadline: float, mode: str,
) -> subprocess.Popen[bytes]:
    """Start the contained child; a start refused with EAGAIN is tried again after a short wait.

    EAGAIN is the kernel saying "not now": ``fork`` found no free process slot, or ``execve`` found the
    sandbox's uid at its RLIMIT_NPROC while other calls' processes (of this or another server) were
    still being killed. Any other error, or EAGAIN past the attempts or the call's deadline, is
    SandboxUnavailable.
    """
    wait, attempt = 0.05, 1
    while True:
        preexec = _make_preexec(limits, cgroups.proc_fds, drop, _nproc_limit(limits, cgroups, drop))
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(result_w,),
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509  (plain syscalls only; see _make_preexec)
            )
        except OSError as exc:
            if exc.errno != errno.EAGAIN or attempt == START_ATTEMPTS or time.monotonic() + wait >= deadline:
                raise SandboxUnavailable(f"could not start the sandbox ({mode}): {exc}") from None
            logger.info("the sandbox (%s) could not start (%s); trying again in %.2f s", mode, exc, wait)
            time.sleep(wait)
            wait, attempt = wait * 2, attempt + 1


def _nproc_limit(limits: Limits, cgroups: _CallCgroups, drop: bool) -> int:
    """RLIMIT_NPROC counts every process of the child's uid machine-wide, i.e. of all concurrent
    calls: with a per-call pids cgroup doing the per-call bound, leave room for the others;
    without one, allow this call ``max_processes`` more than that uid already runs."""
    if cgroups.bounds_processes:
        return limits.max_processes * MAX_CONCURRENT_CALLS + 16
    run_as = SANDBOX_UID if drop else os.getuid()
    if run_as == 0:  # the kernel does not apply RLIMIT_NPROC to root
        return limits.max_processes
    return _tasks_of_uid(run_as) + limits.max_processes


def _tasks_of_uid(uid: int) -> int:
    """Processes + threads whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        real_uid = threads = None
        for line in status.splitlines():
            if line.startswith("Uid:"):
                real_uid = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if real_uid == uid:
            total += threads or 1
    return total


def _kill_everything(proc: subprocess.Popen[bytes], cgroups: _CallCgroups) -> None:
    """SIGKILL the session's process group and every member of the call's cgroups; reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the leader is unreaped until wait(): the pgid cannot be reused
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        logger.error("python tool: child %s survived SIGKILL", proc.pid)
    leftovers = cgroups.kill_all()
    if leftovers:
        logger.debug("python tool: killed %d leftover process(es) via cgroup", len(leftovers))


def _signal_of(mode: str, rc: int | None) -> int | None:
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if mode in ("bwrap", "bwrap-root", "unshare") and rc > 128:  # the sandbox's init reports 128 + signal
        return rc - 128
    return None


def _interpret(mode: str, outcome: _Outcome, limits: Limits, cgroups: _CallCgroups, probing: bool) -> dict[str, Any]:
    stderr_text = outcome.stderr.text("stderr")
    if outcome.timed_out:
        raise CodeTimeout(
            f"The code ran longer than the {limits.wall_timeout_s:g} s wall-clock limit and was stopped "
            "(all its processes were killed). Make it faster or do less work per call."
        )
    raw = b"".join(outcome.result.parts)
    result: dict[str, Any] | None = None
    if raw and not outcome.result.truncated:
        try:
            parsed = json.loads(raw.decode("utf-8", "replace"))
            if isinstance(parsed, dict) and "exit" in parsed:
                result = parsed
        except (ValueError, RecursionError):  # the code may have forged a hostile "result"
            result = None
    if result is None:
        sig = _signal_of(mode, outcome.returncode)
        if sig == signal.SIGXCPU:
            raise CodeTimeout(f"The code exceeded its CPU-time limit ({limits.cpu_seconds} s) and was stopped.")
        if cgroups.oom_killed() or (sig == signal.SIGKILL):
            raise CodeMemoryLimit(
                f"The code was killed, most likely for exceeding its memory limit "
                f"({limits.memory_bytes // (1024 * 1024)} MB address space)."
            )
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            raise CodeCrashed(f"The code's process crashed ({name}).{_tail(stderr_text)}")
        if probing or (mode in ("bwrap", "unshare") and outcome.returncode not in (0, None)
                       and ("bwrap:" in stderr_text or "unshare:" in stderr_text or "mount:" in stderr_text)):
            raise SandboxUnavailable(
                f"the {mode} sandbox failed to start (exit {outcome.returncode}).{_tail(stderr_text)}"
            )
        raise CodeCrashed(
            f"The code's process ended (exit status {outcome.returncode}) without reporting a result "
            f"(os._exit, a closed result channel, or a crash).{_tail(stderr_text)}"
        )
    if result.get("memory_error"):
        raise CodeMemoryLimit(
            f"The code ran out of memory (MemoryError; the limit is {limits.memory_bytes // (1024 * 1024)} MB)."
        )
    value_truncated = bool(result.get("value_truncated"))
    return {
        "value": result.get("value"),
        "stdout": outcome.stdout.text("stdout"),
        "stderr": stderr_text,
        "exit": result.get("exit"),
        "error": result.get("error"),
        "truncated": outcome.stdout.truncated or outcome.stderr.truncated or value_truncated,
        "isolation": mode,
    }


def _tail(text: str, limit: int = 600) -> str:
    text = text.strip()
    if not text:
        return ""
    return " Last output on stderr: " + (text[-limit:] if len(text) > limit else text)


def run_code(
    code: str,
    *,
    precheck: bool = True,
    isolation: str | None = None,
    limits: Limits | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run a cell of Python code contained; the engine of the ``python`` tool.

    Args:
        code: the code; the value of a trailing expression is reported.
        precheck: run the AST pre-check first (``False`` only for tests that
            prove the sandbox holds on its own).
        isolation: force ``bwrap``, ``unshare`` or ``rlimits-only`` (an explicit
            ``rlimits-only`` counts as consent to weak isolation); default: the
            active mode (:func:`isolation_mode`).
        limits: resource limits (default :data:`DEFAULT_LIMITS`).
        timeout_s: shortcut to override ``limits.wall_timeout_s``.
        cancel: set it (from another thread) to stop the code at once; every
            process it started is killed before ``CodeCancelled`` is raised.

    Returns:
        ``{"value", "stdout", "stderr", "exit", "error", "truncated", "isolation"}``:
        ``error`` is ``None`` or ``"ExceptionType: message"`` of an exception the
        code raised (its traceback is in ``stderr``; ``exit`` is then 1, or the
        code of a SystemExit).

    Raises:
        CodeSyntaxError, CodeRefused: before anything ran.
        CodeTimeout, CodeMemoryLimit, CodeCrashed: limits hit or the process died.
        SandboxUnavailable: the requested isolation cannot run here.
    """
    limits = limits or DEFAULT_LIMITS
    if timeout_s is not None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        limits = Limits(**{**limits.__dict__, "wall_timeout_s": float(timeout_s)})
    if not isinstance(code, str):
        raise CodeRefused(f"the code must be a string, got {type(code).__name__}")
    if len(code) > MAX_CODE_CHARS:
        raise CodeRefused(f"the code is too long ({len(code)} characters; the limit is {MAX_CODE_CHARS})")
    if precheck:
        _precheck(code)
    explicit = isolation is not None
    mode = isolation if explicit else isolation_mode()
    if mode not in ISOLATION_MODES:
        raise ValueError(f"unknown isolation mode {mode!r}; expected one of {', '.join(ISOLATION_MODES)}")
    works, detail = _mode_works(mode)
    if not works:
        raise SandboxUnavailable(f"The python tool's {mode} sandbox is not available here: {detail}")
    allow_weak = tool_settings.current().allow_weak_sandbox
    weak = weaknesses(mode, consented=explicit)
    if weak and not allow_weak:
        advice = [_WEAK_ADVICE[mode]] if mode in WEAK_MODES and not explicit else []
        if limits_status(DEFAULT_LIMITS)[0] == "rlimits":
            advice.append(_CGROUP_ADVICE)
        raise SandboxUnavailable(
            f"The python tool is disabled: its sandbox here would be weak ({'; '.join(weak)}). "
            f"{' '.join(advice)} Set {ALLOW_WEAK_ENV_VAR}=1 to run code anyway."
        )
    return _run(mode, code, limits, cancel=cancel, require_cgroup=not allow_weak)


_CGROUP_ADVICE = (
    "Run as root on a cgroup v1 host, or give the app a delegated cgroup v2 subtree with the memory and pids "
    f"controllers (systemd: Delegate=yes; or name its directory in {CGROUP_ENV_VAR})."
)
_WEAK_ADVICE = {
    "rlimits-only": "Install bubblewrap, or run as root for the unshare fallback.",
    "bwrap-root": "Allow unprivileged user namespaces for bwrap (e.g. AppArmor's "
                  "kernel.apparmor_restrict_unprivileged_userns), or install util-linux for the unshare fallback.",
}


_CELL_LINE_RE = re.compile(r'File "<cell>", line (\d+)')
_DETAIL_CHARS = 4_000  # of each stream kept in a failed call's detail


def raise_if_failed(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` of :func:`run_code` when the code succeeded; :class:`CodeFailed` when it raised or exited non-zero.

    The error names the exception and the code's line (``"ZeroDivisionError: division by zero
    (line 3)"``) or the exit status; printed output and the traceback go to the error's detail.
    """
    status = result.get("exit")
    error = result.get("error")
    if not error and status in (0, None):
        return result
    stderr = str(result.get("stderr") or "")
    lines = _CELL_LINE_RE.findall(stderr)
    where = f"line {lines[-1]} of the code" if lines else ""
    if not error:
        error = f"the code exited with status {status}"
    elif status not in (0, 1, None):
        where = ", ".join(w for w in (where, f"exit status {status}") if w)
    message = f"{error} ({where})" if where else str(error)
    parts = []
    for stream in ("stdout", "stderr"):
        text = str(result.get(stream) or "")
        if text.strip():
            shown = text if len(text) <= _DETAIL_CHARS else "…" + text[-_DETAIL_CHARS:]
            parts.append(f"{stream}:\n{shown.rstrip()}")
    raise CodeFailed(message, detail="\n".join(parts) or None)


@tool(name="python", timeout_s=TOOL_TIMEOUT_S)
async def python(code: str) -> dict[str, Any]:
    """Run Python code in an isolated sandbox and return the value of the last expression and the printed output.
    Like a notebook cell: a trailing expression's value is returned (as JSON when it is plain data,
    else its repr). Standard library only; no network, no access to host files or environment; an empty
    writable working directory; limits: 10 s wall clock, 512 MB memory, 64 KB of output per stream.
    Importing os/sys/subprocess/socket/ctypes and special (dunder) attributes are refused.

    Args:
        code: The Python code to run (at most 100,000 characters).

    Returns:
        {"value", "stdout", "stderr", "exit", "error", "truncated", "isolation"}; code that raises
        or exits with a non-zero status is a failed call instead (the exception is the error).
    """
    # The blocking runner works in a thread; a cancelled call (run cancelled, or the tool's timeout)
    # tells it to stop and waits until the child and everything it started are gone.
    cancel = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(run_code, code, cancel=cancel))
    try:
        return raise_if_failed(await asyncio.shield(work))
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.wait([work], timeout=5.0)
        if work.done() and not work.cancelled():
            work.exception()  # retrieved: it is CodeCancelled or a late result, both dropped
        raise
