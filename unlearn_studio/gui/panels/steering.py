"""Steering: scale an entity's known-entity latents at its tokens and compare the answers (no training).

The engine (engine/steering.py) does the edit and both greedy answers, with the original weights, in a
background job; this panel only collects the settings and shows the two answers side by side.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QSlider, QVBoxLayout, QWidget)

from ..app_model import STEER, AppModel
from .answer_options import chat_box, side_by_side, token_box

SLIDER_STEPS = 10  # slider units per unit of strength
STRENGTH_RANGE = (-3.0, 2.0)


def strength_text(strength: float) -> str:
    note = {0.0: "unchanged", -1.0: "latents off"}.get(round(strength, 2), "pushed past off" if strength < -1 else
                                                        ("turned down" if strength < 0 else "amplified"))
    return f"strength {strength:+.1f} (× {1 + strength:.1f}, {note})"


class SteeringPanel(QWidget):
    def __init__(self, model: AppModel, verify_known: Callable[[], bool] = lambda: True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.verify_known = verify_known
        self.entity = QComboBox()
        self.entity.setEditable(True)
        self.entity.setEditText("Eiffel Tower")
        self.entity.setMinimumWidth(160)
        self.entity.setToolTip("The entity whose top known-entity latents are steered; the prompt must name it")
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("A prompt that names the entity, e.g. Where is the Eiffel Tower?")
        self.prompt.returnPressed.connect(self.steer)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(STRENGTH_RANGE[0] * SLIDER_STEPS), int(STRENGTH_RANGE[1] * SLIDER_STEPS))
        self.slider.setValue(-SLIDER_STEPS)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(SLIDER_STEPS)
        self.slider.setToolTip("Scale the known-entity latents by 1 + strength: −1 turns them off, 0 leaves them, "
                               "below −1 pushes further")
        self.strength_label = QLabel()
        self.strength_label.setMinimumWidth(230)
        self.slider.valueChanged.connect(self._show_strength)
        self.add_unknown = QCheckBox("Add unknown-entity latents")
        self.add_unknown.setToolTip("Also raise the top unknown-entity latents by −strength × their mean on unknown entities")
        self.chat = chat_box()
        self.max_tokens = token_box(32, 256)
        self.steer_button = QPushButton("Steer")
        self.steer_button.setToolTip("Answer with the original weights, unsteered and steered (a background job)")
        self.steer_button.clicked.connect(self.steer)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.original = QPlainTextEdit()
        self.original.setReadOnly(True)
        self.original.setPlaceholderText("The answer without steering (original weights)")
        self.steered = QPlainTextEdit()
        self.steered.setReadOnly(True)
        self.steered.setPlaceholderText("The answer with the latents steered")
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        first = QHBoxLayout()
        first.addWidget(QLabel("Entity:"))
        first.addWidget(self.entity)
        first.addWidget(self.prompt, 1)
        second = QHBoxLayout()
        second.addWidget(self.slider, 1)
        second.addWidget(self.strength_label)
        second.addWidget(self.add_unknown)
        second.addWidget(self.chat)
        second.addWidget(self.max_tokens)
        second.addWidget(self.steer_button)
        self.steered_group = QGroupBox("Steered")
        answers = side_by_side((QGroupBox("Unsteered (original weights)"), self.original), (self.steered_group, self.steered))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(first)
        layout.addLayout(second)
        layout.addWidget(self.progress)
        layout.addLayout(answers, 1)
        layout.addWidget(self.details)

        model.sig_steered.connect(self._on_result)
        model.sig_progress.connect(self._on_progress)
        model.sig_state.connect(self._on_state)
        model.sig_targets.connect(self._on_targets)
        self._show_strength()
        self._on_state()

    @property
    def strength(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_strength(self, strength: float) -> None:
        self.slider.setValue(round(strength * SLIDER_STEPS))

    def steer(self) -> None:
        if self.model.busy is not None:
            self.model.sig_message.emit("Wait for the current job to finish (or stop it) before steering.")
            return
        self.original.clear()
        self.steered.clear()
        self.details.setText("")
        self.progress.setValue(0)
        self.model.steer(self.entity.currentText(), self.prompt.text(), self.strength,
                         add_unknown=self.add_unknown.isChecked(), chat=self.chat.isChecked(),
                         max_new_tokens=self.max_tokens.value(), verify_known=self.verify_known())

    def _show_strength(self) -> None:
        self.strength_label.setText(strength_text(self.strength))

    def _on_progress(self, job: str, message: str, fraction: float) -> None:
        if job == STEER:
            self.progress.setValue(int(100 * fraction))
            self.progress.setFormat(f"{message} (%p%)")

    def _on_result(self, result) -> None:  # noqa: ANN001 - an engine SteeringResult
        self.original.setPlainText(result.original.strip())
        self.steered.setPlainText(result.steered.strip())
        self.steered_group.setTitle(f"Steered ({strength_text(result.strength)})")
        same = " The answers are the same." if result.steered == result.original else ""
        latents = ", ".join(f"{latent.latent} ({latent.before:.2f} → {latent.after:.2f})" for latent in result.latents)
        tokens = " ".join(repr(token) for token in result.tokens)
        self.details.setText(f"Edited at the entity's tokens {tokens}. Latents (mean activation there, "
                             f"before → after): {latents}.{same}")
        self.progress.setValue(100)
        self.progress.setFormat("done")

    def _on_targets(self, targets: list) -> None:
        current = self.entity.currentText()
        self.entity.clear()
        self.entity.addItems([target.name for target in targets])
        self.entity.setEditText(current or (targets[0].name if targets else ""))

    def _on_state(self) -> None:
        self.steer_button.setEnabled(self.model.session is not None and self.model.busy is None)
        if self.model.busy is None and self.progress.value() < 100:
            self.progress.setFormat("")
