"""Run settings (each with a tooltip), Start / Stop / Reset, and the progress bar with time left."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ..app_model import METHODS, RUN, AppModel, RunSettings

METHOD_TIPS = {
    "sae-align": "SAE-guided alignment (the paper): move the target's SAE code into the unknown-entity cluster "
                 "while the retain activations stay put",
    "grad-ascent": "Baseline: gradient ascent on the target's fact answers (needs facts)",
    "grad-diff": "Baseline: gradient ascent on the target's facts plus descent on retain facts (needs facts)",
    "npo": "Baseline: negative preference optimisation against the original model, β = 0.1 (needs facts)",
}
STOP_REASONS = {"steps": "step limit", "early_stop": "early stop: read as unknown", "nan": "stopped: NaN loss"}
DEFAULT_LR = {"sae-align": 1e-4, "grad-ascent": 2e-5, "grad-diff": 2e-5, "npo": 2e-5}


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class RunPanel(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.method = QComboBox()
        for method in METHODS:
            self.method.addItem(method)
            self.method.setItemData(self.method.count() - 1, METHOD_TIPS[method], 3)  # ToolTipRole
        self.method.setToolTip("How to unlearn. " + " · ".join(f"{k}: {v}" for k, v in METHOD_TIPS.items()))
        self.steps = QSpinBox()
        self.steps.setRange(1, 10000)
        self.steps.setValue(60)
        self.steps.setToolTip("The most optimiser steps; with early stop the run ends sooner once every held-out "
                              "target prompt reads as unknown")
        self.lr = QLineEdit()
        self.lr.setToolTip("Adam learning rate; empty = the method's default (1e-4 for sae-align, 2e-5 for the baselines)")
        self.lambda_away = QDoubleSpinBox()
        self.lambda_away.setRange(0.0, 10.0)
        self.lambda_away.setSingleStep(0.1)
        self.lambda_away.setValue(0.5)
        self.lambda_away.setToolTip("λ_away: weight of pushing the target's code away from the known-entity mean "
                                    "(clamped once it is as far as the unknown mean)")
        self.lambda_retain = QDoubleSpinBox()
        self.lambda_retain.setRange(0.0, 100.0)
        self.lambda_retain.setSingleStep(0.1)
        self.lambda_retain.setValue(1.0)
        self.lambda_retain.setToolTip("λ_retain: weight of keeping the other entities' activations where they were")
        self.trainable = QComboBox()
        self.trainable.addItems(["mlp", "all"])
        self.trainable.setToolTip("Which weights change: mlp = the MLPs of the layers at and below the hook; "
                                  "all = every weight of those layers")
        self.layers_below = QSpinBox()
        self.layers_below.setRange(0, 200)
        self.layers_below.setValue(4)
        self.layers_below.setToolTip("How many layers below the hook layer are trained too (ℓ−n … ℓ)")
        self.lora = QCheckBox("LoRA")
        self.lora.setToolTip("Train low-rank adapters (peft) instead of the weights; merged into the model at the end")
        self.lora_rank = QSpinBox()
        self.lora_rank.setRange(1, 256)
        self.lora_rank.setValue(8)
        self.lora_rank.setToolTip("LoRA rank")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: the same seed and settings give the same run")
        self.positions = QComboBox()
        self.positions.addItems(["last", "all"])
        self.positions.setToolTip("Align the last token of the entity name, or every token of it")
        self.space = QComboBox()
        self.space.addItems(["code", "code+error", "code+residual", "residual"])
        self.space.setToolTip("Where the pull happens: the SAE code; plus the SAE's reconstruction error; "
                              "plus the residual stream; or the residual stream alone")
        self.retain_positions = QComboBox()
        self.retain_positions.addItems(["last", "entity", "all"])
        self.retain_positions.setToolTip("Which tokens of the retain prompts keep their original activations: the "
                                         "last entity token, every entity token, or every token")
        self.retain_fact_prompts = QCheckBox("Retain fact prompts")
        self.retain_fact_prompts.setToolTip("Also keep the activations of the retain entities' own fact prompts "
                                            "(never the ones the before/after table asks)")
        self.fact_contexts = QCheckBox("Fact contexts")
        self.fact_contexts.setToolTip("Also align the target where it appears inside its own fact prompts")
        self.early_stop = QCheckBox("Early stop")
        self.early_stop.setChecked(True)
        self.early_stop.setToolTip("Stop once the probe reads every held-out target prompt as unknown")
        self.evaluate = QCheckBox("Measure before/after")
        self.evaluate.setChecked(True)
        self.evaluate.setToolTip("Ask the targets' and some retain entities' facts before and after the run, and "
                                 "measure perplexity (slower; fills the before/after table)")
        self.method.currentTextChanged.connect(self._method_changed)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start unlearning the targets (Ctrl+R)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the current job; a run stops within one step (Esc)")
        self.defaults_button = QPushButton("Restore defaults")
        self.defaults_button.setToolTip("Put every setting above back to its default (chosen on the paper table)")
        self.defaults_button.clicked.connect(lambda: self.set_settings(RunSettings()))
        self.reset_button = QPushButton("Reset model")
        self.reset_button.setToolTip("Put the original weights back")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        settings = QGroupBox("Settings")
        form = QFormLayout(settings)
        form.setContentsMargins(6, 6, 6, 6)
        form.addRow("Method", self.method)
        form.addRow("Steps", self.steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("λ away", self.lambda_away)
        form.addRow("λ retain", self.lambda_retain)
        row = QHBoxLayout()
        row.addWidget(self.trainable)
        row.addWidget(QLabel("layers below"))
        row.addWidget(self.layers_below)
        form.addRow("Trainable", row)
        row = QHBoxLayout()
        row.addWidget(self.lora)
        row.addWidget(QLabel("rank"))
        row.addWidget(self.lora_rank)
        row.addStretch(1)
        form.addRow("", row)
        form.addRow("Positions", self.positions)
        form.addRow("Space", self.space)
        form.addRow("Retain tokens", self.retain_positions)
        row = QHBoxLayout()
        row.addWidget(self.retain_fact_prompts)
        row.addWidget(self.fact_contexts)
        form.addRow("", row)
        form.addRow("Seed", self.seed)
        checks = QHBoxLayout()
        checks.addWidget(self.early_stop)
        checks.addWidget(self.evaluate)
        form.addRow("", checks)
        form.addRow("", self.defaults_button)
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
        self.set_settings(RunSettings())  # the widgets show the defaults chosen on the paper table
        self._method_changed(self.method.currentText())
        self._on_state()

    def _method_changed(self, method: str) -> None:
        self.lr.setPlaceholderText(f"default ({DEFAULT_LR.get(method, 1e-4):g})")
        align = method == "sae-align"
        for widget in (self.lambda_away, self.positions, self.space, self.retain_positions, self.retain_fact_prompts,
                       self.fact_contexts):
            widget.setEnabled(align)
        self.lambda_retain.setEnabled(method in ("sae-align", "grad-diff"))

    def settings(self) -> RunSettings:
        text = self.lr.text().strip()
        try:
            lr = float(text) if text else None
        except ValueError:
            lr = -1.0  # the engine refuses it with a clear message
        return RunSettings(method=self.method.currentText(), steps=self.steps.value(), lr=lr, seed=self.seed.value(),
                           trainable=self.trainable.currentText(), layers_below=self.layers_below.value(),
                           lora=self.lora.isChecked(), lora_rank=self.lora_rank.value(),
                           lambda_away=self.lambda_away.value(), lambda_retain=self.lambda_retain.value(),
                           positions=self.positions.currentText(), space=self.space.currentText(),
                           retain_positions=self.retain_positions.currentText(),
                           retain_fact_prompts=self.retain_fact_prompts.isChecked(), fact_contexts=self.fact_contexts.isChecked(),
                           early_stop=self.early_stop.isChecked(), evaluate=self.evaluate.isChecked())

    def set_settings(self, s: RunSettings) -> None:
        self.method.setCurrentText(s.method)
        self.steps.setValue(s.steps)
        self.lr.setText("" if s.lr is None else f"{s.lr:g}")
        self.seed.setValue(s.seed)
        self.trainable.setCurrentText(s.trainable)
        self.layers_below.setValue(s.layers_below)
        self.lora.setChecked(s.lora)
        self.lora_rank.setValue(s.lora_rank)
        self.lambda_away.setValue(s.lambda_away)
        self.lambda_retain.setValue(s.lambda_retain)
        self.positions.setCurrentText(s.positions)
        self.space.setCurrentText(s.space)
        self.retain_positions.setCurrentText(s.retain_positions)
        self.retain_fact_prompts.setChecked(s.retain_fact_prompts)
        self.fact_contexts.setChecked(s.fact_contexts)
        self.early_stop.setChecked(s.early_stop)
        self.evaluate.setChecked(s.evaluate)

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
        p = ", ".join(f"{name}: P(known) {state.p_known:.2f}" for name, state in step.targets.items())
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
