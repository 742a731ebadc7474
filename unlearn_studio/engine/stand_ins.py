"""Which fact checks the prompt gives away: asked about an entity the model has never heard of, it still answers.

A model that has truly forgotten a target should answer its fact prompts the way it
answers them for a fictitious entity (the paper's definition of forgetting). Some
prompts carry their answer in the context ("… created by Sir Arthur" → "Conan Doyle",
"E =" → "mc²"): the original model completes them correctly for a made-up name too, so
a correct answer there measures the context, not the entity. We mark such checks by
asking the original model each one with the target's name replaced by fictitious
stand-ins; the forget accuracy over the other checks is the entity-dependent one. One
stand-in in three is enough: the model completes such prompts for plain names ("John
Smith was created by Sir Arthur" → "Conan Doyle") and only half-way for unusual ones
("… Sir Arthur" → "Conanard").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import replace

from .entities import Entity
from .fact_checks import FactCheck, check_key, run_fact_checks

STAND_INS_PER_TARGET = 6
GIVEN_AWAY_SHARE = 1 / 3  # a check is given away when at least this share of the stand-ins answer it


def pick_stand_ins(targets: Sequence[Entity], unknown: Sequence[Entity], count: int = STAND_INS_PER_TARGET) -> dict[str, list[str]]:
    """Up to ``count`` fictitious names per target, of the target's type where there are enough (deterministic)."""
    names = sorted(e.name for e in unknown)
    chosen: dict[str, list[str]] = {}
    for target in targets:
        same_type = sorted(e.name for e in unknown if e.type == target.type)
        chosen[target.name] = (same_type if len(same_type) >= count else names)[:count]
    return chosen


def substitute(prompt: str, name: str, stand_in: str) -> str | None:
    """``prompt`` with ``name`` replaced (any case) by ``stand_in``; None when the name does not occur."""
    pattern = re.compile(re.escape(name), re.IGNORECASE)
    return pattern.sub(stand_in, prompt) if pattern.search(prompt) else None


def context_answerable(model, tokenizer, checks: Sequence[FactCheck], stand_ins: dict[str, list[str]],
                       cancel: threading.Event | None = None) -> list[str]:
    """Keys of the checks that enough stand-ins answer correctly with the current weights (call it with θ0)."""
    owner_of: dict[FactCheck, str] = {}  # stand-in check -> key of the target's check
    for check in checks:
        for stand_in in stand_ins.get(check.entity, []):
            prompt = substitute(check.prompt, check.entity, stand_in)
            if prompt is not None:
                owner_of[replace(check, entity=stand_in, prompt=prompt)] = check_key(check)
    asked: dict[str, int] = {}
    correct: dict[str, int] = {}
    for result in run_fact_checks(model, tokenizer, list(owner_of), cancel):  # grouped by form, not in input order
        key = owner_of[result.check]
        asked[key] = asked.get(key, 0) + 1
        correct[key] = correct.get(key, 0) + result.correct
    return sorted(key for key, hits in correct.items() if hits >= GIVEN_AWAY_SHARE * asked[key])
