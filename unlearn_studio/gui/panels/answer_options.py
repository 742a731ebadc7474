"""What every answering panel shares: the chat and token options, and two answers side by side."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QSpinBox, QVBoxLayout, QWidget


def chat_box() -> QCheckBox:
    box = QCheckBox("Chat")
    box.setChecked(True)
    box.setToolTip("Wrap the prompt in the model's chat template (off: plain completion)")
    return box


def token_box(default: int, maximum: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(1, maximum)
    box.setValue(default)
    box.setSuffix(" tokens")
    box.setToolTip("The most new tokens per answer")
    return box


def side_by_side(*pairs: tuple[QGroupBox, QWidget]) -> QHBoxLayout:
    """Each answer box inside its titled group, the groups in one row."""
    row = QHBoxLayout()
    for group, box in pairs:
        inner = QVBoxLayout(group)
        inner.setContentsMargins(4, 4, 4, 4)
        inner.addWidget(box)
        row.addWidget(group)
    return row
