"""The forgetting audit: where the knowledge was, at every layer, and whether any of it is left.

For the original weights θ0 and the current (unlearned) weights, at every layer:
(a) a known/unknown logistic probe on the residual stream, fitted on the reference
entities at that layer with θ0, gives the target's P(known) on held-out prompts;
(b) a logit lens reads the target's fact answers from the residual at the fact
prompt's last position (final norm + unembedding): the probability and rank of
the answer's first token. Plus a paraphrase check (every held-out phrasing and
the chat form) and a relearning check (a few steps of fine-tuning on unrelated
text, then the facts are asked again; the weights are put back afterwards).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import UserError
from .entities import Entity, Templates, generic_text
from .fact_checks import fact_checks, run_fact_checks
from .jobs import ProgressCallback, check_cancel
from .latents import entity_batch
from .probe import LogisticProbe, fit_probe
from .prompts import EntityBatch



@dataclass
class ModelAudit:
    probe_p_known: list[float]  # per layer (index 0 = embeddings output, i = after block i-1)
    lens_probability: list[float]  # mean probability of the answers' first tokens per layer
    lens_rank: list[float]  # mean rank (0 = top) of the answers' first tokens per layer
    accuracy_by_form: dict[str, float | None]


@dataclass
class AuditResult:
    targets: list[str]
    layers: list[int]
    original: ModelAudit
    current: ModelAudit
    relearn_steps: int
    relearned_forget_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _final_norm(model) -> torch.nn.Module:
    for path in ("model.norm", "model.language_model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise UserError(f"the logit lens needs the final norm of {type(model).__name__}, which was not found.")


@torch.no_grad()
def _hidden_at(model, batch: EntityBatch, positions: torch.Tensor) -> torch.Tensor:
    """Residual stream at every layer at one position per row: [layers + 1, rows, width] (last entry pre-norm)."""
    device = next(model.parameters()).device
    rows = batch.to(device)
    out = model(input_ids=rows.input_ids, attention_mask=rows.attention_mask, output_hidden_states=True, use_cache=False)
    index = torch.arange(len(rows), device=device)
    states = [h[index, positions.to(device)].float() for h in out.hidden_states]
    return torch.stack(states).cpu()


def layer_probes(model, tokenizer, known: Sequence[Entity], unknown: Sequence[Entity], templates: Sequence[str]) -> list[LogisticProbe]:
    """One known/unknown probe per layer on residual activations at the last entity token."""
    known_batch, _ = entity_batch(tokenizer, known, templates)
    unknown_batch, _ = entity_batch(tokenizer, unknown, templates)
    k_states = _hidden_at(model, known_batch, known_batch.last_entity_pos)
    u_states = _hidden_at(model, unknown_batch, unknown_batch.last_entity_pos)
    labels = torch.cat([torch.ones(k_states.shape[1]), torch.zeros(u_states.shape[1])])
    return [fit_probe(torch.cat([k_states[layer], u_states[layer]]), labels, l2=1.0) for layer in range(k_states.shape[0])]


def _target_p_known(model, tokenizer, probes: Sequence[LogisticProbe], targets: Sequence[Entity], templates: Templates) -> list[float]:
    batch, _ = entity_batch(tokenizer, targets, templates.eval)
    states = _hidden_at(model, batch, batch.last_entity_pos)
    return [float(probe.p_known(states[layer]).mean()) for layer, probe in enumerate(probes)]


@torch.no_grad()
def logit_lens(model, tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> tuple[list[float], list[float]]:
    """Per layer: mean probability and mean rank of each answer's first token at its prompt's last position."""
    device = next(model.parameters()).device
    norm, unembed = _final_norm(model), model.get_output_embeddings()
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        encoded = tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)
    finally:
        tokenizer.padding_side = side
    last = encoded["attention_mask"].sum(1) - 1
    out = model(**encoded, output_hidden_states=True, use_cache=False)
    first_tokens = torch.tensor([tokenizer(" " + a.strip(), add_special_tokens=False)["input_ids"][0] for a in answers], device=device)
    index = torch.arange(len(prompts), device=device)
    probabilities, ranks = [], []
    for layer, hidden in enumerate(out.hidden_states):
        residual = hidden[index, last]
        normed = residual if layer == len(out.hidden_states) - 1 else norm(residual)
        logits = unembed(normed).float()
        probs = torch.softmax(logits, -1)
        chosen = probs[index, first_tokens]
        probabilities.append(float(chosen.mean()))
        ranks.append(float((probs > chosen[:, None]).sum(-1).float().mean()))
    return probabilities, ranks


def _accuracy_by_form(model, tokenizer, targets: Sequence[Entity], cancel) -> dict[str, float | None]:
    results = run_fact_checks(model, tokenizer, fact_checks(targets, "forget"), cancel)
    forms: dict[str, float | None] = {}
    for form in ("completion", "paraphrase", "chat"):
        chosen = [r.correct for r in results if r.check.form == form]
        forms[form] = sum(chosen) / len(chosen) if chosen else None
    return forms


def _audit_model(model, tokenizer, probes, targets, templates, cancel) -> ModelAudit:
    facts = [(f.prompt, f.answers[0]) for t in targets for f in t.facts]
    probability, rank = logit_lens(model, tokenizer, [p for p, _ in facts], [a for _, a in facts]) if facts else ([], [])
    check_cancel(cancel)
    return ModelAudit(_target_p_known(model, tokenizer, probes, targets, templates), probability, rank,
                      _accuracy_by_form(model, tokenizer, targets, cancel))


def relearn_check(model, tokenizer, parameters: Sequence[torch.nn.Parameter], targets: Sequence[Entity], *,
                  steps: int = 10, lr: float = 1e-4, cancel: threading.Event | None = None) -> float | None:
    """Fine-tune ``parameters`` on unrelated text for a few steps, ask the target facts, then restore the weights."""
    from .objectives import TokenBatch, mean_nll

    checks = fact_checks(targets, "forget", forms=("completion",))
    if not checks:
        return None
    saved = [p.detach().clone() for p in parameters]
    device = next(model.parameters()).device
    ids = tokenizer(generic_text("retain"))["input_ids"]
    rows = torch.tensor([ids[i:i + 64] for i in range(0, len(ids) - 64, 64)][:4], device=device)
    batch = TokenBatch(rows, torch.ones_like(rows), rows.clone())
    optimiser = torch.optim.Adam(parameters, lr=lr)
    try:
        for parameter in parameters:
            parameter.requires_grad_(True)
        for _ in range(steps):
            check_cancel(cancel)
            optimiser.zero_grad(set_to_none=True)
            mean_nll(model, batch).backward()
            optimiser.step()
        results = run_fact_checks(model, tokenizer, checks, cancel)
        return sum(r.correct for r in results) / len(results)
    finally:
        with torch.no_grad():
            for parameter, value in zip(parameters, saved):
                parameter.copy_(value)
                parameter.requires_grad_(False)
                parameter.grad = None


def run_audit(session, targets: Sequence[Entity], *, reference_limit: int = 40, relearn_steps: int = 10,
              verify_known: bool = True, progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> AuditResult:
    """Audit the session's current weights against θ0 for ``targets``."""
    from .trainer import TrainConfig, select_parameters

    report = progress or (lambda message, fraction: None)
    templates = session.entity_data()[2]
    known, unknown = session.reference_entities([t.name for t in targets], verify=verify_known, limit=reference_limit)
    probe_templates = list(templates.train[:4])
    report("fitting a known/unknown probe at every layer (original weights)", 0.05)
    with session.original_weights():
        probes = layer_probes(session.model, session.tokenizer, known, unknown, probe_templates)
        check_cancel(cancel)
        report("auditing the original weights", 0.3)
        original = _audit_model(session.model, session.tokenizer, probes, targets, templates, cancel)
    report("auditing the current weights", 0.55)
    current = _audit_model(session.model, session.tokenizer, probes, targets, templates, cancel)
    report(f"relearning check: {relearn_steps} steps on unrelated text", 0.8)
    parameters = select_parameters(session.model, session.hook, TrainConfig())
    relearned = relearn_check(session.model, session.tokenizer, parameters, targets, steps=relearn_steps, cancel=cancel)
    report("audit done", 1.0)
    return AuditResult([t.name for t in targets], list(range(len(probes))), original, current, relearn_steps, relearned)
