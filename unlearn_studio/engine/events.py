"""Events that engine jobs yield: plain frozen dataclasses, safe to pass between threads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Started:
    job: str
    total_steps: int = 0


@dataclass(frozen=True)
class Progress:
    message: str
    fraction: float


@dataclass(frozen=True)
class TargetState:
    """One target's internal state at a step, measured on its held-out prompts."""

    p_known: float
    unknown_fraction: float
    unknown_percentile: float
    point: tuple[float, float]
    known_latents: tuple[float, ...]
    unknown_latents: tuple[float, ...]


@dataclass(frozen=True)
class InitialState:
    """The targets' state before the first step (the original weights): where trajectories start."""

    targets: dict[str, TargetState]


@dataclass(frozen=True)
class StepProgress:
    step: int
    total: int
    losses: dict[str, float]
    targets: dict[str, TargetState]
    retain_drift: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finished:
    result: Any


@dataclass(frozen=True)
class Failed:
    error: str
    traceback_text: str = ""
    user_error: bool = True


@dataclass(frozen=True)
class Cancelled:
    step: int = 0
    details: dict[str, Any] = field(default_factory=dict)


Event = Started | Progress | InitialState | StepProgress | Finished | Failed | Cancelled
