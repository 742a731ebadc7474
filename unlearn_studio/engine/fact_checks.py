"""Fact checks: a question about an entity in one form, asked greedily, judged by the answers it should contain.

Shared by the before/after evaluation, the stand-in floor and the audit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .entities import Entity, answer_matches
from .generation import complete
from .jobs import check_cancel


@dataclass(frozen=True)
class FactCheck:
    entity: str
    role: str  # forget | retain
    form: str  # completion | paraphrase | chat
    prompt: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class FactResult:
    check: FactCheck
    completion: str
    correct: bool


def fact_checks(entities: Sequence[Entity], role: str, *, paraphrases: bool = True, chat: bool = True) -> list[FactCheck]:
    checks = []
    for entity in entities:
        for fact in entity.facts:
            checks.append(FactCheck(entity.name, role, "completion", fact.prompt, fact.answers))
            if paraphrases:
                checks += [FactCheck(entity.name, role, "paraphrase", p, fact.answers) for p in fact.paraphrases]
            if chat and fact.question:
                checks.append(FactCheck(entity.name, role, "chat", fact.question, fact.answers))
    return checks


def run_fact_checks(model, tokenizer, checks: Sequence[FactCheck], cancel: threading.Event | None = None) -> list[FactResult]:
    results: list[FactResult] = []
    for form, max_tokens in (("completion", 8), ("paraphrase", 8), ("chat", 32)):
        chosen = [c for c in checks if c.form == form]
        if not chosen:
            continue
        check_cancel(cancel)
        outputs = complete(model, tokenizer, [c.prompt for c in chosen], max_new_tokens=max_tokens, chat=form == "chat")
        results += [FactResult(c, out, answer_matches(out, c.answers)) for c, out in zip(chosen, outputs)]
    return results


def check_key(check: FactCheck) -> str:
    """A check's identity across runs: its entity, form and prompt."""
    return f"{check.entity}\x1f{check.form}\x1f{check.prompt}"
