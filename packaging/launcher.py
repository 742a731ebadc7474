"""Entry point of the PyInstaller build: the same ``unlearn-studio`` command as the console script.

One extra, for the build check only: with ``UNLEARN_STUDIO_SMOKE_MS=N`` set and no arguments,
it opens the main window (without loading the demo), waits N ms for the event loop to show
it, prints what is on screen, optionally saves a screenshot to ``UNLEARN_STUDIO_SMOKE_SHOT``,
and exits 0 only if the window was visible. ``packaging/build.sh`` runs it offscreen.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def smoke(delay_ms: int) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QDockWidget

    from unlearn_studio import __version__
    from unlearn_studio.engine.paths import resources_dir
    from unlearn_studio.gui.app import create_app
    from unlearn_studio.gui.main_window import MainWindow

    app = create_app(sys.argv[:1])
    window = MainWindow(autoload=False)
    window.show()
    outcome = {"status": 1}

    def check() -> None:
        docks = [dock.windowTitle() for dock in window.findChildren(QDockWidget)]
        visible = window.isVisible() and window.width() > 0 and window.height() > 0
        print(f"smoke: version {__version__}; window '{window.windowTitle()}' visible={visible} "
              f"size={window.width()}x{window.height()}; docks: {', '.join(docks) or 'none'}", flush=True)
        print(f"smoke: resources at {resources_dir()}", flush=True)
        shot = os.environ.get("UNLEARN_STUDIO_SMOKE_SHOT")
        if shot:
            ok = window.grab().save(shot)
            print(f"smoke: screenshot {'saved to ' + shot if ok else 'FAILED'}", flush=True)
        outcome["status"] = 0 if visible else 1
        window.close()
        app.quit()

    QTimer.singleShot(delay_ms, check)
    app.exec()
    return outcome["status"]


def main() -> int:
    multiprocessing.freeze_support()  # torch/datasets may start worker processes
    delay = os.environ.get("UNLEARN_STUDIO_SMOKE_MS")
    if delay and len(sys.argv) == 1:
        return smoke(int(delay))
    from unlearn_studio.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
