"""The Steering panel and the latent dashboard, driven in the real main window on the tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.gui.test_main_window import configure, load, open_window, run_to_end

STEER_TIMEOUT = 400_000  # the first call computes the reference statistics (shared by the module)
PROMPT = "Tell me about the Eiffel Tower in Paris."


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("steer-gui-data")


@pytest.fixture
def window(qtbot, shared_data_dir, isolated_data_dir, monkeypatch, tiny_model_dir, tiny_sae_dir):
    monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(shared_data_dir))
    win = open_window(qtbot)
    load(qtbot, win, tiny_model_dir, tiny_sae_dir)
    win.entities.verify.setChecked(False)  # the tiny random model knows nothing: use the lists as they are
    return win


def steer_and_wait(qtbot, win):  # noqa: ANN201 - the engine SteeringResult shown
    with qtbot.waitSignal(win.model.sig_steered, timeout=STEER_TIMEOUT) as blocker:
        qtbot.mouseClick(win.steering.steer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.model.busy is None, timeout=10_000)
    return blocker.args[0]


def test_steering_panel_shows_both_answers(qtbot, window):
    panel = window.steering
    window.docks["steering"].raise_()
    panel.entity.setEditText("Eiffel Tower")
    panel.prompt.setText(PROMPT)
    panel.chat.setChecked(False)
    panel.max_tokens.setValue(8)
    panel.slider.setFocus()
    qtbot.keyClick(panel.slider, Qt.Key.Key_End)  # strength +2
    for _ in range(20):  # down to 0, as a user moves it with the keyboard
        qtbot.keyClick(panel.slider, Qt.Key.Key_Left)
    assert panel.strength == 0.0 and "unchanged" in panel.strength_label.text()
    result = steer_and_wait(qtbot, window)
    assert result.strength == 0.0
    assert panel.original.toPlainText() == panel.steered.toPlainText() == result.original.strip()
    assert "The answers are the same" in panel.details.text()
    assert panel.progress.value() == 100

    panel.set_strength(-3.0)
    panel.add_unknown.setChecked(True)
    result = steer_and_wait(qtbot, window)
    assert result.strength == -3.0 and result.add_unknown
    assert panel.original.toPlainText() == result.original.strip()
    assert panel.steered.toPlainText() == result.steered.strip()
    assert "-3.0" in panel.steered_group.title()
    assert {latent.kind for latent in result.latents} == {"known", "unknown"}
    assert str(result.latents[0].latent) in panel.details.text()
    assert any(latent.after != latent.before for latent in result.latents)


def test_steering_a_prompt_without_the_entity_says_so(qtbot, window):
    window.steering.entity.setEditText("Eiffel Tower")
    window.steering.prompt.setText("Where is Paris?")
    with qtbot.waitSignal(window.model.sig_error, timeout=STEER_TIMEOUT) as blocker:
        qtbot.mouseClick(window.steering.steer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model.busy is None, timeout=10_000)
    assert "does not mention" in blocker.args[1]
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible())
    assert window.steering.steer_button.isEnabled()


def test_clicking_a_latent_bar_opens_its_dashboard(qtbot, window):
    window.model.add_target("Eiffel Tower")  # the references the steering tests computed
    configure(window, 2)
    outcome, _ = run_to_end(qtbot, window)
    assert outcome == "finished"
    plots = window.plots
    qtbot.waitUntil(lambda: plots.bar_heights()[1].size == 16, timeout=10_000)
    index = 10  # an unknown-entity latent
    latent = [*plots.latent_ids[0], *plots.latent_ids[1]][index]
    qtbot.mouseClick(plots.latent_plot.viewport(), Qt.MouseButton.LeftButton, pos=plots.latent_bar_position(index))
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is window.latents)
    dashboard = window.latents
    assert dashboard.current_latent == latent
    assert dashboard.latent_list.count() == 16
    assert dashboard.latent_list.currentItem().data(Qt.ItemDataRole.UserRole) == latent
    refs = window.model.references
    known, unknown = dashboard.drawn_histogram()
    column = [int(i) for i in refs.latent_ids].index(latent)
    assert known.sum() == int((refs.known_latent_acts[:, column] > 0).sum())  # the prompts where it fires
    assert unknown.sum() == int((refs.unknown_latent_acts[:, column] > 0).sum())
    start, now = dashboard.drawn_markers()
    name = "Eiffel Tower"
    assert start == pytest.approx(plots.latents_start[name][index], abs=1e-6)
    assert now == pytest.approx(plots.latents_now[name][index], abs=1e-6)
    assert f"Latent {latent}" in dashboard.header.text() and "unknown-entity latent" in dashboard.header.text()
    assert f"{refs.separation[latent]:+.2f}" in dashboard.header.text()
    shown = [dashboard.entities.item(row, 0).text() for row in range(dashboard.entities.rowCount())]
    expected = [entity.name for entity in dashboard.profile().top_entities]
    assert shown == expected
    # Another latent from the list redraws the histogram with its own counts.
    dashboard.latent_list.setCurrentRow(0)
    assert dashboard.current_latent == plots.latent_ids[0][0]
    assert np.array_equal(dashboard.drawn_histogram()[0], np.asarray(dashboard.profile().known_counts, dtype=float))
