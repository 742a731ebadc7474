"""*Try these*: one button per suggested target (the entities the loaded model knows best, one per type)."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..app_model import AppModel


class TryThesePanel(QWidget):
    """Filled from the map job's suggestions; a click makes the entity a target."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.title = QLabel("<b>Try these</b> — the entities this model knows best (P(known) ≥ 0.9, ≥ 3 facts right):")
        self.title.setWordWrap(True)
        self.grid = QGridLayout()
        self.grid.setSpacing(3)
        self.buttons: dict[str, QPushButton] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addLayout(self.grid)
        model.sig_map.connect(lambda ready: self.set_suggestions(ready.suggestions))
        model.sig_unloaded.connect(lambda: self.set_suggestions([]))
        self.set_suggestions([])

    def set_suggestions(self, suggestions: list) -> None:
        for button in self.buttons.values():
            self.grid.removeWidget(button)
            button.deleteLater()
        self.buttons = {}
        for index, suggestion in enumerate(suggestions):
            button = QPushButton(f"{suggestion.name} ({suggestion.type})")
            button.setToolTip(f"P(known) {suggestion.p_known:.2f} with the original weights; "
                              f"{suggestion.correct} of {suggestion.total} facts answered right. Click: make it a target.")
            button.clicked.connect(lambda _=False, name=suggestion.name: self.model.add_target(name))
            self.grid.addWidget(button, index // 2, index % 2)
            self.buttons[suggestion.name] = button
        self.setVisible(bool(suggestions))

    def names(self) -> list[str]:
        return list(self.buttons)
