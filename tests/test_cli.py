"""The command line: info as JSON, version, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json

import pytest

from unlearn_studio import __version__
from unlearn_studio.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and __version__ in capsys.readouterr().out


def test_info_prints_model_and_sae(tiny_model_dir, tiny_sae_dir, capsys):
    assert main(["--quiet", "info", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["model"]["name"] == tiny_model_dir.name
    assert (described["model"]["n_layers"], described["model"]["d_model"]) == (2, 64)
    assert (described["sae"]["d_in"], described["sae"]["d_sae"]) == (64, 128)
    assert (described["sae"]["hook"], described["sae"]["architecture"]) == ("model.layers.1", "topk")


@pytest.mark.parametrize("args,fragment", [
    (["--model", "/no/such/folder", "--sae", "/tmp"], "does not exist"),
])
def test_errors_are_one_line_without_traceback(args, fragment, capsys):
    assert main(["--quiet", "info", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1


def test_an_sae_trained_on_other_weights_is_a_warning_on_stderr(tiny_model_dir, tiny_sae_dir, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(tiny_sae_dir, tmp_path / "sae")
    (folder / "training.json").write_text(json.dumps({"model_fingerprint": "0123456789abcdef"}))
    assert main(["--quiet", "classify", "--model", str(tiny_model_dir), "--sae", str(folder)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "fingerprint 0123456789abcdef" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: this SAE was trained on another copy")


def test_sae_for_another_width_is_refused(tiny_model_dir, tmp_path, capsys):
    from tests.tiny import make_sae_folder

    sae = make_sae_folder(tmp_path / "sae", d_in=32)
    assert main(["--quiet", "info", "--model", str(tiny_model_dir), "--sae", str(sae)]) == 2
    assert "d_in = 32" in capsys.readouterr().err


@pytest.mark.demo
def test_info_demo(demo_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("UNLEARN_STUDIO_DATA", str(demo_model_dir.parents[1]))
    assert main(["--quiet", "info", "--demo"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["model"]["name"] == "SmolLM2-135M-Instruct" and described["model"]["n_layers"] == 30
    assert described["sae"]["d_in"] == 576 and described["sae"]["hook"] == "model.layers.9"
    # the demo SAE was trained on exactly these weights: no fingerprint warning
    assert described["sae"]["model_fingerprint"] == described["model"]["fingerprint"]
    assert not [w for w in described["warnings"] if "fingerprint" in w]


def test_unlearn_passes_the_alignment_settings_to_the_run(tiny_model_dir, tiny_sae_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["--quiet", "unlearn", "--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--target", "Eiffel Tower",
                 "--steps", "1", "--no-verify", "--no-early-stop", "--space", "code", "--positions", "last",
                 "--retain-positions", "entity", "--retain-fact-prompts", "--no-fact-contexts", "--lambda-retain", "2",
                 "--out", str(run)]) == 0
    config = json.loads((run / "report.json").read_text())["config"]
    chosen = {k: config[k] for k in ("positions", "space", "retain_positions", "lambda_retain")}
    assert chosen == {"positions": "last", "space": "code", "retain_positions": "entity", "lambda_retain": 2.0}
    assert config["retain_fact_prompts"] is True and config["fact_contexts"] is False
