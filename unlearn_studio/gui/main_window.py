"""The main window: docks around the live plots, menus with shortcuts, status bar, persisted layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QPlainTextEdit, QTabWidget,
                               QVBoxLayout, QWidget)

from .. import __version__
from ..engine.run_config import TrainConfig  # torch-free
from ..errors import UserError
from . import gc_guard
from .app_model import JOB_LABELS, MAP, RUN, AppModel
from .panels.ask import AskPanel
from .panels.audit import AuditPanel
from .panels.entities import EntitiesPanel, TargetsPanel
from .panels.latent_dashboard import LatentDashboard
from .panels.results import FactsPanel
from .panels.run import RunPanel
from .panels.runs import RunComparison, RunsPanel, restore_plots
from .panels.setup import SetupPanel
from .panels.try_these import TryThesePanel
from .panels.steering import SteeringPanel
from .plots import LivePlots

SETTINGS_VERSION = 1
CLOSE_WAIT_MS = 20000


def settings_store() -> QSettings:
    """The GUI's QSettings, as an ini file in the user data folder (so tests, which isolate it, never touch it)."""
    from ..engine.paths import user_data_dir  # Qt- and torch-free

    return QSettings(str(user_data_dir() / "gui-settings.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    def __init__(self, *, autoload: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Unlearn Studio {__version__}")
        self.setObjectName("MainWindow")
        self.model = AppModel(self)
        self.settings = settings_store()
        self.error_box: QMessageBox | None = None
        self.sae_warning_box: QMessageBox | None = None
        self.accept_sae_warnings = False  # True: use an SAE made for another model without asking (scripts)
        self._closing = False
        gc_guard.hold()  # worker threads must never destroy this window's Qt objects
        self._holds_gc = True

        self.plots = LivePlots()
        self.audit = AuditPanel(self.model)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.plots, "Live plots")
        self.tabs.addTab(self.audit, "Audit")
        self.tabs.setTabToolTip(1, "Where the targets' knowledge was, layer by layer, and whether any of it is left")
        self.comparison = RunComparison()
        self.tabs.addTab(self.comparison, "Compare runs")
        self.tabs.setTabToolTip(self.tabs.indexOf(self.comparison), "Several past runs side by side (select them in Runs)")
        self.latents = LatentDashboard(self.model)
        self.tabs.addTab(self.latents, "Latents")
        self.tabs.setTabToolTip(self.tabs.indexOf(self.latents),
                                "The run's top entity latents across the reference entities (click a latent's bar to open it)")
        self.setCentralWidget(self.tabs)
        self.setup = SetupPanel(self.model)
        self.entities = EntitiesPanel(self.model)
        self.targets = TargetsPanel(self.model, self.entities)
        self.try_these = TryThesePanel(self.model)
        targets_box = QWidget()
        targets_layout = QVBoxLayout(targets_box)
        targets_layout.setContentsMargins(0, 0, 0, 0)
        targets_layout.setSpacing(0)
        targets_layout.addWidget(self.try_these)
        targets_layout.addWidget(self.targets, 1)
        self.runs = RunsPanel(self.model)
        self.run_panel = RunPanel(self.model)
        self.ask = AskPanel(self.model)
        self.facts = FactsPanel(self.model)
        self.steering = SteeringPanel(self.model, verify_known=lambda: self.entities.verify.isChecked())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)

        self.docks: dict[str, QDockWidget] = {}
        self._dock("setup", "Model and SAE", self.setup, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("entities", "Reference entities", self.entities, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("run", "Run", self.run_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("targets", "Targets to forget", targets_box, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("ask", "Ask before / after", self.ask, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("facts", "Facts before / after", self.facts, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("steering", "Steering", self.steering, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("log", "Log", self.log, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("runs", "Runs", self.runs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["ask"], self.docks["facts"])
        self.tabifyDockWidget(self.docks["facts"], self.docks["log"])
        self.tabifyDockWidget(self.docks["log"], self.docks["runs"])
        self.tabifyDockWidget(self.docks["log"], self.docks["steering"])
        self.docks["ask"].raise_()
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self._default_state = None
        self.start_from_box: QMessageBox | None = None
        self._status_job: str | None = None  # the job the status bar names, until it ends
        self._outcome: str | None = None  # the last message since that job started: shown when it ends

        self._make_actions()
        self._make_status_bar()
        self.run_panel.start_button.clicked.connect(self.start_run)

        self.model.sig_error.connect(self.show_error)
        self.model.sig_message.connect(self._on_message)
        self.model.sig_state.connect(self._on_state)
        self.model.sig_run_started.connect(self.plots.start_run)
        self.model.sig_run_started.connect(lambda _refs: self.tabs.setCurrentWidget(self.plots))
        self.model.sig_run_started.connect(lambda _refs: self.tabs.setTabText(self.tabs.indexOf(self.plots), "Live plots"))
        self.model.sig_initial.connect(self.plots.add_initial)
        self.model.sig_step.connect(self.plots.add_step)
        self.plots.sig_latent_clicked.connect(self.open_latent)
        self.model.sig_audit.connect(lambda _result: self.tabs.setCurrentWidget(self.audit))
        self.model.sig_sae_warnings.connect(self.confirm_sae)
        self.model.sig_loaded.connect(self._on_loaded)
        self.model.sig_run_ended.connect(self._on_run_ended)
        self.model.sig_saved.connect(self._on_saved)
        self.model.sig_map.connect(self._on_map)
        self.runs.sig_open.connect(self.open_run)
        self.runs.sig_compare.connect(self.compare_runs)
        self.entities.verify.toggled.connect(lambda checked: setattr(self.model, "map_verify", checked))

        self.resize(1400, 900)
        self.resizeDocks([self.docks["setup"], self.docks["run"]], [345, 300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["ask"]], [190], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["setup"], self.docks["run"]], [330, 470], Qt.Orientation.Vertical)
        self._default_state = self.saveState(SETTINGS_VERSION)
        self.restore_settings()
        self.model.map_verify = self.entities.verify.isChecked()
        self.runs.refresh()
        self._on_state()
        if autoload:
            QTimer.singleShot(0, self.setup.load)

    # ---- construction ------------------------------------------------------------------------------------
    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetClosable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def _action(self, text: str, slot, shortcuts=(), tip: str = "") -> QAction:  # noqa: ANN001
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.act_load = self._action("&Load model and SAE", self.setup.load, ["Ctrl+O"], "Load the chosen model and SAE")
        self.act_facts = self._action("Load &facts file…", self.targets.load_file, [], "Add targets with facts")
        self.act_open_runs = self._action("Open &run folder…", self.runs.choose_folder, [],
                                          "List the runs of a folder in Runs (e.g. made with the CLI elsewhere)")
        self.act_save = self._action("&Save model…", self.save_model_dialog, ["Ctrl+S"],
                                     "Save the current weights to a new folder")
        self.act_export = self._action("&Export run (open its folder)", self.export_run, ["Ctrl+E"],
                                       "Open the last run's folder (config, metrics.jsonl, report)")
        self.act_quit = self._action("&Quit", self.close, ["Ctrl+Q"])
        for action in (self.act_load, self.act_facts, self.act_open_runs, None, self.act_save, self.act_export, None, self.act_quit):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        run_menu = menu.addMenu("&Run")
        self.act_classify = self._action("&Classify known-ness", self.model.classify, [], "Which entities the model knows")
        self.act_references = self._action("Compute &references", self.entities.compute_references, [],
                                           "Reference statistics with the original weights: the P(known) column and the 2-D map")
        self.act_start = self._action("&Start unlearning", self.start_run, ["Ctrl+R"])
        self.act_stop = self._action("S&top", self.model.stop, ["Esc", "Ctrl+."], "Stop the current job")
        self.act_reset = self._action("&Reset model", self.model.reset, [], "Put the original weights back")
        self.act_audit = self._action("&Audit targets", self.start_audit, ["Ctrl+U"],
                                      "Per-layer probe and logit lens, original vs current; paraphrases; relearning")
        for action in (self.act_classify, self.act_references, None, self.act_start, self.act_stop, self.act_reset,
                       None, self.act_audit):
            run_menu.addSeparator() if action is None else run_menu.addAction(action)
        view_menu = menu.addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self.act_layout = self._action("Reset &layout", self.reset_layout)
        view_menu.addAction(self.act_layout)
        help_menu = menu.addMenu("&Help")
        self.act_help = self._action("&Help and about", self.show_about, ["F1"])
        help_menu.addAction(self.act_help)

    def _make_status_bar(self) -> None:
        self.job_label = QLabel("Ready")
        self.memory_label = QLabel("")
        self.memory_label.setToolTip("Memory in use by Unlearn Studio (resident set size)")
        bar = self.statusBar()
        bar.addWidget(self.job_label, 1)
        bar.addPermanentWidget(self.memory_label)
        self.memory_timer = QTimer(self)
        self.memory_timer.setInterval(2000)
        self.memory_timer.timeout.connect(self._update_memory)
        self.memory_timer.start()
        self._update_memory()

    def _update_memory(self) -> None:
        try:
            import psutil

            rss = psutil.Process(os.getpid()).memory_info().rss
            self.memory_label.setText(f"Memory {rss / 2**30:.2f} GiB" if rss > 2**30 else f"Memory {rss / 2**20:.0f} MiB")
        except Exception:  # noqa: BLE001 - the status bar is informative only
            self.memory_label.setText("")

    # ---- actions ---------------------------------------------------------------------------------------------
    def start_run(self) -> None:
        """Start; when the weights are already modified, ask first (non-blocking) where the run starts from."""
        if self.model.busy is not None and self.model.busy != MAP:  # the background map gives way to a run
            return
        try:
            config = self.run_panel.config()
        except UserError as error:  # the same words as the command line's
            self.show_error("Run not started", str(error), "")
            return
        if not self.model.modified or self.model.session is None or not self.model.targets:
            self._start_with(config, "original")
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Start from which weights?")
        box.setText("The model's weights are already modified by a run.")
        box.setInformativeText("Start from the original weights (the run's measures then compare with the original "
                               "model), or continue unlearning from the current weights?")
        self.start_original_button = box.addButton("Start from the original weights", QMessageBox.ButtonRole.AcceptRole)
        self.start_current_button = box.addButton("Continue from the current weights", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(self.start_original_button)
        box.buttonClicked.connect(lambda button: self._start_from_answer(button, config))
        box.open()
        self.start_from_box = box

    def _start_from_answer(self, button, config) -> None:  # noqa: ANN001 - a QAbstractButton, a TrainConfig
        choice = {self.start_original_button: "original", self.start_current_button: "current"}.get(button)
        self.activateWindow()
        if choice is not None:
            self._start_with(config, choice)

    def _start_with(self, config, start_from: str) -> None:  # noqa: ANN001 - a TrainConfig
        self.model.start_run(config, evaluate=self.run_panel.evaluate.isChecked(),
                             verify_known=self.entities.verify.isChecked(), start_from=start_from)

    def open_run(self, record) -> None:  # noqa: ANN001 - an engine RunRecord
        """Show a past run: its plots, fact table and report (the loaded model, if any, is not touched)."""
        if self.model.busy == RUN:
            self.show_error("Run not opened", "A run is going: wait for it to end (or stop it) to look at a past run.", "")
            return
        restore_plots(self.plots, record)
        self.facts.show_report(record.report)
        self.tabs.setTabText(self.tabs.indexOf(self.plots), f"Run {Path(record.summary.path).name}")
        self.tabs.setCurrentWidget(self.plots)
        self.model.sig_message.emit(f"Opened the run {record.summary.path} ({record.summary.method}, "
                                    f"{record.summary.steps} steps).")

    def compare_runs(self, records: list) -> None:
        self.comparison.show_runs(records)
        self.tabs.setCurrentWidget(self.comparison)

    def _on_map(self, ready) -> None:  # noqa: ANN001 - a MapReady
        if self.model.busy == RUN:
            return
        self.plots.start_run(ready.references)
        self.tabs.setTabText(self.tabs.indexOf(self.plots), "Live plots")
        self.tabs.setCurrentWidget(self.plots)

    def open_latent(self, latent: int) -> None:
        """A latent's bar was clicked: show it in the latent dashboard, for the target the bar chart shows."""
        self.latents.show_latent(latent, self.plots.latent_target.currentText())
        self.tabs.setCurrentWidget(self.latents)

    def start_audit(self) -> None:
        if self.model.busy is not None:
            return
        self.tabs.setCurrentWidget(self.audit)
        self.audit.start()

    def confirm_sae(self, warnings: list[str]) -> None:
        """The SAE looks made for another model: ask (non-blocking) whether to use it anyway or unload."""
        if self.accept_sae_warnings or self._closing:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("SAE made for another model?")
        text = "\n\n".join(w[:1].upper() + w[1:] for w in warnings)
        box.setText(f"{text}\n\nUse it anyway?")
        box.setInformativeText("Its latents may not separate known from unknown entities for this model; the note "
                               "stays on the Model and SAE card.")
        self.sae_use_button = box.addButton("Use anyway", QMessageBox.ButtonRole.AcceptRole)
        self.sae_unload_button = box.addButton("Unload", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(self.sae_unload_button)
        box.buttonClicked.connect(self._sae_answer)
        box.open()
        self.sae_warning_box = box

    def _sae_answer(self, button) -> None:  # noqa: ANN001 - a QAbstractButton
        if button is self.sae_unload_button:
            self.model.unload()
        else:
            self.model.sig_message.emit("Using the SAE anyway (see the note on the Model and SAE card).")
            if self.model.auto_map:
                self.model.prepare_map()
        self.activateWindow()  # keyboard shortcuts (Esc, Ctrl+R) go to the window again

    def ask_new_folder(self) -> str:
        """A new folder name for a save (never the loaded model's folder)."""
        from ..engine.paths import user_data_dir
        from ..engine.runs import new_folder_path

        suggestion = new_folder_path(user_data_dir() / "models", "unlearned-model")
        path, _ = QFileDialog.getSaveFileName(self, "Save the model to a new folder", str(suggestion), "Folder (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        return path

    def save_model_dialog(self) -> None:
        if self.model.session is None:
            self.show_error("Nothing to save", "Load a model first.", "")
            return
        path = self.ask_new_folder()
        if path:
            self.save_model_to(path)

    def save_model_to(self, path: str) -> None:
        if Path(path).exists():
            self.show_error("Not saved", f"{path} already exists: choose a new folder name (saves never overwrite).", "")
            return
        self.model.save_model(path)

    def export_run(self) -> bool:
        run_dir = self.model.last_run_dir
        if not run_dir or not Path(run_dir).is_dir():
            self.show_error("No run to export", "Start a run first: its folder holds config.json, metrics.jsonl "
                            "and the report.", "")
            return False
        return self.open_folder(run_dir)

    def open_folder(self, path: str) -> bool:
        """Show a folder in the desktop's file manager."""
        return QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About Unlearn Studio")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<h3>Unlearn Studio {__version__}</h3>"
            "<p>SAE-guided internal-representation unlearning (Yamashita et al., 2025, arXiv 2509.15631).</p>"
            "<ol><li>Load a model and an SAE (the demo loads by itself).</li>"
            "<li>Pick targets: double-click entities in the table, or type a name and press Add.</li>"
            "<li>Start (Ctrl+R) and watch the target's point move from the known cluster (blue) to the unknown "
            "cluster (orange). Esc stops.</li>"
            "<li>Ask the same question before and after; save the model (Ctrl+S) or open the run folder (Ctrl+E).</li>"
            "<li>Audit (Ctrl+U): layer by layer, does the model still recognise the target, can its answers still be "
            "read from the residual stream, and do the facts come back after a little fine-tuning?</li>"
            "</ol>")
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.open()
        self.about_box = box

    def show_error(self, title: str, message: str, details: str = "") -> None:
        """A non-blocking dialog naming the problem; a traceback only behind 'Show Details…'."""
        if self._closing:
            return
        self.job_label.setText(f"{title}: {message}")
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(title)
        box.setText(message)
        if details:
            box.setDetailedText(details)
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.open()
        self.error_box = box

    def reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state, SETTINGS_VERSION)
            for dock in self.docks.values():
                dock.show()

    # ---- model signals --------------------------------------------------------------------------------------------
    def _on_message(self, text: str) -> None:
        self.job_label.setText(text)
        self.log.appendPlainText(text)
        if self._status_job is not None and text != f"{JOB_LABELS.get(self._status_job, '')}…":
            self._outcome = text

    def _on_state(self) -> None:
        busy = self.model.busy
        idle, loaded = busy is None, self.model.session is not None
        self.act_load.setEnabled(idle)
        self.act_classify.setEnabled(idle and loaded)
        self.act_references.setEnabled(idle and loaded)
        self.act_audit.setEnabled(idle and loaded and bool(self.model.targets))
        self.act_start.setEnabled(idle and loaded and bool(self.model.targets))
        self.act_stop.setEnabled(not idle)
        self.act_reset.setEnabled(idle and loaded and self.model.modified)
        self.act_save.setEnabled(idle and loaded)
        self.act_export.setEnabled(self.model.last_run_dir is not None)
        title = f"Unlearn Studio {__version__}"
        if self.model.description:
            title += f" — {self.model.description['model'].get('name')}"
            if self.model.modified:
                title += " (modified)"
        self.setWindowTitle(title)
        # The status bar names the job while it runs; when it ends, the job's last message (its outcome) or Ready.
        if busy and busy != self._status_job:
            self._status_job, self._outcome = busy, None
            self.job_label.setText(f"{JOB_LABELS.get(busy, busy)}…")
        elif not busy and self._status_job is not None:
            self._status_job = None
            self.job_label.setText(self._outcome or "Ready")

    def _on_loaded(self, description: dict) -> None:
        self.docks["entities"].raise_()
        for picker, key in ((self.setup.model_source, "recent_models"), (self.setup.sae_source, "recent_saes")):
            value = picker.value()
            if value:
                recent = [value] + [v for v in self._list(key) if v != value]
                self.settings.setValue(key, json.dumps(recent[:10]))
                picker.set_recent(recent[:10])
        self.save_settings()

    def _on_run_ended(self, outcome: str, info: object) -> None:
        if outcome == "finished" and isinstance(info, dict) and info.get("fact_table"):
            self.docks["facts"].raise_()

    def _on_saved(self, path: str) -> None:
        self.log.appendPlainText(f"model saved to {path}")

    # ---- settings ---------------------------------------------------------------------------------------------------
    def _list(self, key: str) -> list[str]:
        try:
            value = json.loads(self.settings.value(key, "[]"))
            return [str(v) for v in value] if isinstance(value, list) else []
        except (TypeError, ValueError):
            return []

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState(SETTINGS_VERSION))
        s.setValue("model_source", json.dumps([self.setup.model_source.mode(), self.setup.model_source.path.currentText()]))
        s.setValue("sae_source", json.dumps([self.setup.sae_source.mode(), self.setup.sae_source.path.currentText()]))
        s.setValue("sae_id", self.setup.sae_id.currentText())
        s.setValue("device", self.setup.device.currentText())
        # Only what the user changed: a setting left at its default follows the default of the next version.
        defaults = TrainConfig().to_dict()
        changed = {k: v for k, v in self.run_panel.form.values().items() if v != defaults[k]}
        s.setValue("run_settings_changed", json.dumps(changed))
        s.setValue("measure_before_after", "1" if self.run_panel.evaluate.isChecked() else "0")
        s.remove("run_settings")  # the first version saved every value
        s.setValue("verify_known", "1" if self.entities.verify.isChecked() else "0")
        s.setValue("audit_verify_known", "1" if self.audit.verify.isChecked() else "0")
        s.setValue("ask_prompt", self.ask.prompt.text())
        s.setValue("run_folders", json.dumps(self.runs.extra_roots))
        s.sync()

    def restore_settings(self) -> None:
        s = self.settings
        try:
            geometry, state = s.value("geometry"), s.value("state")
            if geometry is not None:
                self.restoreGeometry(geometry)
            if state is not None:
                self.restoreState(state, SETTINGS_VERSION)
            for picker, key, recent in ((self.setup.model_source, "model_source", "recent_models"),
                                        (self.setup.sae_source, "sae_source", "recent_saes")):
                picker.set_recent(self._list(recent))
                raw = s.value(key)
                if raw:
                    mode, text = json.loads(raw)
                    if mode != "demo" and text:
                        picker.set_value(text, mode)
            self.setup.sae_id.setEditText(str(s.value("sae_id", "") or ""))
            self.setup.device.setCurrentText(str(s.value("device", "auto") or "auto"))
            self._restore_run_settings(s.value("run_settings_changed"))
            self.run_panel.evaluate.setChecked(str(s.value("measure_before_after", "1")) != "0")
            self.entities.verify.setChecked(str(s.value("verify_known", "1")) != "0")
            self.audit.verify.setChecked(str(s.value("audit_verify_known", "1")) != "0")
            self.ask.prompt.setText(str(s.value("ask_prompt", "") or ""))
            self.runs.extra_roots = [f for f in self._list("run_folders") if Path(f).is_dir()]
        except (TypeError, ValueError, KeyError) as error:  # a damaged settings file: keep the defaults
            self.log.appendPlainText(f"settings not restored ({error}); using the defaults")

    def _restore_run_settings(self, raw: object) -> None:
        """The changed run settings, each checked as the engine checks it; one a newer or older version
        does not know, or a value out of range, is left at its default and named in the log."""
        if not raw:
            return
        fields = {f.name: f for f in TrainConfig.schema()}
        values = {}
        for name, value in json.loads(str(raw)).items():
            try:
                values[name] = fields[name].check(value)
            except (KeyError, UserError) as error:
                self.log.appendPlainText(f"run setting {name!r} not restored ({error or 'no such setting'})")
        self.run_panel.form.set_values(values)

    # ---- closing ------------------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Cancel every job and wait for it (bounded), so the run folder's metrics stay intact."""
        self._closing = True
        if self.model.jobs.running:
            self.job_label.setText("Stopping the running job before closing…")
        stopped = self.model.shutdown(CLOSE_WAIT_MS)
        if not stopped:
            self.log.appendPlainText("a job did not stop in time; it ends when the current step does")
        self.plots.timer.stop()
        self.memory_timer.stop()
        try:
            self.save_settings()
        except Exception:  # noqa: BLE001 - never block closing on settings
            pass
        if self._holds_gc:
            self._holds_gc = False
            gc_guard.release()
        super().closeEvent(event)
