"""Live plots (pyqtgraph): the 2-D known/unknown map, losses, P(known) and the entity latents.

Plots never repaint per event: :class:`LivePlots` caches the latest data and a
QTimer redraws at about 20 frames per second, so the training rate never sets
the paint rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

KNOWN_COLOUR = "#2b6cb0"
UNKNOWN_COLOUR = "#dd8a2b"
TARGET_COLOURS = ["#c53030", "#2f855a", "#6b46c1", "#b7791f", "#0987a0", "#d53f8c"]
LOSS_COLOURS = ["#2d3748", "#c53030", "#2b6cb0", "#2f855a", "#6b46c1", "#b7791f", "#0987a0"]
FRAME_MS = 50


def _small_font():  # noqa: ANN202 - a QFont
    from PySide6.QtGui import QFont

    font = QFont()
    font.setPointSize(7)
    return font


def _tip(x: float, y: float, data: Any) -> str:
    return f"{data}\n({x:.3g}, {y:.3g})"


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    widget = pg.PlotWidget()
    widget.setTitle(title, size="10pt")
    widget.setLabel("bottom", x_label)
    widget.setLabel("left", y_label)
    widget.showGrid(x=True, y=True, alpha=0.2)
    widget.setMinimumSize(220, 180)
    for side in ("left", "bottom"):
        widget.getAxis(side).enableAutoSIPrefix(False)
    return widget


def _legend(widget: pg.PlotWidget) -> pg.LegendItem:
    return widget.addLegend(offset=(-6, 6), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 210),
                            pen=pg.mkPen("#ccc"), verSpacing=-6)


class LivePlots(QWidget):
    """The four live plots of a run, in a 2×2 grid. Clicking a latent's bar emits ``sig_latent_clicked(latent id)``."""

    sig_latent_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dirty = False
        self._refs_dirty = False  # the reference scatters change only when a run starts
        self._tick_labels: list[str] | None = None
        self.frames = 0  # repaints done (tests and diagnostics)
        self._reset_data()

        self.map_plot = _plot("2-D map of the entities", "toward known  →", "orthogonal PC")
        self.map_legend = _legend(self.map_plot)
        self.known_scatter = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(KNOWN_COLOUR + "99"), pen=pg.mkPen(None),
                                                hoverable=True, hoverSize=11, tip=_tip, name="known references")
        self.unknown_scatter = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(UNKNOWN_COLOUR + "99"), pen=pg.mkPen(None),
                                                  hoverable=True, hoverSize=11, tip=_tip, name="unknown references")
        self.map_plot.addItem(self.known_scatter)
        self.map_plot.addItem(self.unknown_scatter)
        self.trajectories: dict[str, pg.PlotDataItem] = {}
        self.markers: dict[str, pg.ScatterPlotItem] = {}
        self.start_markers: dict[str, pg.ScatterPlotItem] = {}

        self.loss_plot = _plot("Loss terms", "step", "loss")
        self.loss_legend = _legend(self.loss_plot)
        self.loss_curves: dict[str, pg.PlotDataItem] = {}

        self.pknown_plot = _plot("P(known) per target · unknown percentile", "step (0 = original weights)",
                                 "P(known) · pct ÷ 100")
        self.pknown_plot.setYRange(0, 1, padding=0.05)
        self.pknown_legend = _legend(self.pknown_plot)
        # Where unknown entities sit: the middle half of the unknown references' own percentiles (DESIGN.md §4).
        self.unknown_band = pg.LinearRegionItem((0.25, 0.75), orientation="horizontal", movable=False,
                                                brush=pg.mkBrush(UNKNOWN_COLOUR + "22"), pen=pg.mkPen(None))
        self.unknown_band.setToolTip("The unknown references' 25th–75th percentile: a target whose dashed line ends "
                                     "here sits among unknown entities; at 0 it has collapsed onto their mean")
        self.pknown_plot.addItem(self.unknown_band)
        self.percentile_curves: dict[str, pg.PlotDataItem] = {}
        self.pknown_plot.addItem(pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine),
                                                 label="0.5", labelOpts={"position": 0.05, "color": "#666"}))
        self.pknown_curves: dict[str, pg.PlotDataItem] = {}

        self.latent_plot = _plot("Target's entity latents", "latent: known (blue) · unknown (orange)", "activation")
        self.latent_plot.getAxis("bottom").setStyle(tickFont=_small_font())
        self.latent_legend = _legend(self.latent_plot)
        self.bars_start = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush("#a0aec055"),
                                          pen=pg.mkPen("#a0aec0"), name="at the start")
        self.bars_now = pg.BarGraphItem(x=[], height=[], width=0.45, brush=pg.mkBrush("#4a5568cc"),
                                        pen=pg.mkPen(None), name="now")
        self.latent_plot.addItem(self.bars_start)
        self.latent_plot.addItem(self.bars_now)
        self.latent_plot.setToolTip("Click a latent's bar to open it in the latent dashboard")
        self.latent_plot.scene().sigMouseClicked.connect(self._on_latent_click)
        self.latent_target = QComboBox()
        self.latent_target.setToolTip("Which target's latent activations the bar chart shows")
        self.latent_target.currentTextChanged.connect(self._mark_dirty)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        grid.addWidget(self.map_plot, 0, 0)
        grid.addWidget(self.pknown_plot, 0, 1)
        grid.addWidget(self.loss_plot, 1, 0)
        latent_box = QWidget()
        latent_layout = QVBoxLayout(latent_box)
        latent_layout.setContentsMargins(0, 0, 0, 0)
        latent_layout.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(QLabel("Target:"))
        row.addWidget(self.latent_target, 1)
        latent_layout.addLayout(row)
        latent_layout.addWidget(self.latent_plot, 1)
        grid.addWidget(latent_box, 1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.repaint_now)
        self.timer.start()

    # ---- data in (cheap; called per event) ----------------------------------------------------------------
    def _reset_data(self) -> None:
        self.known: tuple[np.ndarray, list[str]] = (np.zeros((0, 2)), [])
        self.unknown: tuple[np.ndarray, list[str]] = (np.zeros((0, 2)), [])
        self.target_names: list[str] = []
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {}
        self.points: dict[str, list[tuple[float, float]]] = {}  # the start (original weights), then one per step
        self.p_known: dict[str, list[float]] = {}
        self.percentiles: dict[str, list[float]] = {}  # unknown percentile ÷ 100, as P(known)
        self.p_steps: dict[str, list[int]] = {}  # the step of each P(known) value: 0 = the start
        self.latents_start: dict[str, np.ndarray] = {}
        self.latents_now: dict[str, np.ndarray] = {}
        self.latent_ids: tuple[list[int], list[int]] = ([], [])

    def _mark_dirty(self, *_: object) -> None:
        self._dirty = True

    def start_run(self, refs: Any) -> None:
        """A new run: reference map and latent ids (a ``ReferencesReady``)."""
        self._reset_data()
        self.known = (np.asarray(refs.known_points, dtype=float).reshape(-1, 2), list(refs.known_names))
        self.unknown = (np.asarray(refs.unknown_points, dtype=float).reshape(-1, 2), list(refs.unknown_names))
        self.latent_ids = (list(refs.top_known_latents), list(refs.top_unknown_latents))
        self.target_names = list(refs.targets)
        self._rebuild_series()
        self.latent_target.blockSignals(True)
        self.latent_target.clear()
        self.latent_target.addItems(self.target_names)
        self.latent_target.blockSignals(False)
        self._refs_dirty = True
        self._dirty = True

    def _add_state(self, step: int, name: str, state: Any) -> None:
        if name not in self.target_names:
            self.target_names.append(name)
            self.latent_target.addItem(name)
        self.points.setdefault(name, []).append((float(state.point[0]), float(state.point[1])))
        self.p_known.setdefault(name, []).append(float(state.p_known))
        self.percentiles.setdefault(name, []).append(float(state.unknown_percentile) / 100)
        self.p_steps.setdefault(name, []).append(step)
        values = np.asarray(list(state.known_latents) + list(state.unknown_latents), dtype=float)
        self.latents_start.setdefault(name, values)
        self.latents_now[name] = values

    def add_initial(self, initial: Any) -> None:
        """An ``InitialState``: each target measured with the original weights, where its trajectory starts (step 0)."""
        for name, state in initial.targets.items():
            self._add_state(0, name, state)
        self._dirty = True

    def add_step(self, step: Any) -> None:
        """One ``StepProgress``: append to the caches; the timer paints."""
        self.steps.append(int(step.step))
        for term, value in step.losses.items():
            self.losses.setdefault(term, [float("nan")] * (len(self.steps) - 1)).append(float(value))
        for name, state in step.targets.items():
            self._add_state(int(step.step), name, state)
        self._dirty = True

    # ---- painting (timer) ------------------------------------------------------------------------------------
    def _colour(self, name: str) -> str:
        index = self.target_names.index(name) if name in self.target_names else len(self.target_names)
        return TARGET_COLOURS[index % len(TARGET_COLOURS)]

    def _rebuild_series(self) -> None:
        for item in [*self.trajectories.values(), *self.markers.values(), *self.start_markers.values()]:
            self.map_plot.removeItem(item)
        for item in [*self.pknown_curves.values(), *self.percentile_curves.values()]:
            self.pknown_plot.removeItem(item)
        for item in self.loss_curves.values():
            self.loss_plot.removeItem(item)
        self.trajectories, self.markers, self.pknown_curves, self.loss_curves = {}, {}, {}, {}
        self.percentile_curves = {}
        self.start_markers = {}
        self._ensure_target_items()

    def _ensure_target_items(self) -> None:
        for name in self.target_names:
            if name in self.trajectories:
                continue
            colour = self._colour(name)
            line = pg.PlotDataItem([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                                   symbolBrush=colour, symbolPen=None, name=f"{name} (trajectory)")
            marker = pg.ScatterPlotItem(size=16, symbol="star", brush=pg.mkBrush(colour), pen=pg.mkPen("k", width=1),
                                        hoverable=True, tip=_tip)
            start = pg.ScatterPlotItem(size=11, symbol="o", brush=pg.mkBrush(None), pen=pg.mkPen(colour, width=2),
                                       hoverable=True, tip=_tip)
            self.map_plot.addItem(line)
            self.map_plot.addItem(start)
            self.map_plot.addItem(marker)
            self.trajectories[name], self.markers[name], self.start_markers[name] = line, marker, start
            curve = pg.PlotDataItem([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                                    symbolBrush=colour, symbolPen=None, name=name)
            self.pknown_plot.addItem(curve)
            self.pknown_curves[name] = curve
            dashed = pg.PlotDataItem([], [], pen=pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine))
            self.pknown_plot.addItem(dashed)
            self.percentile_curves[name] = dashed

    def repaint_now(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.frames += 1
        if self._refs_dirty:
            self._refs_dirty = False
            points, names = self.known
            self.known_scatter.setData(pos=points, data=names)
            points, names = self.unknown
            self.unknown_scatter.setData(pos=points, data=names)
        self._ensure_target_items()
        steps = np.asarray(self.steps, dtype=float)
        for name, trail in self.points.items():
            xy = np.asarray(trail, dtype=float).reshape(-1, 2)
            last = self.p_steps[name][-1]
            self.trajectories[name].setData(xy[:, 0], xy[:, 1])
            self.markers[name].setData(pos=xy[-1:], data=[f"{name} ({'start' if last == 0 else f'step {last}'})"])
            first = "start (original weights)" if self.p_steps[name][0] == 0 else f"step {self.p_steps[name][0]}"
            self.start_markers[name].setData(pos=xy[:1], data=[f"{name}: {first}"])
            self.pknown_curves[name].setData(np.asarray(self.p_steps[name], dtype=float), np.asarray(self.p_known[name]))
            self.percentile_curves[name].setData(np.asarray(self.p_steps[name], dtype=float),
                                                 np.asarray(self.percentiles[name]))
        for index, (term, values) in enumerate(self.losses.items()):
            if term not in self.loss_curves:
                colour = LOSS_COLOURS[index % len(LOSS_COLOURS)]
                width = 2.5 if term == "total" else 1.5
                style = Qt.PenStyle.SolidLine if term == "total" else Qt.PenStyle.DashLine
                self.loss_curves[term] = self.loss_plot.plot([], [], pen=pg.mkPen(colour, width=width, style=style),
                                                             name=term)
            values_array = np.asarray(values, dtype=float)
            self.loss_curves[term].setData(steps[-len(values_array):], values_array)
        self._paint_latents()

    def _paint_latents(self) -> None:
        known_ids, unknown_ids = self.latent_ids
        labels = [str(i) for i in known_ids] + [str(i) for i in unknown_ids]
        if labels != self._tick_labels:  # ticks change only with the run, not per frame
            self._tick_labels = labels
            ticks = list(enumerate(labels))
            self.latent_plot.getAxis("bottom").setTicks([ticks[0::2], ticks[1::2]])  # crowded second level drops
        name = self.latent_target.currentText() or (self.target_names[0] if self.target_names else "")
        start, now = self.latents_start.get(name), self.latents_now.get(name)
        x = np.arange(len(labels), dtype=float)
        if start is None or now is None or len(start) != len(labels):
            self.bars_start.setOpts(x=[], height=[])
            self.bars_now.setOpts(x=[], height=[])
            return
        self.bars_start.setOpts(x=x, height=start)
        colours = [pg.mkBrush("#2b6cb0cc") if i < len(known_ids) else pg.mkBrush("#dd8a2bcc") for i in range(len(labels))]
        self.bars_now.setOpts(x=x, height=now, brushes=colours)

    # ---- clicks on the latent bars ---------------------------------------------------------------------------
    def latent_at(self, x: float) -> int | None:
        """The latent whose bar covers ``x`` (view coordinates), if any."""
        ids = [*self.latent_ids[0], *self.latent_ids[1]]
        index = round(x)
        return ids[index] if 0 <= index < len(ids) and abs(x - index) <= 0.45 else None

    def _on_latent_click(self, event) -> None:  # noqa: ANN001 - a pyqtgraph MouseClickEvent
        view = self.latent_plot.getPlotItem().getViewBox()
        if event.button() != Qt.MouseButton.LeftButton or not view.sceneBoundingRect().contains(event.scenePos()):
            return
        latent = self.latent_at(view.mapSceneToView(event.scenePos()).x())
        if latent is not None:
            event.accept()
            self.sig_latent_clicked.emit(latent)

    def latent_bar_position(self, index: int) -> QPoint:
        """Where the ``index``-th latent's bar is, in the latent plot's viewport coordinates (tests click there)."""
        view = self.latent_plot.getPlotItem().getViewBox()
        (_, _), (low, high) = view.viewRange()
        scene = view.mapViewToScene(QPointF(index, (low + high) / 2))
        return self.latent_plot.mapFromScene(scene)

    # ---- read back (tests) ---------------------------------------------------------------------------------
    def curve_points(self, item: pg.PlotDataItem) -> int:
        xs, _ = item.getData()
        return 0 if xs is None else len(xs)

    def bar_heights(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.bars_start.opts.get("height", [])), np.asarray(self.bars_now.opts.get("height", [])))
