"""One settings schema: the CLI flags and the window's form are generated from it, and agree; loading is strict."""

from __future__ import annotations

import argparse
import math

import pytest

from unlearn_studio.cli import build_parser, main
from unlearn_studio.engine.methods import METHODS
from unlearn_studio.engine.objectives import OBJECTIVES
from unlearn_studio.engine.run_config import TrainConfig
from unlearn_studio.errors import UserError


def _unlearn_actions() -> dict[str, argparse.Action]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in commands.choices["unlearn"]._actions}


def test_every_declared_method_is_implemented_once():
    assert list(OBJECTIVES) == list(METHODS)
    assert TrainConfig.schema()[0].choices == tuple(METHODS)


def test_the_cli_flags_are_the_schema():
    actions = _unlearn_actions()
    for f in TrainConfig.schema():
        action = actions[f.name]
        assert action.option_strings[0] == "--" + f.name.replace("_", "-")
        assert action.default is None  # an unset flag leaves the schema's default
        if f.kind is bool:
            assert f"--no-{f.name.replace('_', '-')}" in action.option_strings
        else:
            assert action.type is f.kind
            assert tuple(action.choices or ()) == f.choices
        assert f.spec.help in action.help


def test_the_window_form_is_the_schema(qtbot):
    from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

    from unlearn_studio.gui.settings_form import SettingsForm

    form = SettingsForm(TrainConfig)
    qtbot.addWidget(form)
    schema = TrainConfig.schema()
    assert list(form.widgets) == [f.name for f in schema]
    expected_kind = {bool: QCheckBox, int: QSpinBox, float: QDoubleSpinBox}
    for f in schema:
        widget = form.widgets[f.name]
        kind = QComboBox if f.choices else QLineEdit if f.optional else expected_kind[f.kind]
        assert isinstance(widget, kind), f.name
        if isinstance(widget, QComboBox):
            assert tuple(widget.itemText(i) for i in range(widget.count())) == f.choices
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)) and f.spec.minimum is not None:
            assert widget.minimum() == f.spec.minimum
        assert f.spec.help[1:] in widget.toolTip()
    assert form.values() == TrainConfig().to_dict()
    assert form.settings() == TrainConfig()


def test_the_form_enables_only_the_chosen_methods_settings(qtbot):
    from unlearn_studio.gui.settings_form import SettingsForm

    form = SettingsForm(TrainConfig)
    qtbot.addWidget(form)
    form.widgets["method"].setCurrentText("npo")
    assert form.widgets["beta"].isEnabled() and not form.widgets["space"].isEnabled()
    assert form.widgets["steps"].isEnabled()
    form.widgets["method"].setCurrentText("grad-diff")
    assert form.widgets["lambda_retain"].isEnabled() and not form.widgets["beta"].isEnabled()
    assert "2e-05" in form.widgets["lr"].placeholderText()


def test_tooltips_start_with_a_capital_but_keep_a_small_lambda(qtbot):
    from unlearn_studio.gui.settings_form import SettingsForm

    form = SettingsForm(TrainConfig)
    qtbot.addWidget(form)
    assert form.widgets["lambda_preserve"].toolTip().startswith("λ_preserve: weight of keeping")
    assert form.widgets["steps"].toolTip().startswith("The most optimiser steps")


def test_an_unknown_setting_key_is_an_error_that_lists_the_valid_ones():
    with pytest.raises(UserError, match=r"unknown setting 'lamda_retain'.*valid settings are .*lambda_retain"):
        TrainConfig.from_dict({"lamda_retain": 2.0})


@pytest.mark.parametrize("values, words", [
    ({"steps": 0}, "setting 'steps' must lie in [1, 100000], not 0"),
    ({"steps": 2.5}, "setting 'steps' must be a whole number"),
    ({"space": "codes"}, "setting 'space' must be one of code, code+error, code+residual, residual"),
    ({"lr": math.nan}, "setting 'lr' must be a number, not NaN"),
    ({"early_stop": "yes"}, "setting 'early_stop' is true or false"),
    ({"method": "forget-it"}, "setting 'method' must be one of sae-align"),
])
def test_values_are_checked_by_name(values, words):
    with pytest.raises(UserError) as error:
        TrainConfig.from_dict(values)
    assert words in str(error.value)


def test_run_folders_of_the_first_version_load_flat():
    config = TrainConfig.from_dict({"steps": 5, "objective": {"space": "code", "lambda_retain": 3.0}})
    assert (config.steps, config.space, config.lambda_retain) == (5, "code", 3.0)


def test_a_flag_of_another_method_is_refused(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    code = main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--method", "npo", "--space", "code", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "--space applies to sae-align only, not to --method npo" in capsys.readouterr().err


def test_the_window_refuses_a_bad_value_with_the_cli_words(qtbot, tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    from tests.gui.test_main_window import add_listed_target, load

    from unlearn_studio.gui.main_window import MainWindow

    assert main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--lr", "nan", "--out", str(tmp_path / "run")]) == 2
    cli_words = capsys.readouterr().err.strip().removeprefix("unlearn-studio: error: ")
    window = MainWindow(autoload=False)
    qtbot.addWidget(window)
    window.show()
    load(qtbot, window, tiny_model_dir, tiny_sae_dir)
    add_listed_target(qtbot, window, "Eiffel Tower")
    window.run_panel.form.widgets["lr"].setText("fast")
    window.run_panel.start_button.click()
    assert window.error_box is not None and window.error_box.text() == cli_words
    assert window.model.busy is None
    window.error_box.close()
