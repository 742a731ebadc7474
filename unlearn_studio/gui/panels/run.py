"""Run settings (each with a tooltip), Start / Stop / Reset, and the progress bar with time left."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ...engine.run_config import TrainConfig  # torch-free
from ..app_model import RUN, AppModel
from ..settings_form import SettingsForm

STOP_REASONS = {"steps": "step limit", "early_stop": "early stop: read as unknown", "diverged": "diverged: weights restored"}


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class RunPanel(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.form = SettingsForm(TrainConfig)
        self.evaluate = QCheckBox("Measure before/after")
        self.evaluate.setChecked(True)
        self.evaluate.setToolTip("Ask the targets' and some retain entities' facts before and after the run, and "
                                 "measure perplexity (slower; fills the before/after table)")

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start unlearning the targets (Ctrl+R)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the current job; a run stops within one step (Esc)")
        self.defaults_button = QPushButton("Restore defaults")
        self.defaults_button.setToolTip("Put every setting above back to its default (chosen on the paper table)")
        self.defaults_button.clicked.connect(self.restore_defaults)
        self.reset_button = QPushButton("Reset model")
        self.reset_button.setToolTip("Put the original weights back")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        settings = QGroupBox("Settings")
        box = QVBoxLayout(settings)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.form)
        box.addWidget(self.evaluate)
        box.addWidget(self.defaults_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(settings)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.stop_button.clicked.connect(model.stop)
        self.reset_button.clicked.connect(model.reset)
        model.sig_state.connect(self._on_state)
        model.sig_step.connect(self._on_step)
        model.sig_progress.connect(self._on_progress)
        model.sig_run_ended.connect(self._on_ended)
        self._run_active = self._stepping = False
        self._on_state()

    def config(self) -> TrainConfig:
        """The run settings shown, validated (a UserError names a bad value)."""
        return self.form.settings()

    def restore_defaults(self) -> None:
        self.form.set_values(TrainConfig().to_dict())
        self.evaluate.setChecked(True)

    def _on_state(self) -> None:
        idle = self.model.busy is None
        loaded = self.model.session is not None
        self.start_button.setEnabled(idle and loaded and bool(self.model.targets))
        self.stop_button.setEnabled(not idle)
        self.reset_button.setEnabled(idle and loaded and self.model.modified)
        if self.model.busy == RUN and not self._run_active:  # a run just started: preparation first
            self._run_active, self._stepping = True, False
            self.progress.setValue(0)
            self.progress.setFormat("preparing…")
            self.status.setText("")
        elif self.model.busy != RUN:
            self._run_active = False

    def _on_progress(self, job: str, message: str, fraction: float) -> None:
        """Before the first step each preparation phase (known-ness, references, measuring) fills the bar itself."""
        if job != RUN:
            return
        self.status.setText(message)
        if not self._stepping:
            self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
            self.progress.setFormat(f"{message[:44]} · %p%")

    def _on_step(self, step) -> None:  # noqa: ANN001 - a StepProgress
        self._stepping = True
        total = max(1, step.total)
        self.progress.setValue(int(1000 * step.step / total))
        per_step = step.seconds / max(1, step.step)
        left = per_step * (total - step.step)
        self.progress.setFormat(f"step {step.step} / {total} · {_format_seconds(left)} left")
        p = ", ".join(f"{name}: P(known) {state.p_known:.2f}, unknown percentile {state.unknown_percentile:.0f}"
                      for name, state in step.targets.items())
        self.status.setText(p)

    def _on_ended(self, outcome: str, info: object) -> None:
        if outcome == "finished" and isinstance(info, dict):
            self.progress.setValue(1000)
            reason = STOP_REASONS.get(str(info.get("stopped")), str(info.get("stopped")))
            self.progress.setFormat(f"finished: {info.get('steps')} steps ({reason})")
        elif outcome == "cancelled":
            step = info.get("step") if isinstance(info, dict) else None
            self.progress.setFormat(f"stopped after step {step}" if step is not None else "stopped")
        else:
            self.progress.setFormat("failed")
        self._stepping = False
