"""The Qt bridge: one QThread per engine job, results and events back by signal.

A job is a plain callable ``fn(job) -> result`` that runs in the worker thread.
It may call ``job.progress(message, fraction)`` and ``job.emit_event(event)``;
it must honour ``job.cancel`` (a :class:`threading.Event`). Workers never touch
widgets: everything they produce travels by (queued) signal to the UI thread.
Generator jobs of the engine (``Session.unlearn``) go through :func:`drain_events`,
which turns their Failed / Cancelled / Finished events into the job's outcome.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from ..engine.jobs import JobCancelled  # torch-free
from ..errors import UserError


class JobFailed(Exception):
    """Raised inside a job function with a ready-made message (and the engine's traceback)."""

    def __init__(self, message: str, traceback_text: str = "", user_error: bool = True) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text
        self.user_error = user_error


class Job(QThread):
    """One background job. Connect the signals, then :meth:`start`; exactly one of result/failed/cancelled follows."""

    sig_progress = Signal(str, float)
    sig_event = Signal(object)
    sig_result = Signal(object)
    sig_failed = Signal(str, str, bool)  # message, traceback text, is a user error
    sig_cancelled = Signal(object)  # details (may be None)

    def __init__(self, name: str, fn: Callable[[Job], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.fn = fn
        self.cancel = threading.Event()
        self.outcome: str | None = None  # result | failed | cancelled, once run() has ended
        self.setObjectName(f"job:{name}")

    # ---- called from the worker thread -----------------------------------------------------------------
    def progress(self, message: str, fraction: float) -> None:
        self.sig_progress.emit(str(message), float(fraction))

    def emit_event(self, event: object) -> None:
        self.sig_event.emit(event)

    def run(self) -> None:  # noqa: D102 - QThread entry point
        try:
            result = self.fn(self)
        except JobCancelled as error:
            self.outcome = "cancelled"
            self.sig_cancelled.emit(error.args[0] if error.args else None)
        except JobFailed as error:
            self.outcome = "failed"
            self.sig_failed.emit(str(error), error.traceback_text, error.user_error)
        except UserError as error:
            self.outcome = "failed"
            self.sig_failed.emit(str(error), traceback.format_exc(), True)
        except BaseException as error:  # noqa: BLE001 - every failure reaches the user as a signal
            self.outcome = "failed"
            message = _friendly(error)
            self.sig_failed.emit(message, traceback.format_exc(), False)
        else:
            if self.cancel.is_set() and result is None:
                self.outcome = "cancelled"
                self.sig_cancelled.emit(None)
            else:
                self.outcome = "result"
                self.sig_result.emit(result)


def _friendly(error: BaseException) -> str:
    if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        return ("out of memory: lower the number of trainable layers, use dtype bfloat16, "
                "or choose another device or a smaller model.")
    return f"{type(error).__name__}: {error}"


def drain_events(job: Job, events: Iterable[object]) -> Any:
    """Forward an engine generator's events as ``sig_event``; its terminal event becomes the job's outcome."""
    from ..engine.events import Cancelled, Failed, Finished

    for event in events:
        if isinstance(event, Finished):
            return event.result
        if isinstance(event, Failed):
            raise JobFailed(event.error, event.traceback_text, event.user_error)
        if isinstance(event, Cancelled):
            raise JobCancelled({"step": event.step, **event.details})
        job.emit_event(event)
    if job.cancel.is_set():
        raise JobCancelled(None)
    raise JobFailed("the job ended without a result.", "", False)


class JobManager(QObject):
    """Keeps a reference to every running job; cancels and waits for them (bounded) on shutdown."""

    sig_changed = Signal()  # a job started or ended

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []

    def start(self, job: Job) -> Job:
        """Start ``job`` (its signals must already be connected)."""
        self._jobs.append(job)
        job.finished.connect(self._on_finished)
        job.start()
        self.sig_changed.emit()
        return job

    def _on_finished(self) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self._ended(job)

    def _ended(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        job.deleteLater()
        self.sig_changed.emit()

    @property
    def running(self) -> list[Job]:
        return [job for job in self._jobs if job.isRunning() or not job.isFinished()]

    def find(self, name: str) -> Job | None:
        return next((job for job in self.running if job.name == name), None)

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel.set()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel every job and wait for each up to a shared time limit; True when all stopped."""
        import time

        self.cancel_all()
        deadline = time.monotonic() + timeout_ms / 1000
        stopped = True
        for job in list(self._jobs):
            left = max(0, int((deadline - time.monotonic()) * 1000))
            stopped = job.wait(left) and stopped
        return stopped
