"""Render the main window in the middle of a demo run to docs/img/ (window and panel crops).

    python bench/screenshot.py                      # demo model + demo SAE, target "Eiffel Tower"
    python bench/screenshot.py --model DIR --sae DIR --no-verify --out-dir /tmp/shots   # any model / SAE

It drives the real window: Load, classify (unless --no-verify), add the target, Start; after
``--at-step`` steps it grabs the window at 1400×900, stops the run and quits. Works offscreen
(QT_QPA_PLATFORM=offscreen is set when no display is available).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or hub id (default: the embedded demo)")
    parser.add_argument("--sae", help="SAE folder or release (default: the demo SAE)")
    parser.add_argument("--target", default="Eiffel Tower")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--at-step", type=int, default=12, help="grab the window after this many steps")
    parser.add_argument("--no-verify", action="store_true", help="use the shipped entity lists without classifying")
    parser.add_argument("--question", default="Where is the Eiffel Tower?")
    parser.add_argument("--out-dir", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QTimer

    from unlearn_studio.gui.app import create_app
    from unlearn_studio.gui.main_window import MainWindow

    app = create_app([sys.argv[0]])
    window = MainWindow(autoload=False)
    window.resize(1400, 900)
    window.show()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {"grabbed": False, "code": 1}

    def fail(title: str, message: str, _details: str = "") -> None:
        print(f"error: {title}: {message}", file=sys.stderr)
        state["code"] = 2
        window.close()
        app.quit()

    def loaded(_description: dict) -> None:
        window.entities.verify.setChecked(not args.no_verify)
        window.run_panel.steps.setValue(args.steps)
        window.run_panel.evaluate.setChecked(False)
        window.run_panel.early_stop.setChecked(False)
        window.model.add_target(args.target)
        window.ask.prompt.setText(args.question)
        window.entities.filter.setText("")
        QTimer.singleShot(0, window.start_run)

    def step(progress) -> None:  # noqa: ANN001 - a StepProgress
        if state["grabbed"] or progress.step < min(args.at_step, args.steps):
            return
        state["grabbed"] = True
        QTimer.singleShot(300, grab)  # let the plots' timer paint the latest step

    def grab() -> None:
        window.plots.repaint_now()
        app.processEvents()
        pictures = {
            "main_window.png": window,
            "plots.png": window.plots,
            "map.png": window.plots.map_plot,
            "setup.png": window.docks["setup"],
            "run.png": window.docks["run"],
            "entities.png": window.docks["entities"],
        }
        for name, widget in pictures.items():
            widget.grab().save(str(out / name))
            print(out / name)
        state["code"] = 0
        window.model.stop()
        QTimer.singleShot(0, window.close)
        QTimer.singleShot(0, app.quit)

    window.model.sig_error.connect(fail)
    window.model.sig_loaded.connect(loaded)
    window.model.sig_step.connect(step)
    window.setup.model_source.set_value(args.model, "folder")
    window.setup.sae_source.set_value(args.sae, "folder")
    QTimer.singleShot(0, window.setup.load)
    QTimer.singleShot(int(args.timeout * 1000), lambda: fail("timeout", f"no picture after {args.timeout:.0f} s"))
    app.exec()
    return state["code"]


if __name__ == "__main__":
    raise SystemExit(main())
