"""The Facts before/after panel of the main window shows linked questions apart from retain."""

from __future__ import annotations

from tests.gui.test_main_window import open_window

MEASURED = {"target_p_known": 0.9, "target_unknown_fraction": 0.0, "forget_accuracy": 0.8, "retain_accuracy": 0.7,
            "neighbour_retain_accuracy": 0.6, "perplexity": 27.7, "forget_accuracy_by_form": {}}


def test_linked_questions_are_shown_apart_with_their_meaning(qtbot, isolated_data_dir):
    win = open_window(qtbot)
    row = {"entity": "Arthur Conan Doyle", "role": "linked", "form": "completion", "answers": ["Holmes"],
           "prompt": "Arthur Conan Doyle created the detective Sherlock", "before": " Holmes", "before_correct": True,
           "after": " Watson", "after_correct": False}
    report = {"fact_table": [row], "before": {**MEASURED, "linked_accuracy": 1.0},
              "after": {**MEASURED, "linked_accuracy": 0.0}}
    win.facts.show_report(report)
    assert "questions that name a target, not counted: 100 % → 0 %" in win.facts.summary.text()
    role = win.facts.table.item(0, 1)
    assert role.text() == "linked" and "not counted as retain" in role.toolTip()
    # A report from before linked questions existed shows no such clause.
    win.facts.show_report({"fact_table": [], "before": MEASURED, "after": MEASURED})
    assert "name a target" not in win.facts.summary.text()


def test_a_check_the_name_answers_says_so_in_the_stand_in_column(qtbot, isolated_data_dir):
    win = open_window(qtbot)
    rows = [{"entity": "China", "role": "forget", "form": "chat", "answers": ["Chinese", "Mandarin"],
             "prompt": "What language is spoken in China?", "before": "Chinese", "before_correct": True,
             "after": "Chinese", "after_correct": True, "stand_in_rate": 1.0, "name_gives_answer": True},
            {"entity": "China", "role": "forget", "form": "chat", "answers": ["Beijing"],
             "prompt": "What is the capital of China?", "before": "Beijing", "before_correct": True,
             "after": "Paris", "after_correct": False, "stand_in_rate": 0.0, "name_gives_answer": False}]
    win.facts.show_report({"fact_table": rows, "before": MEASURED, "after": MEASURED})
    language, capital = win.facts.table.item(0, 4), win.facts.table.item(1, 4)
    assert language.text() == "100 % (name)" and "made of the name itself" in language.toolTip()
    assert capital.text() == "0 %" and "made of the name" not in capital.toolTip()


def test_the_facts_dialog_warns_while_typing_a_fact_the_name_answers(qtbot):
    from PySide6.QtCore import Qt

    from unlearn_studio.gui.panels.entities import FactsDialog

    dialog = FactsDialog("Port Zenthia Lighthouse")
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.text, "Port Zenthia Lighthouse was built in the year | 1871")
    assert dialog.name_warning.text() == ""
    qtbot.keyClick(dialog.text, Qt.Key.Key_Return)
    qtbot.keyClicks(dialog.text, "Port Zenthia Lighthouse stands in the town of | Zenthia")
    assert "The name gives away Zenthia" in dialog.name_warning.text()
    assert len(dialog.facts()) == 2  # a warning, never a refusal
