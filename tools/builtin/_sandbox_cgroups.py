"""Per-call cgroups of the ``python`` tool: a memory and a process limit for everything one call starts.

Why this module exists: rlimits are per process (RLIMIT_AS) or per user
(RLIMIT_NPROC), so without a cgroup a cell could fork 64 children of 512 MB
each, and a sandbox whose uid is not a dedicated one has no process bound at
all. A cgroup made for the call bounds the memory (tmpfs pages included) and
the number of processes of the whole call, and at the end kills whatever the
call left behind, however it daemonised.

Two hierarchies:

``cgroup-v2`` (preferred; the default on current Debian, Ubuntu, Fedora)
    per call a child ``ws-python-<id>`` of a *delegated* directory -- the one
    named by ``PYTHON_TOOL_CGROUP``, else the app's own cgroup -- whose
    ``cgroup.controllers`` offers ``memory`` and ``pids``; the tool enables them
    in its ``cgroup.subtree_control`` (when the directory holds processes
    itself, the "no internal processes" rule makes that fail with EBUSY: the
    processes in it are then moved once into a leaf ``ws-python-host``, as a
    container's init does). Per call: ``memory.max``, ``memory.swap.max`` 0,
    ``pids.max``; the end kills everything with ``cgroup.kill`` (kernel 5.14+;
    older kernels: ``pids.max`` 0, then SIGKILL to each member until empty).
``cgroup-v1``
    the app's own cgroup in the ``pids`` and ``memory`` hierarchies under
    /sys/fs/cgroup (``pids.max``, ``memory.limit_in_bytes``, optionally
    ``memory.memsw.limit_in_bytes``); the end sets ``pids.max`` to 0 and
    SIGKILLs each member until none is left.
``rlimits``
    neither could be made: only the per-process rlimits apply, there is no
    per-call memory or process limit, and the tool refuses to run unless weak
    isolation is opted into (see python_exec).

The child joins the cgroups in ``preexec_fn`` (a write of its pid to the
``cgroup.procs`` descriptors opened here), before it executes anything.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol

from tools import config as tool_settings

logger = logging.getLogger(__name__)

CGROUP_ENV_VAR = "PYTHON_TOOL_CGROUP"
"""A delegated cgroup v2 directory under which per-call cgroups are made (default: the app's own cgroup)."""

CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
V2_CONTROLLERS = ("memory", "pids")
HOST_LEAF = "ws-python-host"
LIMITS_KINDS = ("cgroup-v2", "cgroup-v1", "rlimits")
"""What bounds one call's memory and processes: strongest first; ``rlimits`` means no per-call bound."""


class CallLimits(Protocol):
    """What a call's cgroups are sized from (read-only: python_exec's frozen ``Limits`` is one)."""

    @property
    def memory_bytes(self) -> int: ...

    @property
    def max_processes(self) -> int: ...

    @property
    def tmpfs_bytes(self) -> int: ...


def memory_budget(limits: CallLimits) -> int:
    """Memory of one call: the address-space limit, both tmpfs (their pages are charged) and headroom."""
    return limits.memory_bytes + 2 * limits.tmpfs_bytes + 64 * 1024 * 1024


# The kernel creates a cgroup's interface files on mkdir and removes them on rmdir; the tests that
# exercise the v2 code path against a plain directory mimicking cgroupfs replace these two.
def cgroup_mkdir(path: Path) -> None:
    path.mkdir()


def cgroup_rmdir(path: Path) -> None:
    path.rmdir()


def _write(path: Path, text: str) -> None:
    """Write a cgroup interface file; never creates it (a missing file means a missing controller)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller, and its v2 path under the key ``""``."""
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0" and not controllers:
                out[""] = path
            for controller in controllers.split(","):
                if controller:
                    out[controller] = path
    except (OSError, ValueError):
        pass
    return out


def v2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right.split(" ", 1)[0] == "cgroup2" and len(fields) > 4:
            return Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return None


def v2_parent() -> tuple[Path | None, str]:
    """(the directory per-call v2 cgroups are made in, or None and why there is none)."""
    configured = tool_settings.current().cgroup
    if configured:
        return Path(configured), ""
    mount = v2_mount()
    if mount is None:
        return None, "no cgroup v2 hierarchy is mounted"
    own = own_cgroups().get("")
    if own is None or own.startswith("/.."):
        return None, "this process's cgroup v2 path is unknown"
    return mount / own.lstrip("/"), ""


_prepared: dict[str, str] = {}
_prepare_lock = threading.Lock()


def prepare_v2(parent: Path) -> str:
    """Make ``parent`` able to hold per-call cgroups with memory and pids: ``""`` when it can, else why not."""
    key = str(parent)
    with _prepare_lock:
        if key not in _prepared or _prepared[key]:  # a failure is retried (the operator may fix it meanwhile)
            _prepared[key] = _enable_controllers(parent)
        return _prepared[key]


def _enable_controllers(parent: Path) -> str:
    try:
        available = (parent / "cgroup.controllers").read_text().split()
        enabled = (parent / "cgroup.subtree_control").read_text().split()
    except OSError as exc:
        return f"{parent} is not a usable cgroup v2 directory ({_reason(exc)})"
    missing = [c for c in V2_CONTROLLERS if c not in available]
    if missing:
        return (f"the {' and '.join(missing)} controller{'s are' if len(missing) > 1 else ' is'} not delegated to "
                f"{parent} (its cgroup.controllers: {' '.join(available) or 'none'})")
    todo = " ".join(f"+{c}" for c in V2_CONTROLLERS if c not in enabled)
    if not todo:
        return ""
    try:
        _write(parent / "cgroup.subtree_control", todo)
        return ""
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return f"cannot enable {todo} in {parent}/cgroup.subtree_control ({_reason(exc)})"
    # EBUSY: a non-root cgroup with processes of its own cannot give controllers to its children.
    leaf = parent / HOST_LEAF
    try:
        if not leaf.is_dir():
            cgroup_mkdir(leaf)
        for pid in (parent / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                _write(leaf / "cgroup.procs", pid)
        _write(parent / "cgroup.subtree_control", todo)
    except OSError as exc:
        return f"cannot enable {todo} in {parent} after moving its processes to {leaf} ({_reason(exc)})"
    logger.info("python tool: moved the processes of %s into %s to delegate memory and pids", parent, leaf)
    return ""


def v2_populated(path: Path) -> bool:
    """Whether a v2 cgroup (or a descendant) still has a process, from its cgroup.events."""
    try:
        match = re.search(r"^populated (\d)", (path / "cgroup.events").read_text(), re.M)
    except OSError:
        return True
    return bool(match and match.group(1) != "0")


def kill_v2(path: Path, deadline: float) -> bool:
    """SIGKILL every process of a v2 cgroup at once via cgroup.kill and wait until it is empty.

    Returns False when the kernel has no cgroup.kill (before 5.14): the caller kills member by member.
    """
    try:
        _write(path / "cgroup.kill", "1")  # atomic: a process forked while the kill runs is killed too
    except OSError:
        return False
    while v2_populated(path) and time.monotonic() < deadline:
        time.sleep(0.002)
    return True


class CallCgroups:
    """The cgroup(s) of one call: v2 when a delegated subtree is available, else v1, else none (``rlimits``)."""

    def __init__(self, limits: CallLimits):
        self.dirs: list[Path] = []
        self.proc_fds: list[int] = []
        self.v2_dir: Path | None = None
        self.pids_dir: Path | None = None  # v1
        self.memory_dir: Path | None = None  # v1
        self.why = ""  # when kind == "rlimits": why no cgroup could be made
        name = f"ws-python-{uuid.uuid4().hex[:12]}"
        self.why_not_v2 = self._make_v2(limits, name)
        if self.v2_dir is not None:
            return
        why_v1 = self._make_v1(limits, name)
        if self.kind == "rlimits":
            self.why = f"cgroup v2: {self.why_not_v2}; cgroup v1: {why_v1}"

    @property
    def kind(self) -> str:
        if self.v2_dir is not None:
            return "cgroup-v2"
        if self.pids_dir is not None and self.memory_dir is not None:
            return "cgroup-v1"
        return "rlimits"

    @property
    def bounds_processes(self) -> bool:
        """Whether a per-call pids limit is in place (then RLIMIT_NPROC need not do the per-call bound)."""
        return self.v2_dir is not None or self.pids_dir is not None

    # -------------------------------------------------------------- making

    def _make_v2(self, limits: CallLimits, name: str) -> str:
        parent, why = v2_parent()
        if parent is None:
            return why
        why = prepare_v2(parent)
        if why:
            return why
        path = parent / name
        try:
            cgroup_mkdir(path)
        except OSError as exc:
            return f"cannot create {path} ({_reason(exc)})"
        try:
            _write(path / "memory.max", str(memory_budget(limits)))
            _write(path / "pids.max", str(limits.max_processes))
            with contextlib.suppress(FileNotFoundError):
                _write(path / "memory.swap.max", "0")  # absent without swap accounting: then there is no swap
            fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._remove(path)
            return f"cannot set the limits of {path} ({_reason(exc)})"
        self.v2_dir = path
        self.dirs.append(path)
        self.proc_fds.append(fd)
        return ""

    def _make_v1(self, limits: CallLimits, name: str) -> str:
        own = own_cgroups()
        whys: list[str] = []
        self.pids_dir = self._make_v1_one("pids", own.get("pids"), name,
                                          {"pids.max": str(limits.max_processes)}, whys)
        budget = str(memory_budget(limits))
        self.memory_dir = self._make_v1_one(
            "memory", own.get("memory"), name,
            {"memory.limit_in_bytes": budget, "memory.memsw.limit_in_bytes?": budget}, whys,
        )
        return "; ".join(whys) or ""

    def _make_v1_one(self, controller: str, own_path: str | None, name: str, settings: dict[str, str],
                     whys: list[str]) -> Path | None:
        if own_path is None:
            whys.append(f"no {controller} hierarchy")
            return None
        base = CGROUP_V1_ROOT / controller / own_path.lstrip("/")
        if not (base / "cgroup.procs").exists():
            whys.append(f"{base} is not a cgroup")
            return None
        path = base / name
        try:
            cgroup_mkdir(path)
        except OSError as exc:
            whys.append(f"cannot create {path} ({_reason(exc)})")
            return None
        try:
            for key, value in settings.items():
                try:
                    _write(path / key.rstrip("?"), value)
                except OSError:
                    if not key.endswith("?"):
                        raise
            fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._remove(path)
            whys.append(f"cannot set the limits of {path} ({_reason(exc)})")
            return None
        self.dirs.append(path)
        self.proc_fds.append(fd)
        return path

    # ------------------------------------------------------------ using

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the call for exceeding the call's memory."""
        if self.v2_dir is not None:
            path, pattern = self.v2_dir / "memory.events", r"^oom_kill (\d+)"
        elif self.memory_dir is not None:
            path, pattern = self.memory_dir / "memory.oom_control", r"^oom_kill (\d+)"
        else:
            return False
        try:
            match = re.search(pattern, path.read_text(), re.M)
        except OSError:
            return False
        return bool(match and int(match.group(1)) > 0)

    def members(self) -> list[int]:
        pids: set[int] = set()
        for path in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return sorted(pids)

    def kill_all(self) -> list[int]:
        """Kill every member until none is left; returns the pids that had to be killed one by one."""
        deadline = time.monotonic() + 5.0
        if self.v2_dir is not None and kill_v2(self.v2_dir, deadline):
            return []
        for limiter in (self.v2_dir, self.pids_dir):
            if limiter is not None:
                with contextlib.suppress(OSError):
                    _write(limiter / "pids.max", "0")  # no new process from now on
        killed: list[int] = []
        while time.monotonic() < deadline:
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        return killed

    def close(self) -> None:
        for fd in self.proc_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc_fds = []
        for path in self.dirs:
            self._remove(path, retries=100)
        self.dirs = []

    @staticmethod
    def _remove(path: Path, retries: int = 1) -> None:
        for attempt in range(retries):
            try:
                cgroup_rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if attempt + 1 < retries:
                    time.sleep(0.01)
        logger.warning("python tool: could not remove cgroup %s", path)


_status_lock = threading.Lock()
_status: dict[str, tuple[str, str]] = {}


def limits_status(limits: CallLimits, refresh: bool = False) -> tuple[str, str]:
    """(kind, detail) of the per-call limits this machine gives, found once by making and removing a cgroup set."""
    key = tool_settings.current().cgroup or ""
    with _status_lock:
        if refresh or key not in _status:
            groups = CallCgroups(limits)
            try:
                kind = groups.kind
                if kind == "cgroup-v2":
                    detail = f"cgroup v2 under {groups.v2_dir.parent if groups.v2_dir else '?'}: memory.max, pids.max"
                elif kind == "cgroup-v1":
                    detail = f"cgroup v1: memory.limit_in_bytes, pids.max; not v2: {groups.why_not_v2}"
                else:
                    detail = groups.why
            finally:
                groups.close()
            _status[key] = (kind, detail)
        return _status[key]

