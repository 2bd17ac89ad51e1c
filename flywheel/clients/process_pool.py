"""A process pool whose processes never outlive the process that started them.

A worker that is killed (SIGKILL, an OOM kill, ``os._exit``) cannot shut its pool down, and
pool processes blocked on their task queue would wait forever. Each pool process watches its
parent and exits once the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_CHECK_S = 1.0


def process_pool(size: int) -> ProcessPoolExecutor:
    """``size`` spawned processes (not forked: the caller runs threads) that die with us."""
    return ProcessPoolExecutor(
        size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )


def _exit_with_parent(parent_pid: int) -> None:
    """In a pool process: exit as soon as ``parent_pid`` is no longer our parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
