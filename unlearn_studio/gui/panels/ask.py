"""Ask: the original and the current model's answers side by side, streamed token by token."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLineEdit, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from ..app_model import AppModel, AskPiece
from .answer_options import chat_box, side_by_side, token_box


class AskPanel(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Ask something, e.g. Where is the Eiffel Tower?")
        self.prompt.returnPressed.connect(self.ask)
        self.ask_button = QPushButton("Ask both")
        self.ask_button.setToolTip("Answer with the original weights and with the current (unlearned) weights")
        self.ask_button.clicked.connect(self.ask)
        self.chat = chat_box()
        self.max_tokens = token_box(48, 512)
        self.original = QPlainTextEdit()
        self.original.setReadOnly(True)
        self.original.setPlaceholderText("The original model's answer")
        self.current = QPlainTextEdit()
        self.current.setReadOnly(True)
        self.current.setPlaceholderText("The current model's answer")
        row = QHBoxLayout()
        row.addWidget(self.prompt, 1)
        row.addWidget(self.chat)
        row.addWidget(self.max_tokens)
        row.addWidget(self.ask_button)
        answers = side_by_side((QGroupBox("Original model (before)"), self.original),
                               (QGroupBox("Current model (after)"), self.current))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addLayout(answers, 1)
        model.sig_ask.connect(self._on_piece)
        model.sig_state.connect(self._on_state)
        self._on_state()

    def ask(self) -> None:
        if self.model.busy is not None:
            self.model.sig_message.emit("Wait for the current job to finish (or stop it) before asking.")
            return
        self.original.clear()
        self.current.clear()
        self.model.ask(self.prompt.text(), chat=self.chat.isChecked(), max_new_tokens=self.max_tokens.value())

    def _on_piece(self, piece: AskPiece) -> None:
        box = self.original if piece.which == "original" else self.current
        if piece.text:
            box.moveCursor(QTextCursor.MoveOperation.End)
            box.insertPlainText(piece.text)
        if piece.done and not box.toPlainText():
            box.setPlaceholderText("(no text: the model ended its answer at once)")

    def _on_state(self) -> None:
        self.ask_button.setEnabled(self.model.session is not None and self.model.busy is None)
