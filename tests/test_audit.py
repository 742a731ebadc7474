"""The forgetting audit on a tiny model, checked against direct computations."""

from __future__ import annotations

import json

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.engine.audit import logit_lens, relearn_check, run_audit
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
    accuracy = relearn_check(session.model, session.tokenizer, parameters, targets, steps=2)
    assert accuracy is not None and 0.0 <= accuracy <= 1.0
    assert all(torch.equal(p, b) for p, b in zip(parameters, before))


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
