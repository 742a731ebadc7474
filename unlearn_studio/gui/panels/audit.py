"""The forgetting audit: per-layer heat maps (probe P(known), logit-lens P(answer)) for θ0 and now, a small table,
and one row per target (last-layer lens rank, name fidelity, forget accuracy per form after relearning).

The numbers come from ``unlearn_studio.engine.audit.run_audit`` (an ``AuditResult``), run by
:meth:`AppModel.audit` in a worker; this view only draws them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QTableWidget, QTableWidgetItem, QToolTip, QVBoxLayout, QWidget)

from ..app_model import AUDIT, AUDIT_RELEARN_STEPS, AppModel
from ..plots import KNOWN_COLOUR, UNKNOWN_COLOUR

ROWS = ("original", "current")
LENS_LEVELS = (-5.0, 0.0)  # log10 P(answer): 1e-5 (unreadable) … 1
FORMS = (("completion", "Facts right: completion"), ("paraphrase", "Facts right: held-out paraphrases"),
         ("chat", "Facts right: chat form"))


def _colour_map(stops: list[tuple[float, str]]) -> pg.ColorMap:
    return pg.ColorMap([p for p, _ in stops], [QColor(c) for _, c in stops])


# P(known): unknown (orange) → undecided (white) → known (blue), as in the 2-D map; P(answer): white → dark red.
PROBE_MAP = _colour_map([(0.0, UNKNOWN_COLOUR), (0.5, "#f7f7f7"), (1.0, KNOWN_COLOUR)])
LENS_MAP = _colour_map([(0.0, "#ffffff"), (0.35, "#fbb4a0"), (0.7, "#e04a33"), (1.0, "#67000d")])


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * float(value):.0f} %"


def _rank(summary: dict[str, float] | None) -> str:
    return "no facts" if summary is None else f"{summary['median']:.0f} / {summary['mean']:.1f}"


def _layer_label(column: int) -> str:
    """Column 0 is the embeddings' output; column c is the residual after block c − 1."""
    return "emb" if column == 0 else str(column - 1)


class HeatMap(pg.PlotWidget):
    """Two rows (original, current) × one column per layer, with a colour bar and a layer axis; hover shows the value."""

    def __init__(self, title: str, colour_map: pg.ColorMap, bar_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(title, size="10pt")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.getPlotItem().invertY(True)  # 'original' on top
        self.setLabel("bottom", "layer (n = after block n; the first column = embeddings)")
        left = self.getAxis("left")
        left.setTicks([[(0.5, "original"), (1.5, "current")]])
        left.setStyle(tickLength=0)
        self.setMinimumHeight(130)
        self.setMinimumWidth(300)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colour_map, interactive=False, width=14, label=bar_label,
                                   colorMapMenu=False)
        self.bar.setImageItem(self.image, insert_in=self.getPlotItem())
        self.hook_box = pg.QtWidgets.QGraphicsRectItem()
        self.hook_box.setPen(pg.mkPen("#222", width=2, style=Qt.PenStyle.DashLine))
        self.hook_box.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.hook_box.setVisible(False)
        self.addItem(self.hook_box)
        self.note = pg.TextItem("", color="#666", anchor=(0.5, 0.5))
        self.addItem(self.note)
        self.values = np.zeros((2, 0))  # what the rows show (tests read it back)
        self.text_format = "{:.2f}"
        self.transform = None  # e.g. log10 for the colours; values and tooltips stay as given
        self.scene().sigMouseMoved.connect(self._hover)

    def set_rows(self, original: list[float], current: list[float], levels: tuple[float, float],
                 hook_column: int | None = None, empty_note: str = "") -> None:
        columns = max(len(original), len(current))
        if not original or not current or len(original) != len(current):
            self.values = np.zeros((2, 0))
            self.image.clear()
            self.hook_box.setVisible(False)
            self.note.setText(empty_note or "nothing to show")
            self.note.setPos(max(columns, 1) / 2, 1.0)
            self.setRange(xRange=(0, max(columns, 1)), yRange=(0, 2), padding=0)
            return
        self.note.setText("")
        self.values = np.asarray([original, current], dtype=float)
        shown = self.transform(self.values) if self.transform is not None else self.values
        self.image.setImage(np.clip(shown, *levels), autoLevels=False)
        self.image.setRect(0, 0, columns, 2)
        self.bar.setLevels(levels)
        step = max(1, int(np.ceil(columns / 16)))
        major = [0, *range(step, columns, step)]
        self.getAxis("bottom").setTicks([[(c + 0.5, _layer_label(c)) for c in major],
                                         [(c + 0.5, _layer_label(c)) for c in range(columns) if c not in major]])
        if hook_column is not None and 0 <= hook_column < columns:
            self.hook_box.setRect(hook_column, 0, 1, 2)
            self.hook_box.setVisible(True)
        else:
            self.hook_box.setVisible(False)
        self.setRange(xRange=(-0.6, columns + 0.6), yRange=(0, 2), padding=0)  # room for the edge labels

    def columns(self) -> int:
        return int(self.values.shape[1])

    def _hover(self, position: QPointF) -> None:
        if not self.columns() or not self.sceneBoundingRect().contains(position):
            return
        point = self.getPlotItem().vb.mapSceneToView(position)
        column, row = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= column < self.columns() and 0 <= row < 2:
            QToolTip.showText(self.mapToGlobal(self.mapFromScene(position).toPoint()),
                              f"{ROWS[row]} weights, layer {_layer_label(column)}: "
                              f"{self.text_format.format(self.values[row, column])}", self)


class AuditPanel(QWidget):
    """Button, progress, the two heat maps and the before/after table of one audit."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.audit_button = QPushButton("Audit targets")
        self.audit_button.setToolTip("For the original and the current weights, at every layer: a known/unknown probe's "
                                     "P(known) for the targets and a logit lens on their facts; then the facts in "
                                     f"new phrasings and chat form, and after {AUDIT_RELEARN_STEPS} steps of "
                                     "fine-tuning on unrelated text (the weights are put back afterwards)")
        self.audit_button.clicked.connect(self.start)
        self.verify = QCheckBox("Verify known-ness")
        self.verify.setChecked(True)
        self.verify.setToolTip("Fit the per-layer probes on the entities this model really knows / does not know "
                               "(classification, cached). Off: the shipped lists as they are (tiny or untrained models).")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("not audited")
        self.summary = QLabel("Unlearn the targets, then press “Audit targets” to see, layer by layer, whether the "
                              "model still recognises them and can still read their answers.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.probe_map = HeatMap("Probe P(known) per layer", PROBE_MAP, "P(known)")
        self.probe_map.setToolTip("A known/unknown probe fitted at each layer on the reference entities (original "
                                  "weights), applied to the targets' held-out prompts: blue = read as known, "
                                  "orange = read as unknown")
        self.lens_map = HeatMap("Logit lens: P(answer) per layer (log scale)", LENS_MAP, "log₁₀ P(answer)")
        self.lens_map.setToolTip("The residual at each layer, read through the final norm and the unembedding at "
                                 "the fact prompt's last token: how likely the answer's first token is. Dark = the "
                                 "answer can be read there")
        self.lens_map.text_format = "P = {:.3g}"
        self.lens_map.transform = lambda values: np.log10(np.maximum(values, 1e-12))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Measure", "Original", "Current"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        self._fit_table()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.target_table = QTableWidget(0, 0)
        self.target_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.target_table.verticalHeader().hide()
        self.target_table.verticalHeader().setDefaultSectionSize(20)
        self.target_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.target_table.horizontalHeader().setStretchLastSection(True)
        self._fit_target_table()

        top = QHBoxLayout()
        top.addWidget(self.audit_button)
        top.addWidget(self.verify)
        top.addWidget(self.progress, 1)
        content = QWidget()
        body = QVBoxLayout(content)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(4)
        body.addWidget(self.probe_map, 1)
        body.addWidget(self.lens_map, 1)
        body.addWidget(self.table)
        body.addWidget(self.target_table)
        # the plots and both tables stay whole in a short window: they scroll instead (the wrapped summary stays
        # outside, as its height-for-width would make the scrolled part as tall as its preferred size)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(scroll, 1)

        self._pending = False
        model.sig_audit.connect(self.show_result)
        model.sig_progress.connect(self._on_progress)
        model.sig_state.connect(self._on_state)
        model.sig_error.connect(self._on_error)
        model.sig_loaded.connect(lambda _d: self.clear())
        self.clear()
        self._on_state()

    def start(self) -> None:
        if self.model.busy is not None:
            self.model.sig_message.emit("Wait for the current job to finish (or stop it) before auditing.")
            return
        self._pending = True
        if self.model.audit(self.verify.isChecked()) is None:
            self._pending = False
            return
        self.progress.setValue(0)
        self.progress.setFormat("starting…")

    def clear(self) -> None:
        self.probe_map.set_rows([], [], (0, 1), empty_note="not audited yet")
        self.lens_map.set_rows([], [], (0, 1), empty_note="not audited yet")
        self.table.setRowCount(0)
        self.target_table.setRowCount(0)
        self.target_table.setColumnCount(0)
        self._fit_target_table()

    # ---- drawing -----------------------------------------------------------------------------------------
    def _hook_column(self) -> int | None:
        description = self.model.description or {}
        layer = (description.get("sae") or {}).get("hook_layer")
        return None if layer is None else int(layer) + 1  # the residual after block ℓ

    def show_result(self, result: Any) -> None:
        original, current = result.original, result.current
        hook = self._hook_column()
        self.probe_map.set_rows(list(original.probe_p_known), list(current.probe_p_known), (0.0, 1.0), hook)
        self.lens_map.set_rows(list(original.lens_probability), list(current.lens_probability), LENS_LEVELS, hook,
                               empty_note="no facts: the logit lens needs the targets' facts")
        self._pending = False
        self._fill_table(result)
        self._fill_target_table(result)
        self._summarise(result)
        self.progress.setValue(1000)
        self.progress.setFormat("audited")

    def _fill_table(self, result: Any) -> None:
        original, current = result.original, result.current
        rows: list[tuple[str, str, str, str]] = []
        for key, label in FORMS:
            rows.append((label, _pct(original.accuracy_by_form.get(key)), _pct(current.accuracy_by_form.get(key)),
                         "share of the targets' facts answered right (greedy, fuzzy match)"))
        for label, values, fmt, tip in (
                ("Probe P(known), highest over layers", (original.probe_p_known, current.probe_p_known), "{:.2f}",
                 "the most 'known' any layer's probe reads the targets (held-out prompts)"),
                ("Logit lens P(answer), highest", (original.lens_probability, current.lens_probability), "{:.3g}",
                 "how readable the answers' first tokens are at the best layer"),
                ("Logit lens rank of the answer, best", (original.lens_rank, current.lens_rank), "{:.0f}",
                 "0 = the answer's first token is the top prediction at some layer")):
            best = min if "rank" in label else max
            cells = []
            for series in values:
                if series:
                    index = int(np.argmin(series) if best is min else np.argmax(series))
                    cells.append(f"{fmt.format(series[index])} (layer {_layer_label(index)})")
                else:
                    cells.append("—")
            rows.append((label, cells[0], cells[1], tip))
        relearned = result.relearned_forget_accuracy
        rows.append((f"After {result.relearn_steps} relearning steps: forget accuracy", "—", _pct(relearned),
                     "the current model fine-tuned a few steps on unrelated text, then asked the targets' facts "
                     "(weights restored afterwards): facts that come back were hidden, not removed"))
        self.table.setRowCount(0)
        for label, before, after, tip in rows:
            index = self.table.rowCount()
            self.table.insertRow(index)
            for column, text in enumerate((label, before, after)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(index, column, item)
        self._fit_table()

    def _fill_target_table(self, result: Any) -> None:
        """One row per target, the engine's numbers as they are (medians and means come computed)."""
        per_target = result.per_target
        forms = list(dict.fromkeys(form for t in per_target.values() for form in t.relearned_forget_accuracy_by_form))
        steps = result.relearn_steps
        rank_tip = ("logit lens at the last layer: the rank of each of the target's answers' first token (0 = the top "
                    "prediction), median / mean over its facts")
        names_tip = "share of chat answers about the target that write its name exactly (a garbled name is damage)"
        relearn_tip = f"after {steps} fine-tuning steps on unrelated text (weights restored afterwards): facts right"
        columns = [("Target", "the audited target"),
                   ("Lens rank\noriginal", rank_tip + ", original weights"), ("Lens rank\ncurrent", rank_tip + ", now"),
                   ("Name fidelity\noriginal", names_tip + ", original weights"), ("Name fidelity\ncurrent", names_tip + ", now"),
                   ("Relearned\nuntrained forms", relearn_tip + ", mean over the forms no method trains on"),
                   *((f"Relearned\n{form.replace('_', ' ')}", f"{relearn_tip}, {form.replace('_', ' ')} form") for form in forms)]
        self.target_table.setRowCount(0)
        self.target_table.setColumnCount(len(columns))
        for column, (label, tip) in enumerate(columns):
            item = QTableWidgetItem(label)
            item.setToolTip(tip)
            self.target_table.setHorizontalHeaderItem(column, item)
        for name, target in per_target.items():
            ranks, names, by_form = target.lens_rank_last_layer, target.name_fidelity, target.relearned_forget_accuracy_by_form
            cells = [name, _rank(ranks["original"]), _rank(ranks["current"]), _pct(names["original"]), _pct(names["current"]),
                     _pct(target.relearned_forget_headline), *(_pct(by_form.get(form)) for form in forms)]
            row = self.target_table.rowCount()
            self.target_table.insertRow(row)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(columns[column][1])
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.target_table.setItem(row, column, item)
        self._fit_target_table()

    def _fit_target_table(self) -> None:
        """As tall as its rows plus room for the sideways scroll bar (many forms); hidden until an audit fills it."""
        table = self.target_table
        table.setVisible(table.rowCount() > 0)
        header = table.horizontalHeader().sizeHint().height()
        scroll = table.horizontalScrollBar().sizeHint().height()
        table.setFixedHeight(header + table.rowCount() * table.verticalHeader().defaultSectionSize() + scroll + 4)

    def _fit_table(self) -> None:
        """As tall as its rows (at least a few), so the heat maps get the rest of the height."""
        rows = max(3, self.table.rowCount())
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + rows * self.table.verticalHeader().defaultSectionSize() + 4)

    def _summarise(self, result: Any) -> None:
        def known_layers(series: list[float]) -> int:
            return sum(1 for p in series if p > 0.5)

        layers = len(result.layers)
        parts = [f"<b>{', '.join(result.targets)}</b>: the probe reads “known” at "
                 f"{known_layers(result.original.probe_p_known)} of {layers} layers with the original weights, "
                 f"{known_layers(result.current.probe_p_known)} now."]
        forms = [v for v in result.current.accuracy_by_form.values() if v is not None]
        if forms:
            parts.append(f"Facts right now: {_pct(sum(forms) / len(forms))} over the forms asked.")
        if result.relearned_forget_accuracy is not None:
            parts.append(f"After {result.relearn_steps} fine-tuning steps on unrelated text: "
                         f"{_pct(result.relearned_forget_accuracy)} right.")
        if self._hook_column() is not None:
            parts.append("<span style='color:gray'>Dashed box: the SAE's layer.</span>")
        self.summary.setText(" ".join(parts))

    # ---- model signals ---------------------------------------------------------------------------------------
    def _on_progress(self, job: str, message: str, fraction: float) -> None:
        if job == AUDIT:
            self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
            self.progress.setFormat(f"{message[:60]} · %p%")

    def _on_error(self, title: str, message: str, _details: str) -> None:
        if title.startswith("Auditing"):
            self._pending = False
            self.progress.setValue(0)
            self.progress.setFormat("failed")

    def _on_state(self) -> None:
        idle, loaded = self.model.busy is None, self.model.session is not None
        self.audit_button.setEnabled(idle and loaded and bool(self.model.targets))
        if idle and self._pending:  # the audit ended with neither a result nor an error: it was stopped
            self._pending = False
            self.progress.setFormat("stopped")

    # ---- read back (tests) -----------------------------------------------------------------------------------
    def heatmap_columns(self) -> tuple[int, int]:
        return self.probe_map.columns(), self.lens_map.columns()

    def table_text(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())] for r in range(self.table.rowCount())]

    def target_table_text(self) -> tuple[list[str], list[list[str]]]:
        """The per-target table: its column titles and its rows."""
        table = self.target_table
        titles = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        return titles, [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
