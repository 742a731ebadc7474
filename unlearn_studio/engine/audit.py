"""The forgetting audit: where the knowledge was, at every layer, and whether any of it is left.

For the original weights θ0 and the current (unlearned) weights, at every layer:
(a) a known/unknown logistic probe on the residual stream, fitted on the reference
entities at that layer with θ0, gives the target's P(known) on held-out prompts;
(b) a logit lens reads the target's fact answers from the residual at the fact
prompt's last position (final norm + unembedding): the probability and rank of
the answer's first token. Plus a paraphrase check (every held-out phrasing and
the chat form) and a relearning check (a few steps of fine-tuning on unrelated
text, then the facts are asked again in every form; the weights are put back afterwards).
Per target: the last layer's lens rank (median and mean over its answers), its name
fidelity in chat, and its forget accuracy per form after relearning.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..errors import UserError
from .entities import Entity, Templates, generic_text
from .fact_checks import (
    FactResult,
    accuracy_by_form,
    fact_checks,
    headline,
    name_fidelity,
    run_fact_checks,
)
from .generation import chat_form_label
from .jobs import ProgressCallback, check_cancel
from .latents import entity_batch
from .probe import LogisticProbe, fit_probe
from .prompts import EntityBatch, answer_lens_input, text_chunks
from .weights import WeightsSnapshot


@dataclass
class ModelAudit:
    probe_p_known: list[float]  # per layer (index 0 = embeddings output, i = after block i-1)
    lens_probability: list[float]  # mean probability of the answers' first tokens per layer
    lens_rank: list[float]  # mean rank (0 = top) of the answers' first tokens per layer
    accuracy_by_form: dict[str, float | None]


@dataclass
class TargetAudit:
    """One target's own numbers (DESIGN.md §4): for the original and the current weights, the last layer's logit-lens
    rank of its answers and its name fidelity; after the relearning check, its forget accuracy per form."""
    lens_rank_last_layer: dict[str, dict[str, float] | None]  # original | current -> {median, mean}; None: no facts
    name_fidelity: dict[str, float]  # original | current -> share of chat answers that write the name exactly
    relearned_forget_accuracy_by_form: dict[str, float]
    relearned_forget_headline: float | None  # the mean over the forms no method trains on


@dataclass
class AuditResult:
    targets: list[str]
    layers: list[int]
    original: ModelAudit
    current: ModelAudit
    relearn_steps: int
    relearned_forget_accuracy: float | None
    chat_form: str = "chat"  # how the "chat" checks were asked: chat (the template) or question-answer (no template)
    per_target: dict[str, TargetAudit] = field(default_factory=dict)  # keyed by target name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _final_norm(model) -> torch.nn.Module:
    for path in ("model.norm", "model.language_model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise UserError(f"the logit lens needs the final norm of {type(model).__name__}, which was not found.")


AUDIT_BATCH = 16  # rows per forward pass: bounds the memory of every layer's hidden states


def _input_device(model) -> torch.device:
    return model.get_input_embeddings().weight.device


@torch.no_grad()
def _hidden_at(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Residual stream at every layer at one position per row: [layers + 1, rows, width] (float32, on the CPU).

    Runs the decoder without its unembedding, so no logits are computed (a 256k vocabulary at every position
    of every row would dwarf the rest), in batches of :data:`AUDIT_BATCH` rows. The last entry is the output
    of the final norm, as transformers reports it.
    """
    device = _input_device(model)
    pieces = []
    for start in range(0, len(input_ids), AUDIT_BATCH):
        rows = slice(start, start + AUDIT_BATCH)
        mask = attention_mask[rows]
        length = int(mask.sum(1).max())
        out = model.base_model(input_ids=input_ids[rows, :length].to(device), attention_mask=mask[:, :length].to(device),
                               output_hidden_states=True, use_cache=False)
        index = torch.arange(mask.shape[0])
        pieces.append(torch.stack([h[index.to(h.device), positions[rows].to(h.device)].float().cpu() for h in out.hidden_states]))
    return torch.cat(pieces, dim=1)


def _batch_states(model, batch: EntityBatch) -> torch.Tensor:
    return _hidden_at(model, batch.input_ids, batch.attention_mask, batch.last_entity_pos)


def layer_probes(model, tokenizer, known: Sequence[Entity], unknown: Sequence[Entity], templates: Sequence[str]) -> list[LogisticProbe]:
    """One known/unknown probe per layer on residual activations at the last entity token."""
    known_batch, _ = entity_batch(tokenizer, known, templates)
    unknown_batch, _ = entity_batch(tokenizer, unknown, templates)
    k_states = _batch_states(model, known_batch)
    u_states = _batch_states(model, unknown_batch)
    labels = torch.cat([torch.ones(k_states.shape[1]), torch.zeros(u_states.shape[1])])
    return [fit_probe(torch.cat([k_states[layer], u_states[layer]]), labels, l2=1.0) for layer in range(k_states.shape[0])]


def _target_p_known(model, tokenizer, probes: Sequence[LogisticProbe], targets: Sequence[Entity], templates: Templates) -> list[float]:
    batch, _ = entity_batch(tokenizer, targets, templates.eval)
    states = _batch_states(model, batch)
    return [float(probe.p_known(states[layer]).mean()) for layer, probe in enumerate(probes)]


def _right_padded(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(row) for row in rows)
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, :len(row)] = torch.tensor(row)
        mask[index, :len(row)] = 1
    return ids, mask


def soft_cap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma 2's final logit soft-capping, ``cap · tanh(logits / cap)``, as its forward pass applies it."""
    return logits if not cap else cap * torch.tanh(logits / cap)


@torch.no_grad()
def lens_by_answer(model, tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer and answer: the probability and the rank (0 = top) of the answer's first token at its prompt's
    last position, as two [layers + 1, answers] tensors.

    The answer's first token is the first that carries text (:func:`answer_lens_input`); each layer's residual
    goes through the final norm, the unembedding and the model's final soft-cap, like the real output.
    """
    norm, unembed = _final_norm(model), model.get_output_embeddings()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, "final_logit_softcapping", None)
    inputs = [answer_lens_input(tokenizer, prompt, answer) for prompt, answer in zip(prompts, answers)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids, mask = _right_padded([context for context, _ in inputs], pad)
    states = _hidden_at(model, ids, mask, mask.sum(1) - 1)
    device, dtype = unembed.weight.device, unembed.weight.dtype
    first_tokens = torch.tensor([token for _, token in inputs], device=device)
    index = torch.arange(len(inputs), device=device)
    probabilities, ranks = [], []
    for layer, residual in enumerate(states):
        residual = residual.to(device, dtype)
        normed = residual if layer == len(states) - 1 else norm(residual)
        logits = soft_cap(unembed(normed).float(), cap)
        probs = torch.softmax(logits, -1)
        chosen = probs[index, first_tokens]
        probabilities.append(chosen.cpu())
        ranks.append((probs > chosen[:, None]).sum(-1).float().cpu())
    return torch.stack(probabilities), torch.stack(ranks)


def logit_lens(model, tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> tuple[list[float], list[float]]:
    """Per layer: mean probability and mean rank of each answer's first token (:func:`lens_by_answer`)."""
    probabilities, ranks = lens_by_answer(model, tokenizer, prompts, answers)
    return probabilities.mean(1).tolist(), ranks.mean(1).tolist()


def rank_summary(ranks: Sequence[float]) -> dict[str, float] | None:
    """The median and the mean of some answers' ranks (None for no answers)."""
    return {"median": float(statistics.median(ranks)), "mean": float(statistics.fmean(ranks))} if ranks else None


def _accuracy_by_form(model, tokenizer, targets: Sequence[Entity], cancel) -> dict[str, float | None]:
    asked = ("completion", "paraphrase", "chat")
    results = run_fact_checks(model, tokenizer, fact_checks(targets, "forget", forms=asked), cancel)
    forms: dict[str, float | None] = {}
    for form in asked:
        chosen = [r.correct for r in results if r.check.form == form]
        forms[form] = sum(chosen) / len(chosen) if chosen else None
    return forms


@dataclass
class _Measured:
    audit: ModelAudit
    lens_rank_last_layer: dict[str, dict[str, float] | None]  # per target
    name_fidelity: dict[str, float]  # per target


def _audit_model(model, tokenizer, probes, targets, templates, cancel) -> _Measured:
    facts = [(t.name, f.prompt, f.answers[0]) for t in targets for f in t.facts]
    probability, rank, last = [], [], []
    if facts:  # one lens pass: the per-layer means and each target's last-layer ranks
        by_answer_p, by_answer_rank = lens_by_answer(model, tokenizer, [p for _, p, _ in facts], [a for _, _, a in facts])
        probability, rank, last = by_answer_p.mean(1).tolist(), by_answer_rank.mean(1).tolist(), by_answer_rank[-1].tolist()
    check_cancel(cancel)
    ranks = {t.name: rank_summary([r for (owner, _, _), r in zip(facts, last) if owner == t.name]) for t in targets}
    audit = ModelAudit(_target_p_known(model, tokenizer, probes, targets, templates), probability, rank,
                       _accuracy_by_form(model, tokenizer, targets, cancel))
    check_cancel(cancel)
    return _Measured(audit, ranks, name_fidelity(model, tokenizer, [t.name for t in targets]))


def relearn_check(model, tokenizer, parameters: Sequence[torch.nn.Parameter], targets: Sequence[Entity], *,
                  steps: int = 10, lr: float = 1e-4, cancel: threading.Event | None = None) -> list[FactResult]:
    """Fine-tune ``parameters`` on unrelated text for a few steps, ask the targets' forget checks in every form once,
    then restore the weights. No checks: nothing is trained and nothing returned."""
    from .objectives import TokenBatch, mean_nll
    from .trainer import float32_trainable

    checks = fact_checks(targets, "forget")
    if not checks:
        return []
    saved = WeightsSnapshot(parameters)
    chunks = [chunk for chunk in text_chunks(tokenizer, generic_text("retain"), 64) if len(chunk) == 64][:4]
    rows = torch.tensor(chunks, device=_input_device(model))
    batch = TokenBatch(rows, torch.ones_like(rows), rows.clone())
    try:
        for parameter in parameters:
            parameter.requires_grad_(True)
        with float32_trainable(model, parameters):
            optimiser = torch.optim.Adam(parameters, lr=lr)
            for _ in range(steps):
                check_cancel(cancel)
                optimiser.zero_grad(set_to_none=True)
                mean_nll(model, batch).backward()
                optimiser.step()
        return run_fact_checks(model, tokenizer, checks, cancel)
    finally:
        saved.restore()
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None


def _per_target(targets: Sequence[Entity], original: _Measured, current: _Measured,
                relearned: Sequence[FactResult]) -> dict[str, TargetAudit]:
    per_target = {}
    for target in targets:
        by_form = accuracy_by_form(relearned, "forget", target.name)
        per_target[target.name] = TargetAudit(
            {"original": original.lens_rank_last_layer[target.name], "current": current.lens_rank_last_layer[target.name]},
            {"original": original.name_fidelity[target.name], "current": current.name_fidelity[target.name]},
            by_form, headline(by_form))
    return per_target


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
    # the old pooled number: every target's completion checks (the fact prompts) after relearning
    pooled = accuracy_by_form(relearned, "forget").get("completion")
    return AuditResult([t.name for t in targets], list(range(len(probes))), original.audit, current.audit, relearn_steps,
                       pooled, chat_form_label(session.tokenizer), _per_target(targets, original, current, relearned))
