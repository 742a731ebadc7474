"""bench/knownness_layers.py: the cross-validation that picks a layer never splits an entity's prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from knownness_layers import grouped_cv_auroc  # noqa: E402


def _entity(centre: float, prompts: int = 4) -> torch.Tensor:
    return torch.full((prompts, 3), centre) + 0.01 * torch.arange(prompts * 3, dtype=torch.float32).reshape(prompts, 3)


def test_separable_entities_score_one_and_mixed_labels_score_near_chance():
    separable = [(_entity(2.0 + i * 0.1), 1) for i in range(10)] + [(_entity(-2.0 - i * 0.1), 0) for i in range(10)]
    assert grouped_cv_auroc(separable, l2=1e-2) == 1.0
    generator = torch.Generator().manual_seed(0)
    noise = [(torch.randn(4, 3, generator=generator), i % 2) for i in range(40)]
    assert 0.2 < grouped_cv_auroc(noise, l2=1e-2) < 0.8
