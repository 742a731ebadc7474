"""The stand-in floor: each fact check asked about entities the model has never heard of.

A model that has truly forgotten a target should answer its questions the way it answers
them for a fictitious entity (the paper's definition of forgetting). So each check is
also asked, with the original weights, with the target's name replaced by fictitious
stand-ins: their accuracy is what "answered like an unknown entity" scores (DESIGN.md §4).
A prompt that carries its answer ("… created by Sir Arthur" → "Conan Doyle") shows up as
a check with a high stand-in rate; the shipped evaluation facts are written to stay at
most one stand-in in six. An answer made from the name itself ("The official language of
China is" → "Chinese") counts as given away: the stand-in would answer with its own name's
form, which the check does not accept, yet the name alone is all the model needs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .entities import Entity
from .fact_checks import FactCheck, accuracy_by_form, check_key, headline, name_fidelity, run_fact_checks

STAND_INS_PER_TARGET = 6
STEM_LETTERS = 4  # "Chin|a" → "Chin|ese", "Portu|gal" → "Portu|guese", "Odys|sey" → "Odys|seus"
FILLER_WORDS = frozenset({"the", "of", "a", "an", "and"})


def _words(text: str) -> list[str]:
    return [word.lower() for word in re.findall(r"[^\W\d_]+", text)]


def derived_from_name(name: str, answers: Sequence[str]) -> bool:
    """Whether an accepted answer is made of the name's own words: each of its words starts like one of them.

    "Chinese" for China and "Disneyland" for Disney are; "Michelle Obama" for Barack Obama is not (knowing
    "Michelle" is the fact).
    """
    stems = {word[:STEM_LETTERS] for word in _words(name) if len(word) >= STEM_LETTERS}

    def made_of_name(answer: str) -> bool:
        words = [word for word in _words(answer) if word not in FILLER_WORDS]
        return bool(words) and all(len(word) >= STEM_LETTERS and word[:STEM_LETTERS] in stems for word in words)

    return any(made_of_name(answer) for answer in answers)


def name_gives_answer(check: FactCheck) -> bool:
    """A check whose prompt names the entity and whose answer is made of that name (reverse queries name it in
    their answer only: they are not)."""
    return check.entity.lower() in check.prompt.lower() and derived_from_name(check.entity, check.answers)


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


@dataclass(frozen=True)
class StandInFloor:
    """What "answered like an unknown entity" scores: the checks asked about fictitious stand-ins with θ0."""

    rates: dict[str, float]  # check key -> share of its stand-ins answered correctly
    by_form: dict[str, float]  # per form, the stand-in checks' accuracy
    name_fidelity: float | None  # chat answers about the stand-ins that write their name exactly

    @property
    def accuracy(self) -> float | None:
        return headline(self.by_form)


def stand_in_floor(model, tokenizer, checks: Sequence[FactCheck], stand_ins: dict[str, list[str]],
                   cancel: threading.Event | None = None) -> StandInFloor:
    """Ask each check with the target's name replaced by each of its stand-ins (call it with θ0).

    Reverse queries name the target in their answers, not their prompt: they have no stand-in version.
    """
    owner_of: dict[FactCheck, str] = {}  # stand-in check -> key of the target's check
    named = {check_key(check) for check in checks if name_gives_answer(check)}
    for check in checks:
        for stand_in in stand_ins.get(check.entity, []):
            prompt = substitute(check.prompt, check.entity, stand_in)
            if prompt is not None:
                owner_of[replace(check, entity=stand_in, prompt=prompt)] = check_key(check)
    # A stand-in answers a name-derived check with its own name's form, which the check cannot accept: count it
    # as answered, since the target's name alone gives the answer away.
    results = [replace(result, correct=True) if owner_of[result.check] in named else result
               for result in run_fact_checks(model, tokenizer, list(owner_of), cancel)]
    asked: dict[str, int] = {}
    correct: dict[str, int] = {}
    for result in results:
        key = owner_of[result.check]
        asked[key] = asked.get(key, 0) + 1
        correct[key] = correct.get(key, 0) + result.correct
    roles = {check.role for check in checks}
    by_form = {form: acc for role in roles for form, acc in accuracy_by_form(results, role).items()}
    fidelity = name_fidelity(model, tokenizer, sorted({n for names in stand_ins.values() for n in names}))
    mean_fidelity = sum(fidelity.values()) / len(fidelity) if fidelity else None
    return StandInFloor({key: correct[key] / asked[key] for key in asked}, by_form, mean_fidelity)
