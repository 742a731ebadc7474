"""Entities: the reference table (filterable, with known-ness), and the target list."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPlainTextEdit, QProgressBar, QPushButton, QTableView, QVBoxLayout, QWidget)

from ..app_model import CLASSIFY, MAP, REFERENCES, AppModel, EntityRow, Target

COLUMNS = ("Entity", "Type", "List", "Status", "P(known)")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # numbers sort as numbers (P(known)); "—" sorts below every value
P_KNOWN_COLUMN = 4
STATUS_COLOURS = {"known": "#2b6cb0", "unknown": "#dd8a2b", "excluded": "#888888"}
ENTITY_TYPES = ("person", "place", "work", "organisation", "other")



LIST_LABELS = {"candidate": "well-known", "lesser_known": "lesser-known", "fictitious": "fictitious"}

class EntitiesPanel(QWidget):
    """The shipped reference entities, their status for this model, and the Classify button."""

    sig_pick = Signal(str)  # a name to add as a target

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter entities (name, type, status)…")
        self.filter.setClearButtonEnabled(True)
        self.items = QStandardItemModel(0, len(COLUMNS), self)
        self.items.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.items)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setSortRole(SORT_ROLE)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setWordWrap(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Double-click an entity to make it a target")
        self.table.doubleClicked.connect(self._double_clicked)
        self.classify_button = QPushButton("Classify known-ness")
        self.classify_button.setToolTip("Ask the model every fact of every listed entity: known = at least 2 answered "
                                        "right; fictitious ones it 'answers' are excluded (cached per model)")
        self.classify_button.clicked.connect(model.classify)
        self.references_button = QPushButton("Compute references")
        self.references_button.setToolTip("Compute the reference statistics a run uses (the known and unknown "
                                          "entities' SAE codes, the probe, the 2-D map) with the original weights: "
                                          "fills the P(known) column; cached, so the next run starts sooner")
        self.references_button.clicked.connect(self.compute_references)
        self.verify = QCheckBox("Verify known-ness")
        self.verify.setChecked(True)
        self.verify.setToolTip("On: the references are the entities this model really knows / does not know "
                               "(classification). Off: use the shipped lists as they are (for tiny or untrained models).")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("not classified")
        self.summary = QLabel("")
        top = QHBoxLayout()
        top.addWidget(self.classify_button)
        top.addWidget(self.references_button)
        top.addWidget(self.verify)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.filter)
        layout.addWidget(self.table, 1)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        model.sig_entities.connect(self.set_rows)
        model.sig_progress.connect(self._on_progress)
        model.sig_state.connect(self._on_state)
        self._on_state()

    def set_rows(self, rows: list[EntityRow]) -> None:
        sorting = self.table.isSortingEnabled()
        self.table.setSortingEnabled(False)
        self.items.setRowCount(0)
        for row in rows:
            status = row.status or "—"
            if row.correct is not None:
                status += f" ({row.correct}/{row.facts})"
            cells = [QStandardItem(row.name), QStandardItem(row.type),
                     QStandardItem(LIST_LABELS.get(row.reference, row.reference)),
                     QStandardItem(status),
                     QStandardItem("—" if row.p_known is None else f"{row.p_known:.2f}")]
            cells[2].setToolTip("which shipped list it comes from: well-known candidates, real lesser-known "
                                "entities (the unknown references where the model does not know them), or fictitious names")
            cells[3].setToolTip("known: answers ≥ 2 facts right; unknown: never answers one (a lesser-known or a "
                                "fictitious entity); excluded: neither (facts right / facts)")
            cells[4].setToolTip("the known/unknown probe's P(known) with the original weights (mean over the "
                                "entity's prompts); — until reference statistics that include it are computed")
            for column, cell in enumerate(cells):
                cell.setData(cell.text().lower() if column != P_KNOWN_COLUMN else
                             (-1.0 if row.p_known is None else float(row.p_known)), SORT_ROLE)
            cells[4].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if row.status in STATUS_COLOURS:
                cells[3].setForeground(QBrush(QColor(STATUS_COLOURS[row.status])))
            cells[0].setToolTip(f"{row.name}: {row.facts} facts; double-click to add as a target")
            self.items.appendRow(cells)
        self.table.setSortingEnabled(sorting)
        classified = [r for r in rows if r.status]
        measured = sum(1 for r in rows if r.p_known is not None)
        references = f"; P(known) of {measured} references" if measured else ""
        if not rows:
            self.summary.setText("Nothing loaded.")
            self.progress.setValue(0)
            self.progress.setFormat("not classified")
        elif classified:
            known = sum(r.status == "known" for r in classified)
            unknown = sum(r.status == "unknown" for r in classified)
            self.summary.setText(f"{known} known, {unknown} unknown, {len(classified) - known - unknown} excluded "
                                 f"of {len(rows)}{references}")
            self.progress.setValue(1000)
            self.progress.setFormat("classified")
        else:
            self.summary.setText(f"{len(rows)} listed entities, not classified for this model yet{references}")
            if measured:
                self.progress.setValue(1000)
                self.progress.setFormat("references ready (not classified)")

    def row_count(self) -> int:
        return self.proxy.rowCount()

    def name_at(self, proxy_row: int) -> str:
        return self.proxy.index(proxy_row, 0).data()

    def selected_names(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.name_at(r) for r in rows]

    def _double_clicked(self, index) -> None:  # noqa: ANN001 - a QModelIndex
        self.sig_pick.emit(self.proxy.index(index.row(), 0).data())

    def compute_references(self) -> None:
        self.model.compute_references(self.verify.isChecked())

    def _on_progress(self, job: str, message: str, fraction: float) -> None:
        if job in (CLASSIFY, REFERENCES, MAP) or message.startswith("known-ness"):
            self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
            self.progress.setFormat(message[:50])

    def _on_state(self) -> None:
        enabled = self.model.session is not None and self.model.busy is None
        self.classify_button.setEnabled(enabled)
        self.references_button.setEnabled(enabled)


class FactsDialog(QDialog):
    """A small editor for a typed target's facts: one per line, ``prompt | answer; other answer``."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Facts about {name}")
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(f"{name} is located in the city of | Paris\n"
                                     f"{name} was built in the year | 1889")
        self.name = name
        # A fact the name answers ("Port Zenthia … town of | Zenthia") survives any forgetting: say so while typing.
        self.name_warning = QLabel()
        self.name_warning.setWordWrap(True)
        self.name_warning.setStyleSheet("color: #b7791f;")
        self.text.textChanged.connect(self._check_names)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("One fact per line: the prompt, a bar, then the accepted answers separated by ';'."))
        layout.addWidget(self.text)
        layout.addWidget(self.name_warning)
        layout.addWidget(buttons)
        self.resize(520, 280)

    def facts(self) -> tuple:
        return parse_fact_lines(self.text.toPlainText())

    def _check_names(self) -> None:
        from ...engine.fact_checks import FactCheck
        from ...engine.stand_ins import name_gives_answer

        given = [fact.answers[0] for fact in self.facts()
                 if name_gives_answer(FactCheck(self.name, "forget", "completion", fact.prompt, fact.answers))]
        self.name_warning.setText(
            f"The name gives away {', '.join(given)}: a model that forgot {self.name} can still answer by copying "
            "the name, so such a check counts as answered by every stand-in. Prefer a fact the name does not hold."
            if given else "")


def parse_fact_lines(text: str) -> tuple:
    """``prompt | answer; alias`` lines to engine Facts (lines without a bar are skipped)."""
    from ...engine.entities import Fact

    facts = []
    for line in text.splitlines():
        if "|" not in line:
            continue
        prompt, answers = line.split("|", 1)
        names = tuple(a.strip() for a in answers.split(";") if a.strip())
        if prompt.strip() and names:
            facts.append(Fact(prompt.strip(), names))
    return tuple(facts)


class TargetsPanel(QWidget):
    """The forget set: picked from the table or typed, with optional facts."""

    def __init__(self, model: AppModel, entities: EntitiesPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.entities = entities
        self.list = QListWidget()
        self.list.setToolTip("The entities to forget")
        self.list.setMinimumHeight(60)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Type a new target name…")
        self.name.returnPressed.connect(self.add_typed)
        self.type = QComboBox()
        self.type.addItems(ENTITY_TYPES)
        self.type.setToolTip("The kind of entity (used for the prompts' wording and the report)")
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add the typed name (or the selected table rows) as targets")
        self.add_button.clicked.connect(self.add_clicked)
        self.facts_button = QPushButton("Facts…")
        self.facts_button.setToolTip("Type facts for the typed target (so forget accuracy can be measured)")
        self.facts_button.clicked.connect(self.edit_facts)
        self.file_button = QPushButton("Facts file…")
        self.file_button.setToolTip('Load targets with facts from a JSON file: [{"entity": …, "type": …, '
                                    '"facts": [{"prompt": …, "answers": [...]}]}]')
        self.file_button.clicked.connect(self.load_file)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        typed = QHBoxLayout()
        typed.addWidget(self.name, 1)
        typed.addWidget(self.type)
        typed.addWidget(self.add_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.facts_button)
        buttons.addWidget(self.file_button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.list, 1)
        layout.addLayout(typed)
        layout.addLayout(buttons)
        entities.sig_pick.connect(self.add_listed)
        model.sig_targets.connect(self.set_targets)
        self._pending_facts: tuple = ()

    def add_listed(self, name: str) -> None:
        self.model.add_target(name)

    def add_clicked(self) -> None:
        if self.name.text().strip():
            self.add_typed()
            return
        for name in self.entities.selected_names():
            self.model.add_target(name)

    def add_typed(self) -> None:
        name = self.name.text().strip()
        if not name:
            return
        if self.model.add_target(name, self.type.currentText(), self._pending_facts):
            self.name.clear()
            self._pending_facts = ()
            self.facts_button.setText("Facts…")

    def edit_facts(self) -> None:
        name = self.name.text().strip() or "the target"
        dialog = FactsDialog(name, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self._pending_facts = dialog.facts()
            self.facts_button.setText(f"Facts ({len(self._pending_facts)})…")

    def load_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a facts file", "", "JSON files (*.json);;All files (*)")
        if path:
            self.pick_facts_entries(path)

    def pick_facts_entries(self, path: str) -> None:
        """Ask (non-blocking) which of the file's entries to add; the dialog stays in ``self.entries_dialog``."""
        from .facts_picker import FactsEntriesDialog

        entries = self.model.read_facts_file(path)
        if not entries:
            return
        dialog = FactsEntriesDialog(path, entries, [t.name for t in self.model.targets], self)
        dialog.accepted.connect(lambda: self.model.add_facts_file(path, dialog.chosen()))
        dialog.open()
        self.entries_dialog = dialog

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.model.remove_target(item.data(Qt.ItemDataRole.UserRole))

    def set_targets(self, targets: list[Target]) -> None:
        self.list.clear()
        for target in targets:
            item = QListWidgetItem(target.label)
            item.setData(Qt.ItemDataRole.UserRole, target.name)
            self.list.addItem(item)

    def names(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]
