"""The before/after table of the targets' facts and a sample of retain facts, each marked right or wrong."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..app_model import AppModel

COLUMNS = ("Entity", "Role", "Form", "Prompt", "Before", "After")
RIGHT, WRONG = "✔", "✘"
GIVEN_AWAY_TIP = ("The original model answers this prompt correctly for fictitious entities too: the context gives the "
                  "answer away, so it is left out of the entity-dependent forget accuracy.")


def _pct(value: object) -> str:
    return "not measured" if value is None else f"{100 * float(value):.0f} %"


def _entity_dependent(before: dict, after: dict) -> str:
    if before.get("entity_forget_accuracy") is None:
        return ""
    return (f" ({_pct(before.get('entity_forget_accuracy'))} → {_pct(after.get('entity_forget_accuracy'))} "
            "leaving out the prompts that give the answer away)")


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
                f"{_entity_dependent(before, after)} · "
                f"<b>Retain</b> facts right {_pct(before.get('retain_accuracy'))} → {_pct(after.get('retain_accuracy'))} · "
                f"<b>Perplexity</b> {_num(before.get('perplexity'), '.1f')} → {_num(after.get('perplexity'), '.1f')}")
        else:
            self.summary.setText("This run was not measured before/after (turn on “Measure before/after”).")
        self.table.setRowCount(0)
        for row in rows:
            index = self.table.rowCount()
            self.table.insertRow(index)
            form = row.get("form", "") + (" (given away)" if row.get("context_answerable") else "")
            cells = [row.get("entity", ""), row.get("role", ""), form, row.get("prompt", ""),
                     f"{RIGHT if row.get('before_correct') else WRONG} {str(row.get('before', '')).strip()}",
                     f"{RIGHT if row.get('after_correct') else WRONG} {str(row.get('after', '')).strip()}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text.replace("\n", " ")[:120])
                if column == 2 and row.get("context_answerable"):
                    item.setToolTip(GIVEN_AWAY_TIP)
                if column == 3:
                    item.setToolTip(f"{row.get('prompt')}\nexpected: {', '.join(row.get('answers', []))}")
                if column in (4, 5):
                    correct = row.get("before_correct" if column == 4 else "after_correct")
                    item.setForeground(QBrush(QColor("#2f855a" if correct else "#c53030")))
                self.table.setItem(index, column, item)
