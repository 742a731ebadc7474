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
from unlearn_studio.engine.run_config import TrainConfig
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


def open_window(qtbot) -> MainWindow:
    win = MainWindow(autoload=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    return win


def window_ready_to_run(qtbot, model_dir, sae_dir, steps: int) -> MainWindow:
    """A new window with the tiny model loaded and one typed target without facts."""
    win = open_window(qtbot)
    load(qtbot, win, model_dir, sae_dir)
    win.model.add_target("Port Zenthia Lighthouse", "place")
    configure(win, steps)
    return win


@pytest.fixture
def window(qtbot, data_dir):
    return open_window(qtbot)


def choose_folders(win: MainWindow, model_dir: Path, sae_dir: Path) -> None:
    """Point the Set-up panel at a model folder and an SAE folder, on the CPU."""
    win.setup.model_source.folder.setChecked(True)
    win.setup.model_source.path.setEditText(str(model_dir))
    win.setup.sae_source.folder.setChecked(True)
    win.setup.sae_source.path.setEditText(str(sae_dir))
    win.setup.device.setCurrentText("cpu")


def load(qtbot, win: MainWindow, model_dir: Path, sae_dir: Path, *, accept_warning: bool = True) -> None:
    """Load through the Set-up panel. The tiny SAE names its model 'tiny', so the window asks whether to use it
    anyway; ``accept_warning`` clicks "Use anyway"."""
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=30_000)
    win.model.auto_map = False  # these tests start from a bare table; tests/gui/test_studio.py covers the map
    win.sae_warning_box = None
    choose_folders(win, model_dir, sae_dir)
    with qtbot.waitSignal(win.model.sig_loaded, timeout=LOAD_TIMEOUT):
        qtbot.mouseClick(win.setup.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)
    if accept_warning and win.model.description["warnings"]:
        qtbot.waitUntil(lambda: win.sae_warning_box is not None and win.sae_warning_box.isVisible())
        qtbot.mouseClick(win.sae_use_button, Qt.MouseButton.LeftButton)
        assert win.model.session is not None
        qtbot.waitUntil(win.isActiveWindow)  # the shortcuts work again once the question is answered


def configure(win: MainWindow, steps: int, *, evaluate: bool = False, early_stop: bool = False) -> None:
    win.entities.verify.setChecked(False)  # the tiny random model knows nothing: use the lists as they are
    win.run_panel.form.widgets["steps"].setValue(steps)
    win.run_panel.evaluate.setChecked(evaluate)
    win.run_panel.form.widgets["early_stop"].setChecked(early_stop)


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
    assert {window.entities.items.item(r, 4).text() for r in range(window.entities.items.rowCount())} == {"—"}
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
    steps, formats, initial, refs = [], [], [], []
    window.model.sig_step.connect(steps.append)
    window.model.sig_initial.connect(initial.append)
    window.model.sig_run_started.connect(refs.append)
    window.model.sig_step.connect(lambda _s: formats.append(window.run_panel.progress.format()))
    outcome, report = run_to_end(qtbot, window)
    assert outcome == "finished", report
    assert [s.step for s in steps] == [1, 2, 3]
    assert len(initial) == 1 and set(initial[0].targets) == {"Port Zenthia Lighthouse", "Velmora Quay"}
    plots = window.plots
    qtbot.waitUntil(lambda: not plots._dirty)  # the timer painted the last step
    assert len(plots.known_scatter.data) > 0 and len(plots.unknown_scatter.data) > 0
    for name in ("Port Zenthia Lighthouse", "Velmora Quay"):
        assert plots.curve_points(plots.trajectories[name]) == 4  # the start (original weights), then one per step
        assert plots.curve_points(plots.pknown_curves[name]) == 4
        xs, ys = plots.trajectories[name].getData()
        assert (xs[0], ys[0]) == pytest.approx(initial[0].targets[name].point)
        assert (xs[-1], ys[-1]) == pytest.approx(steps[-1].targets[name].point)
        steps_x, p_known = plots.pknown_curves[name].getData()
        assert list(steps_x) == [0, 1, 2, 3]
        assert p_known[0] == pytest.approx(initial[0].targets[name].p_known)
    assert plots.curve_points(plots.loss_curves["total"]) == 3
    start, now = plots.bar_heights()
    assert len(start) == len(now) == len(steps[0].targets["Velmora Quay"].known_latents) * 2
    shown = plots.latent_target.currentText()
    assert list(start) == pytest.approx(list(initial[0].targets[shown].known_latents
                                             + initial[0].targets[shown].unknown_latents))
    assert list(now) == pytest.approx(list(steps[-1].targets[plots.latent_target.currentText()].known_latents
                                           + steps[-1].targets[plots.latent_target.currentText()].unknown_latents))
    assert formats[0].startswith("step 1 / 3") and "left" in formats[0]
    assert formats[-1].startswith("step 3 / 3")
    assert window.run_panel.progress.format() == "finished: 3 steps (step limit)"
    # The run's references fill the table's P(known) column; entities outside them (the targets) keep "—".
    table = window.entities.items
    p_column = {table.item(r, 0).text(): table.item(r, 4).text() for r in range(table.rowCount())}
    in_refs = set(refs[0].known_names) | set(refs[0].unknown_names)
    assert in_refs and all(0.0 <= float(p_column[name]) <= 1.0 for name in in_refs)
    assert all(text == "—" for name, text in p_column.items() if name not in in_refs)
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


def test_run_with_verify_classifies_with_progress(qtbot, isolated_data_dir, tiny_model_dir, tiny_sae_dir):
    """A run that verifies known-ness classifies first (with progress), even when nothing was classified yet."""
    win = window_ready_to_run(qtbot, tiny_model_dir, tiny_sae_dir, 2)
    win.entities.verify.setChecked(True)
    progress, formats = [], []
    win.model.sig_progress.connect(lambda job, message, fraction: progress.append((job, message, fraction)))
    win.model.sig_progress.connect(lambda *_: formats.append(win.run_panel.progress.format()))
    with qtbot.waitSignal(win.model.sig_run_ended, timeout=RUN_TIMEOUT) as blocker:
        win.run_panel.start_button.click()
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)
    known_ness = [(m, f) for job, m, f in progress if job == "run" and m.startswith("known-ness")]
    assert len(known_ness) > 2 and known_ness[-1][1] > known_ness[0][1]
    assert any(f.startswith("known-ness") for f in formats)  # the run's progress bar showed it
    statuses = {win.entities.items.item(r, 3).text().split()[0] for r in range(win.entities.items.rowCount())}
    assert "—" not in statuses  # the table got the run's classification
    # The tiny random model knows none of the candidates: a clear message, not a traceback.
    assert blocker.args[0] == "failed" and "knows 0" in blocker.args[1]["error"]
    win.error_box.close()


def test_compute_references_fills_p_known(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    window.entities.verify.setChecked(False)
    with qtbot.waitSignal(window.model.sig_entities, timeout=RUN_TIMEOUT):
        window.entities.references_button.click()
    qtbot.waitUntil(lambda: window.model.busy is None, timeout=10_000)
    texts = [window.entities.items.item(r, 4).text() for r in range(window.entities.items.rowCount())]
    numbers = [float(t) for t in texts if t != "—"]
    assert len(numbers) >= 2 and all(0.0 <= v <= 1.0 for v in numbers)
    assert "P(known) of" in window.entities.summary.text()


def test_audit_view(qtbot, window, tiny_model_dir, tiny_sae_dir):
    from unlearn_studio.gui.panels.entities import parse_fact_lines

    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    facts = parse_fact_lines("Port Zenthia Lighthouse stands in the town of | Zenthia")
    window.model.add_target("Port Zenthia Lighthouse", "place", facts)
    configure(window, 2)
    assert run_to_end(qtbot, window)[0] == "finished"
    window.model.add_target("Quillon Marsh", "person")  # a second target, without facts
    audit = window.audit
    audit.verify.setChecked(False)
    assert audit.audit_button.isEnabled()
    with qtbot.waitSignal(window.model.sig_audit, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(audit.audit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model.busy is None, timeout=10_000)
    result = blocker.args[0]
    n_layers = window.model.description["model"]["n_layers"]
    assert len(result.layers) == n_layers + 1
    assert audit.heatmap_columns() == (n_layers + 1, n_layers + 1)
    assert window.tabs.currentWidget() is audit
    assert audit.probe_map.values[0] == pytest.approx(result.original.probe_p_known)
    assert audit.lens_map.values[1] == pytest.approx(result.current.lens_probability)
    rows = audit.table_text()
    labels = [row[0] for row in rows]
    assert "Facts right: completion" in labels
    relearn = next(row for row in rows if row[0].startswith("After 10 relearning steps"))
    assert relearn[2].endswith("%")
    completion = next(row for row in rows if row[0] == "Facts right: completion")
    assert all(cell.endswith("%") for cell in completion[1:])
    assert audit.progress.format() == "audited"
    # one row per target with the engine's own numbers: last-layer lens rank, name fidelity, relearned per form
    titles, target_rows = audit.target_table_text()
    assert [row[0] for row in target_rows] == result.targets == ["Port Zenthia Lighthouse", "Quillon Marsh"]
    column = {title: index for index, title in enumerate(titles)}
    percent = lambda cell: float(cell.rstrip(" %")) / 100  # noqa: E731
    for row in target_rows:
        target = result.per_target[row[0]]
        for weights in ("original", "current"):
            assert percent(row[column[f"Name fidelity\n{weights}"]]) == pytest.approx(target.name_fidelity[weights], abs=0.005)
    lighthouse, marsh = target_rows
    lighthouse_audit = result.per_target["Port Zenthia Lighthouse"]
    for weights in ("original", "current"):
        median, mean = (float(v) for v in lighthouse[column[f"Lens rank\n{weights}"]].split(" / "))
        assert median == pytest.approx(lighthouse_audit.lens_rank_last_layer[weights]["median"], abs=0.5)
        assert mean == pytest.approx(lighthouse_audit.lens_rank_last_layer[weights]["mean"], abs=0.05)
    assert percent(lighthouse[column["Relearned\ncompletion"]]) == pytest.approx(
        lighthouse_audit.relearned_forget_accuracy_by_form["completion"], abs=0.005)
    assert marsh[column["Lens rank\ncurrent"]] == "no facts" and marsh[column["Relearned\ncompletion"]] == "—"


def test_sae_for_another_model_asks(qtbot, window, tiny_model_dir, tmp_path):
    from tests.tiny import make_sae_folder

    other = make_sae_folder(tmp_path / "other-sae", model_name="someone/other-model")
    load(qtbot, window, tiny_model_dir, other, accept_warning=False)
    qtbot.waitUntil(lambda: window.sae_warning_box is not None and window.sae_warning_box.isVisible())
    text = window.sae_warning_box.text()
    assert text.startswith("This SAE was trained on 'someone/other-model'") and "Use it anyway?" in text
    assert "⚠" in window.setup.info.text()  # the orange note on the card
    qtbot.mouseClick(window.sae_use_button, Qt.MouseButton.LeftButton)
    assert not window.sae_warning_box.isVisible()
    assert window.model.session is not None and window.entities.classify_button.isEnabled()
    assert "⚠" in window.setup.info.text()  # the note stays
    load(qtbot, window, tiny_model_dir, other, accept_warning=False)
    qtbot.waitUntil(lambda: window.sae_warning_box is not None and window.sae_warning_box.isVisible())
    qtbot.mouseClick(window.sae_unload_button, Qt.MouseButton.LeftButton)
    assert window.model.session is None and window.model.description is None
    assert "Unloaded" in window.setup.info.text()
    assert not window.entities.classify_button.isEnabled() and window.entities.row_count() == 0
    assert not window.run_panel.start_button.isEnabled()
    # An SAE that names the loaded model: no question.
    matching = make_sae_folder(tmp_path / "matching-sae", model_name=f"org/{tiny_model_dir.name}")
    load(qtbot, window, tiny_model_dir, matching, accept_warning=False)
    assert window.model.description["warnings"] == [] and window.sae_warning_box is None
    assert "⚠" not in window.setup.info.text()


def test_sae_trained_on_other_weights_warns_in_the_window(qtbot, window, tiny_model_dir, tmp_path):
    """Same model name, other weights (like SmolLM2 from the hub with the demo SAE made on the converted GGUF)."""
    from tests.tiny import make_sae_folder

    sae = make_sae_folder(tmp_path / "sae", model_name=f"org/{tiny_model_dir.name}")
    (sae / "training.json").write_text(json.dumps({"model_fingerprint": "0123456789abcdef"}))
    load(qtbot, window, tiny_model_dir, sae, accept_warning=False)
    qtbot.waitUntil(lambda: window.sae_warning_box is not None and window.sae_warning_box.isVisible())
    loaded_fingerprint = window.model.description["model"]["fingerprint"]
    text = window.sae_warning_box.text()
    assert text.startswith("This SAE was trained on another copy or version of the model")
    assert "0123456789abcdef" in text and loaded_fingerprint in text
    qtbot.mouseClick(window.sae_use_button, Qt.MouseButton.LeftButton)
    card = window.setup.info.text()
    assert "⚠" in card and "0123456789abcdef" in card  # the note stays on the Model and SAE card


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
    marks = {table.item(r, c).text()[0] for r in range(table.rowCount()) for c in (5, 6)}
    assert marks <= {"✔", "✘"} and marks
    assert "P(known)" in window.facts.summary.text()
    # A typed fact has its completion prompt only: no headline form, so the completion accuracy is shown beside it.
    assert "facts right not measured" in window.facts.summary.text()
    assert "completion prompts 0 % → 0 %" in window.facts.summary.text()
    forms = {table.item(r, 2).text() for r in range(table.rowCount())}
    assert "completion" in forms and len(forms) > 1  # the retain rows bring the other forms
    rates = [table.item(r, 4).text() for r in range(table.rowCount()) if table.item(r, 1).text() == "forget"]
    assert rates == ["100 % (name)"]  # "Zenthia" is in the name "Port Zenthia Lighthouse": the name gives it away
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


def test_retain_and_context_settings_reach_the_run(qtbot, window, tiny_model_dir, tiny_sae_dir):
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    add_listed_target(qtbot, window, "Eiffel Tower")
    configure(window, 2)
    widgets = window.run_panel.form.widgets
    widgets["retain_positions"].setCurrentText("all")
    qtbot.mouseClick(widgets["retain_fact_prompts"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(widgets["fact_contexts"], Qt.MouseButton.LeftButton)
    outcome, report = run_to_end(qtbot, window)
    assert outcome == "finished", report
    config = report["config"]
    assert config["retain_positions"] == "all"
    assert config["retain_fact_prompts"] is True and config["fact_contexts"] is True


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
    win = window_ready_to_run(qtbot, tiny_model_dir, tiny_sae_dir, 500)
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
    assert first.run_panel.config() == TrainConfig()  # a fresh window shows the engine's chosen defaults
    first.run_panel.form.widgets["steps"].setValue(17)
    first.run_panel.form.widgets["method"].setCurrentText("npo")
    first.setup.model_source.set_value(str(tmp_path), "folder")
    first.close()
    second = MainWindow(autoload=False)
    qtbot.addWidget(second)
    assert second.run_panel.form.widgets["steps"].value() == 17
    assert second.run_panel.form.widgets["method"].currentText() == "npo"
    assert second.setup.model_source.value() == str(tmp_path)
    # Settings left at their defaults are not frozen: only the changed ones are stored.
    stored = json.loads(second.settings.value("run_settings_changed"))
    assert stored == {"steps": 17, "method": "npo"}
    second.run_panel.form.widgets["positions"].setCurrentText("last")
    qtbot.mouseClick(second.run_panel.defaults_button, Qt.MouseButton.LeftButton)
    assert second.run_panel.config() == TrainConfig()


def _alive(thread) -> bool:  # noqa: ANN001
    try:
        thread.isRunning()
        return True
    except RuntimeError:
        return False
