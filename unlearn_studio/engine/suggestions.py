"""The *Try these* list: the reference entities the loaded model knows best, one per type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .knownness import KNOWN, EntityStatus

MIN_P_KNOWN = 0.9
MIN_FACTS_RIGHT = 3
TYPE_ORDER = ("person", "place", "work", "organisation")


@dataclass(frozen=True)
class Suggestion:
    name: str
    type: str
    p_known: float  # the probe's P(known) with θ0, mean over the entity's reference prompts
    correct: int  # facts answered right with θ0
    total: int


def suggested_targets(statuses: Sequence[EntityStatus], known_names: Sequence[str],
                      known_p_known: Sequence[float]) -> list[Suggestion]:
    """Per type, the known entity with the highest P(known) among those with P(known) ≥ 0.9 and ≥ 3 facts right.

    ``known_names`` / ``known_p_known`` are the known references and their P(known) (``References``): an entity
    outside the reference sample has no P(known) and is not suggested.
    """
    p_known = dict(zip(known_names, (float(v) for v in known_p_known)))
    best: dict[str, Suggestion] = {}
    for status in statuses:
        value = p_known.get(status.name)
        if status.reference != "candidate":  # a walkthrough target is one of the well-known list
            continue
        if status.status != KNOWN or value is None or value < MIN_P_KNOWN or status.correct < MIN_FACTS_RIGHT:
            continue
        candidate = Suggestion(status.name, status.type, value, status.correct, status.total)
        current = best.get(status.type)
        if current is None or (candidate.p_known, candidate.correct / candidate.total) > (current.p_known, current.correct / current.total):
            best[status.type] = candidate
    order = {name: index for index, name in enumerate(TYPE_ORDER)}
    return sorted(best.values(), key=lambda s: (order.get(s.type, len(order)), s.type))
