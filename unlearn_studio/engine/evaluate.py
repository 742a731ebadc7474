"""Before/after measurements (DESIGN.md §4): known-ness, fact accuracy, perplexity, repetition."""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .entities import Entity, Templates, generic_text
from .fact_checks import (FactCheck, FactResult, about_targets, accuracy_by_form, ask_once, fact_checks, headline,
                          name_fidelity, run_fact_checks)
from .generation import complete
from .hooks import HookPoint
from .jobs import ProgressCallback, check_cancel
from .latents import References
from .prompts import text_chunks
from .stand_ins import StandInFloor, stand_in_floor
from .target_state import measure_targets, prompt_batches

COLLAPSE_PROMPTS = ("Write a short paragraph about the weather in spring.", "Explain how to make a cup of tea.")


@dataclass
class Evaluation:
    target_p_known: float  # on the eval templates
    target_unknown_fraction: float
    target_unknown_percentile: float  # median over the eval prompts (DESIGN.md §4)
    forget_accuracy: float | None  # mean over the forms no method trains on; None: the targets have no facts
    forget_accuracy_by_form: dict[str, float]
    stand_in_accuracy: float | None  # the same checks about fictitious stand-ins, with θ0: the floor
    stand_in_accuracy_by_form: dict[str, float]
    retain_accuracy: float | None  # the fixed retain set, same forms
    retain_accuracy_by_form: dict[str, float]
    neighbour_retain_accuracy: float | None  # entities linked to the targets
    # Retain and neighbour checks that name a target (its prompt or answer): knowledge of the target reached
    # through another entity. Forgetting takes it, so it is never counted as retain (fact_checks.about_targets).
    linked_accuracy: float | None
    name_fidelity: float | None  # chat answers about the targets that write the name exactly
    name_fidelity_stand_ins: float | None  # the same about fictitious stand-ins, with θ0
    perplexity: float
    repeat_rate: float
    per_target: dict[str, dict[str, Any]] = field(default_factory=dict)
    facts: list[FactResult] = field(default_factory=list)
    floor: StandInFloor | None = None

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("facts", "per_target", "floor")}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["facts"] = [{**asdict(r.check), "completion": r.completion, "correct": r.correct} for r in self.facts]
        return data


def _share(results: Sequence[FactResult], role: str) -> float | None:
    chosen = [r.correct for r in results if r.check.role == role]
    return sum(chosen) / len(chosen) if chosen else None


@torch.no_grad()
def perplexity(model, tokenizer, text: str, *, chunk: int = 128) -> float:
    """Token-level perplexity of ``text`` in independent chunks (the first token of each is context only).

    Every chunk starts with the BOS token when the model uses one (Gemma's activations degrade without it).
    """
    device = model.get_input_embeddings().weight.device
    total_nll, count = 0.0, 0
    for ids in text_chunks(tokenizer, text, chunk):
        piece = torch.tensor([ids], device=device)
        if piece.shape[1] < 2:
            break
        logits = model(input_ids=piece, use_cache=False).logits[0, :-1].float()
        total_nll += float(torch.nn.functional.cross_entropy(logits, piece[0, 1:], reduction="sum"))
        count += piece.shape[1] - 1
    return math.exp(total_nll / max(count, 1))


def repeat_rate(tokenizer, texts: Sequence[str], n: int = 3) -> float:
    """Share of generated tokens that close an n-gram already seen earlier in the same text."""
    repeated, total = 0, 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        seen: set[tuple[int, ...]] = set()
        for i in range(n - 1, len(ids)):
            gram = tuple(ids[i - n + 1: i + 1])
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else 0.0


def evaluate(model, tokenizer, sae, hook: HookPoint, references: References, targets: Sequence[Entity],
             retain: Sequence[Entity], templates: Templates, *, neighbours: Sequence[Entity] = (),
             progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
             stand_ins: dict[str, list[str]] | None = None, floor: StandInFloor | None = None,
             asked: dict[FactCheck, FactResult] | None = None) -> Evaluation:
    """Every measurement of DESIGN.md §4 for the model's current weights, on the eval templates.

    ``stand_ins`` (fictitious names per target) measures the stand-in floor with these weights: pass it for θ0.
    ``floor`` reuses that measurement afterwards (the before-evaluation's ``floor``). ``asked`` holds answers these
    same weights gave before (the fixed retain set asked of θ0 for an earlier target): they are not asked again.
    """
    asked = {} if asked is None else asked
    report = progress or (lambda message, fraction: None)
    report("measuring the targets' internal state", 0.0)
    states = measure_targets(model, sae, hook, references, prompt_batches(tokenizer, targets, templates.eval))
    report("asking the targets' facts", 0.1)
    forget_checks = fact_checks(targets, "forget")
    results = run_fact_checks(model, tokenizer, forget_checks, cancel,
                              on_form=lambda form: report(f"asking the targets' facts ({form})", 0.1))
    if floor is None and stand_ins is not None:
        report("asking the facts about fictitious stand-ins", 0.3)
        floor = stand_in_floor(model, tokenizer, forget_checks, stand_ins, cancel)
    report("asking the retain set's facts", 0.45)
    results += ask_once(model, tokenizer, about_targets(fact_checks(retain, "retain"), targets), asked, cancel,
                        on_form=lambda form: report(f"asking the retain set's facts ({form})", 0.45))
    results += ask_once(model, tokenizer, about_targets(fact_checks(neighbours, "neighbour"), targets), asked, cancel)
    check_cancel(cancel)
    report("name fidelity", 0.7)
    fidelity = name_fidelity(model, tokenizer, [t.name for t in targets])
    mean_fidelity = statistics.mean(fidelity.values()) if fidelity else None
    report("perplexity on held-out text", 0.75)
    ppl = perplexity(model, tokenizer, generic_text("heldout"))
    check_cancel(cancel)
    report("checking generations for repetition", 0.9)
    generations = complete(model, tokenizer, list(COLLAPSE_PROMPTS), max_new_tokens=40, chat=True)
    report("evaluation done", 1.0)
    per_target: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        by_form = accuracy_by_form(results, "forget", name)
        per_target[name] = {"p_known": state.p_known, "unknown_fraction": state.unknown_fraction,
                            "unknown_percentile": state.unknown_percentile, "forget_accuracy": headline(by_form),
                            "forget_accuracy_by_form": by_form, "name_fidelity": fidelity.get(name)}
    count = max(len(states), 1)
    forget_by_form = accuracy_by_form(results, "forget")
    retain_by_form = accuracy_by_form(results, "retain")
    return Evaluation(
        target_p_known=sum(s.p_known for s in states.values()) / count,
        target_unknown_fraction=sum(s.unknown_fraction for s in states.values()) / count,
        target_unknown_percentile=statistics.median(s.unknown_percentile for s in states.values()) if states else 0.0,
        forget_accuracy=headline(forget_by_form),
        forget_accuracy_by_form=forget_by_form,
        stand_in_accuracy=floor.accuracy if floor else None,
        stand_in_accuracy_by_form=dict(floor.by_form) if floor else {},
        retain_accuracy=headline(retain_by_form),
        retain_accuracy_by_form=retain_by_form,
        neighbour_retain_accuracy=_share(results, "neighbour"),
        linked_accuracy=_share(results, "linked"),
        name_fidelity=mean_fidelity,
        name_fidelity_stand_ins=floor.name_fidelity if floor else None,
        perplexity=ppl,
        repeat_rate=repeat_rate(tokenizer, generations),
        per_target=per_target,
        facts=results,
        floor=floor,
    )
