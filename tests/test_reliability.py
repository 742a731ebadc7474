"""Bad input and faults: each ends in a message that names the problem and the fix, and nothing is lost."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import events_of, tiny_request, tiny_session
from unlearn_studio.cli import main
from unlearn_studio.engine.events import Failed
from unlearn_studio.engine.objectives import SaeAlign
from unlearn_studio.engine.runs import SaveError, read_metrics, save_model_folder
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
