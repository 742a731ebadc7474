"""The two options every answering panel offers: chat form and the most new tokens."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QSpinBox


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
