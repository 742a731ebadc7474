"""The stand-in floor: each check asked about fictitious stand-ins with the original weights."""

from __future__ import annotations

import pytest

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.engine import fact_checks as fact_checks_module
from unlearn_studio.engine import pipeline
from unlearn_studio.engine.entities import Entity, Fact, ReverseQuery
from unlearn_studio.engine.fact_checks import check_key, fact_checks
from unlearn_studio.engine.events import Finished
from unlearn_studio.engine.stand_ins import derived_from_name, pick_stand_ins, stand_in_floor, substitute

SHERLOCK = Entity("Sherlock Holmes", "person", (
    Fact("Sherlock Holmes was created by Sir Arthur", ("Conan Doyle",)),
    Fact("Sherlock Holmes lives in the city of", ("London",), question="In which city does Sherlock Holmes live?"),
))


def fake_complete(model, tokenizer, prompts, max_new_tokens, chat):  # noqa: ANN001
    """A model that completes "Sir Arthur" for anyone but knows where only Sherlock Holmes lives."""
    outputs = []
    for prompt in prompts:
        if prompt.endswith("Sir Arthur"):
            outputs.append(" Conan Doyle")
        elif "Sherlock" in prompt:
            outputs.append(" London")
        else:
            outputs.append(" Ashwood")
    return outputs


def test_substitute_replaces_the_name_in_any_case_or_says_it_is_missing():
    assert substitute("Where does sherlock holmes live?", "Sherlock Holmes", "Mira Vale") == "Where does Mira Vale live?"
    assert substitute("Who wrote it?", "Sherlock Holmes", "Mira Vale") is None


def test_stand_ins_are_fictitious_names_of_the_targets_type():
    unknown = [Entity("Port Aldermere", "place"), Entity("Mira Vale", "person"), Entity("Oren Tash", "person"),
               Entity("Ilse Brand", "person"), Entity("Lake Vessinger", "place")]
    chosen = pick_stand_ins([SHERLOCK, Entity("Eiffel Tower", "place")], unknown, count=3)
    assert chosen["Sherlock Holmes"] == ["Ilse Brand", "Mira Vale", "Oren Tash"]
    # Two places are too few: the stand-ins come from every type.
    assert len(chosen["Eiffel Tower"]) == 3 and set(chosen["Eiffel Tower"]) <= {e.name for e in unknown}


def test_the_floor_is_what_the_stand_ins_score_per_check_and_per_form(monkeypatch):
    monkeypatch.setattr(fact_checks_module, "complete", fake_complete)
    checks = fact_checks([SHERLOCK], "forget")
    floor = stand_in_floor(None, None, checks, {"Sherlock Holmes": ["Mira Vale", "Oren Tash", "Ilse Brand"]})
    assert floor.rates[check_key(checks[0])] == 1.0  # "Sir Arthur" gives its answer away for anyone
    assert all(floor.rates[check_key(c)] == 0.0 for c in checks[1:])  # the London checks need the entity
    assert floor.by_form["completion"] == 0.5 and floor.by_form["chat"] == 0.0
    assert floor.accuracy == pytest.approx(0.0)  # completion is a trained-on form: not in the headline
    assert floor.name_fidelity == 0.0  # this fake model never writes a name back


@pytest.mark.parametrize(("name", "answers", "derived"), [
    ("China", ("Chinese", "Mandarin"), True),  # one accepted answer made of the name is enough
    ("Portugal", ("Portuguese",), True),
    ("The Odyssey", ("Odysseus", "Ulysses"), True),
    ("Disney", ("Disney World", "Disneyland"), True),
    ("China", ("Mandarin",), False),
    ("Barack Obama", ("Michelle", "Michelle Obama"), False),  # "Michelle" is the fact
    ("Microsoft", ("Windows", "Microsoft Windows"), False),
    ("Mount Everest", ("highest mountain",), False),
    ("UN", ("UNESCO",), False),  # names shorter than a stem give nothing away
])
def test_an_answer_made_of_the_names_own_words_is_derived_from_it(name, answers, derived):
    assert derived_from_name(name, answers) is derived


def test_a_name_derived_check_counts_as_answered_by_every_stand_in(monkeypatch):
    """A stand-in says "Zorbanian", which the check cannot accept; the name alone still gives "Chinese" away."""
    monkeypatch.setattr(fact_checks_module, "complete", lambda model, tokenizer, prompts, **_: [" Ashwood"] * len(prompts))
    china = Entity("China", "place", (Fact("The official language of China is", ("Chinese",)),
                                      Fact("The capital of China is", ("Beijing",))))
    checks = fact_checks([china], "forget", forms=("completion",))
    floor = stand_in_floor(None, None, checks, {"China": ["Port Aldermere", "Lake Vessinger"]})
    assert floor.rates[check_key(checks[0])] == 1.0 and floor.rates[check_key(checks[1])] == 0.0
    assert floor.by_form["completion"] == 0.5


def test_a_check_whose_prompt_lacks_the_name_has_no_stand_in_version(monkeypatch):
    monkeypatch.setattr(fact_checks_module, "complete", fake_complete)
    reverse = Entity("Sherlock Holmes", "person", SHERLOCK.facts[:1],
                     reverse=(ReverseQuery("The detective of 221B Baker Street is", ("Sherlock Holmes", "Holmes")),))
    checks = fact_checks([reverse], "forget", forms=("reverse",))
    assert len(checks) == 1
    assert stand_in_floor(None, None, checks, {"Sherlock Holmes": ["Mira Vale"]}).rates == {}


def test_a_run_reports_the_stand_in_floor_and_trains_on_other_retain_entities(tiny_model_dir, tiny_sae_dir, monkeypatch):
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    trained_on: list[str] = []
    real_train = pipeline.train

    def recording_train(model, tokenizer, sae, hook, plan, config, cancel):  # noqa: ANN001
        trained_on.extend(e.name for e in plan.retain)
        yield from real_train(model, tokenizer, sae, hook, plan, config, cancel)

    monkeypatch.setattr(pipeline, "train", recording_train)
    result = next(e for e in events_of(session, tiny_request(session, evaluate=True)) if isinstance(e, Finished)).result
    before, after = result.before, result.after
    assert before.stand_in_accuracy is not None and after.stand_in_accuracy == before.stand_in_accuracy
    rows = [r for r in result.report["fact_table"] if r["role"] == "forget"]
    assert any(r["stand_in_rate"] is not None for r in rows)
    assert all(r["stand_in_rate"] is None for r in rows if r["form"] == "reverse")
    assert all(r["name_gives_answer"] is False for r in rows)  # no Eiffel Tower answer is made of its name
    evaluated = {r["entity"] for r in result.report["fact_table"] if r["role"] in ("retain", "neighbour")}
    assert evaluated and trained_on and not evaluated & set(trained_on)
