"""While a window is open, only the GUI thread collects cyclic garbage (a worker collecting a cycle that holds
Qt objects deadlocks against the GUI thread; the suite once froze that way mid-run)."""

from __future__ import annotations

import gc
import threading

from tests.gui.test_main_window import open_window
from unlearn_studio.gui.workers import Job


class Cycle:
    """Garbage only the cyclic collector frees; it records whether the GUI thread freed it."""

    def __init__(self, freed_in_gui_thread: list[bool]) -> None:
        self.itself = self
        self.freed_in_gui_thread = freed_in_gui_thread

    def __del__(self) -> None:
        self.freed_in_gui_thread.append(threading.current_thread() is threading.main_thread())


def test_a_worker_never_collects_garbage_while_the_window_is_open(qtbot, isolated_data_dir):
    win = open_window(qtbot)
    assert not gc.isenabled()
    freed_in_gui_thread: list[bool] = []

    def make_garbage_then_allocate(job: Job) -> list[bool]:
        Cycle(freed_in_gui_thread)
        many_cycles = [[] for _ in range(100_000)]  # far past the collector's thresholds: it would run here
        for cell in many_cycles:
            cell.append(cell)
        return list(freed_in_gui_thread)

    job = Job("allocate", make_garbage_then_allocate)
    with qtbot.waitSignal(job.sig_result, timeout=60_000) as blocker:
        win.model.jobs.start(job)
    assert blocker.args[0] == []  # the worker's allocations collected nothing
    qtbot.waitUntil(lambda: len(freed_in_gui_thread) > 0, timeout=20_000)
    assert freed_in_gui_thread == [True]  # the GUI thread's timer did
    win.close()
    assert gc.isenabled()  # the last window gives automatic collection back
