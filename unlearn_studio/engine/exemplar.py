"""The typical unknown entity (pull=exemplar): a real place in the unknown cloud for the target to take.

Pulled onto the unknown references' centroid, a target's code ends where no entity's code lies (the 0th
percentile of the unknown references' distances, DESIGN.md §4). One real unknown entity, the reference
at the median distance from the centroid, is a point inside the cloud that the model demonstrably reads
as "never heard of".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .entities import Entity
from .hooks import HookPoint
from .latents import entity_activations, entity_batch, entity_means


@dataclass(frozen=True)
class Exemplar:
    """The typical unknown entity and, per position kind (True: its name's last token; False: its other tokens),
    θ0's mean SAE code and mean residual there: where sae-align pulls the target's positions of that kind."""

    name: str
    goals: dict[bool, tuple[torch.Tensor, torch.Tensor]]


def typical_unknown(model, tokenizer, hook: HookPoint, names: Sequence[str], templates: Sequence[str]) -> str:
    """The name whose mean last-token activation lies at the median distance from the names' centroid."""
    batch, owners = entity_batch(tokenizer, [Entity(name) for name in names], templates)
    means = entity_means(entity_activations(model, hook, batch)[0], owners, len(names))
    order = torch.argsort((means - means.mean(0)).norm(dim=-1), stable=True)
    return names[int(order[(len(names) - 1) // 2])]


def exemplar_goals(model, tokenizer, sae, hook: HookPoint, name: str, templates: Sequence[str]) -> Exemplar:
    """θ0's mean code and residual of ``name`` per position kind (a kind its name lacks is left out)."""
    last, other = entity_activations(model, hook, entity_batch(tokenizer, [Entity(name)], templates)[0])
    parameter = next(sae.parameters())
    goals = {}
    with torch.no_grad():
        for kind, rows in ((True, last), (False, other)):
            if len(rows):
                codes = sae.encode(rows.to(parameter.device, parameter.dtype)).float().cpu()
                goals[kind] = (codes.mean(0), rows.mean(0))
    return Exemplar(name, goals)
