"""The garbage collector's thresholds for a process that runs many tasks at once.

A fan-out of thousands of branches allocates tens of thousands of short-lived
container objects (tasks, timers, events, node contexts). With CPython's
default thresholds (700, 10, 10) that triggers hundreds of young collections
and, as the heap grows, full collections that walk every object the process
holds: measured on a 5,000-branch fan-out, garbage collection took 1.9-2.6 s of
a 3.3-4.5 s run (bench/scale_bench.py). A first generation of 10,000 objects
keeps the same collector (cycles are still found) and removes almost all of it.

Applied once per process by :class:`engine.runtime.Runtime` and
:func:`engine.run_workflow`; thresholds a program has set itself (anything but
CPython's defaults) are left as they are.
"""

from __future__ import annotations

import gc
import threading

DEFAULT_THRESHOLDS = (700, 10, 10)  # CPython's own
MANY_TASKS_THRESHOLDS = (10_000, 10, 10)

_lock = threading.Lock()
_applied = False


def tune_for_many_tasks() -> None:
    """Raise the first generation's threshold to 10,000, unless the program chose its own thresholds."""
    global _applied
    with _lock:
        if _applied:
            return
        _applied = True
        if gc.get_threshold() == DEFAULT_THRESHOLDS:
            gc.set_threshold(*MANY_TASKS_THRESHOLDS)
