"""LoRA adapters (peft) on the MLPs at and below the hook, merged back into the base weights after a run."""

from __future__ import annotations

from torch import nn

from ..errors import UserError
from .hooks import HookPoint, layer_container


def add_lora(model: nn.Module, hook: HookPoint, layers_below: int, rank: int) -> None:
    """Inject rank-``rank`` adapters into every Linear of the MLPs of layers ℓ−layers_below…ℓ, in place."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as error:
        raise UserError("LoRA needs the peft package: pip install 'unlearn-studio[lora]'.") from error
    prefix, _ = layer_container(model)
    first = max(0, hook.layer - layers_below)
    targets = [name for name, module in model.named_modules()
               if isinstance(module, nn.Linear)
               and any(name.startswith(f"{prefix}.{i}.mlp.") for i in range(first, hook.layer + 1))]
    if not targets:
        raise UserError("LoRA found no Linear layers in the MLPs below the hook: choose trainable 'mlp' or 'all'.")
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets), model)


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base Linear and put the plain Linear back."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.get_base_layer())
