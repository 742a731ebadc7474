"""A base for settings dataclasses: plain-dict round trips that tolerate unknown keys on load."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="Settings")


class Settings:
    """Mix into a ``@dataclass``: ``to_dict`` and a ``from_dict`` that ignores keys it does not know."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})
