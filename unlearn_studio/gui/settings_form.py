"""A form generated from a settings schema (engine/settings.py): one widget per declared setting.

Booleans become check boxes, choices combo boxes, whole numbers spin boxes, numbers
double spin boxes, and optional numbers (the learning rate) a line edit whose
placeholder shows the default. Settings of other methods than the chosen one are
disabled; ``advanced`` ones sit in a group that starts folded.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from ..engine.methods import METHODS  # torch-free
from ..engine.settings import SettingField

BIG = 10**9


def _double_box(f: SettingField) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(4)
    box.setRange(f.spec.minimum if f.spec.minimum is not None else -BIG, f.spec.maximum if f.spec.maximum is not None else BIG)
    box.setSingleStep(0.1)
    return box


def _int_box(f: SettingField) -> QSpinBox:
    box = QSpinBox()
    low = int(f.spec.minimum) if f.spec.minimum is not None else -(2**31 - 1)
    high = int(f.spec.maximum) if f.spec.maximum is not None else 2**31 - 1
    box.setRange(low, high)
    return box


def make_widget(f: SettingField) -> QWidget:
    if f.kind is bool:
        widget: QWidget = QCheckBox(f.label)
    elif f.choices:
        widget = QComboBox()
        for choice in f.choices:
            widget.addItem(choice)
            if choice in METHODS:
                widget.setItemData(widget.count() - 1, METHODS[choice].summary, 3)  # ToolTipRole
    elif f.optional:
        widget = QLineEdit()
    elif f.kind is int:
        widget = _int_box(f)
    else:
        widget = _double_box(f)
    methods = f" (for {', '.join(f.spec.methods)})" if f.spec.methods else ""
    first = f.spec.help[0]  # "λ_retain: …" keeps its small λ; plain words get a capital
    widget.setToolTip((first.upper() if first.isascii() else first) + f.spec.help[1:] + methods)
    return widget


class SettingsForm(QWidget):
    """The widgets of ``settings_class``'s schema, keyed by setting name."""

    def __init__(self, settings_class: type, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings_class = settings_class
        self.fields = {f.name: f for f in settings_class.schema()}
        self.widgets = {name: make_widget(f) for name, f in self.fields.items()}
        main, advanced = QFormLayout(), QFormLayout()
        for layout in (main, advanced):
            layout.setContentsMargins(0, 0, 0, 0)
        for name, f in self.fields.items():
            label = "" if f.kind is bool else f.label
            (advanced if f.spec.advanced else main).addRow(label, self.widgets[name])
        self.advanced = QWidget()
        self.advanced.setLayout(advanced)
        self.advanced.setVisible(False)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(self.advanced_toggle.toolButtonStyle().ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(self.advanced_toggle.arrowType().RightArrow)
        self.advanced_toggle.toggled.connect(self._fold)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(main)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced)
        method = self.widgets.get("method")
        if isinstance(method, QComboBox):
            method.currentTextChanged.connect(self._method_changed)
        self.set_values(settings_class().to_dict())

    def _fold(self, unfolded: bool) -> None:
        self.advanced.setVisible(unfolded)
        self.advanced_toggle.setArrowType(self.advanced_toggle.arrowType().DownArrow if unfolded
                                          else self.advanced_toggle.arrowType().RightArrow)

    def _method_changed(self, method: str) -> None:
        for name, f in self.fields.items():
            self.widgets[name].setEnabled(f.applies_to(method))
        lr = self.widgets.get("lr")
        if isinstance(lr, QLineEdit) and method in METHODS:
            lr.setPlaceholderText(f"default ({METHODS[method].default_lr:g})")

    def values(self) -> dict[str, Any]:
        """What the widgets show; a line edit that is not a number gives NaN, which validation refuses by name."""
        result: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QCheckBox):
                result[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                result[name] = widget.currentText()
            elif isinstance(widget, QLineEdit):
                text = widget.text().strip()
                try:
                    result[name] = float(text) if text else None
                except ValueError:
                    result[name] = math.nan
            else:
                result[name] = widget.value()  # type: ignore[attr-defined]
        return result

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            widget = self.widgets.get(name)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value))
            elif isinstance(widget, QLineEdit):
                widget.setText("" if value is None else f"{value:g}")
            elif widget is not None:
                widget.setValue(value)  # type: ignore[attr-defined]
        method = self.widgets.get("method")
        if isinstance(method, QComboBox):
            self._method_changed(method.currentText())

    def settings(self):  # noqa: ANN201 - an instance of settings_class
        """The form as a validated settings object (a UserError names a bad value)."""
        return self.settings_class.from_dict(self.values())
