"""The forgetting audit on a tiny model, checked against direct computations."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.engine.audit import logit_lens, relearn_check, run_audit
from unlearn_studio.engine.fact_checks import FORMS, fact_checks, name_fidelity
from unlearn_studio.engine.prompts import answer_lens_input
from unlearn_studio.engine.trainer import TrainConfig, select_parameters


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir):
    return tiny_session(tiny_model_dir, tiny_sae_dir)


def test_logit_lens_matches_the_model_at_the_last_layer_and_the_norm_below(session):
    model, tokenizer = session.model, session.tokenizer
    prompts, answers = ["The Eiffel Tower is located in the city of", "Harry Potter was written by"], ["Paris", "Rowling"]
    probability, rank = logit_lens(model, tokenizer, prompts, answers)
    assert len(probability) == len(rank) == model.config.num_hidden_layers + 1
    expected_last, expected_mid = [], []
    # " Rowling" starts with a bare "Ġ" here: the lens asks for "Row" after the prompt and that space.
    assert tokenizer.convert_ids_to_tokens(tokenizer(" Rowling", add_special_tokens=False)["input_ids"])[0] == "Ġ"
    contexts, first_pieces = [prompts[0], prompts[1] + " "], ["ĠP", "Row"]
    with torch.no_grad():
        for prompt, piece in zip(contexts, first_pieces):
            ids = tokenizer(prompt, return_tensors="pt")
            out = model(**ids, output_hidden_states=True)
            token = tokenizer.convert_tokens_to_ids(piece)
            expected_last.append(float(torch.softmax(out.logits[0, -1], -1)[token]))
            mid = model.lm_head(model.model.norm(out.hidden_states[1][0, -1]))
            expected_mid.append(float(torch.softmax(mid, -1)[token]))
    assert probability[-1] == pytest.approx(sum(expected_last) / 2, rel=1e-4)
    assert probability[1] == pytest.approx(sum(expected_mid) / 2, rel=1e-4)


def test_relearn_check_restores_the_weights(session):
    parameters = select_parameters(session.model, session.hook, TrainConfig())
    before = [p.clone() for p in parameters]
    targets = session.resolve_targets(["Eiffel Tower"])
    results = relearn_check(session.model, session.tokenizer, parameters, targets, steps=2)
    # every forget check in every form, each asked once
    assert sorted(r.check.prompt for r in results) == sorted(c.prompt for c in fact_checks(targets, "forget"))
    assert len({r.check.form for r in results}) > 3
    assert all(torch.equal(p, b) for p, b in zip(parameters, before))


@torch.no_grad()
def last_layer_ranks(session, entity) -> list[int]:
    """By hand, one prompt at a time from the model's own logits: the rank (0 = top) of each answer's first token."""
    ranks = []
    for fact in entity.facts:
        context, token = answer_lens_input(session.tokenizer, fact.prompt, fact.answers[0])
        probs = torch.softmax(session.model(input_ids=torch.tensor([context])).logits[0, -1].float(), -1)
        ranks.append(int((probs > probs[token]).sum()))
    return ranks


def test_audit_compares_original_and_current(session):
    session.reset()
    events_of(session, tiny_request(session, steps=2))
    assert session.is_modified()
    targets = session.resolve_targets(["Eiffel Tower"])
    result = run_audit(session, targets, reference_limit=8, relearn_steps=1, verify_known=False)
    layers = session.model.config.num_hidden_layers + 1
    assert result.layers == list(range(layers))
    for audit in (result.original, result.current):
        assert len(audit.probe_p_known) == len(audit.lens_probability) == layers
        assert set(audit.accuracy_by_form) == {"completion", "paraphrase", "chat"}
    # the current weights differ only at and below the hook (layer 1 = hidden state 2): layer 0's input is shared
    assert result.original.probe_p_known[0] == pytest.approx(result.current.probe_p_known[0])
    assert result.original.probe_p_known[2] != result.current.probe_p_known[2]
    session.reset()


def test_audit_reports_each_target(session):
    session.reset()
    events_of(session, tiny_request(session, steps=2))
    targets = session.resolve_targets(["Eiffel Tower", "Albert Einstein", "Port Zenthia Lighthouse"])
    assert [len(t.facts) > 1 for t in targets] == [True, True, False]
    result = run_audit(session, targets, reference_limit=8, relearn_steps=1, verify_known=False)
    assert list(result.per_target) == [t.name for t in targets]
    with session.original_weights():
        expected = {"original": {t.name: last_layer_ranks(session, t) for t in targets[:2]}}
    expected["current"] = {t.name: last_layer_ranks(session, t) for t in targets[:2]}
    fidelity_now = name_fidelity(session.model, session.tokenizer, [t.name for t in targets])
    completion_counts = []
    for target in targets[:2]:
        audit = result.per_target[target.name]
        for weights in ("original", "current"):
            ranks = expected[weights][target.name]
            assert audit.lens_rank_last_layer[weights]["median"] == pytest.approx(statistics.median(ranks))
            assert audit.lens_rank_last_layer[weights]["mean"] == pytest.approx(sum(ranks) / len(ranks))
            assert 0.0 <= audit.name_fidelity[weights] <= 1.0
        assert audit.name_fidelity["current"] == fidelity_now[target.name]
        by_form = audit.relearned_forget_accuracy_by_form
        assert set(by_form) == {c.form for c in fact_checks([target], "forget")}
        assert set(by_form) <= set(FORMS) and all(0.0 <= v <= 1.0 for v in by_form.values())
        untrained = [v for form, v in by_form.items() if form != "completion"]
        assert audit.relearned_forget_headline == pytest.approx(sum(untrained) / len(untrained))
        completion_counts.append((by_form["completion"], len(target.facts)))
    # the pooled number the audit always reported comes from the same answers: completion over every target's facts
    pooled = sum(a * n for a, n in completion_counts) / sum(n for _, n in completion_counts)
    assert result.relearned_forget_accuracy == pytest.approx(pooled)
    bare = result.per_target["Port Zenthia Lighthouse"]
    assert bare.lens_rank_last_layer == {"original": None, "current": None}
    assert bare.relearned_forget_accuracy_by_form == {} and bare.relearned_forget_headline is None
    assert 0.0 <= bare.name_fidelity["original"] <= 1.0
    session.reset()


def test_cli_audit_loads_the_unlearned_folder(session, tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    from unlearn_studio.cli import main

    run = tmp_path / "run"
    assert main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--steps", "2", "--lr", "1e-3", "--no-verify", "--no-early-stop", "--save-model", "--out", str(run)]) == 0
    assert "run folder" in capsys.readouterr().out
    assert main(["--quiet", "audit", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--unlearned", str(run / "model"), "--no-verify", "--relearn-steps", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["targets"] == ["Eiffel Tower"] and data["original"]["probe_p_known"] != data["current"]["probe_p_known"]
    target = data["per_target"]["Eiffel Tower"]
    for weights in ("original", "current"):
        assert set(target["lens_rank_last_layer"][weights]) == {"median", "mean"}
        assert 0.0 <= target["name_fidelity"][weights] <= 1.0
    assert "completion" in target["relearned_forget_accuracy_by_form"]
    assert target["relearned_forget_accuracy_by_form"]["completion"] == data["relearned_forget_accuracy"]

    from unlearn_studio.cli_commands import print_audit

    print_audit(data)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Eiffel Tower"))
    rank = target["lens_rank_last_layer"]["current"]
    assert f"{rank['median']:.0f}/{rank['mean']:.1f}" in row
