"""Set-up: where the model and the SAE come from, the device, Load, and a card with what was loaded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QProgressBar, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from ..app_model import LOAD, AppModel

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")


class SourcePicker(QWidget):
    """Three-way source choice: the demo, a local folder, or a hub id / release name."""

    def __init__(self, kind: str, remote_label: str, remote_hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.demo = QRadioButton("Demo")
        self.folder = QRadioButton("Folder")
        self.remote = QRadioButton(remote_label)
        self.group = QButtonGroup(self)
        for index, button in enumerate((self.demo, self.folder, self.remote)):
            self.group.addButton(button, index)
        self.demo.setChecked(True)
        self.path = QComboBox()
        self.path.setEditable(True)
        self.path.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.path.lineEdit().setPlaceholderText(remote_hint)
        self.path.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.path.setMinimumContentsLength(16)  # a long path must not widen the dock
        self.path.setToolTip(f"The {kind} folder or {remote_label.lower()}; recent entries are remembered")
        self.browse = QPushButton("…")
        self.browse.setFixedWidth(28)
        self.browse.setToolTip(f"Choose a {kind} folder")
        self.browse.clicked.connect(self._browse)
        radios = QHBoxLayout()
        for button in (self.demo, self.folder, self.remote):
            radios.addWidget(button)
        radios.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(radios)
        layout.addLayout(row)
        self.group.idToggled.connect(self._sync)
        self.path.editTextChanged.connect(self._typed)
        self._sync()

    def _typed(self, text: str) -> None:
        if text.strip() and self.demo.isChecked():
            self.folder.setChecked(True)

    def _sync(self, *_: object) -> None:
        demo = self.demo.isChecked()
        self.path.setEnabled(not demo)
        self.browse.setEnabled(self.folder.isChecked())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Choose the {self.kind} folder", self.path.currentText())
        if folder:
            self.path.setEditText(folder)
            self.folder.setChecked(True)

    def value(self) -> str | None:
        """None for the demo, otherwise the typed folder / id."""
        if self.demo.isChecked():
            return None
        return self.path.currentText().strip() or None

    def set_value(self, text: str | None, mode: str | None = None) -> None:
        if not text:
            self.demo.setChecked(True)
            return
        self.path.setEditText(text)
        (self.remote if mode == "remote" else self.folder).setChecked(True)

    def mode(self) -> str:
        return ("demo", "folder", "remote")[max(0, self.group.checkedId())]

    def set_recent(self, items: list[str]) -> None:
        current = self.path.currentText()
        self.path.blockSignals(True)
        self.path.clear()
        self.path.addItems(items)
        self.path.setEditText(current)
        self.path.blockSignals(False)


class SetupPanel(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.model_source = SourcePicker("model", "Hub id", "model folder, .gguf file or hub id (org/name)")
        self.sae_source = SourcePicker("SAE", "Release", "sae-lens SAE folder or release name")
        self.sae_id = QComboBox()
        self.sae_id.setEditable(True)
        self.sae_id.lineEdit().setPlaceholderText("SAE id inside the release, e.g. layer_9/width_16k/canonical")
        self.sae_id.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sae_id.setMinimumContentsLength(16)
        self.sae_id.setToolTip("Only for a sae-lens release: which SAE of the release to load")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setToolTip("auto picks CUDA, then MPS, then the CPU")
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.dtype.setToolTip("float32 is the safe default; bfloat16 halves memory on GPUs that support it")
        self.trust = QCheckBox("Trust remote code")
        self.trust.setToolTip("Run the model's own Python code from the hub. Only for models you trust.")
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the model and the SAE in the background (Ctrl+O)")
        self.load_button.clicked.connect(self.load)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("not loaded")
        self.info = QLabel("Nothing loaded yet. Press Load to open the embedded demo "
                           "(SmolLM2-135M-Instruct with its SAE).")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setObjectName("infoCard")
        self.info.setStyleSheet("#infoCard { background: palette(base); border: 1px solid palette(mid);"
                                " border-radius: 4px; padding: 6px; }")

        sources = QGroupBox("Sources")
        form = QFormLayout(sources)
        form.setContentsMargins(6, 6, 6, 6)
        form.addRow("Model", self.model_source)
        form.addRow("SAE", self.sae_source)
        form.addRow("SAE id", self.sae_id)
        row = QHBoxLayout()
        row.addWidget(self.device)
        row.addWidget(QLabel("dtype"))
        row.addWidget(self.dtype)
        form.addRow("Device", row)
        form.addRow("", self.trust)
        buttons = QHBoxLayout()
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(sources)
        layout.addLayout(buttons)
        layout.addWidget(self.info)
        layout.addStretch(1)

        model.sig_progress.connect(self._on_progress)
        model.sig_loaded.connect(self._on_loaded)
        model.sig_state.connect(self._on_state)
        model.sig_error.connect(self._on_error)
        model.sig_unloaded.connect(self._on_unloaded)

    def load(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.model.load(self.model_source.value(), self.sae_source.value(), self.sae_id.currentText().strip() or None,
                        self.device.currentText(), self.dtype.currentText(), self.trust.isChecked())

    def _on_progress(self, job: str, message: str, fraction: float) -> None:
        if job != LOAD:
            return
        self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        self.progress.setFormat(message[:60])

    def _on_error(self, title: str, message: str, _details: str) -> None:
        if title.startswith("Loading"):
            self.progress.setValue(0)
            self.progress.setFormat("failed")
            self.info.setText(f"<b>Not loaded.</b> {message}")

    def _on_loaded(self, description: dict) -> None:
        self.progress.setValue(1000)
        self.progress.setFormat("loaded")
        m, s = description["model"], description["sae"]
        params = m.get("n_params")
        params_text = f"{params / 1e6:.1f} M parameters" if params else ""
        lines = [
            f"<b>Model</b>: {m.get('name')} <span style='color:gray'>({m.get('family')})</span>",
            f"{m.get('n_layers')} layers, width {m.get('d_model')}, {params_text}; {m.get('device')}, {m.get('dtype')}",
            f"<b>SAE</b>: {s.get('architecture')}, {s.get('d_in')} → {s.get('d_sae')} latents",
            f"hook <code>{s.get('hook')}</code> (layer {s.get('hook_layer')})",
        ]
        for warning in description.get("warnings", []):
            lines.append(f"<span style='color:#b7791f'>⚠ {warning}</span>")
        self.info.setText("<br>".join(lines))

    def _on_unloaded(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("not loaded")
        self.info.setText("<b>Unloaded.</b> Choose the SAE made for this model (or another model) and press Load.")

    def _on_state(self) -> None:
        self.load_button.setEnabled(self.model.busy is None)
