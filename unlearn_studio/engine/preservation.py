"""Keep what the trained layers compute on everything else (λ_preserve).

MEMIT's preservation term (Meng et al. 2023): a trained linear map W should give the same outputs on the inputs
it sees for text that is not the target's. With C = E[k kᵀ] over those inputs (θ0, measured once per run),
‖(W − W0) k‖² averaged over them is tr(ΔW C ΔWᵀ), so the term costs no forward pass per step and holds every
sampled token, not only the retain prompts the step loop runs. Directions the sample never uses (small
eigenvalues of C) stay free: that is where an edit can move the target without moving the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from transformers.pytorch_utils import Conv1D

from .hooks import HookPoint, capture_one

ENERGY_KEPT = 0.9999  # C is kept to the eigenvectors holding this share of its trace (cheaper, same term)


@dataclass
class HeldMap:
    """One trained linear map: how far it is from θ0 (ΔW), and a factor F of its input second moment (C ≈ F Fᵀ)."""

    change: Callable[[], torch.Tensor]  # the map's ΔW = W − W0 now
    factor: torch.Tensor
    original_energy: float  # ‖W0 F‖², the layer's mean output energy on the sample

    def relative_change(self) -> torch.Tensor:
        """‖ΔW F‖² / ‖W0 F‖²: the mean squared change of the layer's outputs on the sample, relative."""
        delta = self.change()
        return (delta @ self.factor).pow(2).sum() / self.original_energy


@dataclass
class Preservation:
    maps: list[HeldMap]

    def drift(self) -> torch.Tensor:
        """The mean over trained linear maps of their relative output change on the sample."""
        return torch.stack([held.relative_change() for held in self.maps]).mean()


@dataclass
class TrainedMap:
    module: torch.nn.Module  # what the map's inputs go into
    original: torch.Tensor  # W0
    change: Callable[[], torch.Tensor]


def trained_linear_maps(model: torch.nn.Module, parameters: Sequence[torch.nn.Parameter]) -> list[TrainedMap]:
    """The linear maps a run changes: a Linear (or GPT-2's Conv1D) whose weight is trained, or a LoRA adapter's
    ΔW = s·B·A."""
    chosen = {id(p) for p in parameters}
    maps = []
    for name, module in model.named_modules():
        if ".lora_" in name:  # an adapter's own A or B: held through the product below
            continue
        adapters = getattr(module, "lora_A", None)
        if adapters is not None and hasattr(module, "get_base_layer"):
            for adapter, down in adapters.items():
                if id(down.weight) in chosen:
                    up, scale = module.lora_B[adapter], module.scaling[adapter]
                    maps.append(TrainedMap(module, module.get_base_layer().weight.detach().float().clone(),
                                           lambda up=up, down=down, scale=scale: scale * up.weight.float() @ down.weight.float()))
        elif isinstance(module, torch.nn.Linear) and id(module.weight) in chosen:
            original = module.weight.detach().float().clone()
            maps.append(TrainedMap(module, original,
                                   lambda module=module, original=original: module.weight.float() - original))
        elif isinstance(module, Conv1D) and id(module.weight) in chosen:  # GPT-2's linear maps store Wᵀ
            original = module.weight.detach().float().T.clone()
            maps.append(TrainedMap(module, original,
                                   lambda module=module, original=original: module.weight.float().T - original))
    return maps


def second_moments(model: torch.nn.Module, hook: HookPoint, modules: Sequence[torch.nn.Module],
                   batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """E[k kᵀ] of each module's input over every real token of ``batches`` (ids, mask) but the first of each row,
    on the model's device (summed in float64 on a CPU, float32 on an accelerator)."""
    sums: list[torch.Tensor | None] = [None] * len(modules)
    counts = [0] * len(modules)
    keep: dict[str, torch.Tensor] = {}

    def recorder(index: int):  # noqa: ANN202 - a forward pre-hook
        def record(_module, args):
            inputs = args[0].detach()[keep["mask"]]
            inputs = inputs.to(torch.float64 if inputs.device.type == "cpu" else torch.float32)
            moment = inputs.T @ inputs
            sums[index] = moment if sums[index] is None else sums[index] + moment
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
    values, vectors = torch.linalg.eigh(moment.double() if moment.device.type == "cpu" else moment)
    values = values.clamp_min(0).flip(0)
    vectors = vectors.flip(1)
    share = values.cumsum(0) / values.sum().clamp_min(1e-30)
    rank = int((share < energy).sum()) + 1
    return (vectors[:, :rank] * values[:rank].sqrt()).float()


def build_preservation(model: torch.nn.Module, hook: HookPoint, parameters: Sequence[torch.nn.Parameter],
                       batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Preservation | None:
    """Measure θ0's inputs to every trained linear map on ``batches`` and hold the maps' outputs there (None when
    the trained weights hold no linear map)."""
    maps = trained_linear_maps(model, parameters)
    if not maps:
        return None
    moments = second_moments(model, hook, [m.module for m in maps], batches)
    held = []
    for trained, moment in zip(maps, moments):
        factor = moment_factor(moment).to(trained.original.device)
        energy = float((trained.original @ factor).pow(2).sum())
        held.append(HeldMap(trained.change, factor, max(energy, 1e-12)))
    return Preservation(held)
