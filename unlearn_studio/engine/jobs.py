"""What every long engine job shares: the progress callback type, and cooperative cancelling.

Jobs report progress through a plain ``ProgressCallback(message, fraction)`` and check a
``threading.Event`` between units of work; ``check_cancel`` raises :class:`JobCancelled`,
which the job's outer layer turns into a ``Cancelled`` event (engine/events.py).
Torch-free, so the window's worker bridge can import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

ProgressCallback = Callable[[str, float], None]


class JobCancelled(Exception):
    """Raised inside engine work when the user's cancel flag is set."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise JobCancelled
