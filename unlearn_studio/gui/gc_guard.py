"""Python's cyclic garbage is collected in the GUI thread only, while a window is open.

The cyclic collector runs in whichever thread happens to allocate. When a worker thread collects a cycle
that holds Qt objects (a closed window's menus, a dialog), their C++ destructors run in that thread: Qt locks
an object mutex and PySide then waits for the GIL, which the GUI thread holds while it waits for the same
mutex. Both stop for good, with no CPU use (seen: the test suite froze mid-run). pyqtgraph's
``GarbageCollector`` turns automatic collection off and collects on a timer in the GUI thread instead;
this module starts it with the first window and gives automatic collection back when the last one closes.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

COLLECT_INTERVAL_S = 1.0

_collector: GarbageCollector | None = None
_holders = 0


def hold() -> None:
    """A window opened (call it in the GUI thread): from now on only the GUI thread collects garbage."""
    global _collector, _holders
    _holders += 1
    if _collector is None:
        _collector = GarbageCollector(interval=COLLECT_INTERVAL_S)
    else:
        gc.disable()
        _collector.timer.start()


def release() -> None:
    """A window closed (its jobs stopped): collect what is left here, then let Python collect as it likes."""
    global _holders
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0 and _collector is not None:
        _collector.timer.stop()
        gc.collect()
        gc.enable()
