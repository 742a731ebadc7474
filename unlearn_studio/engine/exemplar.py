"""The typical unknown entity (pull=exemplar): a real place in the unknown cloud for the target to take.

Pulled onto the unknown references' centroid, a target's code ends where no entity's code lies (the 0th
percentile of the unknown references' distances, DESIGN.md §4). One real unknown entity, the reference
at the median distance from the centroid, is a point inside the cloud that the model demonstrably reads
as "never heard of".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .entities import fill_template
from .hooks import HookPoint, capture_one
from .prompts import encode_entity_prompts


def name_activations(model, tokenizer, hook: HookPoint, name: str, templates: Sequence[str]) -> dict[bool, torch.Tensor]:
    """Activations at ``hook`` at the name's last token (key True) and at its other tokens but position 0 (False)."""
    batch = encode_entity_prompts(tokenizer, [fill_template(t, name) for t in templates])
    device = next(model.parameters()).device
    with torch.no_grad():
        acts = capture_one(model, hook, batch.input_ids.to(device), batch.attention_mask.to(device)).float().cpu()
    last = torch.zeros_like(batch.entity_mask)
    last[torch.arange(len(batch.last_entity_pos)), batch.last_entity_pos] = True
    other = batch.entity_mask & ~last
    last[:, 0] = other[:, 0] = False  # the attention sink is never aligned
    return {True: acts[last], False: acts[other]}


def typical_unknown(model, tokenizer, hook: HookPoint, names: Sequence[str], templates: Sequence[str]) -> str:
    """The name whose mean last-token activation lies at the median distance from the names' centroid."""
    means = torch.stack([name_activations(model, tokenizer, hook, name, templates)[True].mean(0) for name in names])
    distances = (means - means.mean(0)).norm(dim=-1)
    order = torch.argsort(distances, stable=True)
    return names[int(order[(len(names) - 1) // 2])]
