"""Unlearning objectives behind one registry: ``sae-align`` (ours) and the suppression baselines.

``sae-align`` (DESIGN.md §2) moves the target's SAE code from the known cluster to
the unknown one and keeps the retain set's activations at the hook; its alignment
terms need only the forward pass up to the hook, its name term (λ_name) a full
pass over a few short questions. The baselines (gradient ascent, GradDiff, NPO)
act on the output distribution and need the full forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from ..errors import UserError
from .exemplar import Exemplar
from .preservation import Preservation
from .hooks import HookPoint, capture_one
from .latents import References
from .methods import METHODS, MethodInfo
from .prompts import EntityBatch

if TYPE_CHECKING:
    from .run_config import TrainConfig



@dataclass
class TokenBatch:
    """Texts for language-model losses: ids, mask, and labels with -100 where no loss is taken."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


@dataclass
class RunBatches:
    """Everything a step needs, prepared once per run (θ0 activations and log-probs included)."""

    forget: EntityBatch
    retain: EntityBatch
    retain_original: torch.Tensor  # θ0 activations of the retain prompts [rows, seq, width]
    retain_text: TokenBatch
    retain_text_original: torch.Tensor  # θ0 activations of the retain text [rows, seq, width]
    forget_facts: TokenBatch | None
    retain_facts: TokenBatch | None
    forget_facts_original_logp: torch.Tensor | None
    names: TokenBatch | None = None  # chat questions about each target answered with its name (λ_name)
    exemplar: Exemplar | None = None  # pull=exemplar: where the target is pulled
    preservation: Preservation | None = None  # λ_preserve: the trained maps' θ0 inputs on other text and entities


@dataclass
class StepContext:
    model: torch.nn.Module
    sae: Any
    hook: HookPoint
    references: References
    batches: RunBatches


class Objective:
    """One unlearning method. Its settings are fields of :class:`TrainConfig` that name it in ``methods``."""

    info: ClassVar[MethodInfo]

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Loss terms; ``total`` is what is minimised."""
        raise NotImplementedError


OBJECTIVES: dict[str, type[Objective]] = {}


def register(name: str):  # noqa: ANN201 - a class decorator
    """Implement the method ``name`` of engine/methods.py."""

    def decorate(objective: type[Objective]) -> type[Objective]:
        if name not in METHODS:
            raise ValueError(f"objective {name!r} is not declared in engine/methods.py")
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        objective.info = METHODS[name]
        OBJECTIVES[name] = objective
        return objective

    return decorate


def make_objective(config: TrainConfig) -> Objective:
    if config.method not in OBJECTIVES:
        raise UserError(f"unknown method {config.method!r}: choose one of {', '.join(OBJECTIVES)}.")
    return OBJECTIVES[config.method](config)


def retain_drift(ctx: StepContext, positions: str = "last") -> torch.Tensor:
    """L_retain: mean relative squared drift of retain activations at the hook from θ0.

    ``positions`` picks the retain prompts' tokens that are held: the last entity token (DESIGN.md §2), every
    entity token, or every token but the first.
    """
    model, hook, b = ctx.model, ctx.hook, ctx.batches
    device = next(model.parameters()).device
    rows = b.retain.to(device)
    acts = capture_one(model, hook, rows.input_ids, rows.attention_mask)
    original = b.retain_original.to(device)
    if positions in ("last", "entity"):
        picked = torch.zeros_like(rows.attention_mask, dtype=torch.bool)
        picked[aligned_positions(rows, "last" if positions == "last" else "all")] = True
    else:
        picked = rows.attention_mask.bool().clone()
        picked[:, 0] = False
    entity_term = _relative_drift(acts[picked], original[picked]).mean()
    text = b.retain_text.to(device)
    text_acts = capture_one(model, hook, text.input_ids, text.attention_mask)
    mask = text.attention_mask.bool().clone()
    mask[:, 0] = False  # the first position is an attention sink with an outlier norm
    text_term = _relative_drift(text_acts[mask], b.retain_text_original.to(device)[mask]).mean()
    return 0.5 * entity_term + 0.5 * text_term


def _relative_drift(values: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    return (values - original).pow(2).sum(-1) / original.pow(2).sum(-1).clamp_min(1e-6)


def _pull(values: torch.Tensor, toward: torch.Tensor, scale_sq: float, radius: float = 0.0) -> torch.Tensor:
    """mean relu(‖v − toward‖² − r²) / s²: the pull toward the unknown references' mean, stopping at radius r.

    r = 0 pulls onto the centroid; r = the unknown references' median distance ("bulk") stops where a typical
    unknown entity lies, so the target joins the cloud instead of collapsing onto its centre.
    """
    return F.relu((values - toward).pow(2).sum(-1) - radius ** 2).mean() / scale_sq


def away_margin(codes: torch.Tensor, mu_known: torch.Tensor, mu_unknown: torch.Tensor, margin: float,
                scale_sq: float) -> torch.Tensor:
    """mean relu(m − d)² / s², d = (μ_K − z)·u with u = (μ_K − μ_U)/‖μ_K − μ_U‖ (DESIGN.md §2).

    d is how far a code lies from the known side along the separating direction; the margin m is where the
    unknown references sit, so the term pushes until the target is as far from "known" as they are, then stops.
    """
    direction = mu_known - mu_unknown
    unit = direction / direction.norm().clamp_min(1e-8)
    distance = (mu_known - codes) @ unit
    return F.relu(margin - distance).pow(2).mean() / scale_sq


def aligned_positions(rows: EntityBatch, positions: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) indices of the entity tokens a run aligns: the last one, or every one; never position 0.

    Position 0 is a BOS token or, on models without one, the attention sink, whose outlier activation is
    unlike every other position of an entity (DESIGN.md §2); a prompt whose only choice is position 0 is skipped.
    """
    if positions == "last":
        keep = torch.nonzero(rows.last_entity_pos > 0)[:, 0]
        return keep, rows.last_entity_pos[keep]
    mask = rows.entity_mask.clone()
    mask[:, 0] = False
    return torch.nonzero(mask, as_tuple=True)


def pull_goals(ctx: StepContext, last: bool, mu_unknown: torch.Tensor,
               resid_mu_unknown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where one position kind is pulled: the unknown centroids, or (pull=exemplar) the typical unknown entity's mean
    code and residual at that kind of token (the centroids where its name has no token of that kind)."""
    exemplar = ctx.batches.exemplar
    goal = exemplar.goals.get(last) if exemplar else None
    if goal is None:
        return mu_unknown, resid_mu_unknown
    return goal[0].to(mu_unknown.device), goal[1].to(mu_unknown.device)


@register("sae-align")
class SaeAlign(Objective):
    """DESIGN.md §2: each aligned position pulled toward the unknown references' centroid of its kind (the
    entity's last token, or its other tokens) and pushed along μ_K − μ_U to the unknown references' margin."""

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        cfg = self.config
        refs, device = ctx.references, next(ctx.model.parameters()).device
        rows = ctx.batches.forget.to(device)
        acts = capture_one(ctx.model, ctx.hook, rows.input_ids, rows.attention_mask)
        row_index, position = aligned_positions(rows, cfg.positions)
        is_last = position == rows.last_entity_pos[row_index]
        x_all = acts[row_index, position]
        sae_dtype = next(ctx.sae.parameters()).dtype
        sums: dict[str, torch.Tensor] = {}
        for last in (True, False):
            x = x_all[is_last == last]
            if not len(x):
                continue
            kind = refs.kind(last)
            mu_known, mu_unknown = kind.mu_known.to(device), kind.mu_unknown.to(device)
            parts: dict[str, torch.Tensor] = {}
            bulk = cfg.pull == "bulk"
            code_goal, resid_goal = pull_goals(ctx, last, mu_unknown, kind.resid_mu_unknown.to(device))
            if cfg.space != "residual":
                z = ctx.sae.encode(x.to(sae_dtype)).float()
                parts["forget_code"] = _pull(z, code_goal, refs.scale_sq, kind.code_radius if bulk else 0.0)
                parts["forget_away"] = away_margin(z, mu_known, mu_unknown, kind.margin, refs.scale_sq)
            if cfg.space in ("code+residual", "residual"):
                parts["forget_residual"] = _pull(x.float(), resid_goal, refs.resid_scale_sq,
                                                 kind.resid_radius if bulk else 0.0)
            if cfg.space == "code+error":
                error = x.float() - ctx.sae.decode(ctx.sae.encode(x.to(sae_dtype))).float()
                parts["forget_error"] = (error - refs.error_mu_unknown.to(device)).pow(2).sum(-1).mean() / refs.resid_scale_sq
            for name, value in parts.items():  # means over every aligned position, whatever its kind
                sums[name] = sums.get(name, 0.0) + value * len(x) / len(x_all)
        terms = dict(sums)
        forget = terms.get("forget_code", 0.0) + cfg.lambda_away * terms.get("forget_away", 0.0)
        forget = forget + cfg.lambda_space * (terms.get("forget_residual", 0.0) + terms.get("forget_error", 0.0))
        terms["forget"] = forget if torch.is_tensor(forget) else torch.zeros((), device=device)
        terms["retain"] = retain_drift(ctx, cfg.retain_positions)
        terms["total"] = terms["forget"] + cfg.lambda_retain * terms["retain"]
        if cfg.lambda_preserve > 0 and ctx.batches.preservation is not None:
            terms["preserve"] = ctx.batches.preservation.drift()
            terms["total"] = terms["total"] + cfg.lambda_preserve * terms["preserve"]
        if cfg.lambda_name > 0 and ctx.batches.names is not None:
            terms["name"] = mean_nll(ctx.model, ctx.batches.names.to(device))
            terms["total"] = terms["total"] + cfg.lambda_name * terms["name"]
        return terms


def sequence_logp(model: torch.nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Summed log-probability of the labelled tokens of each row."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits[:, :-1]
    labels = batch.labels[:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    return (logp * mask).sum(-1)


def mean_nll(model: torch.nn.Module, batch: TokenBatch) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch.labels[:, 1:].flatten(), ignore_index=-100)


def _facts(ctx: StepContext, which: str) -> TokenBatch:
    batch = getattr(ctx.batches, which)
    if batch is None:
        raise UserError("this method needs the target's facts: give a facts file or pick a listed entity, or use sae-align.")
    return batch.to(next(ctx.model.parameters()).device)


@register("grad-ascent")
class GradAscent(Objective):
    """Maximise the NLL of the target's fact answers."""

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        nll = mean_nll(ctx.model, _facts(ctx, "forget_facts"))
        return {"forget_nll": nll.detach(), "total": -nll}


@register("grad-diff")
class GradDiff(Objective):
    """Gradient ascent on the target's facts plus gradient descent on retain facts."""

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        forget = mean_nll(ctx.model, _facts(ctx, "forget_facts"))
        retain = mean_nll(ctx.model, _facts(ctx, "retain_facts"))
        return {"forget_nll": forget.detach(), "retain_nll": retain.detach(),
                "total": -forget + self.config.lambda_retain * retain}


@register("npo")
class Npo(Objective):
    """Negative preference optimisation (Zhang et al. 2024) against the frozen θ0."""

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        beta = self.config.beta
        logp = sequence_logp(ctx.model, _facts(ctx, "forget_facts"))
        ratio = logp - ctx.batches.forget_facts_original_logp.to(logp.device)
        loss = -(2.0 / beta) * F.logsigmoid(-beta * ratio).mean()
        return {"npo": loss.detach(), "log_ratio": ratio.mean().detach(), "total": loss}


def _facts_tokens(ctx: StepContext, device: torch.device) -> torch.Tensor | None:
    """Activations at the hook of every fact-prompt token of the targets but the first (the attention sink)."""
    facts = ctx.batches.forget_facts
    if facts is None:
        return None
    batch = facts.to(device)
    acts = capture_one(ctx.model, ctx.hook, batch.input_ids, batch.attention_mask)
    picked = batch.attention_mask.bool() & (batch.labels == -100)  # the prompt, not the answer
    picked[:, 0] = False
    return acts[picked]


@register("rmu")
class Rmu(Objective):
    """RMU (Li et al. 2024, the WMDP paper) at the SAE's hook: the representation-based peer of sae-align.

    The target's activations (every entity token of its training prompts, and its fact prompts) are pushed
    toward ``c · ‖x‖ · u`` for a fixed random unit vector ``u`` (seeded), while the retain activations are held
    at θ0 as in sae-align. The forget term is normalised by the target norm so λ_retain means the same here.
    """

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self._target: torch.Tensor | None = None

    def _direction(self, ctx: StepContext, width: int, device: torch.device) -> torch.Tensor:
        if self._target is None:
            generator = torch.Generator().manual_seed(self.config.seed)
            u = torch.rand(width, generator=generator)
            held = ctx.batches.retain.attention_mask.bool().clone()
            held[:, 0] = False  # the attention sink's outlier norm is not the layer's typical norm
            scale = ctx.batches.retain_original.float().norm(dim=-1)[held].mean()
            self._target = self.config.rmu_coefficient * scale * u / u.norm()
        return self._target.to(device)

    def losses(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        device = next(ctx.model.parameters()).device
        rows = ctx.batches.forget.to(device)
        acts = capture_one(ctx.model, ctx.hook, rows.input_ids, rows.attention_mask)[aligned_positions(rows, "all")]
        facts = _facts_tokens(ctx, device)
        if facts is not None:
            acts = torch.cat([acts, facts])
        target = self._direction(ctx, acts.shape[-1], device)
        forget = (acts.float() - target).pow(2).sum(-1).mean() / target.pow(2).sum()
        retain = retain_drift(ctx, self.config.retain_positions)
        return {"forget": forget, "retain": retain, "total": forget + self.config.lambda_retain * retain}
