"""Reference statistics of known vs unknown entities in SAE space (DESIGN.md §2 and §4).

Computed once with the original weights θ0: the mean codes μ_K and μ_U, the
known/unknown logistic probe, the fixed 2-D projection, the distribution of the
unknown references' distances to μ_U, and per-latent separation scores.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from .entities import Entity, fill_template
from .hooks import HookPoint, capture_one
from .jobs import ProgressCallback, check_cancel
from .probe import LogisticProbe, fit_probe
from .prompts import EntityBatch, encode_entity_prompts

TOP_LATENTS = 8


def entity_batch(tokenizer, entities: Sequence[Entity], templates: Sequence[str]) -> tuple[EntityBatch, list[int]]:
    """Every (entity, template) prompt as one batch, and the entity index of each row."""
    prompts, owners = [], []
    for index, entity in enumerate(entities):
        for template in templates:
            prompts.append(fill_template(template, entity.name))
            owners.append(index)
    return encode_entity_prompts(tokenizer, prompts), owners


def entity_activations(model, hook: HookPoint, batch: EntityBatch, *, batch_size: int = 64,
                       progress: ProgressCallback | None = None,
                       cancel: threading.Event | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations without gradients at the last entity token of every row ``[rows, width]`` and at the entity's
    other tokens ``[n, width]`` (never position 0: the BOS token or the attention sink)."""
    device = next(model.parameters()).device
    last_pieces, other_pieces = [], []
    for start in range(0, len(batch), batch_size):
        check_cancel(cancel)
        rows = batch.rows(slice(start, start + batch_size)).to(device)
        length = int(rows.attention_mask.sum(1).max())
        with torch.no_grad():
            acts = capture_one(model, hook, rows.input_ids[:, :length], rows.attention_mask[:, :length])
        last_pieces.append(acts[torch.arange(len(rows), device=device), rows.last_entity_pos].float().cpu())
        others = rows.entity_mask[:, :length].clone()
        others[torch.arange(len(rows), device=device), rows.last_entity_pos] = False
        others[:, 0] = False
        other_pieces.append(acts[others].float().cpu())
        if progress:
            progress(f"reading activations {min(start + batch_size, len(batch))}/{len(batch)}", min(1.0, (start + batch_size) / len(batch)))
    return torch.cat(last_pieces), torch.cat(other_pieces)


def batch_activations(model, hook: HookPoint, batch: EntityBatch, **kwargs: Any) -> torch.Tensor:
    """Activations at the last entity token of every row ``[rows, width]``, without gradients."""
    return entity_activations(model, hook, batch, **kwargs)[0]


@dataclass(frozen=True)
class PositionKind:
    """What sae-align pulls one kind of entity position toward (DESIGN.md §2), in code and residual space."""

    mu_known: torch.Tensor
    mu_unknown: torch.Tensor
    margin: float
    resid_mu_known: torch.Tensor
    resid_mu_unknown: torch.Tensor
    code_radius: float  # the unknown references' median distance to mu_unknown: where their bulk lies
    resid_radius: float  # the same in the residual stream


@dataclass
class Projection:
    """x = component along μ_K − μ_U (from μ_U), y = first principal component orthogonal to it."""

    origin: torch.Tensor
    axis_x: torch.Tensor
    axis_y: torch.Tensor

    def project(self, codes: torch.Tensor) -> torch.Tensor:
        centred = codes.float() - self.origin.to(codes.device)
        return torch.stack([centred @ self.axis_x.to(codes.device), centred @ self.axis_y.to(codes.device)], dim=-1)


def fit_projection(codes: torch.Tensor, mu_known: torch.Tensor, mu_unknown: torch.Tensor) -> Projection:
    direction = mu_known - mu_unknown
    axis_x = direction / direction.norm().clamp_min(1e-8)
    centred = codes - codes.mean(0)
    orthogonal = centred - (centred @ axis_x)[:, None] * axis_x[None, :]
    _, _, vectors = torch.linalg.svd(orthogonal.double(), full_matrices=False)
    axis_y = vectors[0].float()
    axis_y = axis_y - (axis_y @ axis_x) * axis_x
    return Projection(mu_unknown.clone(), axis_x, axis_y / axis_y.norm().clamp_min(1e-8))


def top_latents(separation: torch.Tensor, kind: str) -> list[int]:
    """The TOP_LATENTS most known-entity (``kind`` "known") or unknown-entity latents; ties keep the lower id first."""
    order = torch.argsort(separation, descending=kind == "known", stable=True)
    return [int(i) for i in order[:TOP_LATENTS]]


@dataclass
class References:
    """Everything measured on θ0 that unlearning and its plots compare against."""

    known_names: list[str]
    unknown_names: list[str]
    mu_known: torch.Tensor
    mu_unknown: torch.Tensor
    resid_mu_known: torch.Tensor
    resid_mu_unknown: torch.Tensor
    error_mu_unknown: torch.Tensor
    probe: LogisticProbe
    projection: Projection
    separation: torch.Tensor
    unknown_distances: torch.Tensor
    known_points: torch.Tensor
    unknown_points: torch.Tensor
    known_entity_p_known: torch.Tensor  # per reference entity, mean over its prompts
    unknown_entity_p_known: torch.Tensor
    probe_train_accuracy: float
    # Per-prompt activations of the top latents (columns ``latent_ids``) and each prompt's entity index:
    # what the latent dashboard's histograms and top entities are read from.
    # The same for the entity's other tokens (multi-token names): a first name's code is unlike a last token's.
    other_mu_known: torch.Tensor
    other_mu_unknown: torch.Tensor
    other_resid_mu_known: torch.Tensor
    other_resid_mu_unknown: torch.Tensor
    other_unknown_margin: torch.Tensor  # a 0-d tensor: the unknown other tokens' median distance from the known side
    # The unknown references' median distance to their centroid: code at the last token, code at the other tokens,
    # residual at the last token, residual at the other tokens (the "bulk" pull stops there, DESIGN.md §2).
    unknown_radii: torch.Tensor
    latent_ids: torch.Tensor
    known_latent_acts: torch.Tensor
    unknown_latent_acts: torch.Tensor
    known_owners: torch.Tensor
    unknown_owners: torch.Tensor
    meta: dict = field(default_factory=dict)

    @property
    def scale_sq(self) -> float:
        """s² = ‖μ_K − μ_U‖², the unit of the forget loss."""
        return float((self.mu_known - self.mu_unknown).pow(2).sum())

    def kind(self, last: bool) -> PositionKind:
        """The centroids and margin of one position kind: the entity's last token, or its other tokens."""
        radii = [float(r) for r in self.unknown_radii]
        if last:
            return PositionKind(self.mu_known, self.mu_unknown, self.unknown_margin, self.resid_mu_known,
                                self.resid_mu_unknown, radii[0], radii[2])
        return PositionKind(self.other_mu_known, self.other_mu_unknown, float(self.other_unknown_margin),
                            self.other_resid_mu_known, self.other_resid_mu_unknown, radii[1], radii[3])

    @property
    def unknown_margin(self) -> float:
        """m: the unknown references' median distance from the known side along u = (μ_K − μ_U)/‖μ_K − μ_U‖.

        The distance d = (μ_K − z)·u is linear in z, so an entity's mean over its prompts is the distance of its
        mean code: d_e = ‖μ_K − μ_U‖ − x_e, where x_e is its map position (measured from μ_U along u).
        """
        return float((self.mu_known - self.mu_unknown).norm() - self.unknown_points[:, 0].median())

    @property
    def resid_scale_sq(self) -> float:
        return float((self.resid_mu_known - self.resid_mu_unknown).pow(2).sum())

    @property
    def top_known_latents(self) -> list[int]:
        return top_latents(self.separation, "known")

    @property
    def top_unknown_latents(self) -> list[int]:
        return top_latents(self.separation, "unknown")

    def p_known(self, codes: torch.Tensor) -> torch.Tensor:
        return self.probe.p_known(codes.float().cpu())

    def unknown_percentile(self, codes: torch.Tensor) -> torch.Tensor:
        """Percentile of each code's distance to μ_U among the unknown references' own distances."""
        distances = (codes.float().cpu() - self.mu_unknown).norm(dim=-1)
        return 100.0 * torch.searchsorted(self.unknown_distances, distances).float() / len(self.unknown_distances)

    def tensors(self) -> dict[str, torch.Tensor]:
        tensors = {name: getattr(self, name).contiguous() for name in (
            "mu_known", "mu_unknown", "resid_mu_known", "resid_mu_unknown", "error_mu_unknown", "separation",
            "unknown_distances", "known_points", "unknown_points", "known_entity_p_known", "unknown_entity_p_known",
            "latent_ids", "known_latent_acts", "unknown_latent_acts", "known_owners", "unknown_owners",
            "other_mu_known", "other_mu_unknown", "other_resid_mu_known", "other_resid_mu_unknown", "other_unknown_margin",
            "unknown_radii")}
        tensors.update({f"projection.{n}": getattr(self.projection, n).contiguous() for n in ("origin", "axis_x", "axis_y")})
        tensors.update({k: v.contiguous() for k, v in self.probe.tensors().items()})
        return tensors

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        meta = {"known_names": self.known_names, "unknown_names": self.unknown_names,
                "probe_train_accuracy": self.probe_train_accuracy, "meta": self.meta}
        save_file(self.tensors(), str(partial), metadata={"json": json.dumps(meta)})
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> References:
        from safetensors import safe_open

        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["json"])
        projection = Projection(*(tensors.pop(f"projection.{n}") for n in ("origin", "axis_x", "axis_y")))
        probe = LogisticProbe.from_tensors({k: tensors.pop(k) for k in list(tensors) if k.startswith("probe.")})
        return cls(known_names=meta["known_names"], unknown_names=meta["unknown_names"], probe=probe,
                   projection=projection, probe_train_accuracy=meta["probe_train_accuracy"], meta=meta["meta"], **tensors)


def entity_means(values: torch.Tensor, owners: list[int], count: int) -> torch.Tensor:
    index = torch.tensor(owners)
    sums = torch.zeros(count, values.shape[1]).index_add_(0, index, values)
    return sums / torch.bincount(index, minlength=count).clamp_min(1)[:, None].float()


def _median_distance(codes: torch.Tensor, mu_known: torch.Tensor, mu_unknown: torch.Tensor) -> torch.Tensor:
    """The median over ``codes`` of d = (μ_K − z)·u, u = (μ_K − μ_U)/‖μ_K − μ_U‖."""
    if not len(codes):
        return (mu_known - mu_unknown).norm()
    unit = (mu_known - mu_unknown) / (mu_known - mu_unknown).norm().clamp_min(1e-8)
    return ((mu_known - codes) @ unit).median()


def _median_radius(values: torch.Tensor, centre: torch.Tensor) -> float:
    return float((values - centre).norm(dim=-1).median()) if len(values) else 0.0


def build_references(sae, known_acts: torch.Tensor, known_owners: list[int], unknown_acts: torch.Tensor,
                     unknown_owners: list[int], known_names: list[str], unknown_names: list[str],
                     known_other: torch.Tensor | None = None, unknown_other: torch.Tensor | None = None) -> References:
    """Statistics from reference activations (rows = prompts at the last entity token).

    ``known_other`` / ``unknown_other``: activations at the names' other tokens; their centroids default to the
    last token's where no name has more than one token.
    """
    if not known_names or not unknown_names:
        raise UserError("the reference sets need at least one known and one unknown entity: "
                        "classify the candidates first, or add references.")
    with torch.no_grad():
        device = next(sae.parameters()).device
        dtype = next(sae.parameters()).dtype
        known_codes = sae.encode(known_acts.to(device, dtype)).float().cpu()
        unknown_codes = sae.encode(unknown_acts.to(device, dtype)).float().cpu()
        unknown_recon = sae.decode(sae.encode(unknown_acts.to(device, dtype))).float().cpu()
    mu_known, mu_unknown = known_codes.mean(0), unknown_codes.mean(0)
    known_other = known_acts[:0] if known_other is None else known_other
    unknown_other = unknown_acts[:0] if unknown_other is None else unknown_other
    with torch.no_grad():
        known_other_codes = sae.encode(known_other.to(device, dtype)).float().cpu()
        unknown_other_codes = sae.encode(unknown_other.to(device, dtype)).float().cpu()
    both_other = len(known_other) > 0 and len(unknown_other) > 0
    other_mu_known = known_other_codes.mean(0) if both_other else mu_known.clone()
    other_mu_unknown = unknown_other_codes.mean(0) if both_other else mu_unknown.clone()
    unknown_resid = unknown_acts.float()
    other_resid = unknown_other.float() if both_other else unknown_resid
    unknown_radii = torch.tensor([
        _median_radius(unknown_codes, mu_unknown),
        _median_radius(unknown_other_codes if both_other else unknown_codes, other_mu_unknown),
        _median_radius(unknown_resid, unknown_resid.mean(0)),
        _median_radius(other_resid, other_resid.mean(0))])
    codes = torch.cat([known_codes, unknown_codes])
    labels = torch.cat([torch.ones(len(known_codes)), torch.zeros(len(unknown_codes))])
    probe = fit_probe(codes, labels)
    projection = fit_projection(codes, mu_known, mu_unknown)
    separation = (known_codes > 0).float().mean(0) - (unknown_codes > 0).float().mean(0)
    latent_ids = torch.tensor(top_latents(separation, "known") + top_latents(separation, "unknown"), dtype=torch.long)
    return References(
        known_names=list(known_names), unknown_names=list(unknown_names),
        mu_known=mu_known, mu_unknown=mu_unknown,
        resid_mu_known=known_acts.float().mean(0), resid_mu_unknown=unknown_acts.float().mean(0),
        error_mu_unknown=(unknown_acts.float() - unknown_recon).mean(0),
        probe=probe, projection=projection, separation=separation,
        unknown_distances=torch.sort((unknown_codes - mu_unknown).norm(dim=-1)).values,
        known_points=projection.project(entity_means(known_codes, known_owners, len(known_names))),
        unknown_points=projection.project(entity_means(unknown_codes, unknown_owners, len(unknown_names))),
        known_entity_p_known=entity_means(probe.p_known(known_codes)[:, None], known_owners, len(known_names))[:, 0],
        unknown_entity_p_known=entity_means(probe.p_known(unknown_codes)[:, None], unknown_owners, len(unknown_names))[:, 0],
        probe_train_accuracy=probe.accuracy(codes, labels),
        latent_ids=latent_ids, known_latent_acts=known_codes[:, latent_ids].contiguous(),
        unknown_latent_acts=unknown_codes[:, latent_ids].contiguous(),
        known_owners=torch.tensor(known_owners, dtype=torch.long), unknown_owners=torch.tensor(unknown_owners, dtype=torch.long),
        other_mu_known=other_mu_known, other_mu_unknown=other_mu_unknown,
        other_resid_mu_known=known_other.float().mean(0) if both_other else known_acts.float().mean(0),
        other_resid_mu_unknown=other_resid.mean(0),
        other_unknown_margin=_median_distance(unknown_other_codes if both_other else unknown_codes, other_mu_known,
                                              other_mu_unknown).reshape(()),
        unknown_radii=unknown_radii,
    )


def references_cache_key(model_fingerprint: str, sae_fingerprint: str, hook: str, known: Sequence[str],
                         unknown: Sequence[str], templates: Sequence[str]) -> str:
    payload = json.dumps([model_fingerprint, sae_fingerprint, hook, list(known), list(unknown), list(templates)])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def compute_references(model, tokenizer, sae, hook: HookPoint, known: Sequence[Entity], unknown: Sequence[Entity],
                       templates: Sequence[str], *, progress: ProgressCallback | None = None,
                       cancel: threading.Event | None = None) -> References:
    """Run θ0 over every reference prompt and build the statistics."""
    report = progress or (lambda message, fraction: None)
    known_batch, known_owners = entity_batch(tokenizer, known, templates)
    unknown_batch, unknown_owners = entity_batch(tokenizer, unknown, templates)
    known_acts, known_other = entity_activations(model, hook, known_batch, cancel=cancel,
                                                 progress=lambda m, f: report(f"known references: {m}", 0.45 * f))
    unknown_acts, unknown_other = entity_activations(model, hook, unknown_batch, cancel=cancel,
                                                     progress=lambda m, f: report(f"unknown references: {m}", 0.45 + 0.45 * f))
    report("fitting the probe and the projection", 0.92)
    return build_references(sae, known_acts, known_owners, unknown_acts, unknown_owners,
                            [e.name for e in known], [e.name for e in unknown], known_other, unknown_other)
