"""One declaration per setting: a dataclass field whose metadata carries its help, choices, range and methods.

The command line's flags and the window's run-settings form are generated from these
declarations (``cli_common.add_setting_arguments``, ``gui/settings_form.py``), and
``from_dict``/``validate`` read the same fields, so adding a setting is one edit.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass
from typing import Any, TypeVar

from ..errors import UserError

T = TypeVar("T", bound="Settings")
SPEC_KEY = "unlearn_studio.setting"


@dataclass(frozen=True)
class Spec:
    """What a user needs to know about one setting."""

    help: str
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    minimum: float | None = None
    maximum: float | None = None
    methods: tuple[str, ...] = ()  # the methods it applies to; empty: every method
    label: str = ""  # the form's row label; default: the name in words
    advanced: bool = False  # shown in the form's Advanced group


def setting(default: Any = MISSING, *, help: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
            minimum: float | None = None, maximum: float | None = None, methods: tuple[str, ...] = (),
            label: str = "", advanced: bool = False) -> Any:
    """A dataclass field declared with everything the front ends show about it."""
    spec = Spec(help, choices, minimum, maximum, methods, label, advanced)
    return dataclasses.field(default=default, metadata={SPEC_KEY: spec})


@dataclass(frozen=True)
class SettingField:
    """One declared setting, resolved: its value type (int, float, bool or str), default and spec."""

    name: str
    kind: type
    optional: bool  # None is allowed (e.g. the learning rate: None = the method's own)
    default: Any
    spec: Spec

    @property
    def choices(self) -> tuple[str, ...]:
        choices = self.spec.choices
        return tuple(choices() if callable(choices) else choices)

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ").capitalize()

    def applies_to(self, method: str) -> bool:
        return not self.spec.methods or method in self.spec.methods

    def check(self, value: Any) -> Any:
        """``value`` as this setting's type, or a UserError naming the setting and what it accepts."""
        if value is None:
            if self.optional:
                return None
            raise UserError(f"setting {self.name!r} needs a value ({self.spec.help}).")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise UserError(f"setting {self.name!r} is true or false, not {value!r}.")
        elif self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and value != int(value)):
                raise UserError(f"setting {self.name!r} must be {'a whole number' if self.kind is int else 'a number'}, "
                                f"not {value!r}.")
            value = self.kind(value)
            if self.kind is float and value != value:
                raise UserError(f"setting {self.name!r} must be a number, not NaN.")
            low, high = self.spec.minimum, self.spec.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                raise UserError(f"setting {self.name!r} must lie in {_range_text(low, high)}, not {value:g}.")
        elif not isinstance(value, str):
            raise UserError(f"setting {self.name!r} must be text, not {value!r}.")
        if self.choices and value not in self.choices:
            raise UserError(f"setting {self.name!r} must be one of {', '.join(self.choices)}, not {value!r}.")
        return value


def _range_text(low: float | None, high: float | None) -> str:
    if high is None:
        return f"[{low:g}, ∞)"
    if low is None:
        return f"(−∞, {high:g}]"
    return f"[{low:g}, {high:g}]"


def _value_kind(annotation: Any) -> tuple[type, bool]:
    """(int | float | bool | str, optional) from a field's annotation such as ``float | None``."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union else ()
    if args:
        kinds = [a for a in args if a is not type(None)]
        return kinds[0], len(kinds) < len(args)
    return annotation, False


class Settings:
    """Mix into a ``@dataclass`` whose fields are declared with :func:`setting`."""

    @classmethod
    def schema(cls) -> list[SettingField]:
        hints = typing.get_type_hints(cls)
        result = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            spec = f.metadata.get(SPEC_KEY)
            if spec is None:
                continue
            kind, optional = _value_kind(hints[f.name])
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            result.append(SettingField(f.name, kind, optional, default, spec))
        return result

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Strict: a key that is not a setting is an error that lists the valid ones; values are checked."""
        valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise UserError(f"unknown setting {unknown[0]!r} for {cls.__name__}: valid settings are {', '.join(valid)}.")
        settings = cls(**data)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Every declared setting has a value of its type, inside its range and choices (UserError otherwise)."""
        for f in self.schema():
            setattr(self, f.name, f.check(getattr(self, f.name)))
