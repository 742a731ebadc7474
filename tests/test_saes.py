"""SAE loading through sae-lens and the checks against the model."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tiny import make_sae_folder
from unlearn_studio.engine.models import load_model
from unlearn_studio.engine.saes import SaeLoadError, check_sae_fits_model, load_sae


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
