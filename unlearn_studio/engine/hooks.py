"""Hook points: resolve a hook name to a module of a Hugging Face model and capture its activation.

Names are accepted TransformerLens style (``blocks.9.hook_resid_post``, as used by
sae-lens releases such as Gemma Scope) and as Hugging Face module paths
(``model.layers.9``, meaning that module's output). Capture can stop the forward
pass right after the deepest hook (early exit), which is what makes unlearning
steps cheap: layers above the hook are never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError

# Where the decoder blocks live, per family (first match wins).
LAYER_CONTAINERS = (
    "model.layers",  # Llama, Mistral, Qwen 2, Gemma 2, Phi 3
    "model.language_model.layers",  # Gemma 3 and other multimodal wrappers
    "transformer.h",  # GPT-2, GPT-J, Falcon
    "gpt_neox.layers",  # Pythia
    "model.decoder.layers",  # OPT
)
TL_PATTERN = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|mlp_out|attn_out)$")


class HookError(UserError, ValueError):
    """A hook name that does not resolve in this model."""


@dataclass(frozen=True)
class HookPoint:
    """A resolved hook: capture the ``input`` or ``output`` of ``module_path``; ``layer`` is its block."""

    name: str
    module_path: str
    side: str
    layer: int


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass early."""


def layer_container(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The dotted path and the ModuleList of the decoder blocks."""
    for path in LAYER_CONTAINERS:
        module = _get_submodule(model, path)
        if isinstance(module, nn.ModuleList):
            return path, module
    raise HookError(
        f"cannot find the decoder layers of {type(model).__name__}: supported families keep them at "
        + ", ".join(LAYER_CONTAINERS)
        + ". Give the hook as a module path of this model instead."
    )


def _get_submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _block_submodule(block: nn.Module, *names: str) -> str:
    for name in names:
        if hasattr(block, name):
            return name
    raise HookError(f"block {type(block).__name__} has none of {names}")


def resolve_hook(model: nn.Module, name: str) -> HookPoint:
    """Resolve a TransformerLens-style or Hugging Face module-path hook name for ``model``."""
    name = name.strip()
    prefix, layers = layer_container(model)
    match = TL_PATTERN.match(name)
    if match:
        layer, kind = int(match.group(1)), match.group(2)
        if layer >= len(layers):
            raise HookError(f"hook {name!r} names layer {layer}, but this model has {len(layers)} layers (0-{len(layers) - 1}).")
        block = layers[layer]
        base = f"{prefix}.{layer}"
        if kind == "resid_post":
            return HookPoint(name, base, "output", layer)
        if kind == "resid_pre":
            return HookPoint(name, base, "input", layer)
        if kind == "resid_mid":
            norm = _block_submodule(block, "pre_feedforward_layernorm", "post_attention_layernorm", "ln_2")
            return HookPoint(name, f"{base}.{norm}", "input", layer)
        if kind == "mlp_out":
            # Gemma 2 normalises the MLP output before adding it to the residual stream.
            module = _block_submodule(block, "post_feedforward_layernorm", "mlp")
            return HookPoint(name, f"{base}.{module}", "output", layer)
        if hasattr(block, "pre_feedforward_layernorm"):  # Gemma 2: attention output passes a norm
            return HookPoint(name, f"{base}.post_attention_layernorm", "output", layer)
        return HookPoint(name, f"{base}.{_block_submodule(block, 'self_attn', 'attn', 'attention')}", "output", layer)
    if name.startswith("blocks."):
        raise HookError(
            f"hook {name!r} is not a supported TransformerLens name: use blocks.N.hook_resid_post, hook_resid_pre, "
            "hook_resid_mid, hook_mlp_out or hook_attn_out, or a module path such as model.layers.9."
        )
    if _get_submodule(model, name) is None or name == "":
        raise HookError(
            f"hook {name!r} is not a module of this model ({type(model).__name__}, {len(layers)} layers): "
            f"use e.g. {prefix}.{len(layers) // 2} or blocks.{len(layers) // 2}.hook_resid_post."
        )
    layer_match = re.match(re.escape(prefix) + r"\.(\d+)(\.|$)", name)
    layer = int(layer_match.group(1)) if layer_match else len(layers) - 1
    return HookPoint(name, name, "output", layer)


def _first_tensor(value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise HookError(f"the hooked module returned {type(value).__name__}, not a tensor")


@contextmanager
def _capturing(model: nn.Module, hooks: Sequence[HookPoint], store: dict[str, torch.Tensor], stop_after: str | None) -> Iterator[None]:
    handles = []
    for hook in hooks:
        module = model.get_submodule(hook.module_path)

        def save(tensor: torch.Tensor, hook: HookPoint = hook) -> None:
            store[hook.name] = tensor
            if hook.name == stop_after and len(store) == len(hooks):
                raise _StopForward

        if hook.side == "input":
            handles.append(module.register_forward_pre_hook(
                lambda _m, args, kwargs, save=save: save(_first_tensor(args) if args else kwargs["hidden_states"]),
                with_kwargs=True,
            ))
        else:
            handles.append(module.register_forward_hook(lambda _m, _args, output, save=save: save(_first_tensor(output))))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def capture(
    model: nn.Module,
    hooks: Sequence[HookPoint],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    early_exit: bool = True,
) -> dict[str, torch.Tensor]:
    """Run ``model`` on a batch and return each hook's activation ``[batch, seq, width]``.

    Gradients flow when called outside ``torch.no_grad``. With ``early_exit`` the
    forward pass stops right after the deepest hook.
    """
    store: dict[str, torch.Tensor] = {}
    deepest = max(hooks, key=lambda h: (h.layer, h.side == "output")).name if early_exit else None
    with _capturing(model, hooks, store, deepest):
        try:
            model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _StopForward:
            pass
    missing = [hook.name for hook in hooks if hook.name not in store]
    if missing:
        raise HookError(f"hooks {missing} never fired during the forward pass")
    return store


def capture_one(model: nn.Module, hook: HookPoint, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *, early_exit: bool = True) -> torch.Tensor:
    """:func:`capture` for a single hook."""
    return capture(model, [hook], input_ids, attention_mask, early_exit=early_exit)[hook.name]


def hook_width(model: nn.Module, hook: HookPoint) -> int:
    """The activation width at ``hook`` (measured on a one-token forward pass)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return int(capture_one(model, hook, torch.zeros((1, 1), dtype=torch.long, device=device)).shape[-1])
