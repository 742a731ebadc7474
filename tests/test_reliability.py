"""Bad input and faults: each ends in a message that names the problem and the fix, and nothing is lost."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.cli import main
from unlearn_studio.engine.events import Failed, Finished
from unlearn_studio.engine.objectives import SaeAlign
from unlearn_studio.engine.runs import SaveError, read_metrics, save_model_folder
from unlearn_studio.engine.validation import check_device, check_output_folder, layers_below_note
from unlearn_studio.errors import UserError


@pytest.fixture(scope="module")
def session(tiny_model_dir, tiny_sae_dir):
    return tiny_session(tiny_model_dir, tiny_sae_dir)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("name,fragment", [("", "empty"), ("   \t ", "empty"), ("Bad\x07name", "control")])
def test_unusable_target_names_are_refused(session, name, fragment):
    with pytest.raises(UserError, match=fragment):
        session.resolve_targets([name])


def test_a_name_longer_than_a_prompt_is_refused(session):
    with pytest.raises(UserError, match="too long|tokens long|at most"):
        session.resolve_targets(["Zorvath " * 150])


def test_out_of_memory_becomes_a_message_with_what_to_lower(session, monkeypatch):
    def explode(self, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(SaeAlign, "losses", explode)
    events = events_of(session, tiny_request(session))
    assert isinstance(events[-1], Failed)
    assert "out of memory" in events[-1].error and "bfloat16" in events[-1].error
    session.reset()


def test_save_never_overwrites_and_never_writes_into_the_loaded_model(session, tiny_model_dir, tmp_path):
    before = _digest(tiny_model_dir)
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    with pytest.raises(SaveError, match="already exists"):
        session.save_model(existing)
    assert (existing / "mine.txt").read_text() == "keep"
    with pytest.raises(SaveError, match="inside the loaded model"):
        session.save_model(tiny_model_dir / "unlearned")
    assert _digest(tiny_model_dir) == before


def test_a_full_disk_during_a_save_leaves_nothing_behind(session, tmp_path, monkeypatch):
    model = session.model

    def full_disk(folder, **kwargs):
        (Path(folder) / "model.safetensors").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_pretrained", full_disk)
    with pytest.raises(SaveError, match="No space left on device.*partial save was removed"):
        save_model_folder(model, session.tokenizer, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_cli_facts_file_error_is_one_line(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    facts = tmp_path / "facts.json"
    facts.write_text('[{"entity": "Marie Curie", "facts": [{"prompt": "x", "answers": []}]}]')
    code = main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--facts", str(facts),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "facts.json" in err and "answers" in err and "Traceback" not in err


def test_cli_refuses_a_used_output_folder(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.json").write_text("{}")
    code = main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "X",
                 "--out", str(tmp_path / "run")])
    assert code == 2 and "not empty" in capsys.readouterr().err


def test_killed_process_leaves_valid_metrics_and_an_untouched_model(tiny_model_dir, tiny_sae_dir, tmp_path):
    before = _digest(tiny_model_dir)
    run = tmp_path / "run"
    env = {**os.environ, "UNLEARN_STUDIO_DATA": str(tmp_path / "data")}
    command = [sys.executable, "-m", "unlearn_studio.cli", "--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae",
               str(tiny_sae_dir), "--target", "Eiffel Tower", "--steps", "500", "--lr", "1e-4", "--no-verify",
               "--no-early-stop", "--out", str(run)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(read_metrics(run)) < 3:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line written is complete JSON
    assert len(rows) >= 3 and [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert _digest(tiny_model_dir) == before


# ---- divergence: a run that blows up never leaves a broken model behind ------------------------------------------------

def test_cli_absurd_learning_rate_exits_3_and_saves_no_model(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--steps", "3", "--lr", "1e9", "--no-verify", "--save-model", "--out", str(run)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("unlearn-studio: error:")]
    assert code == 3 and len(errors) == 1 and "Traceback" not in err, err
    assert "diverged" in errors[0] and "Lower the learning rate" in errors[0] and "No model was saved" in errors[0]
    assert not (run / "model").exists()
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == report["stopped"] == "diverged" and report["steps"] == 0
    assert report["after"]["perplexity"] == pytest.approx(report["before"]["perplexity"])  # θ0 is back


def test_a_huge_update_restores_the_starting_weights(session):
    events = events_of(session, tiny_request(session, steps=3, lr=1e9))
    result = next(e for e in events if isinstance(e, Finished)).result.result
    assert (result.stopped, result.steps_done) == ("diverged", 0)
    assert "changed the trained weights" in result.message and "starting weights were restored" in result.message
    assert not session.is_modified()


def _explode_at_call(monkeypatch, call: int) -> None:
    real = SaeAlign.losses
    calls = {"n": 0}

    def exploding(self, ctx):
        calls["n"] += 1
        terms = real(self, ctx)
        if calls["n"] == call:
            terms["total"] = terms["total"] * 1000.0  # finite, but far past 10× the first step's loss
        return terms

    monkeypatch.setattr(SaeAlign, "losses", exploding)


def test_an_exploding_loss_keeps_the_last_good_step_and_saves_it_when_sane(session, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    _explode_at_call(monkeypatch, 3)
    request = tiny_request(session, steps=5, lr=1e-3, run_dir=tmp_path / "run")
    request.save_model = True
    report = next(e for e in events_of(session, request) if isinstance(e, Finished)).result.report
    assert report["status"] == "diverged" and report["steps"] == 1 and "exploded at step 3" in report["message"]
    assert report["sanity"]["passed"] and report["sanity"]["perplexity_restored"] <= 2 * report["sanity"]["perplexity_original"]
    saved = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    current = session.resettable_parameters()
    assert session.is_modified() and all(torch.equal(saved[name], current[name]) for name in current if name in saved)
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "diverged"
    session.reset()


def test_restored_weights_failing_the_perplexity_check_are_not_saved(session, tmp_path, monkeypatch):
    from unlearn_studio.engine import pipeline

    _explode_at_call(monkeypatch, 3)
    monkeypatch.setattr(pipeline, "perplexity", lambda model, tokenizer, text: 1000.0 if session.is_modified() else 10.0)
    request = tiny_request(session, steps=5, lr=1e-3, run_dir=tmp_path / "run")
    request.save_model = True
    report = next(e for e in events_of(session, request) if isinstance(e, Finished)).result.report
    assert report["status"] == "diverged" and not report["sanity"]["passed"]
    assert "perplexity 1000.0 is more than 2× the original 10.0" in report["error"]
    assert not (tmp_path / "run" / "model").exists()
    session.reset()


def test_a_normal_run_is_not_called_diverged(session):
    result = next(e for e in events_of(session, tiny_request(session, steps=3)) if isinstance(e, Finished)).result
    assert result.report["status"] == "finished" and result.result.stopped == "steps"
    session.reset()


# ---- bad input: refused before the model loads, in one line of our words -------------------------------------------------

@pytest.fixture(scope="module")
def broken_inputs(tmp_path_factory, tiny_model_dir, tiny_sae_dir) -> Path:
    """Files a careless user could point at: a plain file, garbage .gguf files, configs that lie."""
    root = tmp_path_factory.mktemp("broken")
    (root / "a-file").write_text("x")
    (root / "garbage.gguf").write_bytes(b"\xff\xfe not a model" * 10)
    (root / "bad-version.gguf").write_bytes(b"GGUF" + b"\xff\xfe not a model" * 10)
    for name, source, config_file, change in (("unknown-type", tiny_model_dir, "config.json", {"model_type": "quantumfoo"}),
                                              ("unknown-arch", tiny_sae_dir, "cfg.json", {"architecture": "quantum-foo"}),
                                              ("lying-d-in", tiny_sae_dir, "cfg.json", {"d_in": 32})):
        shutil.copytree(source, root / name)
        config = json.loads((root / name / config_file).read_text())
        (root / name / config_file).write_text(json.dumps(config | change))
    facts = [{"entity": f"Entity {i}", "facts": [{"prompt": f"Entity {i} is", "answers": ["x"]}]} for i in range(10_000)]
    (root / "many.json").write_text(json.dumps(facts))
    (root / "long.json").write_text(json.dumps([{"entity": "Zorb", "facts": [{"prompt": "Zorb " * 10_000, "answers": ["x"]}]}]))
    (root / "context.json").write_text(json.dumps([{"entity": "Zorb", "facts": [{"prompt": "Zorb is " * 100, "answers": ["x"]}]}]))
    return root


BAD_INPUTS = [
    ("out-is-a-file", ["unlearn", "{sae}", "--target", "X", "--out", "{root}/a-file"], "is an existing file"),
    ("out-below-a-file", ["unlearn", "{sae}", "--target", "X", "--out", "{root}/a-file/run"], "is a file, not a folder"),
    ("out-under-proc", ["unlearn", "{sae}", "--target", "X", "--out", "/proc/unlearn-run"], "cannot write the output folder"),
    ("device-nonsense", ["unlearn", "{sae}", "--device", "nonsense", "--target", "X", "--out", "{run}"], "unknown device 'nonsense'"),
    ("float16-on-cpu", ["unlearn", "{sae}", "--device", "cpu", "--dtype", "float16", "--target", "X", "--out", "{run}"],
     "use bfloat16 or float32"),
    ("layers-below-negative", ["unlearn", "{sae}", "--layers-below", "-3", "--target", "X", "--out", "{run}"],
     "setting 'layers_below' must lie in [0, 1000]"),
    ("steps-zero", ["unlearn", "{sae}", "--steps", "0", "--target", "X", "--out", "{run}"], "setting 'steps' must lie in [1, 100000]"),
    ("lr-not-finite", ["unlearn", "{sae}", "--lr", "nan", "--target", "X", "--out", "{run}"], "setting 'lr' must be a number, not NaN"),
    ("sae-id-without-sae", ["unlearn", "--sae-id", "layer_9/x", "--target", "X", "--out", "{run}"], "needs the sae-lens release"),
    ("punctuation-target", ["unlearn", "{sae}", "--target", "!!!", "--out", "{run}"], "has no letter or digit"),
    ("emoji-target", ["unlearn", "{sae}", "--target", "🎉🎉", "--out", "{run}"], "has no letter or digit"),
    ("10000-facts", ["unlearn", "{sae}", "--facts", "{root}/many.json", "--out", "{run}"], "a run forgets at most 50"),
    ("50000-character-fact", ["unlearn", "{sae}", "--facts", "{root}/long.json", "--out", "{run}"], "at most 1,000 are allowed"),
    ("fact-past-the-context", ["unlearn", "{sae}", "--facts", "{root}/context.json", "--out", "{run}"], "tokens long: at most 256"),
    ("ask-zero-tokens", ["ask", "--max-new-tokens", "0", "hi"], "max new tokens must be between 1"),
    ("ask-negative-tokens", ["ask", "--max-new-tokens", "-5", "hi"], "max new tokens must be between 1"),
    ("ask-100000-characters", ["ask", "x" * 100_000], "at most 32,000 are allowed"),
    ("ask-past-the-context", ["ask", "Paris " * 300], "at most 208 fit"),
    ("garbage-gguf", ["ask", "--model", "{root}/garbage.gguf", "hi"], "garbage.gguf is not a GGUF model file"),
    ("gguf-bad-version", ["ask", "--model", "{root}/bad-version.gguf", "hi"], "could not read the GGUF model"),
    ("unknown-model-type", ["ask", "--model", "{root}/unknown-type", "hi"], "model type 'quantumfoo'"),
    ("uncached-hub-id", ["ask", "--model", "nobody/not-a-model-here", "hi"], "not in the Hugging Face cache"),
    ("unknown-sae-architecture", ["info", "--sae", "{root}/unknown-arch"], "architecture 'quantum-foo'"),
    ("sae-d-in-disagrees-with-weights", ["info", "--sae", "{root}/lying-d-in"], "W_enc has shape (64, 128)"),
]


@pytest.mark.parametrize("case,argv,fragment", BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS])
def test_bad_input_is_one_line_of_ours_without_traceback(case, argv, fragment, broken_inputs, tiny_model_dir, tiny_sae_dir,
                                                        tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = tmp_path / "run"
    words = {"{root}": str(broken_inputs), "{run}": str(run)}
    args = []
    for arg in argv:
        if arg == "{sae}":
            args += ["--sae", str(tiny_sae_dir)]
            continue
        for key, value in words.items():
            arg = arg.replace(key, value)
        args.append(arg)
    if "--model" not in args:
        args = [args[0], "--model", str(tiny_model_dir), *args[1:]]
    code = main(["--quiet", *args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("unlearn-studio: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert fragment in errors[0]
    assert not run.exists() and not (broken_inputs / "a-file" / "run").exists()  # nothing left behind


def test_debug_shows_the_traceback(tiny_model_dir, capsys):
    assert main(["--debug", "--quiet", "ask", "--model", str(tiny_model_dir), "--max-new-tokens", "0", "hi"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_too(tiny_model_dir, capsys, monkeypatch):
    from unlearn_studio.engine import generation

    def broken(*args, **kwargs):
        raise RuntimeError("shape '[1, -1]' is invalid\nfor input of size 7")

    monkeypatch.setattr(generation, "stream_answer", broken)
    assert main(["--quiet", "ask", "--model", str(tiny_model_dir), "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError" in err and "--debug" in err and "Traceback" not in err


def test_an_unwritable_data_folder_is_named(tiny_model_dir, tiny_sae_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(tmp_path / "a-file" / "data"))
    assert main(["--quiet", "classify", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir)]) == 2
    err = capsys.readouterr().err
    assert "data folder" in err and "UNLEARN_STUDIO_DATA" in err and "Traceback" not in err


def test_output_folder_check_leaves_nothing_behind(tmp_path):
    folder = check_output_folder(tmp_path / "new" / "run")
    assert folder == tmp_path / "new" / "run" and list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    assert (tmp_path / "empty").is_dir() and list((tmp_path / "empty").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_output_folder_check_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="permission denied"):
            check_output_folder(locked / "run")
    finally:
        locked.chmod(0o700)


def test_device_names_are_checked():
    assert check_device("auto") in {"cpu", "cuda", "mps"} and check_device("CPU") == "cpu"
    for bad in ("nonsense", "cpu:1", "gpu", "cuda:x"):
        with pytest.raises(UserError, match="unknown device"):
            check_device(bad)


def test_more_layers_below_than_exist_is_clamped_and_said(session):
    assert layers_below_note(3, 9) == ""
    assert "trains layers 0–1" in layers_below_note(1000, 1)
    from unlearn_studio.engine.trainer import TrainConfig, select_parameters

    chosen = select_parameters(session.model, session.hook, TrainConfig(layers_below=1000))
    assert {id(p) for p in chosen} == {id(p) for layer in session.model.model.layers for p in layer.mlp.parameters()}


@pytest.mark.parametrize("name", ["AC/DC", "Pelé", "C++", "Björk Guðmundsdóttir", "7-Eleven", "東京タワー"])
def test_names_with_odd_characters_are_accepted(session, name):
    assert [t.name for t in session.resolve_targets([name])] == [name]
