"""The latent dashboard: one top known- or unknown-entity latent across the reference entities.

Draws the engine's LatentProfiles (engine/latent_stats.py): the separation score, the histogram of the
latent's activation over the known and the unknown reference prompts, the target's activation with θ0 and
now as markers, and the reference entities on which the latent fires most. No statistics are computed here.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QListWidgetItem, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..app_model import AppModel
from ..plots import KNOWN_COLOUR, TARGET_COLOURS, UNKNOWN_COLOUR, _legend, _plot

EMPTY_TEXT = ("Start a run: its top known- and unknown-entity latents are listed here. Click a bar of the "
              "“Target's entity latents” plot to open one.")


class LatentDashboard(QWidget):
    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.profiles: list = []
        self.current_latent: int | None = None

        self.latent_list = QListWidget()
        self.latent_list.setToolTip("The run's top known-entity latents (blue) and unknown-entity latents (orange)")
        self.latent_list.currentItemChanged.connect(self._on_pick)
        self.target = QComboBox()
        self.target.setToolTip("Whose activation the markers show")
        self.target.currentTextChanged.connect(lambda _text: self._redraw())
        self.header = QLabel(EMPTY_TEXT)
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)

        self.histogram = _plot("Activation over the reference prompts where it fires", "activation at the last entity token",
                               "reference prompts")
        _legend(self.histogram)
        self.known_curve = pg.PlotDataItem([0, 1], [0], stepMode="center", fillLevel=0, pen=pg.mkPen(KNOWN_COLOUR, width=1.5),
                                           brush=pg.mkBrush(KNOWN_COLOUR + "66"), name="known references")
        self.unknown_curve = pg.PlotDataItem([0, 1], [0], stepMode="center", fillLevel=0,
                                             pen=pg.mkPen(UNKNOWN_COLOUR, width=1.5), brush=pg.mkBrush(UNKNOWN_COLOUR + "66"),
                                             name="unknown references")
        self.histogram.addItem(self.known_curve)
        self.histogram.addItem(self.unknown_curve)
        colour = TARGET_COLOURS[0]
        self.start_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine),
                                          label="target θ0", labelOpts={"position": 0.92, "color": colour})
        self.now_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(colour, width=2.5),
                                        label="now", labelOpts={"position": 0.8, "color": colour})
        for line in (self.start_line, self.now_line):
            line.setVisible(False)
            self.histogram.addItem(line)

        self.entities = QTableWidget(0, 3)
        self.entities.setHorizontalHeaderLabels(["Fires most on", "Reference", "Mean activation"])
        self.entities.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.entities.verticalHeader().hide()
        self.entities.verticalHeader().setDefaultSectionSize(20)
        self.entities.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Target:"))
        row.addWidget(self.target, 1)
        right_layout.addLayout(row)
        right_layout.addWidget(self.header)
        right_layout.addWidget(self.histogram, 3)
        right_layout.addWidget(self.entities, 2)
        splitter = QSplitter()
        splitter.addWidget(self.latent_list)
        splitter.addWidget(right)
        splitter.setSizes([220, 700])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        model.sig_references.connect(self.refresh)
        model.sig_run_ended.connect(lambda *_: self.refresh())

    # ---- data in ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the profiles of the model's last run (the "now" marker moves as the run goes)."""
        names = list(self.model.target_start) or list(self.model.target_now)
        chosen = self.target.currentText()
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(names)
        if chosen in names:
            self.target.setCurrentText(chosen)
        self.target.blockSignals(False)
        self.profiles = self.model.latent_profiles(self.target.currentText() or None)
        self.latent_list.blockSignals(True)
        self.latent_list.clear()
        for profile in self.profiles:
            item = QListWidgetItem(f"{profile.latent:6d}   {profile.kind:7s}  separation {profile.separation:+.2f}")
            item.setData(Qt.ItemDataRole.UserRole, profile.latent)
            item.setForeground(pg.mkColor(KNOWN_COLOUR if profile.kind == "known" else UNKNOWN_COLOUR))
            self.latent_list.addItem(item)
        self.latent_list.blockSignals(False)
        if self.current_latent not in [p.latent for p in self.profiles]:
            self.current_latent = self.profiles[0].latent if self.profiles else None
        self._select_row()
        self._draw()

    def show_latent(self, latent: int, target: str | None = None) -> None:
        """Open ``latent`` (a bar clicked in the live plots), with ``target``'s markers."""
        self.current_latent = latent
        if target:
            self.target.blockSignals(True)
            if self.target.findText(target) < 0:
                self.target.addItem(target)
            self.target.setCurrentText(target)
            self.target.blockSignals(False)
        self.refresh()

    def _redraw(self) -> None:
        self.profiles = self.model.latent_profiles(self.target.currentText() or None)
        self._draw()

    def _on_pick(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.current_latent = int(item.data(Qt.ItemDataRole.UserRole))
            self._draw()

    def _select_row(self) -> None:
        self.latent_list.blockSignals(True)
        for row in range(self.latent_list.count()):
            if self.latent_list.item(row).data(Qt.ItemDataRole.UserRole) == self.current_latent:
                self.latent_list.setCurrentRow(row)
        self.latent_list.blockSignals(False)

    # ---- drawing ------------------------------------------------------------------------------------------------
    def profile(self):  # noqa: ANN201 - the engine LatentProfile shown, or None
        return next((p for p in self.profiles if p.latent == self.current_latent), None)

    def _draw(self) -> None:
        profile = self.profile()
        if profile is None:
            self.header.setText(EMPTY_TEXT)
            for curve in (self.known_curve, self.unknown_curve):
                curve.setData([0, 1], [0])
            self.start_line.setVisible(False)
            self.now_line.setVisible(False)
            self.entities.setRowCount(0)
            return
        colour = KNOWN_COLOUR if profile.kind == "known" else UNKNOWN_COLOUR
        markers = ""
        if profile.target_start is not None:
            markers = (f" · <b>{profile.target}</b>: {profile.target_start:.3f} with the original weights, "
                       f"{profile.target_now:.3f} now")
        self.header.setText(
            f"<b style='color:{colour}'>Latent {profile.latent}</b> ({profile.kind}-entity latent) · "
            f"separation <b>{profile.separation:+.2f}</b> = fires on {profile.known_fire_rate:.0%} of known − "
            f"{profile.unknown_fire_rate:.0%} of unknown reference prompts{markers}")
        edges = np.asarray(profile.bin_edges, dtype=float)
        self.known_curve.setData(edges, np.asarray(profile.known_counts, dtype=float))
        self.unknown_curve.setData(edges, np.asarray(profile.unknown_counts, dtype=float))
        for line, value in ((self.start_line, profile.target_start), (self.now_line, profile.target_now)):
            line.setVisible(value is not None)
            if value is not None:
                line.setValue(float(value))
        self.histogram.setTitle(f"Latent {profile.latent}: activation over the reference prompts where it fires", size="10pt")
        self.entities.setRowCount(len(profile.top_entities))
        for row, entity in enumerate(profile.top_entities):
            for column, text in enumerate((entity.name, entity.kind, f"{entity.activation:.3f}")):
                item = QTableWidgetItem(text)
                if column == 1:
                    item.setForeground(pg.mkColor(KNOWN_COLOUR if entity.kind == "known" else UNKNOWN_COLOUR))
                self.entities.setItem(row, column, item)

    # ---- read back (tests) -----------------------------------------------------------------------------------------
    def drawn_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.known_curve.yData), np.asarray(self.unknown_curve.yData)

    def drawn_markers(self) -> tuple[float | None, float | None]:
        return tuple(float(line.value()) if line.isVisible() else None for line in (self.start_line, self.now_line))
