"""Keep what the trained layers compute on everything else (λ_preserve).

MEMIT's preservation term (Meng et al. 2023): a trained linear map W should give the same outputs on the inputs
it sees for text that is not the target's. With C = E[k kᵀ] over those inputs (θ0, measured once per run),
‖(W − W0) k‖² averaged over them is tr(ΔW C ΔWᵀ), so the term costs no forward pass per step and holds every
sampled token, not only the retain prompts the step loop runs. Directions the sample never uses (small
eigenvalues of C) stay free: that is where an edit can move the target without moving the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .hooks import HookPoint, capture_one

ENERGY_KEPT = 0.9999  # C is kept to the eigenvectors holding this share of its trace (cheaper, same term)


@dataclass
class HeldMap:
    """One trained linear map: its weight, θ0's weight, and a factor F of its input second moment (C ≈ F Fᵀ)."""

    weight: torch.nn.Parameter
    original: torch.Tensor
    factor: torch.Tensor
    original_energy: float  # ‖W0 F‖², the layer's mean output energy on the sample

    def relative_change(self) -> torch.Tensor:
        """‖(W − W0) F‖² / ‖W0 F‖²: the mean squared change of the layer's outputs on the sample, relative."""
        delta = self.weight.float() - self.original.to(self.weight.device)
        return (delta @ self.factor.to(self.weight.device)).pow(2).sum() / self.original_energy


@dataclass
class Preservation:
    maps: list[HeldMap]

    def drift(self) -> torch.Tensor:
        """The mean over trained linear maps of their relative output change on the sample."""
        return torch.stack([held.relative_change() for held in self.maps]).mean()


def trained_linear_maps(model: torch.nn.Module, parameters: Sequence[torch.nn.Parameter]) -> list[torch.nn.Linear]:
    """The linear layers whose weight is among the trained parameters (LoRA's own adapters included)."""
    chosen = {id(p) for p in parameters}
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear) and id(m.weight) in chosen]


def second_moments(model: torch.nn.Module, hook: HookPoint, modules: Sequence[torch.nn.Linear],
                   batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """E[k kᵀ] of each module's input over every real token of ``batches`` (ids, mask) but the first of each row."""
    sums = [torch.zeros(m.in_features, m.in_features, dtype=torch.float64) for m in modules]
    counts = [0] * len(modules)
    keep: dict[str, torch.Tensor] = {}

    def recorder(index: int):  # noqa: ANN202 - a forward pre-hook
        def record(_module, args):
            inputs = args[0].detach()[keep["mask"]].double().cpu()
            sums[index].add_(inputs.T @ inputs)
            counts[index] += len(inputs)
        return record

    handles = [m.register_forward_pre_hook(recorder(i)) for i, m in enumerate(modules)]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for input_ids, attention_mask in batches:
                mask = attention_mask.bool().clone()
                mask[:, 0] = False  # the BOS token or the attention sink: an outlier no edit should answer to
                keep["mask"] = mask.to(device)
                capture_one(model, hook, input_ids.to(device), attention_mask.to(device))
    finally:
        for handle in handles:
            handle.remove()
    return [(s / max(c, 1)).float() for s, c in zip(sums, counts)]


def moment_factor(moment: torch.Tensor, energy: float = ENERGY_KEPT) -> torch.Tensor:
    """F with F Fᵀ = C restricted to its top eigenvectors holding ``energy`` of the trace."""
    values, vectors = torch.linalg.eigh(moment.double())
    values = values.clamp_min(0).flip(0)
    vectors = vectors.flip(1)
    share = values.cumsum(0) / values.sum().clamp_min(1e-30)
    rank = int((share < energy).sum()) + 1
    return (vectors[:, :rank] * values[:rank].sqrt()).float()


def build_preservation(model: torch.nn.Module, hook: HookPoint, parameters: Sequence[torch.nn.Parameter],
                       batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Preservation:
    """Measure θ0's inputs to every trained linear map on ``batches`` and hold the maps' outputs there."""
    modules = trained_linear_maps(model, parameters)
    moments = second_moments(model, hook, modules, batches)
    maps = []
    for module, moment in zip(modules, moments):
        factor = moment_factor(moment)
        original = module.weight.detach().float().clone()
        energy = float((original @ factor.to(original.device)).pow(2).sum())
        maps.append(HeldMap(module.weight, original, factor, max(energy, 1e-12)))
    return Preservation(maps)
