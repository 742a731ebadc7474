"""The settings of one unlearning run, each declared once (engine/settings.py).

Method-specific settings carry the methods they apply to; the CLI flags of
``unlearn`` and the window's run-settings form are generated from this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .methods import METHODS, POSITIONS, PULLS, RETAIN_POSITIONS, SPACES
from .settings import Settings, setting

TRAINABLE = ("mlp", "all", "lora")
ALIGN = ("sae-align",)


def _methods() -> tuple[str, ...]:
    return tuple(METHODS)


@dataclass
class TrainConfig(Settings):
    method: str = setting("sae-align", help="how to unlearn (sae-align is this tool's method; the others are baselines)",
                          choices=_methods)
    steps: int = setting(60, help="the most optimiser steps (early stop may end the run sooner)", minimum=1, maximum=100000)
    lr: float | None = setting(None, help="Adam learning rate; empty: the method's own default", minimum=0.0,
                               label="Learning rate")
    seed: int = setting(0, help="random seed: the same seed and settings give the same run", minimum=0)
    trainable: str = setting("mlp", help="which weights change: the MLPs of layers ℓ−N…ℓ (ℓ = the SAE's layer), every "
                             "weight of layers ≤ ℓ, or LoRA adapters on those MLPs", choices=TRAINABLE)
    layers_below: int = setting(4, help="how many layers below the SAE's layer are trained too (ℓ−N … ℓ)",
                                minimum=0, maximum=1000)
    lora_rank: int = setting(8, help="rank of the LoRA adapters (trainable lora)", minimum=1, maximum=1024, advanced=True,
                            label="LoRA rank")
    early_stop: bool = setting(True, help="stop once the probe reads every stop-set target prompt as unknown")
    # The facts leave well after the probe flips (docs/results.md).
    min_steps: int = setting(40, help="early stop never ends a run before this step", minimum=0, advanced=True)
    lambda_away: float = setting(0.5, help="λ_away: weight of the margin that pushes the target's code away from the "
                                 "known side until it sits where unknown entities sit", minimum=0.0, methods=ALIGN,
                                 label="λ away")
    lambda_retain: float = setting(1.0, help="λ_retain: weight of keeping everything else where it was",
                                   minimum=0.0, methods=("sae-align", "grad-diff", "rmu"), label="λ retain")
    lambda_preserve: float = setting(300.0, help="λ_preserve: weight of keeping each trained layer's outputs on a broad "
                                     "sample of other text and entities (their input covariance, as MEMIT does); 0 is off",
                                     minimum=0.0, methods=ALIGN, label="λ preserve")
    positions: str = setting("all", help="align the last token of the entity name, or every token of it",
                             choices=POSITIONS, methods=ALIGN)
    space: str = setting("code+residual", help="where the pull happens: the SAE code; plus the SAE's reconstruction "
                         "error; plus the residual stream; or the residual stream alone", choices=SPACES, methods=ALIGN)
    pull: str = setting("centroid", help="where the pull goes: onto the unknown references' centroid; only into "
                        "their bulk (it stops at their median distance from the centroid); or onto one typical "
                        "unknown entity (the reference at the median distance), so the target is not collapsed "
                        "onto one point no entity occupies", choices=PULLS, methods=ALIGN)
    # Chosen on the tune split (docs/results.md): without it the target's name comes out garbled in chat.
    lambda_name: float = setting(1.0, help="λ_name: weight of keeping the target's name writable (the model still "
                                 "copies the name from a question, as it does for unknown entities); 0 is off",
                                 minimum=0.0, methods=ALIGN, label="λ name")
    lambda_space: float = setting(1.0, help="weight of the residual or error term when the space adds one",
                                  minimum=0.0, methods=ALIGN, label="λ space", advanced=True)
    retain_positions: str = setting("last", help="which tokens of the retain prompts keep their original activations: "
                                    "the last entity token, every entity token, or every token",
                                    choices=RETAIN_POSITIONS, methods=("sae-align", "rmu"), label="Retain tokens")
    fact_contexts: bool = setting(False, help="also align the target where it appears inside its own fact prompts",
                                  methods=ALIGN)
    retain_fact_prompts: bool = setting(False, help="also hold the retain entities' own fact prompts (never the "
                                        "evaluated ones)", methods=ALIGN)
    rmu_coefficient: float = setting(6.0, help="RMU's c: the target's activations are pushed toward a random unit "
                                     "direction times c × the mean activation norm at the hook", minimum=0.0,
                                     methods=("rmu",), label="RMU c")
    beta: float = setting(0.1, help="NPO's β (inverse temperature of the preference loss)", minimum=0.001,
                          methods=("npo",), label="β")
    retain_entities: int = setting(24, help="retain entities held per run", minimum=1, advanced=True)
    retain_templates: int = setting(4, help="training templates per retain entity", minimum=1, advanced=True)
    retain_text_chunks: int = setting(4, help="chunks of generic text held per step", minimum=1, advanced=True)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else METHODS[self.method].default_lr

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict, as every settings class; a nested ``objective`` dict (run folders before 0.2) is read flat."""
        flat = {k: v for k, v in data.items() if k != "objective"}
        flat.update(data.get("objective") or {})
        return super().from_dict(flat)

    def validate(self) -> None:
        super().validate()
        if not self.learning_rate > 0:
            raise UserError("the learning rate must be positive.")
