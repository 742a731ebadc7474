"""Prompts that give the answer away: judged by asking the same prompt about fictitious stand-ins."""

from __future__ import annotations

import pytest

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.engine import evaluate as evaluate_module
from unlearn_studio.engine import fact_checks as fact_checks_module
from unlearn_studio.engine import pipeline
from unlearn_studio.engine.entities import Entity, Fact
from unlearn_studio.engine.fact_checks import FactResult, fact_checks, run_fact_checks
from unlearn_studio.engine.events import Finished
from unlearn_studio.engine.stand_ins import check_key, context_answerable, pick_stand_ins, substitute

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


def test_only_checks_the_stand_ins_answer_are_marked(monkeypatch):
    monkeypatch.setattr(fact_checks_module, "complete", fake_complete)
    checks = fact_checks([SHERLOCK], "forget")
    marked = context_answerable(None, None, checks, {"Sherlock Holmes": ["Mira Vale", "Oren Tash", "Ilse Brand"]})
    assert marked == [check_key(checks[0])]  # "Sir Arthur", not the two London checks


def test_a_check_one_stand_in_in_three_answers_is_given_away(monkeypatch):
    def answers_for_john_only(model, tokenizer, prompts, max_new_tokens, chat):  # noqa: ANN001
        return [" Conan Doyle" if p.startswith("John Smith") else " nobody" for p in prompts]

    monkeypatch.setattr(fact_checks_module, "complete", answers_for_john_only)
    checks = fact_checks([SHERLOCK], "forget")[:1]
    assert context_answerable(None, None, checks, {"Sherlock Holmes": ["John Smith", "Mira Vale", "Oren Tash"]}) == [check_key(checks[0])]
    assert context_answerable(None, None, checks, {"Sherlock Holmes": ["John Smith", "Mira Vale", "Oren Tash", "Ilse Brand"]}) == []


def test_entity_dependent_accuracy_leaves_out_the_given_away_checks(monkeypatch):
    monkeypatch.setattr(fact_checks_module, "complete", fake_complete)
    checks = fact_checks([SHERLOCK], "forget")
    results = run_fact_checks(None, None, checks)
    assert all(r.correct for r in results)
    leave_out = frozenset(context_answerable(None, None, checks, {"Sherlock Holmes": ["Mira Vale"]}))
    # A model that forgot where Sherlock lives but still completes "Sir Arthur": 1 of 3 right, 0 of 2 entity-dependent.
    forgotten = [FactResult(r.check, r.completion, r.check.prompt.endswith("Sir Arthur")) for r in results]
    assert evaluate_module._accuracy(forgotten, "forget") == pytest.approx(1 / 3)
    assert evaluate_module._accuracy(forgotten, "forget", leave_out) == 0.0


def test_a_run_reports_the_given_away_checks_and_trains_on_other_retain_entities(tiny_model_dir, tiny_sae_dir, monkeypatch):
    session = tiny_session(tiny_model_dir, tiny_sae_dir)
    trained_on: list[str] = []
    real_train = pipeline.train

    def recording_train(model, tokenizer, sae, hook, plan, config, cancel):  # noqa: ANN001
        trained_on.extend(e.name for e in plan.retain)
        yield from real_train(model, tokenizer, sae, hook, plan, config, cancel)

    monkeypatch.setattr(pipeline, "train", recording_train)
    result = next(e for e in events_of(session, tiny_request(session, evaluate=True)) if isinstance(e, Finished)).result
    before, after = result.before, result.after
    assert before.entity_forget_accuracy is not None and after.entity_forget_accuracy is not None
    assert after.context_answerable == before.context_answerable
    rows = [r for r in result.report["fact_table"] if r["role"] == "forget"]
    assert all("context_answerable" in r for r in rows)
    dependent = [r["after_correct"] for r in rows if not r["context_answerable"]]
    assert dependent  # a random model answers nothing, so no prompt gives anything away
    assert after.entity_forget_accuracy == pytest.approx(sum(dependent) / len(dependent))
    evaluated = {r["entity"] for r in result.report["fact_table"] if r["role"] == "retain"}
    assert evaluated and trained_on and not evaluated & set(trained_on)
