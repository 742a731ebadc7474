"""The unlearning step loop: a generator of events, cancellable between steps, deterministic under a seed."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserError
from .entities import Entity, Templates, fill_template, generic_text
from .events import Event, Finished, InitialState, Progress, StepProgress
from .exemplar import exemplar_goals, typical_unknown
from .generation import adds_special_tokens, format_prompt
from .hooks import HookPoint, capture_one, layer_container
from .latents import References
from .methods import METHODS
from .objectives import RunBatches, StepContext, TokenBatch, make_objective, sequence_logp
from .preservation import Preservation, build_preservation
from .prompts import encode_entity_prompts, text_chunks
from .run_config import ALIGN, TrainConfig
from .target_state import measure_targets, prompt_batches
from .weights import WeightsSnapshot


@dataclass
class UnlearningPlan:
    """What a run trains on: targets, retain entities, templates and θ0 references."""

    targets: list[Entity]
    retain: list[Entity]
    templates: Templates
    references: References


@dataclass
class TrainResult:
    steps_done: int
    stopped: str  # steps | early_stop | cancelled | diverged
    seconds: float
    message: str = ""


def fact_token_batch(tokenizer, facts: Sequence[tuple[str, str]], *, special_tokens: bool = True) -> TokenBatch | None:
    """``(prompt, answer)`` pairs as ``prompt + " " + answer`` (no space after a prompt that ends in one, such as
    a chat template's) with loss only on the answer tokens."""
    if not facts:
        return None
    rows = []
    for prompt, answer in facts:
        prompt_ids = tokenizer(prompt, add_special_tokens=special_tokens)["input_ids"]
        joiner = "" if prompt[-1:].isspace() else " "
        full_ids = tokenizer(prompt + joiner + answer.strip(), add_special_tokens=special_tokens)["input_ids"]
        rows.append((full_ids, len(prompt_ids)))
    longest = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (full, start) in enumerate(rows):
        ids[row, : len(full)] = torch.tensor(full)
        mask[row, : len(full)] = 1
        labels[row, start: len(full)] = torch.tensor(full[start:])
    return TokenBatch(ids, mask, labels)


NAME_TEMPLATES = 4  # training templates per target for the name-copy term


def name_copy_batch(tokenizer, names: Sequence[str], templates: Sequence[str]) -> TokenBatch | None:
    """Chat questions about each name (training templates only) answered with the name itself: what λ_name keeps
    likely, so the unlearned model still writes the target's name as it writes an unknown entity's."""
    pairs = [(format_prompt(tokenizer, fill_template(t, name)[0], chat=True), name) for name in names for t in templates]
    return fact_token_batch(tokenizer, pairs, special_tokens=adds_special_tokens(tokenizer, chat=True))


def _fact_context_prompts(entities: Sequence[Entity]) -> list[tuple[str, int, int]]:
    """Each entity's fact prompts that name it, with the name's character span."""
    prompts = []
    for entity in entities:
        for fact in entity.facts:
            start = fact.prompt.lower().find(entity.name.lower())
            if start >= 0:
                prompts.append((fact.prompt, start, start + len(entity.name)))
    return prompts


def _retain_text(tokenizer, chunks: int, length: int = 64) -> TokenBatch:
    pieces = text_chunks(tokenizer, generic_text("retain"), length)
    rows = [piece for piece in pieces if len(piece) == length][:chunks] or pieces[:1]
    tensor = torch.tensor([row + [tokenizer.pad_token_id or 0] * (length - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows])
    return TokenBatch(tensor, mask, torch.full_like(tensor, -100))


def prepare_batches(model, tokenizer, sae, hook: HookPoint, plan: UnlearningPlan, config: TrainConfig) -> RunBatches:
    """Tokenise the run's data and record θ0's activations and log-probs on it."""
    prompts = [fill_template(p, t.name) for t in plan.targets for p in plan.templates.train]
    if config.fact_contexts:
        prompts += _fact_context_prompts(plan.targets)
    forget = encode_entity_prompts(tokenizer, prompts)
    rng = random.Random(config.seed)
    retain_entities = rng.sample(plan.retain, min(config.retain_entities, len(plan.retain)))
    retain_templates = list(plan.templates.train[: config.retain_templates])
    retain_prompts = [fill_template(p, e.name) for e in retain_entities for p in retain_templates]
    if config.retain_fact_prompts:
        retain_prompts += _fact_context_prompts(retain_entities)
    if not retain_prompts:
        raise UserError("the retain set is empty: the run needs known entities other than the targets.")
    retain = encode_entity_prompts(tokenizer, retain_prompts)
    retain_text = _retain_text(tokenizer, config.retain_text_chunks)
    device = next(model.parameters()).device
    with torch.no_grad():
        retain_original = capture_one(model, hook, retain.input_ids.to(device), retain.attention_mask.to(device)).float().cpu()
        retain_text_original = capture_one(model, hook, retain_text.input_ids.to(device), retain_text.attention_mask.to(device)).float()
    forget_facts = fact_token_batch(tokenizer, [(f.prompt, f.answers[0]) for t in plan.targets for f in t.facts])
    retain_facts = fact_token_batch(tokenizer, [(e.facts[0].prompt, e.facts[0].answers[0]) for e in retain_entities if e.facts])
    original_logp = None
    if forget_facts is not None:
        with torch.no_grad():
            original_logp = sequence_logp(model, forget_facts.to(device)).cpu()
    names = (name_copy_batch(tokenizer, [t.name for t in plan.targets], plan.templates.train[:NAME_TEMPLATES])
             if config.lambda_name > 0 and config.method in ALIGN else None)
    exemplar = None
    if config.method in ALIGN and config.pull == "exemplar":
        name = typical_unknown(model, tokenizer, hook, plan.references.unknown_names, plan.templates.train)
        exemplar = exemplar_goals(model, tokenizer, sae, hook, name, plan.templates.train)
    return RunBatches(forget, retain, retain_original, retain_text, retain_text_original.cpu(), forget_facts, retain_facts,
                      original_logp, names, exemplar)


PRESERVE_TEMPLATES = 4  # training templates per entity in λ_preserve's sample
PRESERVE_ROWS = 64  # rows per forward pass while it is measured


def preservation_sample(tokenizer, plan: UnlearningPlan) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """What λ_preserve holds, as (ids, mask) batches: the retain text and every retain entity and unknown reference in
    a few training templates. Never a target: their prompts are what the run must change."""
    text = _retain_text(tokenizer, chunks=10_000)
    batches = [(text.input_ids[i:i + PRESERVE_ROWS], text.attention_mask[i:i + PRESERVE_ROWS])
               for i in range(0, len(text.input_ids), PRESERVE_ROWS)]
    names = [e.name for e in plan.retain] + list(plan.references.unknown_names)
    targets = {t.name.lower() for t in plan.targets}
    templates = plan.templates.train[:PRESERVE_TEMPLATES]
    prompts = [fill_template(p, name) for name in names if name.lower() not in targets for p in templates]
    for start in range(0, len(prompts), PRESERVE_ROWS):
        rows = encode_entity_prompts(tokenizer, prompts[start:start + PRESERVE_ROWS])
        batches.append((rows.input_ids, rows.attention_mask))
    return batches


def run_preservation(model, tokenizer, hook: HookPoint, plan: UnlearningPlan, config: TrainConfig,
                     parameters: Sequence[torch.nn.Parameter]) -> Preservation | None:
    """λ_preserve's hold on the trained maps, measured on θ0 before the first step (None when the run has no such term)."""
    if not (config.lambda_preserve > 0 and config.method in ALIGN):
        return None
    return build_preservation(model, hook, parameters, preservation_sample(tokenizer, plan))


def select_parameters(model, hook: HookPoint, config: TrainConfig) -> list[torch.nn.Parameter]:
    """The weights a run may change; all of them live in blocks at or below the hook."""
    prefix, layers = layer_container(model)
    first = 0 if config.trainable == "all" else max(0, hook.layer - config.layers_below)
    chosen = []
    for index in range(first, hook.layer + 1):
        block = layers[index]
        if config.trainable == "all":
            chosen += list(block.parameters())
        elif config.trainable == "mlp":
            mlp = getattr(block, "mlp", None)
            if mlp is None:
                raise UserError(f"block {index} of this model has no 'mlp' module: choose trainable 'all'.")
            chosen += list(mlp.parameters())
        else:
            chosen += [p for name, p in block.named_parameters() if "lora_" in name]
    if not chosen:
        raise UserError("no trainable parameters were selected: check the trainable setting and the hook layer.")
    return chosen


def train(model, tokenizer, sae, hook: HookPoint, plan: UnlearningPlan, config: TrainConfig,
          cancel: threading.Event | None = None) -> Iterator[Event]:
    """Run the step loop, yielding a :class:`StepProgress` per step and :class:`Finished` (a TrainResult) at the end.

    The model is changed in place; a cancel between steps stops with the weights of the last finished step.
    """
    config.validate()
    objective = make_objective(config)
    if objective.info.needs_facts and not any(t.facts for t in plan.targets):
        raise UserError(f"{config.method} needs the targets' facts: give a facts file, pick listed entities, or use sae-align.")
    yield Progress("preparing the run's batches", 0.0)
    torch.manual_seed(config.seed)
    batches = prepare_batches(model, tokenizer, sae, hook, plan, config)
    if batches.exemplar:
        yield Progress(f"pulling toward a typical unknown entity: {batches.exemplar.name}", 0.0)
    heldout = prompt_batches(tokenizer, plan.targets, plan.templates.stop)
    ctx = StepContext(model, sae, hook, plan.references, batches)
    yield InitialState(measure_targets(model, sae, hook, plan.references, heldout))
    lora = config.trainable == "lora"
    if lora:
        from .lora import add_lora

        add_lora(model, hook, config.layers_below, config.lora_rank)
    parameters = select_parameters(model, hook, config)
    if config.lambda_preserve > 0 and config.method in ALIGN:
        yield Progress("measuring what the trained layers compute on other text and entities", 0.0)
        batches.preservation = run_preservation(model, tokenizer, hook, plan, config, parameters)
        if batches.preservation is None:
            yield Progress("λ preserve is off for this run: the trained weights hold no linear layer", 0.0)
    try:
        with float32_trainable(model, parameters):
            yield from _loop(ctx, objective, parameters, heldout, config, cancel)
    finally:
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None
        if lora:
            from .lora import merge_lora

            merge_lora(model)


# Divergence guard: a step whose loss grows past this many times the first step's (minimised) loss, or whose update
# moves the trainable weights by more than this fraction of their norm, ends the run as diverged. A normal Adam
# step at the methods' learning rates moves them by well under 1 % (lr 1e-4: about 0.5 %).
EXPLODING_LOSS_FACTOR = 10.0
LOSS_FLOOR = 0.1  # the first loss's magnitude counts as at least this, so a near-zero start is not a hair trigger
MAX_RELATIVE_UPDATE = 0.25


def _relative_update(parameters: Sequence[torch.Tensor], before: Sequence[torch.Tensor]) -> float:
    """‖θ − θ_before‖ / ‖θ_before‖ over all trained tensors, one tensor at a time (no copy of the whole set)."""
    update = sum(float(torch.linalg.vector_norm(p.detach() - b, dtype=torch.float32)) ** 2 for p, b in zip(parameters, before))
    size = sum(float(torch.linalg.vector_norm(b, dtype=torch.float32)) ** 2 for b in before)
    return math.sqrt(update / max(size, 1e-24))


def _divergence(step: int, total: torch.Tensor, first_loss: float | None, parameters) -> str:
    """Why the loss of this step shows divergence ("" when it does not): not finite, or exploding."""
    loss = float(total.detach())
    if not math.isfinite(loss):
        return f"the loss became {loss} at step {step}"
    if not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in parameters):
        return f"the gradients became NaN or infinite at step {step}"
    if first_loss is not None and loss > EXPLODING_LOSS_FACTOR * max(abs(first_loss), LOSS_FLOOR):
        return f"the loss exploded at step {step} ({loss:.4g}, more than {EXPLODING_LOSS_FACTOR:g}× the first step's {first_loss:.4g})"
    return ""


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    if isinstance(value, tuple):
        return tuple(_cast_floats(v, dtype) for v in value)
    return value


@contextmanager
def float32_trainable(model: torch.nn.Module, parameters: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    """Hold the trainable weights of a bfloat16/float16 model in float32 for the run (mixed precision).

    A bfloat16 weight keeps 8 significant bits, so an Adam step of lr 1e-4 on a weight of 0.05 or more
    rounds away and the loss barely moves. Here the trainable parameters (and so Adam's moments and the
    gradients) are float32 during the run; the modules that own them take their inputs in float32 and hand
    their outputs back in the model's dtype, so the rest of the model runs as loaded. At the end the weights
    are rounded back to the model's dtype once.
    """
    low = [p for p in parameters if p.is_floating_point() and p.dtype != torch.float32]
    if not low:
        yield
        return
    dtype = low[0].dtype
    chosen = {id(p) for p in low}
    owners = [m for m in model.modules() if any(id(p) in chosen for p in m.parameters(recurse=False))]
    with torch.no_grad():
        for parameter in low:
            parameter.data = parameter.data.float()
    handles = []
    for module in owners:
        handles.append(module.register_forward_pre_hook(
            lambda _m, args, kwargs: (_cast_floats(args, torch.float32),
                                      {k: _cast_floats(v, torch.float32) for k, v in kwargs.items()}),
            with_kwargs=True))
        handles.append(module.register_forward_hook(lambda _m, _args, output: _cast_floats(output, dtype)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for parameter in low:
                parameter.data = parameter.data.to(dtype)


def _loop(ctx: StepContext, objective, parameters, heldout, config: TrainConfig, cancel) -> Iterator[Event]:
    model = ctx.model
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate)
    started = time.perf_counter()
    # The last weights known good: their loss was finite and not exploding. The starting weights until a step proves so.
    # Kept on the parameters' device: the trainable weights are a small part of a model, compared every step.
    good = WeightsSnapshot(parameters, device=parameters[0].device)
    good_step = 0
    first_loss: float | None = None
    step = 0
    stopped, message = "steps", ""
    for step in range(1, config.steps + 1):
        if cancel is not None and cancel.is_set():
            step -= 1
            stopped, message = "cancelled", f"stopped by the user after step {step}"
            break
        optimiser.zero_grad(set_to_none=True)
        terms = objective.losses(ctx)
        total = terms["total"]
        if bool(torch.isfinite(total)):
            total.backward()
        reason = _divergence(step, total, first_loss, parameters)
        if not reason:
            good_step = step - 1  # these weights are what steps 1…step−1 made
            good.retake()
            first_loss = float(total.detach()) if first_loss is None else first_loss
            optimiser.step()
            with torch.no_grad():
                update = _relative_update(parameters, good.values)
            if not update <= MAX_RELATIVE_UPDATE:  # also when the update is NaN
                reason = f"step {step} changed the trained weights by {update:.3g}× their norm (more than {MAX_RELATIVE_UPDATE:g}×)"
        if reason:
            good.restore()
            restored = f"the weights after step {good_step} were restored" if good_step else "the starting weights were restored"
            low_precision = " or load the model in float32" if parameters[0].dtype != torch.float32 else ""
            message = (f"the run diverged: {reason}; {restored}. "
                       f"Lower the learning rate (it was {config.learning_rate:g}; {config.method}'s default is "
                       f"{METHODS[config.method].default_lr:g}){low_precision}.")
            step, stopped = good_step, "diverged"
            break
        with torch.no_grad():
            drift = terms["retain"] if "retain" in terms else None
            states = measure_targets(model, ctx.sae, ctx.hook, ctx.references, heldout)
            if drift is None:
                from .objectives import retain_drift

                drift = retain_drift(ctx)
        yield StepProgress(step=step, total=config.steps, losses={k: float(v.detach()) for k, v in terms.items()},
                           targets=states, retain_drift=float(drift.detach()), seconds=time.perf_counter() - started)
        if config.early_stop and step >= config.min_steps and all(s.unknown_fraction == 1.0 for s in states.values()):
            stopped, message = "early_stop", f"every held-out target prompt reads as unknown after step {step}"
            break
    yield Finished(TrainResult(steps_done=step, stopped=stopped, seconds=time.perf_counter() - started, message=message))
