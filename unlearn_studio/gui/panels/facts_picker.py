"""*Facts file…*: which of the file's entries become targets (those already targets are ticked)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout


class FactsEntriesDialog(QDialog):
    """A checklist of a facts file's entities; by default the current targets, or every entry when none matches."""

    def __init__(self, path: str, entries: list, target_names: list[str], parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle(f"Add targets from {Path(path).name}")
        named = {name.lower() for name in target_names}
        tick_all = not any(entry.name.lower() in named for entry in entries)
        self.list = QListWidget()
        for entry in entries:
            item = QListWidgetItem(f"{entry.name}  ({entry.type}, {len(entry.facts)} facts)")
            item.setData(Qt.ItemDataRole.UserRole, entry.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = tick_all or entry.name.lower() in named
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add ticked")
        self.all_button = QPushButton("Tick all")
        self.buttons.addButton(self.all_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.all_button.clicked.connect(lambda: self.set_all(True))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(entries)} entries in the file. Ticked ones become targets with the file's "
                                "facts (the facts of a target already in the list are replaced)."))
        layout.addWidget(self.list)
        layout.addWidget(self.buttons)
        self.resize(460, 320)

    def set_all(self, ticked: bool) -> None:
        for row in range(self.list.count()):
            self.list.item(row).setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def set_ticked(self, names: list[str]) -> None:
        wanted = {name.lower() for name in names}
        for row in range(self.list.count()):
            item = self.list.item(row)
            ticked = item.data(Qt.ItemDataRole.UserRole).lower() in wanted
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def chosen(self) -> list[str]:
        return [self.list.item(row).data(Qt.ItemDataRole.UserRole) for row in range(self.list.count())
                if self.list.item(row).checkState() == Qt.CheckState.Checked]
