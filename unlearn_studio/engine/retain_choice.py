"""Which known entities a run holds in place: a random sample, or the targets' nearest neighbours in SAE space.

A representation-moving run drags along the entities whose codes lie near the target's (after Shakespeare,
Romeo and Juliet lost most of its facts: docs/results.md). Holding exactly those at θ0 tells the optimiser
what must not move with the target.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from .entities import Entity, fill_template
from .hooks import HookPoint, capture_one
from .methods import RETAIN_CHOICES
from .prompts import encode_entity_prompts


def last_token_codes(model, tokenizer, sae, hook: HookPoint, names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Each name's mean SAE code at its last token over ``templates`` (θ0 when called before training): [names, latents]."""
    batch = encode_entity_prompts(tokenizer, [fill_template(t, name) for name in names for t in templates])
    device = next(model.parameters()).device
    sae_dtype = next(sae.parameters()).dtype
    with torch.no_grad():
        acts = capture_one(model, hook, batch.input_ids.to(device), batch.attention_mask.to(device))
        last = acts[torch.arange(len(batch.last_entity_pos), device=device), batch.last_entity_pos.to(device)]
        codes = sae.encode(last.to(sae_dtype)).float().cpu()
    return codes.view(len(names), len(templates), -1).mean(1)


def nearest_to_targets(target_codes: torch.Tensor, candidate_codes: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` candidates most cosine-similar to any target, nearest first."""
    similarity = torch.nn.functional.normalize(candidate_codes, dim=-1) @ torch.nn.functional.normalize(target_codes, dim=-1).T
    closest = similarity.max(dim=1).values
    return torch.argsort(closest, descending=True, stable=True)[:count].tolist()


def choose_retain(model, tokenizer, sae, hook: HookPoint, targets: Sequence[Entity], pool: Sequence[Entity],
                  templates: Sequence[str], count: int, how: str, seed: int) -> list[Entity]:
    """``count`` entities of ``pool`` to hold in place, chosen as ``how`` says (one of RETAIN_CHOICES)."""
    count = min(count, len(pool))
    if how == "random" or not pool:
        return random.Random(seed).sample(list(pool), count)
    if how != "nearest":
        raise ValueError(f"unknown retain choice {how!r} (expected one of {', '.join(RETAIN_CHOICES)})")
    target_codes = last_token_codes(model, tokenizer, sae, hook, [t.name for t in targets], templates)
    pool_codes = last_token_codes(model, tokenizer, sae, hook, [e.name for e in pool], templates)
    return [pool[i] for i in nearest_to_targets(target_codes, pool_codes, count)]
