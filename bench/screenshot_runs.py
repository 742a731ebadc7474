"""Render the run comparison (Runs list + Compare runs tab) to docs/img/run_comparison.png.

    python bench/screenshot_runs.py RUN_DIR [RUN_DIR ...]       # e.g. runs made with `unlearn-studio unlearn`

The window is opened on a temporary user data folder (nothing is written to the real one) with no model
loaded: the runs are read from their folders, as a user opening them would.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders to compare")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "run_comparison.png"))
    args = parser.parse_args()
    os.environ["UNLEARN_STUDIO_DATA"] = tempfile.mkdtemp(prefix="unlearn-studio-runs-shot-")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from unlearn_studio.gui.app import create_app
    from unlearn_studio.gui.main_window import MainWindow

    app = create_app(["unlearn-studio"])
    window = MainWindow(autoload=False)
    window.resize(1400, 900)
    window.show()
    for folder in args.runs:
        window.runs.add_root(str(Path(folder).resolve()))
    window.docks["runs"].raise_()
    window.runs.select_paths([str(Path(folder).resolve()) for folder in args.runs])
    for _ in range(20):
        app.processEvents()
    window.grab().save(args.out)
    print(f"wrote {args.out} ({len(window.comparison.records)} runs compared)")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
