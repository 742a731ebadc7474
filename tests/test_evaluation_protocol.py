"""The evaluation protocol (DESIGN.md §4, §8) on the tiny model: what report.json holds and what each measure means."""

from __future__ import annotations

import json

import pytest

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.engine import fact_checks as fact_checks_module
from unlearn_studio.engine.entities import Entity, Fact, ReverseQuery, load_templates
from unlearn_studio.engine.events import Finished
from unlearn_studio.engine.fact_checks import HEADLINE_FORMS, accuracy_by_form, fact_checks, headline, run_fact_checks

EINSTEIN = Entity("Albert Einstein", "person", (
    Fact("Albert Einstein developed the theory of", ("relativity",), question="Which theory did Albert Einstein develop?",
         paraphrases=("The theory made famous by Albert Einstein is",),
         fill_in_blank="Physics students learn the ideas of Albert Einstein, above all his theory of"),),
    reverse=(ReverseQuery("The theory of relativity was developed by", ("Albert Einstein", "Einstein")),),
    passage="Albert Einstein spent his later years in Princeton and played the violin.")


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir, tmp_path_factory):
    import os

    os.environ["UNLEARN_STUDIO_DATA"] = str(tmp_path_factory.mktemp("protocol-data"))
    return tiny_session(tiny_model_dir, tiny_sae_dir)


@pytest.fixture(scope="module")
def report(session, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    events = events_of(session, tiny_request(session, evaluate=True, run_dir=run))
    next(e for e in events if isinstance(e, Finished))
    session.reset()
    return json.loads((run / "report.json").read_text())


def test_every_form_has_a_check_and_completion_is_not_in_the_headline():
    checks = fact_checks([EINSTEIN], "forget")
    assert {c.form for c in checks} == set(fact_checks_module.FORMS)
    assert "completion" not in HEADLINE_FORMS and "reverse" in HEADLINE_FORMS
    in_context = next(c for c in checks if c.form == "in_context")
    assert in_context.prompt.startswith(EINSTEIN.passage) and in_context.prompt.endswith(EINSTEIN.facts[0].prompt)


def test_a_reverse_query_that_names_the_target_counts_as_correct(monkeypatch):
    def names_einstein(model, tokenizer, prompts, max_new_tokens, chat):  # noqa: ANN001
        return [" Albert Einstein in 1905." if p.startswith("The theory of relativity") else " nothing" for p in prompts]

    monkeypatch.setattr(fact_checks_module, "complete", names_einstein)
    results = run_fact_checks(None, None, fact_checks([EINSTEIN], "forget"))
    by_form = accuracy_by_form(results, "forget")
    assert by_form["reverse"] == 1.0 and by_form["completion"] == 0.0
    assert headline(by_form) == pytest.approx(1 / len(HEADLINE_FORMS))  # the mean over forms, not over checks


def test_the_three_template_sets_never_overlap():
    templates = load_templates()
    sets = [set(templates.train), set(templates.stop), set(templates.eval)]
    assert all(sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_name_fidelity_never_asks_a_training_or_stop_prompt():
    templates = load_templates()
    assert not set(fact_checks_module.NAME_PROMPTS) & (set(templates.train) | set(templates.stop))


def test_report_records_the_protocol(report):
    for when in ("before", "after"):
        measured = report[when]
        for key in ("forget_accuracy", "forget_accuracy_by_form", "stand_in_accuracy", "retain_accuracy",
                    "neighbour_retain_accuracy", "linked_accuracy", "name_fidelity", "target_unknown_percentile",
                    "target_p_known"):
            assert key in measured, (when, key)
        assert "completion" in measured["forget_accuracy_by_form"]
        assert set(measured["forget_accuracy_by_form"]) >= {"paraphrase", "chat", "reverse", "role_play"}
    templates = load_templates()
    assert report["templates"] == {"train": list(templates.train), "stop": list(templates.stop), "eval": list(templates.eval)}
    provenance = report["provenance"]
    assert set(provenance) == {"version", "commit", "model_fingerprint", "sae_fingerprint"}
    assert provenance["commit"] != "" and len(provenance["sae_fingerprint"]) >= 8


def test_the_retain_measure_uses_the_fixed_retain_split_only(report, session):
    retain_split = {e.name for e in session.entity_data()[0] if e.split == "retain"}
    measured = set(report["retain_evaluation"])
    assert measured and measured <= retain_split
    assert not measured & set(report["targets"])


def test_a_shorter_retain_set_still_covers_every_type(session):
    whole = session.retain_evaluation_set(verify=False)
    types = {e.type for e in whole}
    shorter = session.retain_evaluation_set(verify=False, limit=len(types))
    assert {e.type for e in shorter} == types and len(types) >= 4
    assert session.retain_evaluation_set(verify=False, limit=12) == session.retain_evaluation_set(verify=False, limit=12)


def test_p_known_and_the_percentile_come_from_the_eval_templates(session, monkeypatch):
    from unlearn_studio.engine import evaluate as evaluate_module

    seen: list[list[str]] = []
    real = evaluate_module.prompt_batches
    monkeypatch.setattr(evaluate_module, "prompt_batches",
                        lambda tokenizer, targets, templates: seen.append(list(templates)) or real(tokenizer, targets, templates))
    events_of(session, tiny_request(session, evaluate=True))
    session.reset()
    assert seen and all(t == list(load_templates().eval) for t in seen)


def test_the_unknown_percentile_is_per_prompt_not_of_the_mean_code(session):
    """A mean over prompts sits nearer μ_U than the prompts do: the percentile must be the median of per-prompt ranks."""
    from unlearn_studio.engine.target_state import measure_targets, prompt_batches

    refs = next(iter(session._references.values()))
    batch = prompt_batches(session.tokenizer, [Entity("Port Aldermere")], load_templates().eval)
    state = measure_targets(session.model, session.sae.sae, session.hook, refs, batch)["Port Aldermere"]
    from unlearn_studio.engine.latents import batch_activations

    codes = session.sae.sae.encode(batch_activations(session.model, session.hook, batch["Port Aldermere"])).float()
    expected = float(refs.unknown_percentile(codes).quantile(0.5))
    assert state.unknown_percentile == pytest.approx(expected)


def test_name_fidelity_is_the_share_of_answers_writing_the_name_exactly(monkeypatch):
    answers = iter([" Albert Einstein was a physicist.", " Albert Einstien was", " albert  einstein, the"])
    monkeypatch.setattr(fact_checks_module, "complete", lambda *a, **k: [next(answers) for _ in range(3)])
    assert fact_checks_module.name_fidelity(None, None, ["Albert Einstein"]) == {"Albert Einstein": pytest.approx(2 / 3)}


def test_rmu_pushes_the_target_toward_a_fixed_random_direction(session):
    result = [e for e in events_of(session, tiny_request(session, method="rmu", steps=4, lr=1e-3))]
    session.reset()
    steps = [e for e in result if type(e).__name__ == "StepProgress"]
    assert len(steps) == 4 and steps[-1].losses["forget"] < steps[0].losses["forget"]


DOYLE = Entity("Arthur Conan Doyle", "person", (
    Fact("Arthur Conan Doyle created the detective Sherlock", ("Holmes",),
         question="Which detective did Arthur Conan Doyle create?"),
    Fact("Arthur Conan Doyle was born in the country of", ("Scotland",)),
    Fact("The famous detective of Arthur Conan Doyle lived in the city of", ("London",)),
))
HOLMES = Entity("Sherlock Holmes", "person",
                reverse=(ReverseQuery("The detective of Baker Street is", ("Sherlock Holmes", "Holmes")),))


def test_a_retain_check_that_asks_about_the_target_is_linked_not_retain():
    """Doyle's detective is a question about Sherlock Holmes: forgetting him must fail it, so it is no damage to Doyle."""
    checks = fact_checks_module.about_targets(fact_checks([DOYLE], "neighbour"), [HOLMES])
    roles = {(c.prompt, c.form): c.role for c in checks}
    assert roles[("Arthur Conan Doyle created the detective Sherlock", "completion")] == "linked"
    assert roles[("Which detective did Arthur Conan Doyle create?", "chat")] == "linked"
    assert roles[("Arthur Conan Doyle was born in the country of", "completion")] == "neighbour"
    assert roles[("The famous detective of Arthur Conan Doyle lived in the city of", "completion")] == "neighbour"
    # By alias too: a reverse answer ("Einstein") names the target; an unrelated target links nothing.
    einstein_checks = fact_checks([Entity("Mileva Maric", "person", (Fact("Mileva Maric married", ("Einstein",)),))], "retain")
    assert [c.role for c in fact_checks_module.about_targets(einstein_checks, [EINSTEIN])] == ["linked"]
    assert {c.role for c in fact_checks_module.about_targets(fact_checks([DOYLE], "retain"), [EINSTEIN])} == {"retain"}


def test_linked_checks_are_reported_apart_from_retain(session, monkeypatch):
    """In a real evaluation the linked checks leave retain and neighbour retain and get their own share."""
    from unlearn_studio.engine.evaluate import evaluate

    def holmes_for_every_detective(model, tokenizer, prompts, max_new_tokens, chat):  # noqa: ANN001
        return [" Holmes" if "detective" in p else " Scotland" for p in prompts]

    monkeypatch.setattr(fact_checks_module, "complete", holmes_for_every_detective)
    known, unknown = session.reference_entities(["Sherlock Holmes"], verify=False, limit=12)
    refs = session.references(known, unknown)
    templates = session.entity_data()[2]
    result = evaluate(session.model, session.tokenizer, session.sae.sae, session.hook, refs, [HOLMES], [DOYLE],
                      templates, neighbours=[DOYLE])
    roles = [r.check.role for r in result.facts]
    assert roles.count("linked") == 2 * 4  # two Doyle checks in retain and in neighbours; chat brings 3 forms
    assert result.linked_accuracy == 1.0
    # Left: "born in" (right) and "lived in the city of" (" Holmes": wrong), each in retain and in neighbours.
    assert result.retain_accuracy_by_form == {"completion": 0.5} and result.neighbour_retain_accuracy == 0.5
