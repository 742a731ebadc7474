"""The before/after table of the targets' facts and a sample of retain facts, each marked right or wrong."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..app_model import AppModel

COLUMNS = ("Entity", "Role", "Form", "Prompt", "Stand-ins", "Before", "After")
RIGHT, WRONG = "✔", "✘"
LINKED_TIP = ("A question about the target asked through another entity (its prompt or answer names the target): "
              "a model that forgot the target should fail it, so it is not counted as retain.")
STAND_IN_TIP = ("Share of fictitious stand-ins (the target's name replaced) the original model answers this check "
                "for: what “answered like an unknown entity” scores. High means the prompt gives its answer away.")
NAME_TIP = ("The answer is made of the name itself (China → Chinese): a model that only copies the name can give it, "
            "so it counts as answered by every stand-in.")


def _pct(value: object) -> str:
    return "not measured" if value is None else f"{100 * float(value):.0f} %"


def _linked(before: dict, after: dict) -> str:
    """Retain checks that ask about a target through another entity ("Doyle created the detective …"): kept apart."""
    if before.get("linked_accuracy") is None:
        return ""
    shares = f"{_pct(before['linked_accuracy'])} → {_pct(after.get('linked_accuracy'))}"
    return f" (questions that name a target, not counted: {shares})"


def _floor(before: dict) -> str:
    if before.get("stand_in_accuracy") is None:
        return ""
    return f" (fictitious stand-ins: {_pct(before.get('stand_in_accuracy'))})"


def _form(measured: dict, form: str) -> object:
    return (measured.get("forget_accuracy_by_form") or {}).get(form)


def _by_form(before: dict, after: dict) -> str:
    forms = before.get("forget_accuracy_by_form") or {}
    later = after.get("forget_accuracy_by_form") or {}
    return ", ".join(f"{form.replace('_', ' ')} {_pct(value)} → {_pct(later.get(form))}" for form, value in forms.items())


def _num(value: object, fmt: str = ".2f") -> str:
    return "—" if value is None else format(float(value), fmt)


class FactsPanel(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("Run with “Measure before/after” on to fill this table.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        model.sig_run_ended.connect(self._on_ended)

    def _on_ended(self, outcome: str, info: object) -> None:
        if outcome == "finished" and isinstance(info, dict):
            self.show_report(info)

    def show_report(self, report: dict) -> None:
        rows = report.get("fact_table") or []
        before, after = report.get("before"), report.get("after")
        if before and after:
            self.summary.setText(
                f"<b>Targets</b> P(known) {_num(before.get('target_p_known'))} → {_num(after.get('target_p_known'))}, "
                f"read as unknown {_pct(before.get('target_unknown_fraction'))} → {_pct(after.get('target_unknown_fraction'))}, "
                f"facts right {_pct(before.get('forget_accuracy'))} → {_pct(after.get('forget_accuracy'))}"
                f"{_floor(before)}, completion prompts {_pct(_form(before, 'completion'))} → "
                f"{_pct(_form(after, 'completion'))}, name written {_pct(before.get('name_fidelity'))} → {_pct(after.get('name_fidelity'))} · "
                f"<b>Retain</b> facts right {_pct(before.get('retain_accuracy'))} → {_pct(after.get('retain_accuracy'))}, "
                f"neighbours {_pct(before.get('neighbour_retain_accuracy'))} → {_pct(after.get('neighbour_retain_accuracy'))}"
                f"{_linked(before, after)} · "
                f"<b>Perplexity</b> {_num(before.get('perplexity'), '.1f')} → {_num(after.get('perplexity'), '.1f')}")
            self.summary.setToolTip("Facts right per form (the headline is the mean over the forms no method trains "
                                    "on, so not “completion”): " + _by_form(before, after))
        else:
            self.summary.setText("This run was not measured before/after (turn on “Measure before/after”).")
        self.table.setRowCount(0)
        for row in rows:
            index = self.table.rowCount()
            self.table.insertRow(index)
            rate = row.get("stand_in_rate")
            cells = [row.get("entity", ""), row.get("role", ""), row.get("form", "").replace("_", " "), row.get("prompt", ""),
                     "" if rate is None else f"{100 * rate:.0f} %" + (" (name)" if row.get("name_gives_answer") else ""),
                     f"{RIGHT if row.get('before_correct') else WRONG} {str(row.get('before', '')).strip()}",
                     f"{RIGHT if row.get('after_correct') else WRONG} {str(row.get('after', '')).strip()}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text.replace("\n", " ")[:120])
                if column == 1 and text == "linked":
                    item.setToolTip(LINKED_TIP)
                if column == 4:
                    item.setToolTip(NAME_TIP if row.get("name_gives_answer") else STAND_IN_TIP)
                if column == 3:
                    item.setToolTip(f"{row.get('prompt')}\nexpected: {', '.join(row.get('answers', []))}")
                if column in (5, 6):
                    correct = row.get("before_correct" if column == 5 else "after_correct")
                    item.setForeground(QBrush(QColor("#2f855a" if correct else "#c53030")))
                self.table.setItem(index, column, item)
