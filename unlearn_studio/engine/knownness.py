"""Which entities this model knows: a candidate is known when it answers ≥ 2 of its facts (DESIGN.md §3).

Unknown references must be answered wrongly; one that the model "answers" is
excluded. Results are cached per model fingerprint.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .entities import Entity, answer_matches
from .generation import complete
from .jobs import ProgressCallback, check_cancel
from .paths import cache_dir

MIN_CORRECT = 2
KNOWN, UNKNOWN, EXCLUDED = "known", "unknown", "excluded"


@dataclass(frozen=True)
class EntityStatus:
    name: str
    type: str
    reference: str  # "candidate" (of the known list), "lesser_known" (real, less famous) or "fictitious"
    correct: int
    total: int
    status: str  # known | unknown | excluded


def classify_entities(model, tokenizer, candidates: Sequence[Entity], fictitious: Sequence[Entity],
                      lesser_known: Sequence[Entity] = (), *, progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None, batch_size: int = 32) -> list[EntityStatus]:
    """Ask every fact prompt greedily and mark each entity known, unknown or excluded.

    A well-known candidate is known (≥ 2 facts right) or excluded; a fictitious name is unknown (none right) or
    excluded; a real lesser-known entity can be either: known, unknown (none right), or excluded in between.
    """
    report = progress or (lambda message, fraction: None)
    everyone = ([(entity, "candidate") for entity in candidates] + [(entity, "lesser_known") for entity in lesser_known]
                + [(entity, "fictitious") for entity in fictitious])
    prompts = [(row, fact) for row, (entity, _) in enumerate(everyone) for fact in entity.facts]
    correct = [0] * len(everyone)
    for start in range(0, len(prompts), batch_size):
        check_cancel(cancel)
        chunk = prompts[start:start + batch_size]
        answers = complete(model, tokenizer, [fact.prompt for _, fact in chunk], max_new_tokens=8, batch_size=batch_size)
        for (row, fact), answer in zip(chunk, answers):
            correct[row] += answer_matches(answer, fact.answers)
        report(f"asking fact {min(start + batch_size, len(prompts))} of {len(prompts)}", min(1.0, (start + batch_size) / len(prompts)))
    statuses = []
    for row, (entity, reference) in enumerate(everyone):
        knows = correct[row] >= min(MIN_CORRECT, len(entity.facts))
        if reference == "candidate":
            status = KNOWN if knows else EXCLUDED
        elif reference == "lesser_known" and knows:
            status = KNOWN
        else:
            status = UNKNOWN if correct[row] == 0 else EXCLUDED
        statuses.append(EntityStatus(entity.name, entity.type, reference, correct[row], len(entity.facts), status))
    return statuses


def _cache_file(fingerprint: str, data_key: str):  # noqa: ANN202 - a Path
    return cache_dir("knownness") / f"{fingerprint}-{data_key}.json"


def load_cached(fingerprint: str, data_key: str) -> list[EntityStatus] | None:
    path = _cache_file(fingerprint, data_key)
    try:
        return [EntityStatus(**row) for row in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return None


def save_cached(fingerprint: str, data_key: str, statuses: Sequence[EntityStatus]) -> None:
    path = _cache_file(fingerprint, data_key)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps([asdict(s) for s in statuses], indent=1))
    partial.replace(path)
