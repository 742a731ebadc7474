"""The window refuses what the CLI refuses, with the same words, before any job starts; a diverged run is an error."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.test_main_window import data_dir, load, run_to_end, shared_data_dir, window, window_ready_to_run  # noqa: F401
from unlearn_studio.engine.generation import check_prompt
from unlearn_studio.engine.validation import InvalidInput, check_target_name


def _refusal(check, *args, **kwargs) -> str:
    with pytest.raises(InvalidInput) as refused:
        check(*args, **kwargs)
    return str(refused.value)


def _shown_error(qtbot, win) -> str:
    qtbot.waitUntil(lambda: win.error_box is not None and win.error_box.isVisible())
    text = win.error_box.text()
    win.error_box.close()
    win.error_box = None
    return text


def test_the_window_refuses_bad_inputs_with_the_clis_words(qtbot, window, tiny_model_dir, tiny_sae_dir, data_dir):  # noqa: F811
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    started = []
    window.model.jobs.sig_changed.connect(lambda: started.append(window.model.busy))

    window.targets.name.setText("!!!")
    qtbot.mouseClick(window.targets.add_button, Qt.MouseButton.LeftButton)
    assert _shown_error(qtbot, window) == _refusal(check_target_name, "!!!")
    assert window.model.targets == []

    prompt = "Paris " * 300  # past the tiny model's 256-token context
    window.ask.prompt.setText(prompt)
    window.ask.chat.setChecked(False)
    qtbot.mouseClick(window.ask.ask_button, Qt.MouseButton.LeftButton)
    session = window.model.session
    expected = _refusal(check_prompt, prompt, session.tokenizer, session.model, window.ask.max_tokens.value(), chat=False)
    assert _shown_error(qtbot, window) == expected and "tokens long" in expected

    window.model.add_target("Port Zenthia Lighthouse", "place")
    window.run_panel.form.widgets["lr"].setText("nan")
    qtbot.mouseClick(window.run_panel.start_button, Qt.MouseButton.LeftButton)
    assert "setting 'lr' must be a number, not NaN" in _shown_error(qtbot, window)
    assert started == [] and window.model.busy is None  # no job was started for any of them
    assert not (data_dir / "runs").exists() or list((data_dir / "runs").iterdir()) == []


def test_a_diverged_run_is_an_error_not_finished(qtbot, tiny_model_dir, tiny_sae_dir, data_dir):  # noqa: F811
    win = window_ready_to_run(qtbot, tiny_model_dir, tiny_sae_dir, steps=3)
    win.run_panel.form.widgets["lr"].setText("1e9")
    errors = []
    win.model.sig_error.connect(lambda title, message, details: errors.append((title, message)))
    outcome, info = run_to_end(qtbot, win)
    assert outcome == "failed" and info["status"] == "diverged"
    assert errors and errors[-1][0] == "Unlearning diverged" and "Lower the learning rate" in errors[-1][1]
    assert "diverged" in _shown_error(qtbot, win)
    assert win.run_panel.progress.format() == "failed"
    assert not win.model.session.is_modified()  # the starting weights are back
