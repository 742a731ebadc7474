"""The engine's facade: one loaded model + SAE (a :class:`Session`) and the jobs that run on it.

Both front ends (the CLI and the GUI's workers) go through this module only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .demo import demo_sae_dir, ensure_demo_model
from .hooks import HookPoint, layer_container
from .models import LoadedModel, load_model
from .saes import LoadedSae, check_sae_fits_model, load_sae

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ModelSpec:
    """What to load. ``model=None`` means the embedded demo model; ``sae=None`` the demo SAE."""

    model: str | None = None
    sae: str | None = None
    sae_id: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Session:
    """A loaded model with its SAE, the hook they meet at, and a frozen copy of θ0 for reset."""

    def __init__(self, loaded: LoadedModel, sae: LoadedSae, hook: HookPoint, warnings: list[str], spec: ModelSpec) -> None:
        self.loaded = loaded
        self.sae = sae
        self.hook = hook
        self.warnings = warnings
        self.spec = spec
        # θ0 for every block at or below the hook: the only weights unlearning may change.
        self._original = {name: p.detach().clone() for name, p in self.resettable_parameters().items()}

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def resettable_parameters(self) -> dict[str, torch.nn.Parameter]:
        prefix, _ = layer_container(self.model)
        names = tuple(f"{prefix}.{layer}." for layer in range(self.hook.layer + 1))
        return {name: p for name, p in self.model.named_parameters() if name.startswith(names)}

    def is_modified(self) -> bool:
        current = self.resettable_parameters()
        return any(not torch.equal(current[name], original) for name, original in self._original.items())

    def reset(self) -> None:
        """Put the original weights θ0 back."""
        current = self.resettable_parameters()
        with torch.no_grad():
            for name, original in self._original.items():
                current[name].copy_(original)

    @contextmanager
    def original_weights(self) -> Iterator[None]:
        """Temporarily swap θ0 in (to answer 'before'), then put the current weights back."""
        current = self.resettable_parameters()
        saved = {name: p.detach().clone() for name, p in current.items()}
        self.reset()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    current[name].copy_(value)

    def describe(self) -> dict[str, Any]:
        model = self.loaded.info.to_dict()
        sae = self.sae.info.to_dict()
        sae["hook_layer"] = self.hook.layer
        sae["hook_module"] = self.hook.module_path
        return {"model": model, "sae": sae, "warnings": list(self.warnings)}


def load_session(spec: ModelSpec, progress: Progress | None = None) -> Session:
    """Load the model and SAE of ``spec`` and check that they fit together."""
    report = progress or (lambda message, fraction: None)
    if spec.model is None:
        report("finding the embedded demo model", 0.0)
        model_source: str | Path = ensure_demo_model(lambda m, f: report(m, 0.6 * f))
    else:
        model_source = spec.model
    report(f"loading the model from {model_source}", 0.6)
    loaded = load_model(model_source, device=spec.device, dtype=spec.dtype,
                        trust_remote_code=spec.trust_remote_code, allow_pickle=spec.allow_pickle)
    report("loading the SAE", 0.85)
    sae_source = spec.sae if spec.sae is not None else demo_sae_dir()
    parameter = next(loaded.model.parameters())
    sae = load_sae(sae_source, spec.sae_id, device=str(parameter.device), dtype=loaded.info.dtype)
    hook, warnings = check_sae_fits_model(sae, loaded.model, loaded.info)
    report("ready", 1.0)
    return Session(loaded, sae, hook, warnings, spec)
