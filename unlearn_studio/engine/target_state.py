"""A target's internal state at the SAE's hook: P(known), unknown-cluster membership, 2-D point, top latents."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .entities import Entity, fill_template
from .events import TargetState
from .hooks import HookPoint
from .latents import References, batch_activations
from .prompts import EntityBatch, encode_entity_prompts


def prompt_batches(tokenizer, targets: Sequence[Entity], templates: Sequence[str]) -> dict[str, EntityBatch]:
    """Each target's prompts from ``templates``, tokenised."""
    return {t.name: encode_entity_prompts(tokenizer, [fill_template(p, t.name) for p in templates]) for t in targets}


def measure_targets(model, sae, hook: HookPoint, references: References, batches: dict[str, EntityBatch]) -> dict[str, TargetState]:
    """Each target's P(known), unknown fraction, median unknown percentile, 2-D point and top-latent activations."""
    states = {}
    known_latents, unknown_latents = references.top_known_latents, references.top_unknown_latents
    sae_dtype = next(sae.parameters()).dtype
    for name, batch in batches.items():
        acts = batch_activations(model, hook, batch)
        with torch.no_grad():
            codes = sae.encode(acts.to(next(sae.parameters()).device, sae_dtype)).float().cpu()
        p = references.p_known(codes)
        mean_code = codes.mean(0, keepdim=True)
        point = references.projection.project(mean_code)[0]
        states[name] = TargetState(
            p_known=float(p.mean()),
            unknown_fraction=float((p < 0.5).float().mean()),
            # Per prompt, as the unknown references' own distances are: the mean code sits nearer μ_U than any prompt.
            unknown_percentile=float(references.unknown_percentile(codes).quantile(0.5)),
            point=(float(point[0]), float(point[1])),
            known_latents=tuple(float(mean_code[0, i]) for i in known_latents),
            unknown_latents=tuple(float(mean_code[0, i]) for i in unknown_latents),
        )
    return states
