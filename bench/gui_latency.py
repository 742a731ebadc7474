"""GUI responsiveness during a demo run: event-loop lateness and the UI-thread cost of plot updates."""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

import numpy as np

TIMER_MS = 10


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def measure_plot_update(reference_points: int = 300, steps: int = 60) -> float:
    """Milliseconds of UI-thread work per step (add the step, then repaint all plots) with N reference points."""
    from unlearn_studio.gui.plots import LivePlots

    plots = LivePlots()
    plots.resize(900, 700)
    plots.show()
    rng = np.random.default_rng(0)
    half = reference_points // 2
    refs = SimpleNamespace(known_points=rng.normal(1, 0.3, (half, 2)).tolist(), unknown_points=rng.normal(0, 0.3, (half, 2)).tolist(),
                           known_names=[f"k{i}" for i in range(half)], unknown_names=[f"u{i}" for i in range(half)],
                           top_known_latents=list(range(8)), top_unknown_latents=list(range(8, 16)), targets=["Eiffel Tower"])
    plots.start_run(refs)
    plots.repaint_now()
    times = []
    for step in range(1, steps + 1):
        state = SimpleNamespace(point=(1 - step / steps, 0.1), p_known=1 - step / steps, unknown_percentile=100 * (1 - step / steps),
                                known_latents=tuple(rng.random(8)), unknown_latents=tuple(rng.random(8)))
        event = SimpleNamespace(step=step, losses={"total": 1.0 / step, "forget": 0.5 / step, "retain": 0.01}, targets={"Eiffel Tower": state})
        started = time.perf_counter()
        plots.add_step(event)
        plots.repaint_now()
        times.append((time.perf_counter() - started) * 1000)
    plots.close()
    return statistics.median(times)


def measure_gui_during_run(steps: int = 15) -> dict:
    """Open the main window on the demo, run sae-align for ``steps`` steps and time a 10 ms timer's lateness."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from unlearn_studio.gui.app import create_app
    from unlearn_studio.engine.run_config import TrainConfig
    from unlearn_studio.gui.main_window import MainWindow

    app = create_app([])
    window = MainWindow(autoload=False)
    window.resize(1400, 900)
    window.show()

    def wait_for(signal, timeout_ms: int) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    def wait_until_idle(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while window.model.busy is not None and time.monotonic() < deadline:
            wait_for(window.model.sig_state, 200)
        if window.model.busy is not None:
            raise RuntimeError(f"the window is still busy with {window.model.busy!r} after {timeout_s:.0f} s")

    if window.model.load(None, None, device="cpu") is None:
        raise RuntimeError("the window refused to load the demo")
    wait_until_idle(300)  # sig_loaded comes before the load job has finished and freed the model
    if not window.model.add_target("Eiffel Tower"):
        raise RuntimeError("the window refused the target Eiffel Tower")
    lateness: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(TIMER_MS)

    def tick() -> None:
        if clock.isValid():
            lateness.append(max(0.0, clock.nsecsElapsed() / 1e6 - TIMER_MS))
        clock.restart()

    timer.timeout.connect(tick)
    step_count = {"n": 0}
    window.model.sig_step.connect(lambda *_: step_count.__setitem__("n", step_count["n"] + 1))
    timer.start()
    if window.model.start_run(TrainConfig(steps=steps, early_stop=False), evaluate=False) is None:
        raise RuntimeError("the window refused to start the run")
    wait_for(window.model.sig_run_ended, 900_000)
    timer.stop()
    window.model.shutdown()
    window.close()
    app.processEvents()
    return {"ui_latency_p95_ms": _percentile(lateness, 95), "ui_latency_max_ms": max(lateness) if lateness else float("nan"),
            "ui_timer_ticks": len(lateness), "ui_run_steps": step_count["n"], "plot_update_ms": measure_plot_update()}
