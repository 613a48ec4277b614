"""Per-call cgroup limits of the ``python`` tool (tools/builtin/_sandbox_cgroups.py) and its weak modes.

What is real and what is mimicked -- this machine decides:

* cgroup v1: end to end for real wherever /sys/fs/cgroup/{memory,pids} are
  writable (here: a hybrid host, root): children that together allocate past
  the call's memory are killed, forks past ``pids.max`` are refused.
* cgroup v2 with memory and pids: end to end for real when a delegated v2
  subtree offers both controllers (``test_v2_real_limits``); it is SKIPPED
  visibly otherwise (here the two controllers are bound to the v1 hierarchies,
  so the unified hierarchy cannot have them).
* cgroup v2 mechanics the machine does have for real (a cgroup2 mount at
  /sys/fs/cgroup/unified, or /sys/fs/cgroup): ``cgroup.procs`` and
  ``cgroup.kill`` kill a daemonised process tree (``test_v2_real_cgroup_kill``).
* the v2 code path itself (enabling controllers, ``memory.max``,
  ``memory.swap.max``, ``pids.max``, joining ``cgroup.procs``, ``cgroup.kill``,
  ``memory.events``, rmdir) runs against a plain temporary DIRECTORY THAT
  MIMICS cgroupfs: the test plays the kernel's part (interface files appear on
  mkdir, rmdir removes them). It proves what the code writes, not what the
  kernel enforces.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.procs import descends_from
from tools.builtin import _sandbox_cgroups as cg
from tools.builtin import python_exec as pe
from tools.builtin.python_exec import run_code
from tools.errors import SandboxUnavailable

# ------------------------------------------------------------------- helpers


class MimicV2:
    """A directory that looks like a cgroup v2 directory; the test does the kernel's part."""

    def __init__(self, root: Path, controllers: str, subtree: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cgroup.subtree_control").write_text(subtree + "\n")
        (root / "cgroup.procs").write_text("")
        self.made: list[Path] = []
        self.removed: list[Path] = []
        self.snapshots: dict[str, dict[str, str]] = {}

    def owns(self, path: Path) -> bool:
        return path.is_relative_to(self.root)

    def mkdir(self, path: Path) -> None:
        path.mkdir()
        enabled = (path.parent / "cgroup.subtree_control").read_text().split()
        files = {"cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
                 "cgroup.controllers": " ".join(c.lstrip("+") for c in enabled), "cgroup.subtree_control": ""}
        if "+memory" in enabled or "memory" in enabled:
            files |= {"memory.max": "max", "memory.swap.max": "max", "memory.events": "oom 0\noom_kill 0\n"}
        if "+pids" in enabled or "pids" in enabled:
            files |= {"pids.max": "max"}
        for name, text in files.items():
            (path / name).write_text(text)
        self.made.append(path)

    def rmdir(self, path: Path) -> None:
        self.snapshots[path.name] = {p.name: p.read_text() for p in path.iterdir() if p.is_file()}
        shutil.rmtree(path)
        self.removed.append(path)


@pytest.fixture
def fresh_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what was probed: each test decides the machine it emulates."""
    monkeypatch.setattr(pe, "_probed", {})
    monkeypatch.setattr(cg, "_status", {})
    monkeypatch.setattr(cg, "_prepared", {})
    monkeypatch.delenv(pe.ALLOW_WEAK_ENV_VAR, raising=False)
    monkeypatch.delenv(pe.ISOLATION_ENV_VAR, raising=False)


def _mimic(monkeypatch: pytest.MonkeyPatch, root: Path, controllers: str, subtree: str = "",
           v1: bool = True) -> MimicV2:
    mimic = MimicV2(root, controllers, subtree)
    real_mkdir, real_rmdir = cg.cgroup_mkdir, cg.cgroup_rmdir
    monkeypatch.setattr(cg, "cgroup_mkdir", lambda p: mimic.mkdir(p) if mimic.owns(p) else real_mkdir(p))
    monkeypatch.setattr(cg, "cgroup_rmdir", lambda p: mimic.rmdir(p) if mimic.owns(p) else real_rmdir(p))
    monkeypatch.setenv(cg.CGROUP_ENV_VAR, str(root))
    if not v1:  # a pure v2 host: no v1 hierarchy at all
        empty = root.parent / "no-v1"
        empty.mkdir(exist_ok=True)
        monkeypatch.setattr(cg, "CGROUP_V1_ROOT", empty)
    return mimic


def _v1_works() -> bool:
    groups = cg.CallCgroups(pe.DEFAULT_LIMITS)
    try:
        return groups.kind == "cgroup-v1" or (groups.pids_dir is not None and groups.memory_dir is not None)
    finally:
        groups.close()


def _real_v2_parent() -> tuple[Path | None, str]:
    parent, why = cg.v2_parent()
    if parent is None:
        return None, why
    why = cg.prepare_v2(parent)
    return (None, why) if why else (parent, "")


# ------------------------------------------------------- v2 code path (mimic)


@dataclass(frozen=True)
class V2Case:
    id: str
    controllers: str
    subtree: str
    v1: bool  # whether the real v1 hierarchies may be used as the fallback
    kind: str  # expected kind of the call's limits
    refused: bool = False


V2_CASES = [
    V2Case("v2-delegated-enables-controllers", "cpuset cpu io memory hugetlb pids", "", True, "cgroup-v2"),
    V2Case("v2-already-enabled", "cpu io memory pids", "memory pids", True, "cgroup-v2"),
    V2Case("v2-without-controllers-falls-back-to-v1", "cpu io hugetlb", "", True, "cgroup-v1"),
    V2Case("neither-v2-controllers-nor-v1-refuses", "cpu io", "", False, "rlimits", refused=True),
    V2Case("v2-only-pids-nor-v1-refuses", "cpu pids", "", False, "rlimits", refused=True),
]


@pytest.mark.parametrize("case", V2_CASES, ids=[c.id for c in V2_CASES])
def test_v2_code_path_against_mimic(case: V2Case, fresh_probes: None, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not pe._is_root():
        pytest.skip("the tool's sandbox tests run as root here")
    if case.kind == "cgroup-v1" and not _v1_works():
        pytest.skip("cgroup v1 memory+pids are not writable on this machine")
    mimic = _mimic(monkeypatch, tmp_path / "delegated", case.controllers, case.subtree, v1=case.v1)
    kind, detail = cg.limits_status(pe.DEFAULT_LIMITS)
    assert kind == case.kind, detail
    if case.refused:
        assert "not delegated" in detail and "memory" in detail
        assert pe.weaknesses("bwrap") and "no per-call memory or process limit" in pe.isolation_detail("bwrap")
        with pytest.raises(SandboxUnavailable) as info:
            run_code("1 + 1", isolation="bwrap")
        message = str(info.value)
        assert "\n" not in message and pe.ALLOW_WEAK_ENV_VAR in message and pe.CGROUP_ENV_VAR in message
        monkeypatch.setenv(pe.ALLOW_WEAK_ENV_VAR, "1")  # the opt-in: runs with per-process rlimits only
        result = run_code("1 + 1", isolation="bwrap")
        assert result["value"] == 2 and result["limits"] == "rlimits"
        return
    result = run_code("sum(range(10))", isolation="bwrap")
    assert result["value"] == 45 and result["limits"] == case.kind
    if case.kind != "cgroup-v2":
        assert "not delegated" in detail  # why v2 was not used is said
        return
    assert (mimic.root / "cgroup.subtree_control").read_text().split() in (["+memory", "+pids"], ["memory", "pids"])
    calls = [p for p in mimic.made if p.name.startswith("ws-python-")]
    assert calls and mimic.removed == calls  # the probes' and the call's: every one removed
    seen = mimic.snapshots[calls[-1].name]
    assert seen["memory.max"] == str(cg.memory_budget(pe.DEFAULT_LIMITS))
    assert seen["pids.max"] == str(pe.DEFAULT_LIMITS.max_processes)
    assert seen["memory.swap.max"] == "0"
    assert seen["cgroup.procs"].strip().isdigit()  # the child joined before it ran anything
    assert seen["cgroup.kill"] == "1"  # everything the call left was killed at once


def test_v2_oom_is_reported_from_memory_events(fresh_probes: None, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mimic = _mimic(monkeypatch, tmp_path / "delegated", "memory pids")
    groups = cg.CallCgroups(pe.DEFAULT_LIMITS)
    try:
        assert groups.kind == "cgroup-v2" and groups.v2_dir is not None
        assert not groups.oom_killed()
        (groups.v2_dir / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
        assert groups.oom_killed()
    finally:
        groups.close()
    assert mimic.removed


def test_v2_internal_processes_are_moved_to_a_leaf(fresh_probes: None, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """EBUSY on subtree_control (the parent holds processes): they move to ws-python-host, then it is enabled."""
    mimic = _mimic(monkeypatch, tmp_path / "delegated", "memory pids")
    (mimic.root / "cgroup.procs").write_text("4242\n")
    real_write = cg._write
    attempts = []

    def kernel_write(path: Path, text: str) -> None:
        if path == mimic.root / "cgroup.subtree_control":
            attempts.append(text)
            if (mimic.root / "cgroup.procs").read_text().strip():  # the kernel's "no internal processes" rule
                raise OSError(16, "Device or resource busy")
        if path == mimic.root / cg.HOST_LEAF / "cgroup.procs":
            (mimic.root / "cgroup.procs").write_text("")  # the process left the parent
        real_write(path, text)

    monkeypatch.setattr(cg, "_write", kernel_write)
    assert cg.prepare_v2(mimic.root) == ""
    assert attempts == ["+memory +pids", "+memory +pids"]
    assert (mimic.root / cg.HOST_LEAF / "cgroup.procs").read_text() == "4242"


# --------------------------------------------------------- real hierarchies


def test_this_machine_has_per_call_limits() -> None:
    """Report, for the record, what this machine gives; the tool's default runs refuse without it."""
    kind, detail = cg.limits_status(pe.DEFAULT_LIMITS)
    print(f"per-call limits here: {kind} ({detail})")
    assert kind in cg.LIMITS_KINDS
    if kind == "rlimits":
        with pytest.raises(SandboxUnavailable, match=pe.ALLOW_WEAK_ENV_VAR):
            run_code("1")


def _weak_rlimits_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This machine as one with no usable cgroup, the weak mode opted into: RLIMIT_NPROC is the bound."""
    _mimic(monkeypatch, tmp_path / "delegated", "cpu io", v1=False)
    monkeypatch.setenv(pe.ALLOW_WEAK_ENV_VAR, "1")
    assert cg.limits_status(pe.DEFAULT_LIMITS)[0] == "rlimits"


def test_other_sandboxes_processes_do_not_stop_a_call_from_starting(fresh_probes: None, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """RLIMIT_NPROC counts every process of uid 65534 on the machine: another server's sandboxes (two test
    runs at once did it) left no slot, and ``execve`` of the sandbox failed with EAGAIN. A call may start
    ``max_processes`` more than the uid already runs, and still no more than that."""
    if not pe._is_root() or "bwrap" not in pe.available_isolation_modes():
        pytest.skip("needs root and bubblewrap")
    _weak_rlimits_only(monkeypatch, tmp_path)
    others = [subprocess.Popen(["sleep", "60"], user=pe.SANDBOX_UID, group=pe.SANDBOX_GID)
              for _ in range(pe.DEFAULT_LIMITS.max_processes + 8)]
    try:
        assert run_code("1 + 1", isolation="bwrap")["value"] == 2
        foreign = pe._tasks_of_uid(pe.SANDBOX_UID) - len(others)  # another server's sandboxes (a second test run)
        forks = run_code(_FORKER, precheck=False, isolation="bwrap", timeout_s=15)["value"]
        # 64 more than the uid ran at the start: more only by as many of those foreign processes as ended meanwhile
        assert forks < pe.DEFAULT_LIMITS.max_processes + max(foreign, 0), (forks, foreign)
        if foreign == 0:
            assert forks > 0
    finally:
        for proc in others:
            proc.kill()
            proc.wait()


class _RefusedStarts:
    """``subprocess.Popen`` for python_exec whose first ``times`` starts fail as the kernel's EAGAIN."""

    def __init__(self, times: int):
        self.left, self.calls = times, 0
        self.popen = subprocess.Popen

    def __call__(self, *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return self.popen(*args, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.mark.parametrize("refusals, started", [(1, True), (pe.START_ATTEMPTS - 1, True), (99, False)],
                         ids=["once", "all-but-the-last-attempt", "always"])
def test_a_start_refused_with_eagain_is_tried_again(refusals: int, started: bool, fresh_probes: None,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "rlimits-only" not in pe.available_isolation_modes():
        pytest.skip(pe.isolation_detail("rlimits-only"))
    _weak_rlimits_only(monkeypatch, tmp_path)
    starts = _RefusedStarts(refusals)
    monkeypatch.setattr(pe.subprocess, "Popen", starts)
    if started:
        assert run_code("6 * 7", isolation="rlimits-only")["value"] == 42
        assert starts.calls == refusals + 1
        return
    with pytest.raises(SandboxUnavailable) as info:
        run_code("6 * 7", isolation="rlimits-only")
    assert starts.calls == pe.START_ATTEMPTS
    assert "\n" not in str(info.value) and "Resource temporarily unavailable" in str(info.value)


_MEMORY_HOG = (  # 8 children x 450 MB: each is under RLIMIT_AS (512 MB), together far over the call's memory
    "import os, time\nkids = []\nfor i in range(8):\n    pid = os.fork()\n    if pid == 0:\n"
    "        try:\n            x = b'x' * (450 * 1024**2)\n            time.sleep(1.5)\n"
    "        finally:\n            os._exit(0)\n    kids.append(pid)\n"
    "[os.waitpid(k, 0)[1] for k in kids]"
)
_FORKER = (  # 400 forks: only max_processes may exist at once
    "import os, time\nn = 0\nfor i in range(400):\n    try:\n        pid = os.fork()\n"
    "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\nn"
)


def _assert_limits_hold(mode: str) -> None:
    statuses = run_code(_MEMORY_HOG, precheck=False, isolation=mode, timeout_s=15)["value"]
    assert len(statuses) == 8 and statuses.count(signal.SIGKILL) >= 1, statuses  # the cgroup's OOM killer
    forks = run_code(_FORKER, precheck=False, isolation=mode, timeout_s=15)["value"]
    assert 0 < forks < pe.DEFAULT_LIMITS.max_processes, forks


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "rlimits-only"])
def test_v1_real_limits(mode: str) -> None:
    if cg.limits_status(pe.DEFAULT_LIMITS)[0] != "cgroup-v1":
        pytest.skip(f"this machine's per-call limits are not cgroup v1: {cg.limits_status(pe.DEFAULT_LIMITS)}")
    if mode not in pe.available_isolation_modes():
        pytest.skip(pe.isolation_detail(mode))
    _assert_limits_hold(mode)


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "rlimits-only"])
def test_v2_real_limits(mode: str) -> None:
    parent, why = _real_v2_parent()
    if parent is None:
        pytest.skip(f"no delegated cgroup v2 subtree with memory and pids here: {why}")
    if mode not in pe.available_isolation_modes():
        pytest.skip(pe.isolation_detail(mode))
    assert cg.limits_status(pe.DEFAULT_LIMITS)[0] == "cgroup-v2"
    _assert_limits_hold(mode)


@pytest.fixture
def real_v2_dir() -> Iterator[Path]:
    mount = cg.v2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy is mounted here")
    path = mount / f"ws-python-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {mount}: {exc}")
    if not (path / "cgroup.kill").exists():
        path.rmdir()
        pytest.skip("this kernel has no cgroup.kill (before 5.14)")
    yield path
    for _ in range(200):
        try:
            path.rmdir()
            break
        except OSError:
            time.sleep(0.01)


def test_v2_real_cgroup_kill(real_v2_dir: Path) -> None:
    """A process tree that daemonised itself (double fork + setsid) dies at once via cgroup.kill."""
    script = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(600)\n"
    fd = os.open(real_v2_dir / "cgroup.procs", os.O_WRONLY)
    proc = subprocess.Popen(["/usr/bin/python3", "-c", script],  # noqa: PLW1509
                            preexec_fn=lambda: os.write(fd, str(os.getpid()).encode()) and None)
    os.close(fd)
    try:
        deadline = time.monotonic() + 5
        while len((real_v2_dir / "cgroup.procs").read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        members = [int(p) for p in (real_v2_dir / "cgroup.procs").read_text().split()]
        assert len(members) == 2 and cg.v2_populated(real_v2_dir)
        started = time.monotonic()
        assert cg.kill_v2(real_v2_dir, time.monotonic() + 5)
        assert time.monotonic() - started < 1.0
        assert not cg.v2_populated(real_v2_dir) and (real_v2_dir / "cgroup.procs").read_text() == ""
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------ never silently as root


@pytest.fixture
def apparmor_like_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ``bwrap`` first on PATH that, like AppArmor's user-namespace restriction, refuses any uid but root."""
    if not pe._is_root() or not shutil.which("bwrap"):
        pytest.skip("needs root and bubblewrap")
    real = shutil.which("bwrap")
    folder = tempfile.mkdtemp(prefix="ws-fake-apparmor-")
    os.chmod(folder, 0o755)
    wrapper = Path(folder) / "bwrap"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$(id -u)" != 0 ]; then echo "bwrap: setting up uid map: Permission denied" >&2; exit 1; fi\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    yield
    shutil.rmtree(folder, ignore_errors=True)


def _host_uids_of_cell(**kwargs: object) -> set[int]:
    """The host's real uid of the interpreter running a cell, read from the host's /proc while it runs.

    (Inside, /proc/self/uid_map cannot tell: bwrap nests a second user namespace for --disable-userns.)
    """
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(run_code("import time\ntime.sleep(3)", **kwargs)))
    worker.start()
    uids: set[int] = set()
    deadline = time.monotonic() + 20  # a loaded host may take seconds to start the cell
    while not uids and time.monotonic() < deadline and worker.is_alive():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if not (entry / "cmdline").read_bytes().startswith(b"/usr/bin/python3\0-I\0-B\0-c\0"):
                    continue
                if not descends_from(int(entry.name), os.getpid()):
                    continue
                status = (entry / "status").read_text()
            except OSError:
                continue
            uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
        time.sleep(0.05)
    worker.join(10)
    assert done and done[0]["value"] is None, done  # type: ignore[index]
    return uids



def test_bwrap_never_silently_runs_as_root(fresh_probes: None, apparmor_like_bwrap: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    works, detail = pe._mode_works("bwrap")
    assert not works and "Permission denied" in detail  # bwrap as uid 65534 is refused: not "bwrap" as root
    assert pe._mode_works("bwrap-root")[0]
    assert "WEAK" in pe.isolation_detail("bwrap-root") and "host's root" in pe.isolation_detail("bwrap-root")
    if pe._mode_works("unshare")[0]:
        assert pe.isolation_mode() == "unshare"  # the strong fallback comes before the weak one
    real_which = shutil.which
    monkeypatch.setattr(pe.shutil, "which",
                        lambda name, *a, **k: None if name == "unshare" else real_which(name, *a, **k))
    monkeypatch.setattr(pe, "_probed", {})
    assert pe.isolation_mode() == "bwrap-root"
    with pytest.raises(SandboxUnavailable) as info:
        run_code("1 + 1")
    message = str(info.value)
    assert "host's root" in message and pe.ALLOW_WEAK_ENV_VAR in message and "\n" not in message
    monkeypatch.setenv(pe.ALLOW_WEAK_ENV_VAR, "1")
    assert run_code("1 + 1")["isolation"] == "bwrap-root"
    assert _host_uids_of_cell() == {0}  # why it is weak: the cell runs as the host's root


@pytest.mark.parametrize("mode", ["bwrap", "unshare"])
def test_strong_modes_are_not_host_root(mode: str) -> None:
    if mode not in pe.available_isolation_modes():
        pytest.skip(pe.isolation_detail(mode))
    assert _host_uids_of_cell(isolation=mode) == {pe.SANDBOX_UID}
