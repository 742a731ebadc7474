"""Start the desktop application: show the window first, then load the demo in the background.

The engine (torch, transformers) is imported only inside worker jobs, so the
window is on screen before those heavy imports happen.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def create_app(argv: Sequence[str] | None = None):  # noqa: ANN201 - a QApplication
    from PySide6.QtWidgets import QApplication

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


def run_app(argv: Sequence[str] | None = None, *, autoload: bool = True) -> int:
    """Open the main window on the embedded default and run the event loop; returns the exit status."""
    app = create_app(argv)
    from .main_window import MainWindow

    window = MainWindow(autoload=autoload)
    app.aboutToQuit.connect(window.model.shutdown)
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(run_app(sys.argv))
