"""Before/after measurements (DESIGN.md §4): known-ness, fact accuracy, perplexity, repetition."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .entities import Entity, Templates, generic_text
from .fact_checks import FactResult, check_key, fact_checks, run_fact_checks
from .generation import complete
from .hooks import HookPoint
from .jobs import ProgressCallback, check_cancel
from .latents import References
from .stand_ins import context_answerable
from .target_state import measure_targets, prompt_batches

COLLAPSE_PROMPTS = ("Write a short paragraph about the weather in spring.", "Explain how to make a cup of tea.")


@dataclass
class Evaluation:
    target_p_known: float
    target_unknown_fraction: float
    target_unknown_percentile: float
    forget_accuracy: float | None  # None: the targets have no facts (not measured)
    # Forget accuracy over the checks a fictitious entity does not answer too (stand_ins.py); None: not measured.
    entity_forget_accuracy: float | None
    retain_accuracy: float | None
    perplexity: float
    repeat_rate: float
    per_target: dict[str, dict[str, float]] = field(default_factory=dict)
    facts: list[FactResult] = field(default_factory=list)
    context_answerable: list[str] = field(default_factory=list)  # check keys, judged with θ0

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("facts", "per_target", "context_answerable")}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["facts"] = [{**asdict(r.check), "completion": r.completion, "correct": r.correct} for r in self.facts]
        return data


def _accuracy(results: Sequence[FactResult], role: str, leave_out: frozenset[str] = frozenset()) -> float | None:
    chosen = [r.correct for r in results if r.check.role == role and check_key(r.check) not in leave_out]
    return sum(chosen) / len(chosen) if chosen else None


@torch.no_grad()
def perplexity(model, tokenizer, text: str, *, chunk: int = 128) -> float:
    """Token-level perplexity of ``text`` in independent chunks (the first token of each is context only)."""
    device = next(model.parameters()).device
    ids = tokenizer(text)["input_ids"]
    total_nll, count = 0.0, 0
    for start in range(0, len(ids) - 1, chunk):
        piece = torch.tensor([ids[start:start + chunk]], device=device)
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
             retain: Sequence[Entity], templates: Templates, *, progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None, stand_ins: dict[str, list[str]] | None = None,
             given_away: Sequence[str] | None = None) -> Evaluation:
    """Every measurement of DESIGN.md §4 for the model's current weights.

    ``stand_ins`` (fictitious names per target) marks the checks the context gives away, with these weights: pass
    it for θ0. ``given_away`` reuses that judgement (the before-evaluation's ``context_answerable``) afterwards.
    """
    report = progress or (lambda message, fraction: None)
    report("measuring the targets' internal state", 0.0)
    states = measure_targets(model, sae, hook, references, prompt_batches(tokenizer, targets, templates.eval))
    report("asking the targets' facts", 0.15)
    forget_checks = fact_checks(targets, "forget")
    results = run_fact_checks(model, tokenizer, forget_checks, cancel)
    if given_away is None and stand_ins is not None:
        report("asking the facts about fictitious stand-ins", 0.3)
        given_away = context_answerable(model, tokenizer, forget_checks, stand_ins, cancel)
    leave_out = None if given_away is None else frozenset(given_away)
    report("asking retain facts", 0.4)
    results += run_fact_checks(model, tokenizer, fact_checks(retain, "retain", paraphrases=False, chat=False), cancel)
    check_cancel(cancel)
    report("perplexity on held-out text", 0.75)
    ppl = perplexity(model, tokenizer, generic_text("heldout"))
    check_cancel(cancel)
    report("checking generations for repetition", 0.9)
    generations = complete(model, tokenizer, list(COLLAPSE_PROMPTS), max_new_tokens=40, chat=True)
    report("evaluation done", 1.0)
    per_target = {name: {"p_known": s.p_known, "unknown_fraction": s.unknown_fraction,
                         "unknown_percentile": s.unknown_percentile} for name, s in states.items()}
    for name in per_target:
        mine = [r for r in results if r.check.role == "forget" and r.check.entity == name]
        per_target[name]["forget_accuracy"] = _accuracy(mine, "forget")
        if leave_out is not None:
            per_target[name]["entity_forget_accuracy"] = _accuracy(mine, "forget", leave_out)
    count = max(len(states), 1)
    return Evaluation(
        target_p_known=sum(s.p_known for s in states.values()) / count,
        target_unknown_fraction=sum(s.unknown_fraction for s in states.values()) / count,
        target_unknown_percentile=sum(s.unknown_percentile for s in states.values()) / count,
        forget_accuracy=_accuracy(results, "forget"),
        entity_forget_accuracy=None if leave_out is None else _accuracy(results, "forget", leave_out),
        retain_accuracy=_accuracy(results, "retain"),
        perplexity=ppl,
        repeat_rate=repeat_rate(tokenizer, generations),
        per_target=per_target,
        facts=results,
        context_answerable=sorted(leave_out or ()),
    )
