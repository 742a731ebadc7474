"""Render the main window in the middle of a demo run to docs/img/ (window and panel crops), then the audit view.

    python bench/screenshot.py                      # demo model + demo SAE, target "Eiffel Tower"
    python bench/screenshot.py --model DIR --sae DIR --no-verify --out-dir /tmp/shots   # any model / SAE

It drives the real window: Load, add the target, Start (known-ness and references are computed inside the
run, with progress); after ``--at-step`` steps it grabs the window at 1400×900 and its panels, lets the run
finish, asks the question before/after, runs the audit and grabs the audit view; then it quits.

Nothing is written to the real user data folder: the window runs on a temporary data folder (its settings,
runs and caches), into which the real folder's caches (known-ness, reference statistics) are copied so the
minutes-long first classification is not repeated; the demo model is opened from the real folder as a
local-folder model. Works offscreen (QT_QPA_PLATFORM=offscreen is set when no display is available).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PICTURES = ("main_window.png", "plots.png", "map.png", "setup.png", "run.png", "entities.png")


def _real_data_dir() -> Path:
    from unlearn_studio.engine.paths import user_data_dir

    return user_data_dir()


def _private_data_dir(real: Path, keep: str | None) -> Path:
    """A fresh data folder with a copy of the real caches (read, never written back)."""
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="unlearn-studio-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    if (real / "cache").is_dir() and not (folder / "cache").exists():
        shutil.copytree(real / "cache", folder / "cache")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or hub id (default: the demo model in the real data folder)")
    parser.add_argument("--sae", help="SAE folder or release (default: the demo SAE)")
    parser.add_argument("--target", default="Eiffel Tower")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--at-step", type=int, default=10, help="grab the window after this many steps")
    parser.add_argument("--no-verify", action="store_true", help="use the shipped entity lists without classifying")
    parser.add_argument("--no-audit", action="store_true", help="skip the audit picture")
    parser.add_argument("--question", default="Where is the Eiffel Tower?")
    parser.add_argument("--out-dir", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--data-dir", help="the data folder to run in (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=2400, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    real = _real_data_dir()
    model = args.model
    if model is None:
        from unlearn_studio.engine.demo import DEMO_FOLDER_NAME

        demo = real / "models" / DEMO_FOLDER_NAME
        model = str(demo) if demo.is_dir() else None  # else the window fetches the demo (into the temp folder)
    data = _private_data_dir(real, args.data_dir)
    os.environ["UNLEARN_STUDIO_DATA"] = str(data)
    print(f"data folder: {data} (caches copied from {real})", flush=True)
    print(f"model: {model or 'the embedded demo'}", flush=True)

    from PySide6.QtCore import QTimer

    from unlearn_studio.gui.app import create_app
    from unlearn_studio.gui.main_window import MainWindow

    app = create_app([sys.argv[0]])
    window = MainWindow(autoload=False)
    window.accept_sae_warnings = True  # unattended: the card still shows the note
    window.resize(1400, 900)
    window.show()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {"grabbed": False, "code": 1, "started": time.monotonic()}

    def when_idle(action) -> None:  # noqa: ANN001 - a callable
        """Run ``action`` once the previous job has really ended (its result arrives before its thread finishes)."""
        if window.model.busy is None:
            action()
        else:
            QTimer.singleShot(100, lambda: when_idle(action))

    def log(text: str) -> None:
        print(f"[{time.monotonic() - state['started']:6.0f} s] {text}", flush=True)

    def finish(code: int) -> None:
        state["code"] = code
        window.model.stop()
        QTimer.singleShot(0, window.close)
        QTimer.singleShot(0, app.quit)

    def fail(title: str, message: str, _details: str = "") -> None:
        print(f"error: {title}: {message}", file=sys.stderr, flush=True)
        finish(2)

    def save(name: str, widget) -> None:  # noqa: ANN001 - a QWidget
        widget.grab().save(str(out / name))
        log(f"wrote {out / name}")

    def loaded(_description: dict) -> None:
        log("loaded")
        window.entities.verify.setChecked(not args.no_verify)
        window.audit.verify.setChecked(not args.no_verify)
        window.run_panel.steps.setValue(args.steps)
        window.run_panel.evaluate.setChecked(False)
        window.run_panel.early_stop.setChecked(False)
        window.model.add_target(args.target)
        window.ask.prompt.setText(args.question)
        window.ask.chat.setChecked(True)
        window.entities.filter.setText("")
        when_idle(window.start_run)

    def step(progress) -> None:  # noqa: ANN001 - a StepProgress
        if progress.step == 1:
            log("first step")
        if state["grabbed"] or progress.step < min(args.at_step, args.steps):
            return
        state["grabbed"] = True
        QTimer.singleShot(300, grab)  # let the plots' timer paint the latest step

    def show_p_known_first() -> None:
        """Entities sorted by P(known), so the picture shows the measured references, known ones on top."""
        from PySide6.QtCore import Qt

        from unlearn_studio.gui.panels.entities import P_KNOWN_COLUMN

        window.entities.table.sortByColumn(P_KNOWN_COLUMN, Qt.SortOrder.DescendingOrder)
        window.entities.table.scrollToTop()

    def grab() -> None:
        show_p_known_first()
        window.tabs.setCurrentWidget(window.plots)
        window.docks["entities"].raise_()
        window.plots.repaint_now()
        app.processEvents()
        widgets = {"main_window.png": window, "plots.png": window.plots, "map.png": window.plots.map_plot,
                   "setup.png": window.docks["setup"], "run.png": window.docks["run"],
                   "entities.png": window.docks["entities"]}
        for name in PICTURES:
            save(name, widgets[name])

    def run_ended(outcome: str, info: object) -> None:
        log(f"run {outcome}")
        if outcome != "finished" or not state["grabbed"]:
            fail("run", f"the run ended ({outcome}) before the pictures were taken: {info}")
            return
        if args.no_audit:
            finish(0)
            return
        when_idle(ask)

    def ask() -> None:
        log("asking before / after")
        window.ask.ask()

    def asked(piece) -> None:  # noqa: ANN001 - an AskPiece
        if piece.which == "current" and piece.done and not args.no_audit:
            when_idle(audit)

    def audit() -> None:
        log("auditing")
        window.start_audit()

    def audited(_result) -> None:  # noqa: ANN001 - an AuditResult
        log("audited")
        QTimer.singleShot(300, lambda: when_idle(grab_audit))

    def grab_audit() -> None:
        window.tabs.setCurrentWidget(window.audit)
        window.docks["ask"].raise_()
        app.processEvents()
        save("audit.png", window.audit)
        save("main_window_audit.png", window)
        finish(0)

    window.model.sig_error.connect(fail)
    window.model.sig_loaded.connect(loaded)
    window.model.sig_step.connect(step)
    window.model.sig_run_ended.connect(run_ended)
    window.model.sig_ask.connect(asked)
    window.model.sig_audit.connect(audited)
    window.model.sig_message.connect(lambda text: log(text))
    last = {"message": ""}

    def progressed(job: str, message: str, _fraction: float) -> None:
        head = message.split(":")[0]
        if head != last["message"]:
            last["message"] = head
            log(f"{job}: {message}")

    window.model.sig_progress.connect(progressed)
    window.setup.model_source.set_value(model, "folder")
    window.setup.sae_source.set_value(args.sae, "folder")
    window.setup.device.setCurrentText("cpu")
    QTimer.singleShot(0, window.setup.load)
    QTimer.singleShot(int(args.timeout * 1000), lambda: fail("timeout", f"not done after {args.timeout:.0f} s"))
    app.exec()
    if not args.data_dir:
        shutil.rmtree(data, ignore_errors=True)
    return state["code"]


if __name__ == "__main__":
    raise SystemExit(main())
