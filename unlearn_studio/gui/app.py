"""Start the desktop application: show the window first, then load the demo in the background.

The engine (torch, transformers) is imported only inside worker jobs, so the
window is on screen before those heavy imports happen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from .main_window import MainWindow

# Signal emissions the binding check makes; a sound binding leaves the refcount of True unchanged.
BINDING_PROBE_EMITS = 64


def check_bindings() -> None:
    """Refuse a Qt binding that releases references to True it never took (PySide6 6.12.0 on Python 3.11).

    Such a binding takes one reference from True at every signal emission (and one from None at every
    method returning nothing); the window makes thousands, so the interpreter aborts with "Fatal Python
    error: bool_dealloc" during a long run or at exit. On Python 3.12+ True and None are immortal and
    the same binding is harmless, so this checks what the running binding does, not its version number.
    """
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    before = sys.getrefcount(True)
    for _ in range(BINDING_PROBE_EMITS):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost >= BINDING_PROBE_EMITS // 2:
        raise UserError(
            f"PySide6 {pyside_version} has a reference-count bug on Python {sys.version.split()[0]} that makes "
            "Unlearn Studio abort (\"Fatal Python error: bool_dealloc\"). Install an earlier release: "
            "pip install 'pyside6-essentials<6.12' (or use Python 3.12 or newer).")


def create_app(argv: Sequence[str] | None = None):
    from PySide6.QtWidgets import QApplication

    check_bindings()
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("Unlearn Studio")
    app.setOrganizationName("unlearn-studio")
    from .. import __version__

    app.setApplicationVersion(__version__)
    from PySide6.QtGui import QIcon

    from ..engine.paths import resources_dir  # platformdirs only: no torch at start-up

    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "unlearn-studio.svg")))
    app.setDesktopFileName("unlearn-studio")
    return app


def run_app(argv: Sequence[str] | None = None, *, autoload: bool = True,
            on_shown: Callable[[MainWindow], object] | None = None) -> int:
    """Open the main window (on the embedded default) and run the event loop; returns the exit status.

    ``on_shown(window)`` runs once the window is shown, before the event loop starts (the build check
    drives the window through it). However the loop ends, the window and the application are torn down
    before this returns, so no Qt object is left for the interpreter's own shutdown to collect.
    """
    app = create_app(argv)
    from .main_window import MainWindow

    window = MainWindow(autoload=autoload)
    window.show()
    if on_shown is not None:
        on_shown(window)
    try:
        return int(app.exec())
    finally:
        shut_down(app, window)


def shut_down(app, window: MainWindow) -> None:
    """Stop the workers, close the window, then delete it and the application while Python is intact."""
    import shiboken6
    from PySide6.QtCore import QCoreApplication, QEvent

    window.close()  # cancels and waits for every job (a no-op if File → Quit already closed it)
    window.model.shutdown()  # the loop may also have ended without a close (QApplication.exit)
    shiboken6.delete(window)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # finished jobs' deleteLater
    app.shutdown()


if __name__ == "__main__":
    raise SystemExit(run_app(sys.argv))
