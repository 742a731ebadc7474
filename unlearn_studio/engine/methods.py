"""The unlearning methods a user can pick, described without torch (the window lists them before torch loads).

Each entry is implemented by one objective class in engine/objectives.py, registered under the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

POSITIONS = ("last", "all")
SPACES = ("code", "code+error", "code+residual", "residual")
RETAIN_POSITIONS = ("last", "entity", "all")
PULLS = ("centroid", "bulk", "exemplar")


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str  # one line for tooltips and help texts
    default_lr: float
    needs_facts: bool = False  # trains on the target's fact texts


METHODS: dict[str, MethodInfo] = {}


def _declare(info: MethodInfo) -> None:
    if info.name in METHODS:
        raise ValueError(f"method {info.name!r} is declared twice")
    METHODS[info.name] = info


_declare(MethodInfo("sae-align", "SAE-guided alignment (the paper): move the target's SAE code into the unknown-entity "
                    "cluster while the retain activations stay put", 3e-4))
_declare(MethodInfo("grad-ascent", "Baseline: gradient ascent on the target's fact answers (needs facts)", 2e-5,
                    needs_facts=True))
_declare(MethodInfo("grad-diff", "Baseline: gradient ascent on the target's facts plus descent on retain facts "
                    "(needs facts)", 2e-5, needs_facts=True))
_declare(MethodInfo("npo", "Baseline: negative preference optimisation against the original model (needs facts)", 2e-5,
                    needs_facts=True))
_declare(MethodInfo("rmu", "Peer: representation misdirection (Li et al. 2024): push the target's activations at the SAE's "
                    "layer toward a fixed random direction, hold the retain activations", 5e-5))
