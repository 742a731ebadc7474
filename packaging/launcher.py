"""Entry point of the PyInstaller build: the same ``unlearn-studio`` command as the console script.

Extras for the build check only (``packaging/build.sh`` runs them offscreen, with no arguments).
Each goes through :func:`unlearn_studio.gui.app.run_app`, the user's own start-up and shutdown,
and ends with the File menu's Quit, so the process's exit status is what a user's quit gives
(an abort while the interpreter shuts down shows as 134):

* ``UNLEARN_STUDIO_SMOKE_MS=N``: open the window (without loading the demo), after N ms print
  what is on screen and save a screenshot to ``UNLEARN_STUDIO_SMOKE_SHOT`` (optional), quit.
* ``UNLEARN_STUDIO_SMOKE_QUIT=loaded`` or ``=run``, with ``UNLEARN_STUDIO_SMOKE_MODEL`` and
  ``UNLEARN_STUDIO_SMOKE_SAE`` (folders): load them through the Set-up panel; ``run`` then starts
  a 500-step run on a made-up target and quits at its first step.

Anything that goes wrong (the window not visible, a load error, no step within
``UNLEARN_STUDIO_SMOKE_TIMEOUT_S``, default 300) ends the event loop with exit status 1.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

RUN_TARGET = ("Port Zenthia Lighthouse", "place")  # made up: the run needs no facts file


def say(message: str) -> None:
    print(f"smoke: {message}", flush=True)


def quit_from_file_menu(window) -> None:
    """What a user does: open the File menu and pick Quit (the menu's own action, not a shortcut)."""
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    quit_action = next(a for a in file_menu.actions() if a.text() == "&Quit")
    say(f"File → Quit (job running: {window.model.busy or 'none'})")
    quit_action.trigger()


def fail(message: str) -> None:
    from PySide6.QtWidgets import QApplication

    say(f"FAILED: {message}")
    QApplication.exit(1)


def show_window(delay_ms: int):
    def check(window) -> None:
        from PySide6.QtWidgets import QDockWidget

        from unlearn_studio import __version__
        from unlearn_studio.engine.paths import resources_dir

        docks = [dock.windowTitle() for dock in window.findChildren(QDockWidget)]
        visible = window.isVisible() and window.width() > 0 and window.height() > 0
        say(f"version {__version__}; window '{window.windowTitle()}' visible={visible} "
            f"size={window.width()}x{window.height()}; docks: {', '.join(docks) or 'none'}")
        say(f"resources at {resources_dir()}")
        shot = os.environ.get("UNLEARN_STUDIO_SMOKE_SHOT")
        if shot:
            ok = window.grab().save(shot)
            say(f"screenshot {'saved to ' + shot if ok else 'FAILED'}")
        if visible:
            quit_from_file_menu(window)
        else:
            fail("the main window is not visible")

    def start(window) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(delay_ms, lambda: check(window))

    return start


def load_then_quit(scenario: str, model: str, sae: str):
    def start(window) -> None:
        from PySide6.QtCore import QTimer

        state = {"quitting": False}

        def quit_once() -> None:
            if not state["quitting"]:
                state["quitting"] = True
                quit_from_file_menu(window)

        def when_idle(then) -> None:
            if window.model.busy is None:
                then()
            else:
                QTimer.singleShot(100, lambda: when_idle(then))

        def start_run() -> None:
            window.model.add_target(*RUN_TARGET)
            window.entities.verify.setChecked(False)  # a random model knows nothing: use the lists as they are
            window.run_panel.form.widgets["steps"].setValue(500)
            window.run_panel.form.widgets["early_stop"].setChecked(False)
            window.run_panel.evaluate.setChecked(False)
            window.model.sig_step.connect(lambda event: (say(f"run at step {event.step}"), quit_once()))
            say("starting a run")
            window.run_panel.start_button.click()

        def loaded(description: dict) -> None:
            say(f"loaded {description['model'].get('name')}")
            when_idle(quit_once if scenario == "loaded" else start_run)

        window.accept_sae_warnings = True  # a tiny test SAE names another model: no question box
        window.model.sig_loaded.connect(loaded)
        window.model.sig_error.connect(lambda title, message, _details: fail(f"{title}: {message}"))
        window.setup.model_source.set_value(model, "folder")
        window.setup.sae_source.set_value(sae, "folder")
        window.setup.device.setCurrentText("cpu")
        say(f"loading {model} with {sae}")
        window.setup.load_button.click()

    return start


def smoke_hook():
    scenario = os.environ.get("UNLEARN_STUDIO_SMOKE_QUIT")
    if scenario:
        if scenario not in ("loaded", "run"):
            raise SystemExit(f"UNLEARN_STUDIO_SMOKE_QUIT must be 'loaded' or 'run', not {scenario!r}")
        return load_then_quit(scenario, os.environ["UNLEARN_STUDIO_SMOKE_MODEL"], os.environ["UNLEARN_STUDIO_SMOKE_SAE"])
    delay = os.environ.get("UNLEARN_STUDIO_SMOKE_MS")
    return show_window(int(delay)) if delay else None


def with_watchdog(hook):
    def start(window) -> None:
        from PySide6.QtCore import QTimer

        limit_s = float(os.environ.get("UNLEARN_STUDIO_SMOKE_TIMEOUT_S", "300"))
        QTimer.singleShot(int(limit_s * 1000), lambda: fail(f"not done within {limit_s:g} s"))
        hook(window)

    return start


def main() -> int:
    multiprocessing.freeze_support()  # torch/datasets may start worker processes
    hook = smoke_hook() if len(sys.argv) == 1 else None
    if hook is not None:
        from unlearn_studio.errors import UserError
        from unlearn_studio.gui.app import run_app

        try:
            return run_app(sys.argv[:1], autoload=False, on_shown=with_watchdog(hook))
        except UserError as error:
            say(f"FAILED: {error}")
            return 2
    from unlearn_studio.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
