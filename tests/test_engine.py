"""The unlearning engine on a tiny random model: objectives, trainer guarantees, run folders."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from tests.engine_helpers import REFERENCE_LIMIT, events_of, tiny_request, tiny_session
from unlearn_studio.engine import trainer as trainer_module
from unlearn_studio.engine.entities import fill_template
from unlearn_studio.engine.events import Cancelled, Failed, Finished, StepProgress
from unlearn_studio.engine.objectives import OBJECTIVES, SaeAlign
from unlearn_studio.engine.runs import read_metrics


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir, tmp_path_factory):
    import os

    os.environ["UNLEARN_STUDIO_DATA"] = str(tmp_path_factory.mktemp("engine-data"))
    return tiny_session(tiny_model_dir, tiny_sae_dir)


@pytest.fixture(autouse=True)
def fresh_weights(session):
    session.reset()
    yield
    session.reset()


def _steps(events):
    return [e for e in events if isinstance(e, StepProgress)]


def _finished(events):
    failures = [e for e in events if isinstance(e, Failed)]
    assert not failures, failures[0].traceback_text
    return next(e for e in events if isinstance(e, Finished)).result


@pytest.mark.parametrize("method", sorted(OBJECTIVES))
def test_each_objective_lowers_its_own_loss(session, method):
    steps = _steps(events_of(session, tiny_request(session, method=method, steps=6, lr=1e-4)))
    assert len(steps) == 6
    assert steps[-1].losses["total"] < steps[0].losses["total"]
    assert session.is_modified()


def test_sae_align_moves_the_target_code_toward_the_unknown_mean(session):
    steps = _steps(events_of(session, tiny_request(session, steps=8, lr=1e-4)))
    assert steps[-1].losses["forget_code"] < steps[0].losses["forget_code"]
    assert steps[0].targets["Eiffel Tower"].point != steps[-1].targets["Eiffel Tower"].point


def test_every_forget_term_is_reported(session):
    losses = _steps(events_of(session, tiny_request(session, space="code", lambda_name=0.0, lambda_preserve=0.0)))[0].losses
    assert set(losses) == {"forget_code", "forget_away", "forget", "retain", "total"}
    both = _steps(events_of(session, tiny_request(session)))[0].losses
    assert set(both) == {"forget_code", "forget_away", "forget_residual", "forget", "retain", "name", "preserve", "total"}
    assert both["forget"] == pytest.approx(both["forget_code"] + 0.5 * both["forget_away"] + both["forget_residual"], rel=1e-5)


def test_the_name_term_is_reported_and_weighted_when_asked_for(session):
    losses = _steps(events_of(session, tiny_request(session, lambda_name=2.0, pull="bulk")))[0].losses
    assert losses["name"] > 0
    assert losses["total"] == pytest.approx(losses["forget"] + losses["retain"] + 2.0 * losses["name"], rel=1e-5)


def test_the_name_batch_asks_training_templates_and_scores_only_the_name(session):
    templates = session.entity_data()[2].train[: trainer_module.NAME_TEMPLATES]
    batch = trainer_module.name_copy_batch(session.tokenizer, ["Eiffel Tower"], templates)
    assert batch.input_ids.shape[0] == len(templates)
    for row in range(len(templates)):
        scored = batch.input_ids[row][batch.labels[row] != -100]
        assert session.tokenizer.decode(scored).strip() == "Eiffel Tower"
        assert fill_template(templates[row], "Eiffel Tower")[0] in session.tokenizer.decode(batch.input_ids[row])


def test_deterministic_under_a_seed(session):
    first = [s.losses for s in _steps(events_of(session, tiny_request(session, seed=3)))]
    after_first = {n: p.clone() for n, p in session.resettable_parameters().items()}
    session.reset()
    second = [s.losses for s in _steps(events_of(session, tiny_request(session, seed=3)))]
    assert first == second
    for name, parameter in session.resettable_parameters().items():
        torch.testing.assert_close(parameter, after_first[name], rtol=0, atol=0)


def test_reset_restores_original_weights(session):
    original = {n: p.clone() for n, p in session.resettable_parameters().items()}
    events_of(session, tiny_request(session))
    assert session.is_modified()
    session.reset()
    assert not session.is_modified()
    for name, parameter in session.resettable_parameters().items():
        assert torch.equal(parameter, original[name])


def test_only_layers_up_to_the_hook_change(session):
    above = {n: p.clone() for n, p in session.model.named_parameters() if not n.startswith(("model.layers.0.", "model.layers.1."))}
    events_of(session, tiny_request(session, trainable="all"))
    for name, parameter in session.model.named_parameters():
        if name in above:
            assert torch.equal(parameter, above[name]), name


def test_cancel_stops_between_steps_and_keeps_metrics(session, tmp_path):
    cancel = threading.Event()
    request = tiny_request(session, steps=10, run_dir=tmp_path / "run")
    seen = []
    for event in session.unlearn(request, cancel):
        seen.append(event)
        if isinstance(event, StepProgress) and event.step == 2:
            cancel.set()
    assert isinstance(seen[-1], Cancelled) and seen[-1].step == 2
    assert [row["step"] for row in read_metrics(tmp_path / "run")] == [1, 2]
    assert json.loads((tmp_path / "run" / "report.json").read_text())["stopped"] == "cancelled"


def test_early_stop_when_every_heldout_prompt_reads_unknown(session, monkeypatch):
    real = trainer_module.measure_targets

    def all_unknown(*args, **kwargs):
        states = real(*args, **kwargs)
        return {n: s.__class__(**{**s.__dict__, "unknown_fraction": 1.0}) for n, s in states.items()}

    monkeypatch.setattr(trainer_module, "measure_targets", all_unknown)
    result = _finished(events_of(session, tiny_request(session, steps=10, early_stop=True, min_steps=2)))
    assert (result.result.steps_done, result.result.stopped) == (2, "early_stop")


def test_nan_loss_stops_and_restores_the_last_weights_with_a_finite_loss(session, monkeypatch):
    events_of(session, tiny_request(session, steps=1, seed=1))
    one_step = {n: p.clone() for n, p in session.resettable_parameters().items()}
    session.reset()
    real = SaeAlign.losses
    calls = {"n": 0}

    def poisoned(self, ctx):
        calls["n"] += 1
        terms = real(self, ctx)
        if calls["n"] == 3:
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(SaeAlign, "losses", poisoned)
    result = _finished(events_of(session, tiny_request(session, steps=6, seed=1)))
    # The weights after step 2 gave the NaN loss of step 3: the last good ones are those after step 1.
    assert result.result.stopped == "diverged" and result.result.steps_done == 1
    assert "step 3" in result.result.message and "after step 1 were restored" in result.result.message
    for name, parameter in session.resettable_parameters().items():
        torch.testing.assert_close(parameter, one_step[name], rtol=0, atol=0)
    session.reset()


def test_run_folder_has_config_metrics_report_and_model(session, tmp_path):
    run = tmp_path / "run"
    request = tiny_request(session, run_dir=run, evaluate=True)
    request.save_model = True
    report = _finished(events_of(session, request)).report
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "report.json", "report.html", "model"}
    saved = json.loads((run / "report.json").read_text())
    for key in ("target_p_known", "target_unknown_fraction", "forget_accuracy", "retain_accuracy", "perplexity"):
        assert key in saved["before"] and key in saved["after"]
    assert saved["method"] == "sae-align" and saved["targets"] == ["Eiffel Tower"] and saved["steps"] == 3
    assert len(read_metrics(run)) == 3
    assert "<svg" in (run / "report.html").read_text() and report["fact_table"]
    assert (run / "model" / "model.safetensors").is_file()


def test_run_folder_refuses_a_used_folder(session, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    events = events_of(session, tiny_request(session, run_dir=tmp_path / "run"))
    assert isinstance(events[-1], Failed) and "not empty" in events[-1].error
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_target_in_references_is_taken_out_and_said(session):
    request = tiny_request(session, names=("Eiffel Tower",))
    events = events_of(session, request)
    messages = [getattr(e, "message", "") for e in events]
    assert any("taken out of the references" in m for m in messages)
    known, _ = session.reference_entities(["Eiffel Tower"], verify=False, limit=1000)
    assert "Eiffel Tower" not in {e.name for e in known}


def test_target_without_facts_runs_on_knownness_alone(session):
    request = tiny_request(session, names=("Zorvath Quellinbrook",), evaluate=True)
    result = _finished(events_of(session, request))
    assert result.before.forget_accuracy is None and result.after.forget_accuracy is None
    events = events_of(session, tiny_request(session, names=("Zorvath Quellinbrook",), method="grad-ascent"))
    assert isinstance(events[-1], Failed) and "needs the targets' facts" in events[-1].error


@pytest.mark.parametrize("shifted_tokens, seen_by", [("last entity token", {"last", "entity", "all"}),
                                                    ("other entity tokens", {"entity", "all"}),
                                                    ("tokens outside the name", {"all"})])
def test_retain_term_holds_the_chosen_tokens_of_the_retain_prompts(session, shifted_tokens, seen_by):
    """Shift θ0's record at one kind of token only: just the settings that hold those tokens see the drift."""
    from unlearn_studio.engine.methods import RETAIN_POSITIONS
    from unlearn_studio.engine.objectives import StepContext, retain_drift
    from unlearn_studio.engine.trainer import TrainConfig, UnlearningPlan, prepare_batches

    targets = session.resolve_targets(["Eiffel Tower"])
    known, unknown = session.reference_entities(["Eiffel Tower"], verify=False, limit=24)
    plan = UnlearningPlan(targets, known, session.entity_data()[2], session.references(known, unknown))
    batches = prepare_batches(session.model, session.tokenizer, session.sae.sae, session.hook, plan, TrainConfig(retain_entities=4))
    ctx = StepContext(session.model, session.sae.sae, session.hook, plan.references, batches)
    rows = batches.retain
    last = torch.zeros_like(rows.entity_mask)
    last[torch.arange(len(rows)), rows.last_entity_pos] = True
    outside = rows.attention_mask.bool() & ~rows.entity_mask
    outside[:, 0] = False
    shifted = {"last entity token": last, "other entity tokens": rows.entity_mask & ~last,
               "tokens outside the name": outside}[shifted_tokens]
    assert shifted.any()
    with torch.no_grad():
        before = {p: float(retain_drift(ctx, p)) for p in RETAIN_POSITIONS}
        batches.retain_original = batches.retain_original + 5.0 * shifted.unsqueeze(-1)
        after = {p: float(retain_drift(ctx, p)) for p in RETAIN_POSITIONS}
    assert max(before.values()) < 1e-6
    assert {p for p, drift in after.items() if drift > 1e-3} == seen_by


def test_the_exemplar_pull_names_the_typical_unknown_entity_and_runs(session):
    from unlearn_studio.engine.events import Progress

    events = events_of(session, tiny_request(session, pull="exemplar", steps=2))
    assert isinstance(events[-1], Finished), events[-1]
    said = [e.message for e in events if isinstance(e, Progress) and "typical unknown entity" in e.message]
    _, unknown = session.reference_entities(["Eiffel Tower"], verify=False, limit=REFERENCE_LIMIT)
    assert len(said) == 1 and said[0].rsplit(": ", 1)[1] in {e.name for e in unknown}
