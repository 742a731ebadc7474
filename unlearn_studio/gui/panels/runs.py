"""Run history: the Runs list (user data folder's runs/ and any folder opened) and the comparison of several runs.

Runs are read by the Qt-free ``engine.run_history`` (no model, no torch): opening one restores its plots, fact
table and report; selecting several overlays them on the *Compare runs* tab.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..app_model import AppModel
from ..plots import KNOWN_COLOUR, TARGET_COLOURS, UNKNOWN_COLOUR, _legend, _plot, _tip

COLUMNS = ("Date", "Method", "Targets", "Steps", "P(known)", "Forget acc.", "Retain acc.", "Started from", "Folder")
PATH_ROLE = Qt.ItemDataRole.UserRole


def _pair(summary, key: str, fmt: str = ".2f") -> str:  # noqa: ANN001 - a RunSummary
    before, after = summary.before.get(key), summary.after.get(key)
    if before is None and after is None:
        return "—"
    return f"{'—' if before is None else format(before, fmt)} → {'—' if after is None else format(after, fmt)}"


class RunsPanel(QWidget):
    """Every run folder found, newest first; double-click (or Open) restores one, selecting several compares them."""

    sig_open = Signal(object)  # an engine RunRecord
    sig_compare = Signal(list)  # engine RunRecords (two or more)

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.extra_roots: list[str] = []
        self.summaries: list = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setToolTip("Double-click a run to restore its plots, fact table and report; select several "
                              "(Ctrl/Shift-click) to compare them")
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.add_button = QPushButton("Open folder…")
        self.add_button.setToolTip("List the runs of another folder (a run folder, or a folder holding run folders, "
                                   "e.g. made with the CLI on another machine)")
        self.add_button.clicked.connect(self.choose_folder)
        self.open_button = QPushButton("Open run")
        self.open_button.setToolTip("Restore the selected run's plots, fact table and report (no model needed)")
        self.open_button.clicked.connect(self.open_selected)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Overlay the selected runs' P(known) curves and trajectories, and place them "
                                       "on the forget-vs-retain plane")
        self.compare_button.clicked.connect(self.compare_selected)
        self.html_button = QPushButton("report.html")
        self.html_button.setToolTip("Open the selected run's report.html in the browser")
        self.html_button.clicked.connect(self.open_html)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        for button in (self.open_button, self.compare_button, self.html_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        model.sig_run_ended.connect(lambda *_: self.refresh())
        self._update_buttons()

    # ---- listing ---------------------------------------------------------------------------------------------
    def roots(self) -> list[str]:
        from ...engine.run_history import runs_root

        return [str(runs_root()), *self.extra_roots]

    def refresh(self) -> None:
        from ...engine.run_history import list_runs

        selected = set(self.selected_paths())
        self.summaries = list_runs(self.roots())
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for summary in self.summaries:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = [summary.date, summary.method, ", ".join(summary.targets), str(summary.steps),
                     _pair(summary, "target_p_known"), _pair(summary, "forget_accuracy"),
                     _pair(summary, "retain_accuracy"), summary.started_from or "—", Path(summary.path).name]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(PATH_ROLE, summary.path)
                item.setToolTip(f"{summary.path}\nstopped: {summary.stopped}")
                self.table.setItem(row, column, item)
            if summary.path in selected:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self._update_buttons()

    def add_root(self, folder: str) -> None:
        if folder and folder not in self.extra_roots:
            self.extra_roots.append(folder)
        self.refresh()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder, or a folder of runs")
        if folder:
            self.add_root(folder)

    def row_count(self) -> int:
        return self.table.rowCount()

    def selected_paths(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(row, 0).data(PATH_ROLE) for row in rows]

    def select_paths(self, paths: list[str]) -> None:
        """Select the rows of these run folders (as a Ctrl-click on each would)."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(PATH_ROLE) in paths:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def _update_buttons(self) -> None:
        count = len(self.selected_paths())
        self.open_button.setEnabled(count == 1)
        self.html_button.setEnabled(count == 1)
        self.compare_button.setEnabled(count >= 2)

    def _selection_changed(self) -> None:
        self._update_buttons()
        if len(self.selected_paths()) >= 2:
            self.compare_selected()

    # ---- opening -------------------------------------------------------------------------------------------
    def _records(self, paths: list[str]) -> list:
        from ...engine.run_history import load_run

        records = []
        for path in paths:
            try:
                records.append(load_run(path))
            except Exception as error:  # noqa: BLE001 - a UserError naming the folder and what is wrong
                self.model.sig_error.emit("Run not opened", str(error), "")
        return records

    def open_selected(self) -> None:
        paths = self.selected_paths()
        if len(paths) != 1:
            return
        records = self._records(paths)
        if records:
            self.show_details(records[0])
            self.sig_open.emit(records[0])

    def compare_selected(self) -> None:
        records = self._records(self.selected_paths())
        if len(records) >= 2:
            self.details.setText(f"Comparing {len(records)} runs on the <b>Compare runs</b> tab.")
            self.sig_compare.emit(records)

    def open_html(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 1 and (Path(paths[0]) / "report.html").is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(paths[0]) / "report.html")))

    def show_details(self, record) -> None:  # noqa: ANN001 - a RunRecord
        summary, report = record.summary, record.report
        config = report.get("config", {})
        parts = [f"<b>{summary.method}</b> on {', '.join(summary.targets)}: {summary.steps} steps ({summary.stopped})",
                 f"started from the {summary.started_from} weights" if summary.started_from else "",
                 f"model {summary.model}" if summary.model else "",
                 f"lr {config.get('lr')}" if config.get("lr") is not None else ""]
        notes = " ".join(report.get("notes", []))
        self.details.setText(" · ".join(p for p in parts if p) + (f"<br>{notes}" if notes else ""))


# ---- restoring one run into the live plots (plain data, shaped as the run's events were) ----------------------------
def _state(data: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(p_known=data.get("p_known", float("nan")), point=tuple(data.get("point", (0.0, 0.0))),
                           unknown_percentile=data.get("unknown_percentile", float("nan")),
                           known_latents=tuple(data.get("known_latents", ())),
                           unknown_latents=tuple(data.get("unknown_latents", ())))


def restore_plots(plots, record) -> None:  # noqa: ANN001 - LivePlots, a RunRecord
    """Replay a past run into :class:`LivePlots`: its reference map, starting points and every logged step."""
    report = record.report
    points = report.get("reference_points", {})
    latents = report.get("top_latents", {})
    plots.start_run(SimpleNamespace(known_points=points.get("known", []), unknown_points=points.get("unknown", []),
                                    known_names=points.get("known_names", []), unknown_names=points.get("unknown_names", []),
                                    top_known_latents=latents.get("known", []), top_unknown_latents=latents.get("unknown", []),
                                    targets=list(record.summary.targets)))
    if report.get("initial"):
        plots.add_initial(SimpleNamespace(targets={name: _state(s) for name, s in report["initial"].items()}))
    for row in record.steps:
        plots.add_step(SimpleNamespace(step=row["step"], losses=row.get("losses", {}),
                                       targets={name: _state(s) for name, s in row.get("targets", {}).items()}))
    plots.repaint_now()


class RunComparison(QWidget):
    """Several runs side by side: P(known) curves, trajectories on the 2-D map, and the forget-vs-retain plane."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list = []
        self.note = QLabel("Select two or more runs in the Runs list (Ctrl-click) to compare them here.")
        self.note.setWordWrap(True)
        self.pknown_plot = _plot("P(known) per run and target", "step (0 = original weights)", "P(known)")
        self.pknown_plot.setYRange(0, 1, padding=0.05)
        self.pknown_legend = _legend(self.pknown_plot)
        self.map_plot = _plot("Trajectories (colours as on the left)", "toward known  →",
                              "orthogonal PC")
        self.plane_plot = _plot("Forget vs retain (after the run)", "forget accuracy (lower is better)",
                                "retain accuracy (higher is better)")
        self.plane_plot.setXRange(0, 1, padding=0.08)
        self.plane_plot.setYRange(0, 1, padding=0.08)
        self.plane_points = pg.ScatterPlotItem(size=13, hoverable=True, tip=_tip, pen=pg.mkPen("k", width=1))
        self.plane_plot.addItem(self.plane_points)
        self.plane_labels: list[pg.TextItem] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.trajectories: dict[str, pg.PlotDataItem] = {}
        grid = QGridLayout()
        grid.setSpacing(4)
        grid.addWidget(self.pknown_plot, 0, 0)
        grid.addWidget(self.map_plot, 0, 1)
        grid.addWidget(self.plane_plot, 1, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addLayout(grid, 1)

    def show_runs(self, records: list) -> None:
        self.records = list(records)
        self.pknown_legend.clear()
        for plot in (self.pknown_plot, self.map_plot):
            for item in list(plot.listDataItems()):
                plot.removeItem(item)
        for label in self.plane_labels:
            self.plane_plot.removeItem(label)
        self.curves, self.trajectories, self.plane_labels = {}, {}, []
        self._reference_cloud()
        spots, missing = [], []
        for index, record in enumerate(self.records):
            colour = TARGET_COLOURS[index % len(TARGET_COLOURS)]
            name = Path(record.summary.path).name
            styles = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine)
            for number, (target, (steps, values)) in enumerate(record.p_known_curves().items()):
                key = f"{index + 1}: {name} · {target}"
                pen = pg.mkPen(colour, width=2, style=styles[number % len(styles)])
                self.curves[key] = self.pknown_plot.plot(np.asarray(steps, float), np.asarray(values, float), pen=pen,
                                                         symbol="o", symbolSize=4, symbolBrush=colour, symbolPen=None,
                                                         name=f"{index + 1}. {record.summary.method} · {target}")
            for target, points in record.trajectories().items():
                xy = np.asarray(points, dtype=float).reshape(-1, 2)
                self.trajectories[f"{index + 1}: {name} · {target}"] = self.map_plot.plot(
                    xy[:, 0], xy[:, 1], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4, symbolBrush=colour,
                    symbolPen=None)
            forget, retain = record.summary.forget_measure, record.summary.after.get("retain_accuracy")
            if forget is None or retain is None:
                missing.append(name)
                continue
            spots.append({"pos": (forget, retain), "brush": pg.mkBrush(colour), "data": record.summary.label})
            label = pg.TextItem(f"{index + 1}. {record.summary.method} · {', '.join(record.summary.targets)}", color=colour,
                                anchor=(0, 1))
            label.setPos(forget, retain)
            self.plane_plot.addItem(label)
            self.plane_labels.append(label)
        self.plane_points.setData(spots)
        runs = ", ".join(f"{i + 1} = {Path(r.summary.path).name}" for i, r in enumerate(self.records))
        note = f"{len(self.records)} runs compared ({runs}). Each run's map is fitted on its own references (θ0); " \
               "the faded dots are the first run's known (blue) and unknown (orange) references."
        if missing:
            note += f" Not on the forget-vs-retain plane (not measured before/after): {', '.join(missing)}."
        self.note.setText(note)

    def _reference_cloud(self) -> None:
        points = (self.records[0].report.get("reference_points", {}) if self.records else {})
        for key, colour in (("known", KNOWN_COLOUR), ("unknown", UNKNOWN_COLOUR)):
            xy = np.asarray(points.get(key, []), dtype=float).reshape(-1, 2)
            if len(xy):
                self.map_plot.plot(xy[:, 0], xy[:, 1], pen=None, symbol="o", symbolSize=5, symbolPen=None,
                                   symbolBrush=pg.mkBrush(colour + "55"))

    def plane_count(self) -> int:
        return len(self.plane_points.points())
