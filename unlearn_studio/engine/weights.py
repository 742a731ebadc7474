"""Snapshots of parameter values: θ0 for reset and 'before' answers, the last good weights of a run, the audit's copy.

A snapshot lives on the CPU by default, so a large model's copy costs no device memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch


class WeightsSnapshot:
    """The values of ``parameters`` (named or in order) at the moment the snapshot is taken."""

    def __init__(self, parameters: Mapping[str, torch.nn.Parameter] | Sequence[torch.nn.Parameter],
                 device: str | torch.device = "cpu") -> None:
        self._parameters = list(parameters.values()) if isinstance(parameters, Mapping) else list(parameters)
        self._values = [p.detach().to(device, copy=True) for p in self._parameters]

    @property
    def values(self) -> list[torch.Tensor]:
        return self._values

    def retake(self) -> None:
        """Copy the parameters' current values into the snapshot (no new memory)."""
        with torch.no_grad():
            for value, parameter in zip(self._values, self._parameters):
                value.copy_(parameter)

    def restore(self) -> None:
        """Put the snapshot's values back into the parameters."""
        with torch.no_grad():
            for parameter, value in zip(self._parameters, self._values):
                parameter.copy_(value)

    def matches(self) -> bool:
        """Whether every parameter still holds the snapshot's value."""
        return all(torch.equal(p.detach().to(v.device), v) for p, v in zip(self._parameters, self._values))

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The snapshot's values for the duration of the block, then the values of before it."""
        current = WeightsSnapshot(self._parameters)
        self.restore()
        try:
            yield
        finally:
            current.restore()
