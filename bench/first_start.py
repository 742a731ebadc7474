"""First start, measured from outside: program start with an empty user data folder (the demo model already
converted) until the window has drawn the 2-D map with its reference points.

    python bench/first_start.py        # prints the seconds as JSON

The child is the real program (``unlearn_studio.gui.app``, loading the demo by itself); a watcher inside it
only reports when the map's known and unknown points are on screen. The data folder is new and empty but for
a link to the converted demo model, so known-ness and references come from resources/demo_cache/ or not at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600

WATCHER = """
import sys
from PySide6.QtCore import QTimer
from unlearn_studio.gui import app as gui_app
from unlearn_studio.gui.main_window import MainWindow

created = []
original_init = MainWindow.__init__

def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.accept_sae_warnings = True
    created.append(self)

MainWindow.__init__ = init

def check():
    if created:
        plots = created[0].plots
        known, unknown = len(plots.known_scatter.data), len(plots.unknown_scatter.data)
        if known and unknown and created[0].isVisible():
            print(f"ready {known} {unknown}", flush=True)
            created[0].close()
            gui_app.create_app().quit()
            return
    QTimer.singleShot(20, check)

app = gui_app.create_app(["unlearn-studio"])
QTimer.singleShot(0, check)
sys.exit(gui_app.run_app(["unlearn-studio"]))
"""


def measure_first_start() -> dict:
    from unlearn_studio.engine.demo import DEMO_FOLDER_NAME, demo_model_dir

    model = demo_model_dir()
    if not (model / "model.safetensors").is_file():
        raise SystemExit(f"the demo model is not converted yet at {model}: run `unlearn-studio fetch-demo` first")
    data = Path(tempfile.mkdtemp(prefix="first-start-"))
    (data / "models").mkdir()
    (data / "models" / DEMO_FOLDER_NAME).symlink_to(model, target_is_directory=True)
    env = {**os.environ, "UNLEARN_STUDIO_DATA": str(data), "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", WATCHER], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    line = ""
    try:
        for line in child.stdout:
            if line.startswith("ready"):
                break
        seconds = time.perf_counter() - started
    finally:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
    if not line.startswith("ready"):
        raise RuntimeError("the window never drew the map")
    _, known, unknown = line.split()
    cached = sorted(p.name for p in (data / "cache").rglob("*") if p.is_file()) if (data / "cache").exists() else []
    return {"first_start_ready_seconds": seconds, "first_start_map_points": [int(known), int(unknown)],
            "first_start_files_computed": len(cached)}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure_first_start(), indent=2))
