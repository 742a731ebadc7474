"""SAE loading through sae-lens and the checks against the model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from tests.tiny import make_sae_folder
from unlearn_studio.engine.models import load_model
from unlearn_studio.engine.pipeline import ModelSpec, load_session
from unlearn_studio.engine.saes import SaeLoadError, check_sae_fits_model, load_sae

SHIPPED_TRAINING_RECORD = Path(__file__).resolve().parents[1] / "resources" / "demo_sae" / "training.json"


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def test_loads_folder_and_fits(tiny_model, tiny_sae_dir):
    sae = load_sae(tiny_sae_dir)
    assert (sae.info.architecture, sae.info.d_in, sae.info.d_sae, sae.info.hook) == ("topk", 64, 128, "model.layers.1")
    hook, warnings = check_sae_fits_model(sae, tiny_model.model, tiny_model.info)
    assert hook.layer == 1 and hook.module_path == "model.layers.1"
    assert warnings and "trained on 'tiny'" in warnings[0]  # the folder's name is not 'tiny'
    codes = sae.encode(torch.randn(3, 64))
    assert codes.shape == (3, 128) and int((codes[0] != 0).sum()) <= 8


def test_tl_style_hook_names_resolve(tiny_model, tmp_path):
    sae = load_sae(make_sae_folder(tmp_path / "sae", hook_name="blocks.0.hook_resid_post", model_name=tiny_model.info.name))
    hook, warnings = check_sae_fits_model(sae, tiny_model.model, tiny_model.info)
    assert hook.module_path == "model.layers.0" and warnings == []


def test_width_mismatch_names_both_numbers(tiny_model, tmp_path):
    sae = load_sae(make_sae_folder(tmp_path / "sae", d_in=32))
    with pytest.raises(SaeLoadError, match=r"d_in = 32.*width 64"):
        check_sae_fits_model(sae, tiny_model.model, tiny_model.info)


def test_missing_hook_names_layer_count(tiny_model, tmp_path):
    sae = load_sae(make_sae_folder(tmp_path / "sae", hook_name="blocks.12.hook_resid_post"))
    with pytest.raises(SaeLoadError, match="this model has 2 layers"):
        check_sae_fits_model(sae, tiny_model.model, tiny_model.info)


def test_fingerprint_mismatch_is_a_warning(tiny_model, tmp_path):
    folder = make_sae_folder(tmp_path / "sae", model_name=tiny_model.info.name)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["unlearn_studio"] = {"model_fingerprint": "0000000000000000"}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    _, warnings = check_sae_fits_model(load_sae(folder), tiny_model.model, tiny_model.info)
    assert len(warnings) == 1 and "fingerprint" in warnings[0]


def sae_with_training_record(tiny_sae_dir: Path, folder: Path, record_text: str | None) -> Path:
    """A copy of the tiny SAE whose training.json holds ``record_text`` (None: no training.json)."""
    shutil.copytree(tiny_sae_dir, folder)
    if record_text is not None:
        (folder / "training.json").write_text(record_text)
    return folder


def fingerprint_warnings(session) -> list[str]:  # noqa: ANN001 - an engine Session
    return [w for w in session.warnings if "fingerprint" in w]


def test_an_sae_trained_on_other_weights_warns_at_load(tiny_model, tiny_model_dir, tiny_sae_dir, tmp_path):
    record = json.dumps({"model_fingerprint": "0123456789abcdef", "config": {"model_name": "tiny"}})
    folder = sae_with_training_record(tiny_sae_dir, tmp_path / "sae", record)
    session = load_session(ModelSpec(model=str(tiny_model_dir), sae=str(folder), device="cpu"))
    [warning] = fingerprint_warnings(session)
    assert "0123456789abcdef" in warning and tiny_model.info.fingerprint in warning
    assert "known/unknown map" in warning and "Load the model it was trained on" in warning
    assert session.describe()["warnings"] == session.warnings  # what the window's card shows
    assert session.sae.info.model_fingerprint == "0123456789abcdef"


@pytest.mark.parametrize("record", ["right", None, "{}", "{ broken", "[1, 2]"])
def test_no_fingerprint_warning_for_the_right_model_or_no_record(tiny_model, tiny_model_dir, tiny_sae_dir, tmp_path,
                                                                 record):
    text = json.dumps({"model_fingerprint": tiny_model.info.fingerprint}) if record == "right" else record
    folder = sae_with_training_record(tiny_sae_dir, tmp_path / "sae", text)
    session = load_session(ModelSpec(model=str(tiny_model_dir), sae=str(folder), device="cpu"))
    assert fingerprint_warnings(session) == []
    assert session.sae.info.model_fingerprint == (tiny_model.info.fingerprint if record == "right" else None)


def test_the_demo_sae_records_the_model_it_was_trained_on():
    record = json.loads(SHIPPED_TRAINING_RECORD.read_text())
    assert re.fullmatch(r"[0-9a-f]{16}", record["model_fingerprint"])


def test_bad_folders_are_explained(tmp_path):
    with pytest.raises(SaeLoadError, match="does not exist"):
        load_sae(tmp_path / "none")
    with pytest.raises(SaeLoadError, match="sae_weights.safetensors missing"):
        load_sae(tmp_path)
    folder = make_sae_folder(tmp_path / "sae")
    (folder / "cfg.json").write_text("{ broken")
    with pytest.raises(SaeLoadError, match="line 1, column 3"):
        load_sae(folder)


def test_unknown_release_suggests_close_names():
    with pytest.raises(SaeLoadError, match="Did you mean gemma-scope-2b-pt-res-canonical"):
        load_sae("gemma-scope-2b-pt-res-canonicall", "layer_9/width_16k/canonical")
    with pytest.raises(SaeLoadError, match="has no SAE"):
        load_sae("gemma-scope-2b-pt-res-canonical", "layer_99/width_16k/canonical")
