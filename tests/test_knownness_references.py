"""Known-ness on real entities: lesser-known ones fall on either side per model; U is mostly real (issue 12, item 11)."""

from __future__ import annotations

import pytest

from tests.engine_helpers import tiny_session
from unlearn_studio.engine import knownness
from unlearn_studio.engine.entities import HOLDOUT_SPLIT, Entity, Fact
from unlearn_studio.engine.knownness import EXCLUDED, KNOWN, UNKNOWN, EntityStatus, classify_entities
from unlearn_studio.engine.pipeline import MIN_REAL_UNKNOWN


def _entity(name: str) -> Entity:
    return Entity(name, "person", tuple(Fact(f"{name} fact {i} is", (f"answer{i}",)) for i in range(3)))


def test_a_lesser_known_entity_is_known_unknown_or_excluded_by_its_answers(monkeypatch):
    right = {"Real Two": 2, "Real One": 1, "Real None": 0, "Famous": 3, "Made Up": 1}

    def fake_complete(model, tokenizer, prompts, **kwargs):
        # the first ``right[name]`` facts of each entity are answered
        return [f" answer{p.split(' fact ')[1][0]}" if int(p.split(" fact ")[1][0]) < right[p.split(" fact ")[0]] else " no"
                for p in prompts]

    monkeypatch.setattr(knownness, "complete", fake_complete)
    statuses = classify_entities(None, None, [_entity("Famous")], [_entity("Made Up")],
                                 [_entity("Real Two"), _entity("Real One"), _entity("Real None")])
    got = {s.name: (s.reference, s.status, s.correct) for s in statuses}
    assert got == {"Famous": ("candidate", KNOWN, 3), "Real Two": ("lesser_known", KNOWN, 2),
                   "Real One": ("lesser_known", EXCLUDED, 1), "Real None": ("lesser_known", UNKNOWN, 0),
                   "Made Up": ("fictitious", EXCLUDED, 1)}


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir):
    return tiny_session(tiny_model_dir, tiny_sae_dir)


def _statuses(session, known_real: set[str], unknown_real: int) -> list[EntityStatus]:
    """Every well-known candidate known, every fictitious unknown; of the real pool, ``known_real`` known and the
    first ``unknown_real`` others unknown."""
    candidates, fictitious, _ = session.entity_data()
    statuses = [EntityStatus(e.name, e.type, "candidate", 2, 2, KNOWN) for e in candidates]
    statuses += [EntityStatus(e.name, e.type, "fictitious", 0, 2, UNKNOWN) for e in fictitious]
    left = unknown_real
    for e in session.lesser_known():
        status = KNOWN if e.name in known_real else UNKNOWN if left > 0 else EXCLUDED
        left -= status == UNKNOWN and e.name not in known_real
        statuses.append(EntityStatus(e.name, e.type, "lesser_known", 0, 2, status))
    return statuses


def test_unknown_references_are_real_entities_the_model_does_not_answer(session, monkeypatch):
    pool = [e for e in session.lesser_known() if e.split is None]
    held_out = {e.name for e in session.lesser_known() if e.split == HOLDOUT_SPLIT}
    assert len(pool) >= 300 and len(held_out) >= 150
    every_real = {e.name for e in session.lesser_known()}
    monkeypatch.setattr(session, "classify", lambda *a, **k: _statuses(session, {pool[0].name}, unknown_real=len(every_real)))
    known, unknown = session.reference_entities([], limit=10_000)
    fictitious = {e.name for e in session.entity_data()[1]}
    assert unknown and {e.name for e in unknown} <= every_real - held_out
    assert not {e.name for e in unknown} & fictitious
    assert pool[0].name in {e.name for e in known}  # a lesser-known entity the model knows is a known reference
    assert not {e.name for e in known + unknown} & held_out  # the hold-out never enters the references


def test_fictitious_names_make_up_a_short_real_unknown_side(session, monkeypatch):
    monkeypatch.setattr(session, "classify", lambda *a, **k: _statuses(session, set(), unknown_real=MIN_REAL_UNKNOWN - 1))
    _, unknown = session.reference_entities([], limit=10_000)
    real = [e for e in unknown if e.name in {x.name for x in session.lesser_known()}]
    assert len(real) < MIN_REAL_UNKNOWN and len(unknown) > len(real)
