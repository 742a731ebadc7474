"""GUI test guards: fail any test that leaves a QThread running (napari-style)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def fail_on_running_threads(monkeypatch: pytest.MonkeyPatch):
    """Record every QThread started during the test; after it (and after qtbot closed its widgets), none may run."""
    from PySide6.QtCore import QThread

    started: list = []
    original = QThread.start

    def recording_start(self, *args, **kwargs):  # noqa: ANN001, ANN202
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield started
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread.objectName() or repr(thread))
        except RuntimeError:  # the C++ object is gone: it has finished
            pass
    if running:
        for thread in started:
            try:
                getattr(thread, "cancel", None) and thread.cancel.set()
                thread.wait(30000)
            except RuntimeError:
                pass
        pytest.fail(f"the test left threads running: {', '.join(running)}")
