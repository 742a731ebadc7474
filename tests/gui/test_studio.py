"""The studio in the real main window (tiny model): the map drawn right after a load (shipped cache or computed
in the background), Try these, the second-run choice, status texts, the Runs panel and the facts-file picker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from tests.engine_helpers import tiny_session
from tests.gui.test_main_window import LOAD_TIMEOUT, RUN_TIMEOUT, choose_folders, configure, open_window, run_to_end
from tests.test_studio_engine import copy_runs, fake_statuses, make_runs, ship
from unlearn_studio.engine import demo_cache
from unlearn_studio.engine.paths import user_data_dir
from unlearn_studio.engine.suggestions import Suggestion, suggested_targets


def load_with_map(qtbot, win, model_dir: Path, sae_dir: Path, *, verify: bool) -> None:
    """Load through the Set-up panel, say "Use anyway" to the tiny SAE's question, and wait for the map job."""
    win.entities.verify.setChecked(verify)
    choose_folders(win, model_dir, sae_dir)
    with qtbot.waitSignal(win.model.sig_loaded, timeout=LOAD_TIMEOUT):
        qtbot.mouseClick(win.setup.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.sae_warning_box is not None and win.sae_warning_box.isVisible(), timeout=10_000)
    with qtbot.waitSignal(win.model.sig_map, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(win.sae_use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)


def drawn_points(win) -> tuple[int, int]:
    win.plots.repaint_now()
    return len(win.plots.known_scatter.data), len(win.plots.unknown_scatter.data)


def test_map_from_the_shipped_cache_right_after_load(qtbot, tiny_model_dir, tiny_sae_dir, tmp_path, monkeypatch):
    folder = tmp_path / "demo_cache"
    monkeypatch.setattr(demo_cache, "cache_folder", lambda: folder)
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    statuses = fake_statuses(session, known=20, unknown=25)
    known, unknown = ship(folder, session, statuses)
    refs = session.references(known, unknown)
    expected = suggested_targets(statuses, refs.known_names, refs.known_entity_p_known.tolist())
    shutil.rmtree(user_data_dir() / "cache", ignore_errors=True)  # a first start: only the shipped files
    win = open_window(qtbot)
    jobs = []
    win.model.sig_progress.connect(lambda job, message, fraction: jobs.append((job, message)))
    load_with_map(qtbot, win, tiny_model_dir, tiny_sae_dir, verify=True)
    assert drawn_points(win) == (20, 25)  # the shipped verified references, before any run
    assert not any("known-ness: asking" in message for _, message in jobs)  # nothing was classified
    statuses_shown = {win.entities.items.item(r, 3).text().split()[0] for r in range(win.entities.items.rowCount())}
    assert {"known", "unknown", "excluded"} <= statuses_shown
    assert win.tabs.currentWidget() is win.plots
    assert win.try_these.names() == [s.name for s in expected]
    assert "2-D map ready" in win.job_label.text()


def test_map_computed_in_the_background_for_another_model(qtbot, tiny_model_dir, tiny_sae_dir, isolated_data_dir):
    win = open_window(qtbot)
    progress = []
    win.model.sig_progress.connect(lambda job, message, fraction: progress.append((job, fraction)))
    load_with_map(qtbot, win, tiny_model_dir, tiny_sae_dir, verify=False)
    assert any(job == "map" for job, _ in progress) and max(f for job, f in progress if job == "map") > 0.5
    known, unknown = tiny_session(tiny_model_dir, tiny_sae_dir).reference_entities([], verify=False)
    assert drawn_points(win) == (len(known), len(unknown))  # the shipped lists as they are (verify off)
    filled = {win.entities.items.item(r, 0).text() for r in range(win.entities.items.rowCount())
              if win.entities.items.item(r, 4).text() != "—"}
    assert filled == {e.name for e in [*known, *unknown]}  # the table's P(known), for every entity of the map
    assert not win.try_these.isVisible()  # nothing classified: no suggestions


def test_try_these_adds_a_target(qtbot, tiny_model_dir, tiny_sae_dir, isolated_data_dir):
    win = open_window(qtbot)
    load_with_map(qtbot, win, tiny_model_dir, tiny_sae_dir, verify=False)
    win.try_these.set_suggestions([Suggestion("Eiffel Tower", "place", 0.97, 4, 4), Suggestion("Marie Curie", "person", 0.95, 3, 3)])
    assert win.try_these.isVisible() and win.try_these.names() == ["Eiffel Tower", "Marie Curie"]
    qtbot.mouseClick(win.try_these.buttons["Marie Curie"], Qt.MouseButton.LeftButton)
    assert win.targets.names() == ["Marie Curie"]


def test_second_start_asks_where_to_start_and_the_report_says(qtbot, tiny_model_dir, tiny_sae_dir, isolated_data_dir):
    win = open_window(qtbot)
    load_with_map(qtbot, win, tiny_model_dir, tiny_sae_dir, verify=False)
    win.model.add_target("Port Zenthia Lighthouse", "place")
    configure(win, 2)
    outcome, first = run_to_end(qtbot, win)
    assert outcome == "finished" and first["started_from"] == "original" and win.start_from_box is None
    assert "Unlearning" not in win.job_label.text() and "Run finished" in win.job_label.text()
    assert win.model.modified

    def start_and_choose(button_name: str) -> dict:
        win.start_from_box = None
        qtbot.mouseClick(win.run_panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.start_from_box is not None and win.start_from_box.isVisible())
        assert win.model.busy is None  # nothing starts before the answer
        assert win.start_from_box.defaultButton() is win.start_original_button
        with qtbot.waitSignal(win.model.sig_run_ended, timeout=RUN_TIMEOUT) as blocker:
            qtbot.mouseClick(getattr(win, button_name), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)
        assert blocker.args[0] == "finished", blocker.args
        return blocker.args[1]

    name = "Port Zenthia Lighthouse"
    continued = start_and_choose("start_current_button")
    assert continued["started_from"] == "current"
    assert continued["initial"][name]["point"] != pytest.approx(first["initial"][name]["point"])
    again = start_and_choose("start_original_button")
    assert again["started_from"] == "original"
    assert again["initial"][name]["point"] == pytest.approx(first["initial"][name]["point"], abs=1e-4)
    assert json.loads((Path(again["run_dir"]) / "report.json").read_text())["started_from"] == "original"
    assert "Unlearning" not in win.job_label.text()
    # The Runs panel lists the three runs as they end.
    assert win.runs.row_count() == 3


def test_runs_panel_opens_and_compares_without_a_model(qtbot, tiny_model_dir, tiny_sae_dir, tmp_path, isolated_data_dir):
    from unlearn_studio.engine.run_history import runs_root

    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    measured, plain, _killed = make_runs(session, runs_root())
    elsewhere = copy_runs([measured], tmp_path / "from-another-machine")[0]
    win = open_window(qtbot)
    assert win.model.session is None and win.runs.row_count() == 3
    win.runs.add_root(str(elsewhere))
    assert win.runs.row_count() == 4
    row = next(r for r in range(win.runs.row_count()) if win.runs.table.item(r, 8).text() == measured.name)
    rect = win.runs.table.visualItemRect(win.runs.table.item(row, 0))
    qtbot.mouseClick(win.runs.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(win.runs.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    report = json.loads((measured / "report.json").read_text())
    qtbot.waitUntil(lambda: win.facts.table.rowCount() == len(report["fact_table"]))
    assert len(report["fact_table"]) > 0 and win.model.session is None
    assert drawn_points(win) == (len(report["reference_points"]["known"]), len(report["reference_points"]["unknown"]))
    assert win.plots.curve_points(win.plots.pknown_curves["Eiffel Tower"]) == 3  # the start and two steps
    assert win.plots.curve_points(win.plots.trajectories["Eiffel Tower"]) == 3
    assert "P(known)" in win.facts.summary.text() and measured.name in win.tabs.tabText(0)
    assert "sae-align" in win.runs.details.text()
    win.runs.select_paths([str(measured), str(plain), str(elsewhere)])
    qtbot.waitUntil(lambda: win.tabs.currentWidget() is win.comparison)
    assert len(win.comparison.curves) == 3 and len(win.comparison.trajectories) == 3
    assert win.comparison.plane_count() == 2  # the two runs measured before/after; the other is named in the note
    assert plain.name in win.comparison.note.text()
    win.comparison.grab().save(str(tmp_path / "comparison.png"))


def test_facts_file_asks_which_entries_to_add(qtbot, tiny_model_dir, tiny_sae_dir, tmp_path, isolated_data_dir):
    from tests.test_studio_engine import FACTS

    path = tmp_path / "facts.json"
    path.write_text(json.dumps(FACTS))
    win = open_window(qtbot)
    win.model.add_target("Velmora Quay", "place")
    win.targets.pick_facts_entries(str(path))
    dialog = win.targets.entries_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.chosen() == ["Velmora Quay"]  # the file's entry for the named target, the others left out
    dialog.accept()
    assert [t.name for t in win.model.targets] == ["Velmora Quay"] and len(win.model.targets[0].facts) == 1
    win.targets.pick_facts_entries(str(path))
    dialog = win.targets.entries_dialog
    qtbot.mouseClick(dialog.all_button, Qt.MouseButton.LeftButton)
    dialog.set_ticked(["Ostrava Gate", "Velmora Quay"])
    dialog.accept()
    assert sorted(win.targets.names()) == ["Ostrava Gate", "Velmora Quay"]
    win.targets.pick_facts_entries(str(path))
    win.targets.entries_dialog.reject()
    assert win.targets.entries_dialog.result() == QDialog.DialogCode.Rejected
    assert sorted(win.targets.names()) == ["Ostrava Gate", "Velmora Quay"]
