"""Drive the real main window on a tiny random model and SAE (made by fixtures): load, classify, targets, run,
stop, reset, ask, save and load back, close during a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from unlearn_studio import __version__
from unlearn_studio.gui.main_window import MainWindow

LOAD_TIMEOUT = 120_000
RUN_TIMEOUT = 180_000


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data folder for this module's windows, so θ0's reference statistics are computed once (a cache)."""
    return tmp_path_factory.mktemp("gui-data")


@pytest.fixture
def data_dir(shared_data_dir, isolated_data_dir, monkeypatch) -> Path:
    monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(shared_data_dir))
    return shared_data_dir


@pytest.fixture
def window(qtbot, data_dir):
    win = MainWindow(autoload=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    return win


def load(qtbot, win: MainWindow, model_dir: Path, sae_dir: Path) -> None:
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=30_000)
    win.setup.model_source.folder.setChecked(True)
    win.setup.model_source.path.setEditText(str(model_dir))
    win.setup.sae_source.folder.setChecked(True)
    win.setup.sae_source.path.setEditText(str(sae_dir))
    win.setup.device.setCurrentText("cpu")
    with qtbot.waitSignal(win.model.sig_loaded, timeout=LOAD_TIMEOUT):
        qtbot.mouseClick(win.setup.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)


def configure(win: MainWindow, steps: int, *, evaluate: bool = False, early_stop: bool = False) -> None:
    win.entities.verify.setChecked(False)  # the tiny random model knows nothing: use the lists as they are
    win.run_panel.steps.setValue(steps)
    win.run_panel.evaluate.setChecked(evaluate)
    win.run_panel.early_stop.setChecked(early_stop)


def add_listed_target(qtbot, win: MainWindow, name: str) -> None:
    win.entities.filter.setText(name)
    qtbot.waitUntil(lambda: win.entities.row_count() >= 1)
    row = next(r for r in range(win.entities.row_count()) if win.entities.name_at(r) == name)
    index = win.entities.proxy.index(row, 0)
    win.entities.table.scrollTo(index)
    rect = win.entities.table.visualRect(index)
    viewport = win.entities.table.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    win.entities.filter.clear()


def run_to_end(qtbot, win: MainWindow) -> tuple[str, object]:
    with qtbot.waitSignal(win.model.sig_run_ended, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(win.run_panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)
    return tuple(blocker.args)


def metric_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_window_is_shown_before_torch_is_imported(tmp_path):
    code = ("import sys; from unlearn_studio.gui.app import create_app; app = create_app(['x']);"
            "from unlearn_studio.gui.main_window import MainWindow; w = MainWindow(autoload=False); w.show();"
            "app.processEvents(); print('visible', w.isVisible(), 'torch', 'torch' in sys.modules,"
            "'transformers', 'transformers' in sys.modules); w.close()")
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "UNLEARN_STUDIO_DATA": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert "visible True torch False transformers False" in out.stdout, out.stdout + out.stderr


def test_menus_shortcuts_and_about(qtbot, window):
    shortcuts = {a.text().replace("&", ""): [s.toString() for s in a.shortcuts()] for a in window.actions()}
    assert shortcuts["Load model and SAE"] == ["Ctrl+O"]
    assert shortcuts["Start unlearning"] == ["Ctrl+R"]
    assert "Esc" in shortcuts["Stop"] and "Ctrl+." in shortcuts["Stop"]
    assert shortcuts["Save model…"] == ["Ctrl+S"]
    assert shortcuts["Help and about"] == ["F1"]
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Run", "View", "Help"]
    window.act_help.trigger()
    qtbot.waitUntil(lambda: window.about_box.isVisible())
    assert __version__ in window.about_box.text()
    assert "memory" in window.memory_label.text().lower()
    assert not window.run_panel.start_button.isEnabled()  # nothing loaded yet


def test_load_shows_card_and_filterable_entities(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    card = window.setup.info.text()
    assert "2 layers" in card and "width 64" in card
    assert "topk" in card and "128" in card and "model.layers.1" in card
    total = window.entities.row_count()
    assert total > 100
    window.entities.filter.setText("eiffel")
    assert window.entities.row_count() == 1 and window.entities.name_at(0) == "Eiffel Tower"
    window.entities.filter.clear()
    assert window.entities.row_count() == total


def test_bad_folder_gives_a_message_not_a_traceback(qtbot, window, tmp_path, tiny_sae_dir):
    window.setup.model_source.folder.setChecked(True)
    window.setup.model_source.path.setEditText(str(tmp_path / "no-such-model"))
    with qtbot.waitSignal(window.model.sig_error, timeout=LOAD_TIMEOUT) as blocker:
        window.setup.load_button.click()
    title, message, _details = blocker.args
    assert "Traceback" not in message and message
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible())
    assert window.error_box.text() == message
    assert window.model.session is None
    qtbot.waitUntil(lambda: window.setup.load_button.isEnabled())


def test_classify_marks_entities(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    progress = []
    window.model.sig_progress.connect(lambda job, message, fraction: progress.append((job, fraction)))
    with qtbot.waitSignal(window.model.sig_entities, timeout=RUN_TIMEOUT):
        window.entities.classify_button.click()
    statuses = {window.entities.items.item(r, 3).text().split()[0] for r in range(window.entities.items.rowCount())}
    assert "—" not in statuses and statuses <= {"known", "unknown", "excluded"}
    assert any(job == "classify" for job, _ in progress)
    assert "known" in window.entities.summary.text()


def test_targets_run_plots_reset(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    add_listed_target(qtbot, window, "Eiffel Tower")
    assert window.targets.names() == ["Eiffel Tower"]
    window.targets.name.setText("Port Zenthia Lighthouse")
    window.targets.type.setCurrentText("place")
    qtbot.mouseClick(window.targets.add_button, Qt.MouseButton.LeftButton)
    assert window.targets.names() == ["Eiffel Tower", "Port Zenthia Lighthouse"]
    assert "shipped facts" in window.targets.list.item(0).text()
    assert "place" in window.targets.list.item(1).text()
    # Run on unlisted targets only: the reference set (and its cached statistics) is then the same in every test.
    window.targets.list.item(0).setSelected(True)
    window.targets.remove_button.click()
    window.model.add_target("Velmora Quay", "place")
    assert window.targets.names() == ["Port Zenthia Lighthouse", "Velmora Quay"]
    configure(window, 3)
    steps, formats = [], []
    window.model.sig_step.connect(steps.append)
    window.model.sig_step.connect(lambda _s: formats.append(window.run_panel.progress.format()))
    outcome, report = run_to_end(qtbot, window)
    assert outcome == "finished", report
    assert [s.step for s in steps] == [1, 2, 3]
    plots = window.plots
    qtbot.waitUntil(lambda: not plots._dirty)  # the timer painted the last step
    assert len(plots.known_scatter.data) > 0 and len(plots.unknown_scatter.data) > 0
    for name in ("Port Zenthia Lighthouse", "Velmora Quay"):
        assert plots.curve_points(plots.trajectories[name]) == 3
        assert plots.curve_points(plots.pknown_curves[name]) == 3
        xs, ys = plots.trajectories[name].getData()
        assert (xs[-1], ys[-1]) == pytest.approx(steps[-1].targets[name].point)
    assert plots.curve_points(plots.loss_curves["total"]) == 3
    start, now = plots.bar_heights()
    assert len(start) == len(now) == len(steps[0].targets["Velmora Quay"].known_latents) * 2
    assert list(now) == pytest.approx(list(steps[-1].targets[plots.latent_target.currentText()].known_latents
                                           + steps[-1].targets[plots.latent_target.currentText()].unknown_latents))
    assert formats[0].startswith("step 1 / 3") and "left" in formats[0]
    assert formats[-1].startswith("step 3 / 3")
    assert window.run_panel.progress.format() == "finished: 3 steps (steps)"
    run_dir = Path(report["run_dir"])
    assert len(metric_lines(run_dir)) == 3 and (run_dir / "report.json").is_file()
    opened = []
    window.open_folder = lambda path: opened.append(path) or True
    assert window.act_export.isEnabled()
    window.act_export.trigger()
    assert opened == [str(run_dir)]
    # Reset puts the original weights back.
    assert window.model.modified and window.run_panel.reset_button.isEnabled()
    with qtbot.waitSignal(window.model.sig_state, timeout=30_000, check_params_cb=lambda *a: window.model.busy is None
                          and not window.model.modified):
        window.run_panel.reset_button.click()
    assert not window.model.session.is_modified()
    assert not window.run_panel.reset_button.isEnabled()


def test_stop_mid_run_keeps_metrics(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    window.model.add_target("Port Zenthia Lighthouse", "place")
    configure(window, 500)
    with qtbot.waitSignal(window.model.sig_step, timeout=RUN_TIMEOUT):
        window.run_panel.start_button.click()
    assert window.run_panel.stop_button.isEnabled()
    with qtbot.waitSignal(window.model.sig_run_ended, timeout=60_000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    outcome, info = blocker.args
    assert outcome == "cancelled"
    assert 1 <= info["step"] < 500
    assert len(metric_lines(Path(info["run_dir"]))) == info["step"]
    assert "stopped after step" in window.run_panel.progress.format()
    qtbot.waitUntil(lambda: window.model.busy is None)


def test_ask_before_after_and_fact_table(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    from unlearn_studio.gui.panels.entities import parse_fact_lines

    facts = parse_fact_lines("Port Zenthia Lighthouse stands in the town of | Zenthia\nnot a fact line")
    assert len(facts) == 1 and facts[0].answers == ("Zenthia",)
    window.model.add_target("Port Zenthia Lighthouse", "place", facts)
    assert "1 facts" in window.targets.list.item(0).text()
    configure(window, 2, evaluate=True)
    outcome, report = run_to_end(qtbot, window)
    assert outcome == "finished", report
    table = window.facts.table
    assert table.rowCount() == len(report["fact_table"]) > 0
    marks = {table.item(r, c).text()[0] for r in range(table.rowCount()) for c in (4, 5)}
    assert marks <= {"✔", "✘"} and marks
    assert "P(known)" in window.facts.summary.text()
    assert {"forget", "retain"} <= {row["role"] for row in report["fact_table"]}
    window.ask.prompt.setText("Where is Port Zenthia Lighthouse?")
    window.ask.chat.setChecked(False)
    window.ask.max_tokens.setValue(12)
    pieces = []
    window.model.sig_ask.connect(pieces.append)
    qtbot.mouseClick(window.ask.ask_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(p.which == "current" and p.done for p in pieces), timeout=60_000)
    original, current = window.ask.original.toPlainText(), window.ask.current.toPlainText()
    assert original and current
    assert len([p for p in pieces if p.which == "original" and p.text]) > 1  # streamed, not in one piece
    assert "".join(p.text for p in pieces if p.which == "current") == current
    qtbot.waitUntil(lambda: window.model.busy is None)


def test_save_model_and_load_it_back(qtbot, window, tiny_model_dir, tiny_sae_dir, tmp_path):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    window.model.add_target("Port Zenthia Lighthouse", "place")
    configure(window, 2)
    assert run_to_end(qtbot, window)[0] == "finished"
    destination = tmp_path / "saved-model"
    with qtbot.waitSignal(window.model.sig_saved, timeout=60_000) as blocker:
        window.save_model_to(str(destination))
    qtbot.waitUntil(lambda: window.model.busy is None)
    assert Path(blocker.args[0]) == destination.resolve()
    assert (destination / "config.json").is_file() and list(destination.glob("*.safetensors"))
    window.save_model_to(str(destination))  # never over an existing folder
    assert window.error_box is not None and "already exists" in window.error_box.text()
    window.error_box.close()
    load(qtbot, window, destination, tiny_sae_dir)
    assert window.model.description["model"]["source"] == str(destination)
    assert not window.model.modified


def test_close_during_run_stops_the_worker(qtbot, tiny_model_dir, tiny_sae_dir, data_dir, fail_on_running_threads):
    before = set((data_dir / "runs").glob("*")) if (data_dir / "runs").exists() else set()
    win = MainWindow(autoload=False)
    qtbot.addWidget(win)
    win.show()
    load(qtbot, win, tiny_model_dir, tiny_sae_dir)
    win.model.add_target("Port Zenthia Lighthouse", "place")
    configure(win, 500)
    with qtbot.waitSignal(win.model.sig_step, timeout=RUN_TIMEOUT):
        win.run_panel.start_button.click()
    win.close()
    assert not any(t.isRunning() for t in fail_on_running_threads if _alive(t))
    runs = list(set((data_dir / "runs").iterdir()) - before)
    assert len(runs) == 1
    lines = metric_lines(runs[0])
    assert 1 <= len(lines) < 500 and [line["step"] for line in lines] == list(range(1, len(lines) + 1))
    assert json.loads((runs[0] / "report.json").read_text())["stopped"] == "cancelled"


def test_settings_are_remembered(qtbot, tmp_path):
    first = MainWindow(autoload=False)
    qtbot.addWidget(first)
    first.run_panel.steps.setValue(17)
    first.run_panel.method.setCurrentText("npo")
    first.setup.model_source.set_value(str(tmp_path), "folder")
    first.close()
    second = MainWindow(autoload=False)
    qtbot.addWidget(second)
    assert second.run_panel.steps.value() == 17
    assert second.run_panel.method.currentText() == "npo"
    assert second.setup.model_source.value() == str(tmp_path)


def _alive(thread) -> bool:  # noqa: ANN001
    try:
        thread.isRunning()
        return True
    except RuntimeError:
        return False
