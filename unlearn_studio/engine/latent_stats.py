"""Per-latent statistics for the latent dashboard, read from a :class:`References` (θ0, no forward pass).

For each of the top known- and unknown-entity latents: its separation score (the fraction of known-reference
prompts where it fires minus the fraction of unknown ones, Ferrando et al.), the histogram of its activation
over the known and the unknown reference prompts where it fires (shared bins; the silent prompts are the
fire rates, and would flatten every other bin), the reference entities on which it fires most, and, when
given, a target's activation at θ0 and now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..errors import UserError
from .latents import References

HISTOGRAM_BINS = 24
TOP_ENTITIES = 8


@dataclass(frozen=True)
class FiringEntity:
    name: str
    kind: str  # known | unknown
    activation: float  # mean over the entity's reference prompts


@dataclass(frozen=True)
class LatentProfile:
    latent: int
    kind: str  # known | unknown: which top list it heads
    separation: float
    known_fire_rate: float
    unknown_fire_rate: float
    bin_edges: list[float]
    known_counts: list[int]  # reference prompts per bin, among those where the latent fires
    unknown_counts: list[int]
    top_entities: list[FiringEntity]
    target: str | None = None
    target_start: float | None = None  # the target's activation with θ0 (mean over its held-out prompts)
    target_now: float | None = None  # with the current weights


def _entity_means(values: torch.Tensor, owners: torch.Tensor, count: int) -> torch.Tensor:
    sums = torch.zeros(count).index_add_(0, owners, values)
    return sums / torch.bincount(owners, minlength=count).clamp_min(1).float()


def latent_profile(refs: References, latent: int, *, target: str | None = None,
                   target_start: Mapping[int, float] | None = None, target_now: Mapping[int, float] | None = None,
                   bins: int = HISTOGRAM_BINS, top: int = TOP_ENTITIES) -> LatentProfile:
    """The dashboard's statistics of one top latent; ``target_*`` map latent ids to the target's activations."""
    columns = [int(i) for i in refs.latent_ids]
    if latent not in columns:
        raise UserError(f"latent {latent} is not one of the top known- or unknown-entity latents "
                        f"({', '.join(map(str, columns))}): the dashboard shows those only.")
    column = columns.index(latent)
    known = refs.known_latent_acts[:, column].float()
    unknown = refs.unknown_latent_acts[:, column].float()
    known_firing, unknown_firing = known[known > 0], unknown[unknown > 0]
    values = [known_firing, unknown_firing, torch.zeros(1)]
    for given in (target_start, target_now):
        if given is not None and latent in given:
            values.append(torch.tensor([float(given[latent])]))
    low, high = float(torch.cat(values).min()), float(torch.cat(values).max())
    if high <= low:  # a latent that never fires on any reference
        high = low + 1.0
    edges = torch.linspace(low, high, bins + 1)
    known_counts = torch.histogram(known_firing, bins=edges).hist
    unknown_counts = torch.histogram(unknown_firing, bins=edges).hist
    firing = [FiringEntity(name, kind, float(mean)) for kind, names, acts, owners in (
        ("known", refs.known_names, known, refs.known_owners), ("unknown", refs.unknown_names, unknown, refs.unknown_owners))
        for name, mean in zip(names, _entity_means(acts, owners, len(names)).tolist())]
    firing.sort(key=lambda entity: -entity.activation)
    return LatentProfile(
        latent=latent, kind="known" if column < len(refs.top_known_latents) else "unknown",
        separation=float(refs.separation[latent]),
        known_fire_rate=float((known > 0).float().mean()), unknown_fire_rate=float((unknown > 0).float().mean()),
        bin_edges=edges.tolist(), known_counts=[int(c) for c in known_counts.tolist()],
        unknown_counts=[int(c) for c in unknown_counts.tolist()],
        top_entities=[entity for entity in firing[:top] if entity.activation > 0],
        target=target, target_start=None if target_start is None else target_start.get(latent),
        target_now=None if target_now is None else target_now.get(latent))


def latent_profiles(refs: References, **target: object) -> list[LatentProfile]:
    """:func:`latent_profile` of every top latent: the known-entity ones first, then the unknown-entity ones."""
    return [latent_profile(refs, int(latent), **target) for latent in refs.latent_ids]


def target_latent_values(refs: References, state: object | None) -> dict[int, float] | None:
    """A trainer ``TargetState``'s top-latent activations keyed by latent id."""
    if state is None:
        return None
    ids = refs.top_known_latents + refs.top_unknown_latents
    return dict(zip(ids, [*state.known_latents, *state.unknown_latents]))
