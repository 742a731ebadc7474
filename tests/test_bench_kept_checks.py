"""bench/kept_checks.py: recorded rows re-scored on the checks today's data still asks and no stand-in answers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from kept_checks import asked_today, check_key, rescore  # noqa: E402


def _fact(role: str, form: str, prompt: str, before: bool, after: bool, entity: str = "Star Wars") -> dict:
    return {"entity": entity, "role": role, "form": form, "prompt": prompt, "answers": ["x"],
            "before_correct": before, "after_correct": after}


def test_only_kept_checks_count_and_every_measure_is_recomputed():
    facts = [_fact("forget", "paraphrase", "kept paraphrase", True, False),
             _fact("forget", "chat", "kept chat", True, True),
             _fact("forget", "chat", "rewritten chat", True, True),          # no longer asked: ignored
             _fact("forget", "completion", "kept completion", True, False),  # shown, never in the headline
             _fact("neighbour", "chat", "kept neighbour", True, False, entity="Lucasfilm"),
             _fact("retain", "chat", "retain is not re-scored here", True, False, entity="Apple")]
    kept = {check_key(f["entity"], f["form"], f["prompt"], f["answers"]) for f in facts if "kept" in f["prompt"]}
    row = {"method": "npo", "lr": 1e-5, "setting": "s", "target": "Star Wars", "facts": facts}
    scored = rescore(row, kept)
    assert (scored["checks_kept"], scored["checks_recorded"]) == (4, 5)
    assert scored["before"] == {"forget_accuracy": 1.0, "completion": 1.0, "neighbour_retain_accuracy": 1.0}
    assert scored["after"] == {"forget_accuracy": 0.5, "completion": 0.0, "neighbour_retain_accuracy": 0.0}


def test_a_check_two_stand_ins_answer_is_not_kept():
    everything = asked_today(None)
    some = next(iter(everything))
    floor = {"checks": [{"entity": some[0], "form": some[1], "prompt": some[2], "answers": list(some[3]),
                         "stand_ins_correct": 2}]}
    assert some not in asked_today(floor) and len(asked_today(floor)) == len(everything) - 1


def test_a_check_the_name_answers_is_not_kept(monkeypatch):
    """A "language of China" check that accepts "Chinese": the name gives it, whatever a stand-in says."""
    import kept_checks

    from unlearn_studio.engine.entities import Entity, Fact, ReverseQuery

    china = Entity("China", "place", (Fact("The official language of China is", ("Chinese", "Mandarin"),
                                           question="What language is spoken in China?"),
                                      Fact("The capital of China is", ("Beijing",), question="What is the capital of China?")),
                   reverse=(ReverseQuery("The country with the Forbidden City is", ("China",)),))
    monkeypatch.setattr(kept_checks, "load_known_candidates", lambda: [china])
    kept = asked_today(None)
    assert kept and all("Chinese" not in key[3] for key in kept)
    assert {key[1] for key in kept if "Beijing" in key[3]} >= {"completion", "chat"}
    assert ("China", "reverse", "The country with the Forbidden City is", ("China",)) in kept  # names it in its answer only
